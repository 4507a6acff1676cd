//! Fail-over through HAProxy, without containers: real HAProxy running the
//! shipped `haproxy/haproxy.cfg` (addresses changed, see
//! [`super::loopback_haproxy_config`]), real NATS JetStream and ClickHouse, and
//! 3 ingest + 3 process + 3 query processes of the binary, all on loopback.
//!
//! Shippers post logs through HAProxy and, like a real shipper, send a log
//! again on 502/503/504 or a connection error. WebSocket watchers follow the
//! live stream through HAProxy and reconnect when dropped; a poller queries
//! the API. Mid-run one ingest instance and the query instance serving a
//! WebSocket are killed (SIGKILL). HAProxy must take both out of rotation,
//! and in the end every log a shipper saw accepted is stored exactly once,
//! exactly as sent, every query was answered, and every watcher, the
//! dropped one included, streams logs posted after the fail-over.

use super::HaProxy;
use crate::split::deps::{ClickHouse, Nats};
use crate::support::{Launch, Server, eventually};
use awc::http::StatusCode;
use awc::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

const SERVICE: &str = "failover-test";
const DATABASE: &str = "failover";
const SHIPPERS: usize = 4;
const WATCHERS: usize = 3;
/// Logs to accept before the kill, and again after HAProxy has reacted.
const LOGS_PER_PHASE: usize = 300;

/// Unique, exactly representable timestamps (microseconds), so stored rows
/// can be compared as sent and paged in a stable order.
fn timestamp(sequence: u64) -> String {
    let micros = sequence * 1_001;
    let seconds = micros / 1_000_000;
    format!(
        "2026-03-01T{:02}:{:02}:{:02}.{:06}Z",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60,
        micros % 1_000_000
    )
}

#[derive(Default)]
struct Shared {
    stop: Cell<bool>,
    next_sequence: Cell<u64>,
    /// id -> the log as sent, for every single log answered 202.
    accepted: RefCell<HashMap<String, Value>>,
    /// Logs of bulk requests answered 202 (bulk answers carry no ids).
    accepted_in_bulk: RefCell<Vec<Value>>,
    /// Sends that were answered 502/503/504 or failed to connect, then retried.
    retried_sends: Cell<u64>,
    queries_answered: Cell<u64>,
    retried_queries: Cell<u64>,
    last_total_seen: Cell<u64>,
}

impl Shared {
    fn new_log(&self, shipper: usize) -> Value {
        let sequence = self.next_sequence.get();
        self.next_sequence.set(sequence + 1);
        let level = ["debug", "info", "warn", "error", "fatal"][sequence as usize % 5];
        json!({
            "level": level,
            "service": SERVICE,
            "message": format!("shipper {shipper} log {sequence}: \"quoted\", \\backslash, ünïcødé ✓"),
            "timestamp": timestamp(sequence),
            "attributes": {"shipper": shipper.to_string(), "sequence": sequence.to_string()},
        })
    }

    fn accepted_count(&self) -> usize {
        self.accepted.borrow().len() + self.accepted_in_bulk.borrow().len()
    }
}

