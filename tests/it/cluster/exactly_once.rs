//! A processor killed after its insert and before its ack (held there by the
//! hidden `--stall-after-store` flag, then SIGKILLed): JetStream redelivers
//! the batch, flagged as a redelivery, and the processor that gets it writes
//! only what the store lacks, so nothing shows twice through the API.

use super::{metric, metrics_text, role};
use crate::split::deps::{ClickHouse, JetStreamAdmin, Nats};
use crate::support::{Server, all_ids, eventually};
use awc::http::StatusCode;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const TOTAL: usize = 2_000;
const PER_REQUEST: usize = 100;

async fn ship_all(ingest: &Server, marker: &str) {
    for request in 0..TOTAL / PER_REQUEST {
        let body: String = (0..PER_REQUEST)
            .map(|i| {
                json!({"level": "info", "service": "once", "message": format!("{marker}-{request}-{i}")})
                    .to_string()
                    + "\n"
            })
            .collect();
        let (status, answer) = ingest
            .post("/log/bulk", Some("application/x-ndjson"), body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
}

async fn wait_stalled(processor: &Server) {
    eventually(
        "the processor to store a batch and stall before its ack",
        Duration::from_secs(30),
        || async {
            processor
                .logs()
                .contains("stalling after the store write")
                .then_some(())
        },
    )
    .await;
}

/// Waits until the stream holds nothing: every batch stored and acknowledged.
async fn wait_drained(nats: &Nats) {
    let admin = JetStreamAdmin::connect(&nats.url()).await.expect("admin");
    eventually("the stream to drain", Duration::from_secs(60), || async {
        let info = admin.stream_info("OGLOGSTREAM").await;
        (info["state"]["messages"] == 0).then_some(())
    })
    .await;
}

/// Through the API: every log once.
async fn assert_each_log_once(reader: &Server) {
    let (status, stats) = reader.get("/api/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(
        stats["total_logs"], TOTAL,
        "stats count each log once: {stats}"
    );
    let ids = all_ids(reader).await;
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), TOTAL, "/api/logs lists each log once");
    assert_eq!(distinct.len(), TOTAL);
}

async fn skipped(server: &Server) -> u64 {
    metric(
        &metrics_text(server).await,
        "oglogstream_redelivered_logs_skipped_total",
    )
    .expect("the skipped-logs counter")
}

