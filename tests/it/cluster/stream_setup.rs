//! Stream setup against streams an operator created or changed: nothing
//! they set is lowered, and acknowledged messages left in the stream (the
//! NATS 2.9 failover bug, reproduced here by a stream whose retention keeps
//! acknowledged messages) are purged and counted.

use super::{metric, metrics_text, role};
use crate::split::deps::{JetStreamAdmin, Nats};
use crate::support::{Server, eventually, log};
use serde_json::json;
use std::time::Duration;

const GIB: i64 = 1 << 30;
const HOUR_NS: u64 = 3_600_000_000_000;

/// Creates the stream as an operator would, before any instance starts:
/// the application's names, one replica, with `settings` on top.
async fn operator_creates_stream(admin: &JetStreamAdmin, settings: serde_json::Value) {
    let mut config = json!({
        "name": "OGLOGSTREAM", "subjects": ["oglogstream.logs"], "storage": "file",
        "discard": "new", "num_replicas": 1
    });
    for (key, value) in settings.as_object().expect("an object") {
        config[key] = value.clone();
    }
    let created = admin
        .api("STREAM.CREATE.OGLOGSTREAM", config)
        .await
        .expect("JetStream answers");
    assert!(created.get("error").is_none(), "{created}");
}

#[actix_web::test]
async fn an_existing_stream_keeps_what_an_operator_set() {
    let nats = Nats::start().await;
    let admin = JetStreamAdmin::connect(&nats.url()).await.expect("admin");
    operator_creates_stream(
        &admin,
        json!({
            "retention": "workqueue", "max_bytes": 8 * GIB, "max_age": 720 * HOUR_NS,
            "duplicate_window": 300_000_000_000u64, "description": "set by the operator"
        }),
    )
    .await;

    // Defaults are lower (1 GiB, 168 h): the operator's values stay.
    let ingest = Server::launch(role("ingest", &nats.url(), None)).await;
    ingest.accept(&log("info", "setup", "one")).await;
    let config = &admin.stream_info("OGLOGSTREAM").await["config"];
    assert_eq!(config["max_bytes"], 8 * GIB, "{config}");
    assert_eq!(config["max_age"], 720 * HOUR_NS, "{config}");
    assert_eq!(config["duplicate_window"], 300_000_000_000u64, "{config}");
    assert_eq!(config["description"], "set by the operator", "{config}");
    assert_eq!(config["num_replicas"], 1, "{config}");

    // A configuration asking for more raises it; the rest stays.
    let _raising = Server::launch(role("ingest", &nats.url(), None).env(
        "OGLOGSTREAM_NATS__STREAM_MAX_BYTES",
        &(16 * GIB).to_string(),
    ))
    .await;
    let config = &admin.stream_info("OGLOGSTREAM").await["config"];
    assert_eq!(config["max_bytes"], 16 * GIB, "{config}");
    assert_eq!(config["max_age"], 720 * HOUR_NS, "{config}");
    assert_eq!(config["description"], "set by the operator", "{config}");
}

#[actix_web::test]
async fn acknowledged_messages_left_in_the_stream_are_purged_and_counted() {
    let nats = Nats::start().await;
    let admin = JetStreamAdmin::connect(&nats.url()).await.expect("admin");
    // Limits retention keeps what the consumer acknowledged, as a 2.9 stream
    // does after the failover bug.
    operator_creates_stream(&admin, json!({"retention": "limits", "max_bytes": GIB})).await;
    let server = Server::launch(role("all", &nats.url(), None)).await;
    for n in 0..40 {
        server
            .accept(&log("info", "stale", &format!("acknowledged {n}")))
            .await;
    }
    server.wait_stored(40).await;
    let published = admin.stream_info("OGLOGSTREAM").await["state"]["last_seq"]
        .as_u64()
        .expect("a sequence");
    assert!(published > 0);

    let purged = eventually(
        "the stale messages to be purged",
        Duration::from_secs(30),
        || async {
            let purged = metric(
                &metrics_text(&server).await,
                "oglogstream_bus_stale_messages_purged_total",
            )?;
            (purged == published).then_some(purged)
        },
    )
    .await;
    let state = &admin.stream_info("OGLOGSTREAM").await["state"];
    assert_eq!(state["messages"], 0, "{state}");
    assert!(
        server.logs().contains("does not use work-queue retention"),
        "{}",
        server.logs()
    );
    // Nothing stored was lost by the purge.
    let (_, stats) = server.get("/api/stats").await;
    assert_eq!(stats["total_logs"], 40, "{stats}");
    println!("stale purge: {purged} acknowledged messages purged");
}