/// Posts until answered 202, retrying on 502/503/504 and connection errors
/// with a capped backoff, as a log shipper does. Any other answer fails.
async fn send_until_accepted(
    client: &awc::Client,
    url: &str,
    content_type: &str,
    body: String,
    shared: &Shared,
) -> Value {
    let mut backoff = Duration::from_millis(20);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last_problem = match client
            .post(url)
            .insert_header(("Content-Type", content_type))
            .send_body(body.clone())
            .await
        {
            Ok(mut response) => {
                let status = response.status();
                let answer = response.body().limit(1 << 20).await.unwrap_or_default();
                let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
                match status {
                    StatusCode::ACCEPTED => return answer,
                    StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT => format!("{status} {answer}"),
                    _ => panic!("POST {url} answered {status} {answer}"),
                }
            }
            Err(error) => format!("connection error: {error}"),
        };
        shared.retried_sends.set(shared.retried_sends.get() + 1);
        assert!(
            Instant::now() < deadline,
            "POST {url} not accepted within 30 s; last: {last_problem}"
        );
        actix_web::rt::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

async fn shipper(number: usize, base_url: String, shared: Rc<Shared>) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let mut round = 0u64;
    while !shared.stop.get() {
        round += 1;
        if round % 10 == 0 {
            let logs: Vec<Value> = (0..5).map(|_| shared.new_log(number)).collect();
            let body: String = logs.iter().map(|log| format!("{log}\n")).collect();
            let answer = send_until_accepted(
                &client,
                &format!("{base_url}/log/bulk"),
                "application/x-ndjson",
                body,
                &shared,
            )
            .await;
            assert_eq!(answer["accepted"], 5, "{answer}");
            shared.accepted_in_bulk.borrow_mut().extend(logs);
        } else {
            let log = shared.new_log(number);
            let answer = send_until_accepted(
                &client,
                &format!("{base_url}/log"),
                "application/json",
                log.to_string(),
                &shared,
            )
            .await;
            let id = answer["id"].as_str().expect("an id").to_string();
            shared.accepted.borrow_mut().insert(id, log);
        }
        // A steady rate, not a flood: about 100 requests a second each.
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// GET with the same retry rule as the shippers; returns the JSON answer.
async fn query(client: &awc::Client, url: &str, shared: &Shared) -> Value {
    let mut backoff = Duration::from_millis(20);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last_problem = match client.get(url).send().await {
            Ok(mut response) => {
                let status = response.status();
                let body = response.body().limit(64 << 20).await.unwrap_or_default();
                let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                match status {
                    StatusCode::OK => {
                        shared
                            .queries_answered
                            .set(shared.queries_answered.get() + 1);
                        return answer;
                    }
                    StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT => format!("{status} {answer}"),
                    _ => panic!("GET {url} answered {status} {answer}"),
                }
            }
            Err(error) => format!("connection error: {error}"),
        };
        shared.retried_queries.set(shared.retried_queries.get() + 1);
        assert!(
            Instant::now() < deadline,
            "GET {url} not answered within 30 s; last: {last_problem}"
        );
        actix_web::rt::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

async fn poller(base_url: String, shared: Rc<Shared>) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    while !shared.stop.get() {
        let stats = query(
            &client,
            &format!("{base_url}/api/stats?service={SERVICE}"),
            &shared,
        )
        .await;
        let total = stats["total_logs"].as_u64().expect("total_logs");
        shared.last_total_seen.set(total);
        let page = query(
            &client,
            &format!("{base_url}/api/logs?service={SERVICE}&limit=20"),
            &shared,
        )
        .await;
        assert!(page.is_array(), "{page}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Default)]
struct Watcher {
    connections: Cell<u32>,
    connected: Cell<bool>,
    ids: RefCell<HashSet<String>>,
    messages: RefCell<HashSet<String>>,
}

type Connection = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

/// Follows `/ws/live` through HAProxy until `stop`; reconnects whenever
/// dropped.
async fn watcher(ws_url: String, state: Rc<Watcher>, stop: Rc<Cell<bool>>) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    while !stop.get() {
        let mut connection: Connection = match client.ws(ws_url.as_str()).connect().await {
            Ok((_, connection)) => connection,
            Err(_) => {
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        state.connections.set(state.connections.get() + 1);
        state.connected.set(true);
        loop {
            let next = actix_web::rt::time::timeout(Duration::from_millis(200), connection.next());
            match next.await {
                Err(_) if stop.get() => {
                    state.connected.set(false);
                    return;
                }
                Err(_) => continue,
                Ok(Some(Ok(Frame::Text(bytes)))) => {
                    let row: Value = serde_json::from_slice(&bytes).expect("a JSON frame");
                    let id = row["id"].as_str().expect("an id").to_string();
                    let message = row["message"].as_str().expect("a message").to_string();
                    state.ids.borrow_mut().insert(id);
                    state.messages.borrow_mut().insert(message);
                }
                Ok(Some(Ok(Frame::Ping(payload)))) => {
                    let _ = connection.send(Message::Pong(payload)).await;
                }
                Ok(Some(Ok(_))) => {}
                // Closed or broken: reconnect.
                Ok(Some(Err(_)) | None) => break,
            }
        }
        state.connected.set(false);
    }
}

/// The whole scenario's bound; it takes about 12 s on two cores.
const TIME_LIMIT: Duration = Duration::from_secs(170);

#[actix_web::test]
async fn killing_an_ingest_and_a_query_instance_loses_nothing() {
    // Dropping the scenario on time-out kills every process it started.
    actix_web::rt::time::timeout(TIME_LIMIT, fail_over_scenario())
        .await
        .unwrap_or_else(|_| panic!("the fail-over scenario took longer than {TIME_LIMIT:?}"));
}

async fn fail_over_scenario() {
    let started = Instant::now();
    let nats = Nats::start().await;
    let clickhouse = ClickHouse::start().await;

    // 3 + 3 + 3 instances of the binary.
    let launch = |role: &str| {
        Server::launch(
            Launch::default()
                .arg("--role")
                .arg(role)
                .env("NATS_URL", &nats.url())
                .env("CLICKHOUSE_DSN", &clickhouse.dsn(DATABASE)),
        )
    };
    let mut ingest = Vec::new();
    let mut process = Vec::new();
    let mut queries = Vec::new();
    for _ in 0..3 {
        ingest.push(launch("ingest").await);
        process.push(launch("process").await);
        queries.push(launch("query").await);
    }

    let ports = |servers: &[Server]| servers.iter().map(|s| s.port).collect::<Vec<_>>();
    let haproxy = HaProxy::in_front_of(&HashMap::from([
        ("ingest", ports(&ingest)),
        ("process", ports(&process)),
        ("query", ports(&queries)),
    ]));
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    haproxy
        .wait_for_states(&[
            ("ingest", "ingest1", "UP"),
            ("ingest", "ingest2", "UP"),
            ("ingest", "ingest3", "UP"),
            ("process", "process1", "UP"),
            ("process", "process2", "UP"),
            ("process", "process3", "UP"),
            ("query", "query1", "UP"),
            ("query", "query2", "UP"),
            ("query", "query3", "UP"),
        ])
        .await;

    // The platform's /health, answered by HAProxy from every role's servers.
    let mut response = client
        .get(haproxy.url("/health"))
        .send()
        .await
        .expect("GET /health");
    let health: Value = response.json().await.expect("JSON");
    assert_eq!(response.status(), StatusCode::OK, "{health}");
    assert_eq!(
        health["healthy_instances"],
        json!({"ingest": 3, "process": 3, "query": 3})
    );
    // The statistics page and HAProxy's Prometheus metrics, on their port.
    let mut page = client
        .get(haproxy.stats_url("/stats"))
        .send()
        .await
        .expect("stats");
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.body().await.expect("stats page");
    assert!(String::from_utf8_lossy(&page).contains("Statistics Report"));
    let mut metrics = client
        .get(haproxy.stats_url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), StatusCode::OK);
    let metrics = metrics.body().limit(16 << 20).await.expect("metrics");
    assert!(String::from_utf8_lossy(&metrics).contains("haproxy_server_status"));

    // Watchers first, so they see every log. HAProxy balances the query
    // backend by open connections, which spreads them over the instances.
    let shared = Rc::new(Shared::default());
    let stop_watching = Rc::new(Cell::new(false));
    let ws_url = format!(
        "ws://127.0.0.1:{}/ws/live?service={SERVICE}",
        haproxy.http_port
    );
    let watchers: Vec<Rc<Watcher>> = (0..WATCHERS).map(|_| Rc::new(Watcher::default())).collect();
    let mut watching = Vec::new();
    for state in &watchers {
        watching.push(actix_web::rt::spawn(watcher(
            ws_url.clone(),
            Rc::clone(state),
            Rc::clone(&stop_watching),
        )));
    }
    eventually(
        "every watcher connected",
        Duration::from_secs(10),
        || async { watchers.iter().all(|w| w.connected.get()).then_some(()) },
    )
    .await;
    // The query instance to kill: one holding a WebSocket (the only
    // sessions open at this point).
    let victim_query = eventually(
        "a query instance with a WebSocket",
        Duration::from_secs(10),
        || async {
            let rows = haproxy.stats().await;
            rows.into_iter()
                .find(|row| {
                    row.proxy == "query" && row.server != "BACKEND" && row.current_sessions > 0
                })
                .map(|row| row.server)
        },
    )
    .await;
    let victim_index: usize = victim_query
        .trim_start_matches("query")
        .parse()
        .expect("query<n>");

    let mut tasks = Vec::new();
    for number in 0..SHIPPERS {
        tasks.push(actix_web::rt::spawn(shipper(
            number,
            haproxy.url(""),
            Rc::clone(&shared),
        )));
    }
    tasks.push(actix_web::rt::spawn(poller(
        haproxy.url(""),
        Rc::clone(&shared),
    )));

    eventually(
        "steady ingestion before the kill",
        Duration::from_secs(30),
        || async { (shared.accepted_count() >= LOGS_PER_PHASE).then_some(()) },
    )
    .await;

    // Kill ingest1 and the query instance serving a WebSocket.
    let killed_at = Instant::now();
    ingest[0].signal(libc::SIGKILL);
    queries[victim_index - 1].signal(libc::SIGKILL);
    haproxy
        .wait_for_states(&[
            ("ingest", "ingest1", "DOWN"),
            ("query", &victim_query, "DOWN"),
        ])
        .await;
    let out_of_rotation_after = killed_at.elapsed();
    let mut response = client
        .get(haproxy.url("/health"))
        .send()
        .await
        .expect("GET /health");
    let health: Value = response.json().await.expect("JSON");
    assert_eq!(response.status(), StatusCode::OK, "{health}");
    assert_eq!(
        health["healthy_instances"],
        json!({"ingest": 2, "process": 3, "query": 2})
    );

    // Ingestion goes on through the remaining instances.
    let accepted_at_down = shared.accepted_count();
    let total_at_down = shared.last_total_seen.get();
    eventually(
        "steady ingestion after the kill",
        Duration::from_secs(30),
        || async { (shared.accepted_count() >= accepted_at_down + LOGS_PER_PHASE).then_some(()) },
    )
    .await;
    shared.stop.set(true);
    for task in tasks.drain(..) {
        task.await
            .expect("a client task panicked (its message is above)");
    }
    assert!(
        shared.last_total_seen.get() > total_at_down,
        "queries after the fail-over see new logs"
    );
    assert!(
        watchers.iter().any(|w| w.connections.get() >= 2),
        "the killed query instance's WebSocket reconnected: {:?}",
        watchers
            .iter()
            .map(|w| w.connections.get())
            .collect::<Vec<_>>()
    );

    // Every watcher, the reconnected one included, streams a new log.
    let shared_for_marker = Shared::default();
    let marker = json!({"level": "info", "service": SERVICE, "message": "after the fail-over"});
    eventually(
        "every watcher connected after the fail-over",
        Duration::from_secs(10),
        || async { watchers.iter().all(|w| w.connected.get()).then_some(()) },
    )
    .await;
    let answer = send_until_accepted(
        &client,
        &haproxy.url("/log"),
        "application/json",
        marker.to_string(),
        &shared_for_marker,
    )
    .await;
    let marker_id = answer["id"].as_str().expect("id").to_string();
    eventually(
        "every watcher streamed the new log",
        Duration::from_secs(10),
        || async {
            watchers
                .iter()
                .all(|w| w.ids.borrow().contains(&marker_id))
                .then_some(())
        },
    )
    .await;
    stop_watching.set(true);
    for task in watching {
        task.await.expect("a watcher panicked");
    }

    // A watcher whose one connection lasted the whole run saw every log.
    let accepted = shared.accepted.take();
    let accepted_in_bulk = shared.accepted_in_bulk.take();
    for (index, state) in watchers.iter().enumerate() {
        if state.connections.get() == 1 {
            let ids = state.ids.borrow();
            let missing = accepted.keys().filter(|id| !ids.contains(*id)).count();
            let messages = state.messages.borrow();
            let missing_from_bulk = accepted_in_bulk
                .iter()
                .filter(|log| !messages.contains(log["message"].as_str().unwrap_or_default()))
                .count();
            assert_eq!(
                (missing, missing_from_bulk),
                (0, 0),
                "watcher {index} missed live logs (single, bulk)"
            );
        }
    }

    // Stored: every accepted log, once, exactly as sent.
    let expected_total = (accepted.len() + accepted_in_bulk.len() + 1) as u64;
    let reader = Shared::default();
    eventually(
        "every accepted log stored",
        Duration::from_secs(60),
        || async {
            let stats = query(
                &client,
                &haproxy.url(&format!("/api/stats?service={SERVICE}")),
                &reader,
            )
            .await;
            (stats["total_logs"].as_u64().unwrap_or(0) >= expected_total).then_some(())
        },
    )
    .await;
    let mut stored: HashMap<String, Value> = HashMap::new();
    let mut rows_read = 0usize;
    loop {
        let page = query(
            &client,
            &haproxy.url(&format!(
                "/api/logs?service={SERVICE}&order=asc&limit=1000&offset={rows_read}"
            )),
            &reader,
        )
        .await;
        let rows = page.as_array().expect("an array").clone();
        rows_read += rows.len();
        for row in &rows {
            let id = row["id"].as_str().expect("id").to_string();
            assert!(
                stored.insert(id.clone(), row.clone()).is_none(),
                "log {id} is stored twice"
            );
        }
        if rows.len() < 1000 {
            break;
        }
    }
    for (id, sent) in &accepted {
        let row = stored
            .get(id)
            .unwrap_or_else(|| panic!("accepted log {id} was not stored: {sent}"));
        for field in ["level", "service", "message", "timestamp", "attributes"] {
            assert_eq!(row[field], sent[field], "{field} of log {id}");
        }
    }
    let stored_by_message: HashMap<&str, &Value> = stored
        .values()
        .map(|row| (row["message"].as_str().unwrap_or_default(), row))
        .collect();
    for sent in &accepted_in_bulk {
        let message = sent["message"].as_str().expect("message");
        let row = stored_by_message
            .get(message)
            .unwrap_or_else(|| panic!("accepted bulk log was not stored: {sent}"));
        for field in ["level", "service", "message", "timestamp", "attributes"] {
            assert_eq!(row[field], sent[field], "{field} of bulk log {message:?}");
        }
    }
    assert!(stored.contains_key(&marker_id));
    // Logs nobody saw accepted (a request cut by the kill) may be stored
    // too; they are counted, not required.
    let unacknowledged = stored.len() as i64 - expected_total as i64;
    assert!(unacknowledged >= 0);

    // `make smoke-test` passes against this stack too.
    let smoke = Command::new(super::repository_file("scripts/smoke-test.sh"))
        .env("BASE_URL", haproxy.url(""))
        .env("STATS_URL", haproxy.stats_url("/stats"))
        .env("WAIT_SECONDS", "10")
        .output()
        .expect("run scripts/smoke-test.sh");
    assert!(
        smoke.status.success(),
        "scripts/smoke-test.sh: {}{}",
        String::from_utf8_lossy(&smoke.stdout),
        String::from_utf8_lossy(&smoke.stderr)
    );

    eprintln!(
        "fail-over: {} single + {} bulk logs accepted and stored ({unacknowledged} more stored \
         unacknowledged), {} sends and {} of {} queries retried, out of rotation {:?} after the \
         kill, watcher connections {:?}, {:?} in all",
        accepted.len(),
        accepted_in_bulk.len(),
        shared.retried_sends.get(),
        shared.retried_queries.get(),
        shared.queries_answered.get(),
        out_of_rotation_after,
        watchers
            .iter()
            .map(|w| w.connections.get())
            .collect::<Vec<_>>(),
        started.elapsed()
    );
    drop(haproxy);
    drop((ingest, process, queries, clickhouse, nats));
}