#[actix_web::test]
async fn a_processor_killed_between_insert_and_ack_stores_nothing_twice_on_clickhouse() {
    let started = Instant::now();
    let nats = Nats::start().await;
    let clickhouse = ClickHouse::start().await;
    let database = "exactly_once";
    let store = Some((&clickhouse, database));
    let stalling =
        Server::launch(role("process", &nats.url(), store).arg("--stall-after-store")).await;
    let ingest = Server::launch(role("ingest,query", &nats.url(), store)).await;
    ship_all(&ingest, "ch").await;
    wait_stalled(&stalling).await;
    let stored_before_kill = clickhouse
        .number(&format!("SELECT count() FROM {database}.logs"))
        .await;
    assert!(stored_before_kill > 0);
    stalling.signal(libc::SIGKILL);

    let other = Server::launch(role("process", &nats.url(), store)).await;
    wait_drained(&nats).await;
    assert_each_log_once(&ingest).await;
    let rows = clickhouse
        .number(&format!("SELECT count() FROM {database}.logs"))
        .await;
    assert_eq!(rows as usize, TOTAL, "no row twice in ClickHouse");
    assert_eq!(
        skipped(&other).await,
        stored_before_kill,
        "the redelivered batch was found stored and not written again"
    );
    println!(
        "exactly once (ClickHouse): {stored_before_kill} logs stored then the processor killed before its ack; \
         redelivered and skipped; {TOTAL} logs once each, in {:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn a_processor_killed_between_insert_and_ack_stores_nothing_twice_on_sqlite() {
    let nats = Nats::start().await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let stalling = Server::launch(
        role("process,query", &nats.url(), None)
            .arg("--stall-after-store")
            .data_dir(data_dir.path()),
    )
    .await;
    let ingest = Server::launch(role("ingest", &nats.url(), None)).await;
    ship_all(&ingest, "sqlite").await;
    wait_stalled(&stalling).await;
    let (_, stats) = stalling.get("/api/stats").await;
    let stored_before_kill = stats["total_logs"].as_u64().expect("a count");
    assert!(stored_before_kill > 0, "{stats}");
    stalling.signal(libc::SIGKILL);
    drop(stalling);

    // The same store, started again without the stall.
    let restarted =
        Server::launch(role("process,query", &nats.url(), None).data_dir(data_dir.path())).await;
    wait_drained(&nats).await;
    assert_each_log_once(&restarted).await;
    assert_eq!(skipped(&restarted).await, stored_before_kill);
}

/// A publish retried after a lost ack is stored once: each message carries a
/// `Nats-Msg-Id` made of its first log's id and its log count, and JetStream
/// drops a second message with that id. Here the "retry" is published from
/// outside with the id ingest must have used.
#[actix_web::test]
async fn publishes_carry_a_message_id_the_broker_deduplicates_by() {
    let nats = Nats::start().await;
    let ingest = Server::launch(role("ingest", &nats.url(), None)).await;
    let id = ingest
        .accept(&json!({"level": "info", "service": "dedup", "message": "once"}))
        .await;
    let admin = JetStreamAdmin::connect(&nats.url()).await.expect("admin");
    let ack = admin
        .publish_with_id("oglogstream.logs", &format!("{id}+1*1"), "{}")
        .await;
    assert_eq!(ack["duplicate"], true, "{ack}");
    assert_eq!(ack["seq"], 1, "{ack}");
    let state = &admin.stream_info("OGLOGSTREAM").await["state"];
    assert_eq!(state["messages"], 1, "stored once: {state}");
}

/// A publish retried after its ack was lost, when the first copy was already
/// consumed and deleted: a stream leader elected meanwhile rebuilds its
/// duplicate map from the messages it holds, so `Nats-Msg-Id` no longer
/// stops the retry. Ingest marks retries (`Oglogstream-Republished`), and
/// the processor writes only the logs the store lacks. Here the retry is
/// published from outside: the stored log again, under a new message id.
#[actix_web::test]
async fn a_republished_batch_whose_first_copy_was_consumed_is_stored_once() {
    let nats = Nats::start().await;
    let clickhouse = ClickHouse::start().await;
    let database = "republished";
    let server = Server::launch(role("all", &nats.url(), Some((&clickhouse, database)))).await;
    let id = server
        .accept(
            &json!({"level": "warn", "service": "retry", "message": "stored once",
                        "attributes": {"k": "v"}}),
        )
        .await;
    server.wait_stored(1).await;
    wait_drained(&nats).await;

    let (_, page) = server.get("/api/logs").await;
    let row = &page[0];
    let record = oglogstream::domain::LogRecord {
        id: id.clone(),
        timestamp: oglogstream::domain::time::parse_rfc3339(row["timestamp"].as_str().expect("ts"))
            .expect("RFC 3339"),
        level: oglogstream::domain::Level::Warn,
        service: "retry".into(),
        message: "stored once".into(),
        attributes: [("k".to_string(), "v".to_string())].into(),
        ..Default::default()
    };
    let mut messages = oglogstream::bus::wire::encode(&[record], 1 << 20).expect("encodes");
    let message = messages.remove(0);
    let admin = JetStreamAdmin::connect(&nats.url()).await.expect("admin");
    let ack = admin
        .publish_with_headers(
            "oglogstream.logs",
            &[
                ("Nats-Msg-Id", "a-retry-under-a-new-leader"),
                ("Oglogstream-Republished", "1"),
            ],
            message.bytes,
        )
        .await;
    assert!(ack.get("duplicate").is_none(), "stored as new: {ack}");
    wait_drained(&nats).await;
    eventually(
        "the copy to be skipped",
        Duration::from_secs(20),
        || async { (skipped(&server).await == 1).then_some(()) },
    )
    .await;
    let rows = clickhouse
        .number(&format!("SELECT count() FROM {database}.logs"))
        .await;
    assert_eq!(rows, 1, "the republished copy was not written");
    let (_, stats) = server.get("/api/stats").await;
    assert_eq!(stats["total_logs"], 1, "{stats}");
}
