//! `/ws/live`: accepted logs arrive as JSON frames, filtered on request.

use crate::support::{Launch, LiveConnection, Server, log, next_log};
use awc::ws::Frame;
use futures_util::StreamExt;
use std::time::Duration;

type Connection = LiveConnection;

async fn connect(server: &Server, query: &str) -> Connection {
    let (_, connection) = server
        .client
        .ws(server.ws_url(&format!("/ws/live{query}")))
        .connect()
        .await
        .expect("websocket connects");
    connection
}

#[actix_web::test]
async fn every_accepted_log_is_streamed() {
    let server = Server::start().await;
    let mut connection = connect(&server, "").await;
    let id = server.accept(&log("info", "web", "hello live")).await;
    let frame = next_log(&mut connection, Duration::from_secs(5))
        .await
        .expect("a frame");
    assert_eq!(frame["id"], id.as_str());
    assert_eq!(frame["message"], "hello live");
    assert_eq!(frame["level"], "info");
    assert!(
        frame["timestamp"].as_str().is_some() && frame["attributes"].is_object(),
        "row shape: {frame}"
    );
}

#[actix_web::test]
async fn filters_apply_to_the_stream() {
    let server = Server::start().await;
    let mut errors_from_pay = connect(&server, "?level=error,fatal&service=PAY&q=timeout").await;
    server
        .accept(&log("info", "payments", "timeout but info"))
        .await;
    server
        .accept(&log("error", "auth", "timeout elsewhere"))
        .await;
    server.accept(&log("error", "payments", "all good")).await;
    let wanted = server
        .accept(&log("error", "payments", "gateway TIMEOUT"))
        .await;
    let frame = next_log(&mut errors_from_pay, Duration::from_secs(5))
        .await
        .expect("the matching log");
    assert_eq!(
        frame["id"],
        wanted.as_str(),
        "the first frame is the only match"
    );
    assert!(
        next_log(&mut errors_from_pay, Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[actix_web::test]
async fn bulk_logs_stream_too_and_bad_filters_are_refused() {
    let server = Server::start().await;
    let mut connection = connect(&server, "?level=warn").await;
    let body = format!(
        "{}\n{}\n",
        log("warn", "a", "first"),
        log("info", "a", "skip")
    );
    server
        .post("/log/bulk", Some("application/x-ndjson"), body)
        .await;
    let frame = next_log(&mut connection, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(frame["message"], "first");
    let (status, answer) = server.get("/ws/live?level=nope").await;
    assert_eq!(status, awc::http::StatusCode::BAD_REQUEST);
    assert_eq!(answer["field"], "level");
}

#[actix_web::test]
async fn a_stuck_client_is_cut_off_without_slowing_ingestion() {
    // The queue holds the whole flood (200k logs, about 70 MB), so a 503
    // could only come from waiting on live clients, not from a slow disk.
    let server = Server::launch(
        Launch::default()
            .env("OGLOGSTREAM_INGEST__QUEUE_CAPACITY", "250000")
            .env("OGLOGSTREAM_INGEST__QUEUE_MAX_BYTES", "1GiB"),
    )
    .await;
    let mut stuck = connect(&server, "").await; // never read while we ingest
    let mut healthy = connect(&server, "?q=marker").await;
    let line = log("info", "flood", &"x".repeat(200)).to_string();
    let body = vec![line; 500].join("\n");
    for _ in 0..400 {
        let (status, _) = server
            .post("/log/bulk", Some("application/x-ndjson"), body.clone())
            .await;
        assert_eq!(
            status,
            awc::http::StatusCode::ACCEPTED,
            "ingestion never waits for live clients"
        );
    }
    let marker = server.accept(&log("info", "flood", "marker")).await;
    let frame = next_log(&mut healthy, Duration::from_secs(10))
        .await
        .expect("other clients keep streaming");
    assert_eq!(frame["id"], marker.as_str());

    // Draining the stuck connection now ends in a close frame saying why.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let reason = loop {
        match tokio::time::timeout_at(deadline, stuck.next()).await {
            Ok(Some(Ok(Frame::Close(reason)))) => break reason,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let reason = reason.expect("a close reason");
    assert_eq!(reason.code, awc::ws::CloseCode::Policy);
    assert!(reason.description.unwrap_or_default().contains("too slow"));
    let (_, metrics) = server.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("oglogstream_live_clients_cut_off_total 1"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn the_query_language_filters_the_stream() {
    let server = Server::start().await;
    let query = "level:>=error region:eu-* -healthcheck";
    let encoded = serde_urlencoded::to_string([("query", query)]).unwrap();
    let mut connection = connect(&server, &format!("?{encoded}")).await;
    let with = |level: &str, message: &str, region: Option<&str>| {
        let mut log = log(level, "web", message);
        if let Some(region) = region {
            log["attributes"] = serde_json::json!({ "region": region });
        }
        log
    };
    server
        .accept(&with("info", "quiet", Some("eu-west-1")))
        .await;
    server.accept(&with("error", "no region", None)).await;
    server
        .accept(&with("error", "healthcheck failed", Some("eu-west-1")))
        .await;
    server
        .accept(&with("fatal", "elsewhere", Some("us-east-1")))
        .await;
    let wanted = server
        .accept(&with("fatal", "disk full", Some("EU-central-1")))
        .await;
    let frame = next_log(&mut connection, Duration::from_secs(5))
        .await
        .expect("the matching log");
    assert_eq!(
        frame["id"],
        wanted.as_str(),
        "the first frame is the only match"
    );
    assert!(
        next_log(&mut connection, Duration::from_millis(300))
            .await
            .is_none(),
        "nothing else matches"
    );
}
