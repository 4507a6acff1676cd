//! Separate `--role ingest|process|query` processes of the real binary over a
//! private NATS and ClickHouse: delivery survives a killed processor and a
//! broker restart, live tail crosses instances, and every role waits for
//! what it depends on instead of failing.

use super::deps::{ClickHouse, Nats};
use crate::support::{Launch, LiveConnection, Server, eventually, next_log};
use awc::http::StatusCode;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

pub(super) const DATABASE: &str = "split";

/// A role wired to the test's NATS (and ClickHouse, for roles with a store),
/// with short timings so redelivery and batching show within seconds.
pub(super) fn role(role: &str, nats: &Nats, clickhouse: Option<&ClickHouse>) -> Launch {
    let mut launch = Launch::default()
        .arg("--role")
        .arg(role)
        .env("NATS_URL", &nats.url())
        .env("OGLOGSTREAM_NATS__ACK_WAIT", "3s")
        .env("FLUSH_TIMEOUT", "100ms")
        .env("BATCH_SIZE", "1000");
    if let Some(clickhouse) = clickhouse {
        launch = launch.env("CLICKHOUSE_DSN", &clickhouse.dsn(DATABASE));
    }
    launch
}

pub(super) fn marked(marker: &str, n: usize) -> Value {
    let level = ["debug", "info", "warn", "error", "fatal"][n % 5];
    json!({"level": level, "service": format!("svc-{}", n % 7), "message": format!("{marker}-{n}")})
}

