//! A three-node JetStream cluster under load: an R3 stream, one ingest
//! (with the query role) and two process instances on a private ClickHouse
//! 18.16. The stream leader is SIGKILLed mid-load: publishes resume within
//! 15 s, every log answered 202 is stored, none twice, and the stream is
//! never re-created. Later a node is stopped with SIGTERM: no request in
//! that window is refused.

use super::role;
use crate::split::deps::{ClickHouse, JetStreamAdmin, NatsCluster};
use crate::support::{Server, eventually};
use awc::http::StatusCode;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

const DATABASE: &str = "failover";
const SHIPPERS: usize = 4;
const PER_REQUEST: usize = 50;

/// One bulk request's fate.
struct Attempt {
    sent: Instant,
    answered: Instant,
    status: StatusCode,
    /// The messages it carried (unique to this attempt).
    markers: Vec<String>,
}

#[derive(Default)]
struct Load {
    attempts: Vec<Attempt>,
    stop: bool,
}

impl Load {
    fn accepted_after(&self, moment: Instant) -> usize {
        self.attempts
            .iter()
            .filter(|a| a.sent >= moment && a.status == StatusCode::ACCEPTED)
            .count()
    }
}

/// Posts bulk requests until told to stop; a 503 is retried with new
/// markers after a short pause, as a log shipper would (the retry's logs
/// are new logs to us: the refused attempt's were never promised).
async fn ship(ingest: Rc<Server>, load: Rc<RefCell<Load>>, shipper: usize) {
    let mut sequence = 0;
    while !load.borrow().stop {
        let markers: Vec<String> = (0..PER_REQUEST)
            .map(|i| format!("fo-{shipper}-{sequence}-{i}"))
            .collect();
        sequence += 1;
        let body: String = markers
            .iter()
            .map(|m| {
                json!({"level": "info", "service": "failover", "message": m}).to_string() + "\n"
            })
            .collect();
        let sent = Instant::now();
        let status = match ingest
            .client
            .post(ingest.url("/log/bulk"))
            .insert_header(("Content-Type", "application/x-ndjson"))
            .timeout(Duration::from_secs(30))
            .send_body(body)
            .await
        {
            Ok(response) => response.status(),
            Err(error) => panic!("ingest did not answer: {error}"),
        };
        assert!(
            status == StatusCode::ACCEPTED || status == StatusCode::SERVICE_UNAVAILABLE,
            "unexpected {status}"
        );
        load.borrow_mut().attempts.push(Attempt {
            sent,
            answered: Instant::now(),
            status,
            markers,
        });
        if status != StatusCode::ACCEPTED {
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn stream_info(admin: &JetStreamAdmin) -> Value {
    admin.stream_info("OGLOGSTREAM").await
}

/// Waits until `admin` sees a stream leader with every replica current.
async fn wait_all_current(admin: &JetStreamAdmin, replicas: usize) -> String {
    eventually(
        "every replica of the stream to be current",
        Duration::from_secs(60),
        || async {
            let info = admin.api("STREAM.INFO.OGLOGSTREAM", json!({})).await?;
            let cluster = &info["cluster"];
            let leader = cluster["leader"].as_str()?.to_string();
            let followers = cluster["replicas"].as_array()?;
            (followers.len() + 1 == replicas
                && followers
                    .iter()
                    .all(|r| r["current"] == true && r["offline"] != true))
            .then_some(leader)
        },
    )
    .await
}

async fn wait_accepted(
    load: &Rc<RefCell<Load>>,
    after: Instant,
    requests: usize,
    within: Duration,
) {
    eventually(&format!("{requests} requests accepted"), within, || async {
        (load.borrow().accepted_after(after) >= requests).then_some(())
    })
    .await;
}

/// Waits until the stream holds no message; if it does not, says what the
/// stream and the consumer held (which message is left, and whether it is
/// waiting for an ack or for delivery).
async fn wait_drained(admin: &JetStreamAdmin) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stream = admin.api("STREAM.INFO.OGLOGSTREAM", json!({})).await;
        if stream
            .as_ref()
            .is_some_and(|info| info["state"]["messages"] == 0)
        {
            return;
        }
        if Instant::now() >= deadline {
            let consumer = admin
                .api("CONSUMER.INFO.OGLOGSTREAM.oglogstream-process", json!({}))
                .await;
            panic!(
                "the stream did not drain within 60 s.\nstream: {}\nconsumer: {}",
                stream.map(|s| s["state"].to_string()).unwrap_or_default(),
                consumer.map(|c| c.to_string()).unwrap_or_default()
            );
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_killed_stream_leader_loses_nothing_and_stores_nothing_twice() {
    let started = Instant::now();
    let mut cluster = NatsCluster::start().await;
    let clickhouse = ClickHouse::start().await;
    let url = cluster.url();
    let store = Some((&clickhouse, DATABASE));
    let r3 = |launch: crate::support::Launch| launch.env("OGLOGSTREAM_NATS__REPLICAS", "3");
    let _processors = [
        Server::launch(r3(role("process", &url, store))).await,
        Server::launch(r3(role("process", &url, store))).await,
    ];
    let admin = JetStreamAdmin::connect(&url).await.expect("admin");
    let before = stream_info(&admin).await;
    assert_eq!(before["config"]["num_replicas"], 3, "{before}");
    // An instance configured with one replica (the default) leaves the R3
    // stream alone: before the fix its update scaled the stream down.
    let ingest = Rc::new(Server::launch(role("ingest,query", &url, store)).await);
    ingest
        .accept(&json!({"level": "info", "service": "failover", "message": "first"}))
        .await;
    assert_eq!(stream_info(&admin).await["config"]["num_replicas"], 3);
    wait_all_current(&admin, 3).await;
    println!(
        "failover: cluster, ClickHouse and roles up after {:?}",
        started.elapsed()
    );

    let load = Rc::new(RefCell::new(Load::default()));
    let shippers: Vec<_> = (0..SHIPPERS)
        .map(|n| actix_web::rt::spawn(ship(Rc::clone(&ingest), Rc::clone(&load), n)))
        .collect();
    wait_accepted(&load, started, 40, Duration::from_secs(60)).await;

    // SIGKILL the stream leader mid-load.
    let leader = stream_info(&admin).await["cluster"]["leader"]
        .as_str()
        .expect("a leader")
        .to_string();
    let killed = cluster.index_of(&leader);
    let kill_at = Instant::now();
    cluster.kill(killed);
    wait_accepted(&load, kill_at, 1, Duration::from_secs(60)).await;
    let resumed = load
        .borrow()
        .attempts
        .iter()
        .filter(|a| a.sent >= kill_at && a.status == StatusCode::ACCEPTED)
        .map(|a| a.answered - kill_at)
        .min()
        .expect("an accepted request");
    let refused_during_election = load
        .borrow()
        .attempts
        .iter()
        .filter(|a| a.answered >= kill_at && a.status != StatusCode::ACCEPTED)
        .count();
    println!(
        "failover: leader {leader} killed; the first request sent after the kill was accepted {resumed:?} later; \
         {refused_during_election} requests answered 503 meanwhile"
    );
    assert!(
        resumed < Duration::from_secs(15),
        "publishes resumed only after {resumed:?}"
    );
    wait_accepted(&load, kill_at, 40, Duration::from_secs(60)).await;

    // The killed node comes back and catches up.
    cluster.restart(killed);
    let leader = wait_all_current(&admin, 3).await;

    // SIGTERM of the current leader: no refused request while it stops.
    let term_at = Instant::now();
    let stopped = cluster.index_of(&leader);
    cluster.terminate(stopped);
    let stopped_at = Instant::now();
    wait_accepted(&load, stopped_at, 40, Duration::from_secs(60)).await;
    let window_end = Instant::now();
    {
        let load = load.borrow();
        let window: Vec<&Attempt> = load
            .attempts
            .iter()
            .filter(|a| a.answered >= term_at && a.sent <= window_end)
            .collect();
        let refused = window
            .iter()
            .filter(|a| a.status != StatusCode::ACCEPTED)
            .count();
        let slowest = window
            .iter()
            .map(|a| a.answered - a.sent)
            .max()
            .unwrap_or_default();
        println!(
            "failover: leader {leader} stopped with SIGTERM (took {:?}); {} requests meanwhile, {refused} refused, slowest {slowest:?}",
            stopped_at - term_at,
            window.len()
        );
        let statuses: Vec<String> = window
            .iter()
            .filter(|a| a.status != StatusCode::ACCEPTED)
            .map(|a| format!("{} after {:?}", a.status, a.answered - a.sent))
            .collect();
        assert_eq!(
            refused, 0,
            "a graceful node stop is not visible to clients: {statuses:?}"
        );
    }
    load.borrow_mut().stop = true;
    for shipper in shippers {
        shipper.await.expect("shipper");
    }

    // Every accepted log stored, none twice.
    let accepted: HashSet<String> = load
        .borrow()
        .attempts
        .iter()
        .filter(|a| a.status == StatusCode::ACCEPTED)
        .flat_map(|a| a.markers.iter().cloned())
        .collect();
    let refused_markers: HashSet<String> = load
        .borrow()
        .attempts
        .iter()
        .filter(|a| a.status != StatusCode::ACCEPTED)
        .flat_map(|a| a.markers.iter().cloned())
        .collect();
    eventually(
        &format!("{} accepted logs in ClickHouse", accepted.len()),
        Duration::from_secs(90),
        || async {
            let stored: HashSet<String> = clickhouse
                .query(&format!(
                    "SELECT DISTINCT message FROM {DATABASE}.logs WHERE startsWith(message, 'fo-')"
                ))
                .await
                .ok()?
                .lines()
                .map(str::to_string)
                .collect();
            accepted.is_subset(&stored).then_some(())
        },
    )
    .await;
    // Let redeliveries settle: the stream drains once every batch is acknowledged.
    wait_drained(&admin).await;
    let rows = clickhouse
        .number(&format!(
            "SELECT count() FROM {DATABASE}.logs WHERE startsWith(message, 'fo-')"
        ))
        .await;
    let distinct = clickhouse
        .number(&format!(
            "SELECT uniqExact(message) FROM {DATABASE}.logs WHERE startsWith(message, 'fo-')"
        ))
        .await;
    let stored_refused = clickhouse
        .query(&format!(
            "SELECT DISTINCT message FROM {DATABASE}.logs WHERE startsWith(message, 'fo-')"
        ))
        .await
        .expect("messages")
        .lines()
        .filter(|m| refused_markers.contains(*m))
        .count();
    println!(
        "failover: {} logs accepted, {rows} rows for {distinct} distinct messages ({} duplicates); \
         {stored_refused} logs of {} refused attempts were stored anyway; whole test {:?}",
        accepted.len(),
        rows - distinct,
        refused_markers.len(),
        started.elapsed()
    );
    let metrics = super::metrics_text(&ingest).await;
    println!(
        "failover: ingest retried {:?} publishes, {:?} of them already stored (deduplicated by Nats-Msg-Id)",
        super::metric(&metrics, "oglogstream_bus_publish_retries_total"),
        super::metric(&metrics, "oglogstream_bus_duplicate_publishes_total"),
    );
    assert_eq!(rows, distinct, "no log stored twice");
    let (_, stats) = ingest.get("/api/stats").await;
    assert_eq!(
        stats["total_logs"],
        rows + 1,
        "the API counts each once: {stats}"
    );
    let after = stream_info(&admin).await;
    assert_eq!(
        after["created"], before["created"],
        "the stream was never re-created"
    );
    assert_eq!(after["config"]["num_replicas"], 3);
}