/// Posts a bulk request until it is accepted, as a log shipper would:
/// 503 means "retry shortly". Returns how many 503s it took.
pub(super) async fn ship(server: &Server, body: &str, expect_accepted: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut refused = 0;
    loop {
        let (status, answer) = server
            .post("/log/bulk", Some("application/x-ndjson"), body.to_string())
            .await;
        match status {
            StatusCode::ACCEPTED => {
                assert_eq!(answer["accepted"], expect_accepted, "{answer}");
                return refused;
            }
            StatusCode::SERVICE_UNAVAILABLE => refused += 1,
            other => panic!("unexpected {other}: {answer}"),
        }
        assert!(Instant::now() < deadline, "ingest kept refusing: {answer}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Distinct `message`s starting with `marker` that ClickHouse holds.
async fn stored_markers(clickhouse: &ClickHouse, marker: &str) -> HashSet<String> {
    clickhouse
        .query(&format!(
            "SELECT DISTINCT message FROM {DATABASE}.logs WHERE startsWith(message, '{marker}-')"
        ))
        .await
        .map(|text| text.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

pub(super) async fn wait_all_stored(
    clickhouse: &ClickHouse,
    marker: &str,
    accepted: &HashSet<String>,
) {
    eventually(
        &format!("{} accepted logs in ClickHouse", accepted.len()),
        Duration::from_secs(90),
        || async {
            let stored = stored_markers(clickhouse, marker).await;
            accepted.is_subset(&stored).then_some(())
        },
    )
    .await;
}

#[actix_web::test]
async fn two_ingest_two_process_one_query_lose_nothing_when_a_processor_is_killed() {
    const TOTAL: usize = 20_000;
    const PER_REQUEST: usize = 50;
    const CONCURRENT_REQUESTS: usize = 8;
    let started = Instant::now();
    let nats = Nats::start().await;
    let clickhouse = ClickHouse::start().await;
    let processors = [
        Server::launch(role("process", &nats, Some(&clickhouse))).await,
        Server::launch(role("process", &nats, Some(&clickhouse))).await,
    ];
    let ingests = [
        Server::launch(role("ingest", &nats, None)).await,
        Server::launch(role("ingest", &nats, None)).await,
    ];
    let query = Server::launch(role("query", &nats, Some(&clickhouse))).await;

    let requests = TOTAL / PER_REQUEST;
    let bodies: Vec<String> = (0..requests)
        .map(|r| {
            (r * PER_REQUEST..(r + 1) * PER_REQUEST)
                .map(|n| marked("split", n).to_string() + "\n")
                .collect()
        })
        .collect();
    let mut sends = futures_util::stream::iter(bodies.iter().enumerate())
        .map(|(r, body)| ship(&ingests[r % 2], body, PER_REQUEST))
        .buffer_unordered(CONCURRENT_REQUESTS);
    let mut done = 0;
    let mut refused = 0;
    let mut killed_at = None;
    while let Some(retries) = sends.next().await {
        done += 1;
        refused += retries;
        if done == requests / 4 {
            // Mid-stream: whatever this processor holds unacknowledged must
            // be redelivered to the other one.
            processors[0].signal(libc::SIGKILL);
            killed_at = Some(done * PER_REQUEST);
        }
    }
    drop(sends);
    let accepted: HashSet<String> = (0..TOTAL).map(|n| format!("split-{n}")).collect();
    wait_all_stored(&clickhouse, "split", &accepted).await;

    let rows = clickhouse
        .number(&format!("SELECT count() FROM {DATABASE}.logs"))
        .await;
    let ids = clickhouse
        .number(&format!("SELECT uniqExact(id) FROM {DATABASE}.logs"))
        .await;
    assert_eq!(ids as usize, TOTAL, "one id per accepted log, all stored");
    let duplicates = rows - ids;
    println!(
        "split roles: {TOTAL} logs accepted through 2 ingest instances ({refused} 503 retries), \
         processor killed after {} accepted, {rows} rows stored for {ids} distinct ids: \
         {duplicates} duplicates from redelivery, in {:?}",
        killed_at.unwrap_or(0),
        started.elapsed()
    );
    // The query role reads the same ClickHouse, through the rollup.
    let (status, stats) = query.get("/api/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["total_logs"], rows, "{stats}");
    let (_, page) = query.get("/api/logs?q=split-19999").await;
    let rows = page.as_array().expect("an array");
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r["message"] == "split-19999"),
        "{page}"
    );
    assert!(
        processors[1]
            .logs()
            .contains("NATS stream and consumer ready")
    );
}

async fn next_message(connection: &mut LiveConnection, within: Duration) -> Option<String> {
    let log = next_log(connection, within).await?;
    log["message"].as_str().map(str::to_string)
}

#[actix_web::test]
async fn live_tail_through_the_query_role_shows_logs_from_other_ingest_instances() {
    let nats = Nats::start().await;
    let clickhouse = ClickHouse::start().await;
    let ingest_a = Server::launch(role("ingest", &nats, None)).await;
    let ingest_b = Server::launch(role("ingest", &nats, None)).await;
    let query = Server::launch(role("query", &nats, Some(&clickhouse))).await;
    let (_, mut live) = query
        .client
        .ws(query.ws_url("/ws/live"))
        .connect()
        .await
        .expect("websocket connects");
    // The query instance subscribes to the live subject as it starts; probe
    // until the first log comes through, then every log must.
    let mut probes = 0;
    loop {
        ingest_a
            .accept(
                &json!({"level": "info", "service": "probe", "message": format!("probe-{probes}")}),
            )
            .await;
        probes += 1;
        if next_message(&mut live, Duration::from_millis(300))
            .await
            .is_some()
        {
            break;
        }
        assert!(probes < 50, "live tail never delivered a probe");
    }
    while next_message(&mut live, Duration::from_millis(200))
        .await
        .is_some()
    {}
    tail_shows(&mut live, &ingest_b, "from ingest b").await;
    tail_shows(&mut live, &ingest_a, "from ingest a").await;
}

/// Sends one log with `message` through `ingest`; `live` must show it.
async fn tail_shows(live: &mut LiveConnection, ingest: &Server, message: &str) {
    ingest
        .accept(&json!({"level": "warn", "service": "tail", "message": message}))
        .await;
    assert_eq!(
        next_message(live, Duration::from_secs(5)).await.as_deref(),
        Some(message)
    );
}

/// A query instance takes the live subject (every log the deployment
/// ingests) only while someone tails through it: subscribed before the
/// tail's upgrade answers, so the first log sent after it is shown, and let
/// go a few seconds after the last tail closed.
#[actix_web::test]
async fn the_query_role_takes_the_live_subject_only_while_someone_tails() {
    let monitor = crate::support::free_port();
    let nats = Nats::start_with(&format!("http: 127.0.0.1:{monitor}")).await;
    let ingest = Server::launch(role("ingest", &nats, None)).await;
    let query = Server::launch(role("query", &nats, None)).await;
    let live_subscriptions = || async move {
        let text = awc::Client::default()
            .get(format!("http://127.0.0.1:{monitor}/connz?subs=1"))
            .send()
            .await
            .expect("nats monitoring answers")
            .body()
            .await
            .expect("connz body");
        let connz: Value = serde_json::from_slice(&text).expect("connz is JSON");
        connz["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["subscriptions_list"].as_array().into_iter().flatten())
            .filter(|s| s.as_str() == Some("oglogstream.live"))
            .count()
    };
    assert_eq!(live_subscriptions().await, 0, "nobody tails yet");

    let (_, mut live) = query
        .client
        .ws(query.ws_url("/ws/live"))
        .connect()
        .await
        .expect("websocket connects");
    assert_eq!(
        live_subscriptions().await,
        1,
        "subscribed before the upgrade answered"
    );
    tail_shows(&mut live, &ingest, "the first log after the upgrade").await;

    drop(live);
    eventually(
        "the live subject let go after the last tail closed",
        Duration::from_secs(20),
        || async { (live_subscriptions().await == 0).then_some(()) },
    )
    .await;
}

/// Posts one log; its marker if accepted.
async fn post_one(server: &Server, marker: &str, n: usize) -> (StatusCode, Option<String>) {
    let log = marked(marker, n);
    let (status, _) = server.post_log(&log).await;
    let accepted = (status == StatusCode::ACCEPTED).then(|| format!("{marker}-{n}"));
    (status, accepted)
}

#[actix_web::test]
async fn ingest_answers_503_while_nats_is_down_and_recovers_without_losing_accepted_logs() {
    let mut nats = Nats::start().await;
    let clickhouse = ClickHouse::start().await;
    // A publish waits this long for a lost connection to come back before
    // the broker counts as down and publishes fail at once.
    let ingest =
        Server::launch(role("ingest", &nats, None).env("OGLOGSTREAM_NATS__PUBLISH_TIMEOUT", "2s"))
            .await;
    let _process = Server::launch(role("process", &nats, Some(&clickhouse))).await;
    let mut accepted = HashSet::new();
    let mut n = 0;
    for _ in 0..200 {
        let (status, marker) = post_one(&ingest, "restart", n).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        accepted.extend(marker);
        n += 1;
    }

    nats.stop();
    eventually(
        "ingest to report NATS down",
        Duration::from_secs(20),
        || async {
            let (status, health) = ingest.get("/health").await;
            (status == StatusCode::SERVICE_UNAVAILABLE && health["failing"] == json!(["bus"]))
                .then_some(())
        },
    )
    .await;
    for _ in 0..20 {
        let (status, marker) = post_one(&ingest, "restart", n).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "NATS is down");
        assert!(marker.is_none());
        n += 1;
    }

    nats.resume().await;
    let recovered = Instant::now();
    loop {
        let (status, marker) = post_one(&ingest, "restart", n).await;
        n += 1;
        if let Some(marker) = marker {
            accepted.insert(marker);
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            recovered.elapsed() < Duration::from_secs(30),
            "ingest did not recover; its log:\n{}",
            ingest.logs()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "ingest accepted again {:?} after NATS restarted",
        recovered.elapsed()
    );
    for _ in 0..200 {
        let (status, marker) = post_one(&ingest, "restart", n).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        accepted.extend(marker);
        n += 1;
    }
    wait_all_stored(&clickhouse, "restart", &accepted).await;
}

#[actix_web::test]
async fn process_role_reports_503_until_clickhouse_starts_then_catches_up() {
    let nats = Nats::start().await;
    let mut clickhouse = ClickHouse::prepare();
    let process = Server::launch(Launch {
        no_wait: true,
        ..role("process", &nats, Some(&clickhouse))
    })
    .await;
    let ingest = Server::launch(role("ingest", &nats, None)).await;
    // The bus connects in the background too: wait until NATS is up, so the
    // only failing part left is the store that is really missing.
    let (status, health) = eventually(
        "the process role to report only its store down",
        Duration::from_secs(20),
        || async {
            process
                .client
                .get(process.url("/health"))
                .send()
                .await
                .ok()?;
            let (status, health) = process.get("/health").await;
            (health["bus_status"] == "ok").then_some((status, health))
        },
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["failing"], json!(["storage"]), "{health}");
    assert!(
        health["error"]
            .as_str()
            .unwrap_or("")
            .contains("clickhouse"),
        "names the dependency: {health}"
    );

    // Ingest does not need ClickHouse: logs wait in the stream.
    let mut accepted = HashSet::new();
    for n in 0..100 {
        let (status, marker) = post_one(&ingest, "late", n).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        accepted.extend(marker);
    }
    let (status, _) = process.get("/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    clickhouse.launch().await;
    process.wait_healthy().await;
    wait_all_stored(&clickhouse, "late", &accepted).await;
}

/// A stream at its byte limit: ingest answers 503 (the broker keeps what it
/// took), and takes logs again as soon as a processor drains the stream.
#[actix_web::test]
async fn a_full_stream_turns_ingest_away_with_503_then_recovers() {
    let nats = Nats::start().await;
    let ingest = Server::launch(
        role("ingest", &nats, None).env("OGLOGSTREAM_NATS__STREAM_MAX_BYTES", "65536"),
    )
    .await;
    let body: String = (0..50)
        .map(|n| {
            json!({"level": "info", "service": "fill", "message": format!("fill-{n} {}", "x".repeat(500))})
                .to_string()
                + "\n"
        })
        .collect();
    let mut full = None;
    let mut accepted_requests = 0;
    for _ in 0..20 {
        let (status, answer) = ingest
            .post("/log/bulk", Some("application/x-ndjson"), body.clone())
            .await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            full = Some(answer);
            break;
        }
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        accepted_requests += 1;
    }
    let answer = full.expect("the stream filled up and ingest said 503");
    assert!(
        answer["error"].as_str().unwrap_or("").contains("limit"),
        "{answer}"
    );

    // A processor drains the stream (into its embedded store): ingest
    // recovers without a restart, and every accepted log is stored once.
    let processor = Server::launch(role("process,query", &nats, None)).await;
    eventually(
        "ingest to accept again",
        Duration::from_secs(30),
        || async {
            let (status, _) = ingest
                .post("/log/bulk", Some("application/x-ndjson"), body.clone())
                .await;
            (status == StatusCode::ACCEPTED).then_some(())
        },
    )
    .await;
    processor
        .wait_stored((accepted_requests + 1) as u64 * 50)
        .await;
}

/// ClickHouse away for a minute under load from split roles: ingest keeps
/// answering 202 (the stream holds the logs), the processor returns what it
/// cannot store to the stream, and once ClickHouse is back every accepted
/// log is stored exactly once.
#[actix_web::test]
async fn clickhouse_stopped_for_a_minute_under_load_loses_and_duplicates_nothing() {
    const PER_REQUEST: usize = 100;
    const OUTAGE: Duration = Duration::from_secs(60);
    let nats = Nats::start().await;
    let mut clickhouse = ClickHouse::start().await;
    let _process = Server::launch(role("process", &nats, Some(&clickhouse))).await;
    let ingest = Server::launch(role("ingest", &nats, None)).await;
    let mut accepted = HashSet::new();
    let mut next = 0;
    let mut ship_for = async |accepted: &mut HashSet<String>, until: Instant| {
        while Instant::now() < until {
            let body: String = (next..next + PER_REQUEST)
                .map(|n| marked("outage", n).to_string() + "\n")
                .collect();
            ship(&ingest, &body, PER_REQUEST).await;
            accepted.extend((next..next + PER_REQUEST).map(|n| format!("outage-{n}")));
            next += PER_REQUEST;
            // A steady load, not a flood: the stream holds a minute of it.
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    };
    ship_for(&mut accepted, Instant::now() + Duration::from_secs(3)).await;
    clickhouse.stop();
    ship_for(&mut accepted, Instant::now() + OUTAGE).await;
    clickhouse.launch().await;
    ship_for(&mut accepted, Instant::now() + Duration::from_secs(3)).await;
    wait_all_stored(&clickhouse, "outage", &accepted).await;
    let rows = clickhouse
        .number(&format!(
            "SELECT count() FROM {DATABASE}.logs WHERE startsWith(message, 'outage-')"
        ))
        .await;
    assert_eq!(rows as usize, accepted.len(), "no log stored twice");
}

#[actix_web::test]
async fn a_processor_stopped_with_sigterm_drains_what_it_holds() {
    const TOTAL: usize = 5_000;
    const PER_REQUEST: usize = 50;
    let nats = Nats::start().await;
    let clickhouse = ClickHouse::start().await;
    let mut stopping = Server::launch(role("process", &nats, Some(&clickhouse))).await;
    let _other = Server::launch(role("process", &nats, Some(&clickhouse))).await;
    let mut ingest = Server::launch(role("ingest", &nats, None)).await;
    let bodies: Vec<String> = (0..TOTAL / PER_REQUEST)
        .map(|r| {
            (r * PER_REQUEST..(r + 1) * PER_REQUEST)
                .map(|n| marked("drain", n).to_string() + "\n")
                .collect()
        })
        .collect();
    let mut sends = futures_util::stream::iter(bodies.iter())
        .map(|body| ship(&ingest, body, PER_REQUEST))
        .buffer_unordered(4);
    let mut done = 0;
    while sends.next().await.is_some() {
        done += 1;
        if done == bodies.len() / 4 {
            stopping.signal(libc::SIGTERM);
        }
    }
    drop(sends);
    let status = stopping.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "clean exit; log:\n{}", stopping.logs());
    assert!(
        stopping.logs().contains("batcher drained"),
        "{}",
        stopping.logs()
    );
    let accepted: HashSet<String> = (0..TOTAL).map(|n| format!("drain-{n}")).collect();
    wait_all_stored(&clickhouse, "drain", &accepted).await;
    let rows = clickhouse
        .number(&format!("SELECT count() FROM {DATABASE}.logs"))
        .await;
    assert_eq!(
        rows as usize, TOTAL,
        "a graceful stop stores and acknowledges what it took: no redelivery, no duplicate"
    );
    // Ingest stops cleanly too, its group-commit task included.
    let status = ingest.terminate(Duration::from_secs(30));
    assert!(status.success(), "ingest exits 0; log:\n{}", ingest.logs());
}

/// A backlog bigger than the 64 MiB nats-server lets wait for one client:
/// the processor takes it in pulls the server can hand over as it reads
/// them, and keeps what it holds from redelivery however long it waits.
/// Pulls bounded only by message count (256 messages of ~0.8 MB here) got
/// the processor cut off as a slow consumer, and what it held came back
/// redelivered after `ack_wait`.
#[actix_web::test]
async fn a_backlog_over_the_servers_per_client_limit_is_drained_without_being_cut_off() {
    const REQUESTS: usize = 120;
    const PER_REQUEST: usize = 1000;
    let nats = Nats::start().await;
    let ingest = Server::launch(role("ingest", &nats, None)).await;
    let padding = "x".repeat(600);
    let bodies: Vec<String> = (0..REQUESTS)
        .map(|r| {
            (0..PER_REQUEST)
                .map(|n| {
                    json!({"level": "info", "service": "backlog", "message": format!("backlog-{r}-{n} {padding}")})
                        .to_string()
                        + "\n"
                })
                .collect()
        })
        .collect();
    let mut sends = futures_util::stream::iter(bodies.iter())
        .map(|body| ship(&ingest, body, PER_REQUEST))
        .buffer_unordered(4);
    while sends.next().await.is_some() {}
    drop(sends);

    // The shortest `ack_wait` there is (1 s): what the processor holds
    // unwritten (64 decoded deliveries, the batch being collected, the
    // writes before it) waits longer than that for the store, and comes
    // back redelivered unless the bus keeps all of it in progress (a CI
    // machine under load showed it with 3 s).
    let processor = Server::launch(
        role("process,query", &nats, None)
            .env("BATCH_SIZE", "5000")
            .env("OGLOGSTREAM_NATS__ACK_WAIT", "1s"),
    )
    .await;
    eventually(
        "the whole backlog stored",
        Duration::from_secs(120),
        || async {
            let (_, stats) = processor.get("/api/stats").await;
            (stats["total_logs"].as_u64() == Some((REQUESTS * PER_REQUEST) as u64)).then_some(())
        },
    )
    .await;
    assert!(
        !nats.log().contains("Slow Consumer"),
        "nats-server cut the processor off:\n{}",
        nats.log()
    );
    let logs = processor.logs();
    assert!(!logs.contains("event: disconnected"), "{logs}");
    assert!(!logs.contains("redelivered logs already stored"), "{logs}");
}
