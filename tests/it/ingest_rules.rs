//! The ingest contract: every validation and size rule, one test each, each
//! asserting that the answer names the problem.

use crate::support::{Launch, Server, log};
use awc::http::StatusCode;
use serde_json::{Value, json};

async fn rejected(server: &Server, body: &str) -> Value {
    let (status, answer) = server
        .post("/log", Some("application/json"), body.to_string())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
    assert!(
        answer["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{answer}"
    );
    answer
}

async fn rejected_field(server: &Server, body: &str, field: &str) {
    let answer = rejected(server, body).await;
    assert_eq!(answer["field"], field, "{body} -> {answer}");
}

#[actix_web::test]
async fn accepts_a_log_and_answers_id_and_timestamp() {
    let server = Server::start().await;
    let (status, answer) = server
        .post_log(&json!({"level": "WARN", "message": "disk 91% full", "service": "node-7",
                          "timestamp": "2025-01-01T12:00:00.123456Z", "attributes": {"disk": "/dev/sda"}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(answer["status"], "accepted");
    assert_eq!(answer["id"].as_str().map(str::len), Some(36));
    assert_eq!(answer["timestamp"], "2025-01-01T12:00:00.123456Z");
    server.wait_stored(1).await;
    let (_, logs) = server.get("/api/logs").await;
    assert_eq!(logs[0]["level"], "warn", "stored lowercase");
    assert_eq!(
        logs[0]["timestamp"], "2025-01-01T12:00:00.123456Z",
        "sub-millisecond precision kept"
    );
    assert_eq!(logs[0]["attributes"]["disk"], "/dev/sda");
    assert_eq!(logs[0]["id"], answer["id"]);
}

#[actix_web::test]
async fn missing_timestamp_defaults_to_receipt_time() {
    let server = Server::start().await;
    let before = time::OffsetDateTime::now_utc();
    let (_, answer) = server.post_log(&log("info", "s", "m")).await;
    let stamped = time::OffsetDateTime::parse(
        answer["timestamp"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        stamped >= before - time::Duration::seconds(1)
            && stamped <= time::OffsetDateTime::now_utc()
    );
}

#[actix_web::test]
async fn unknown_level_is_rejected() {
    let server = Server::start().await;
    rejected_field(
        &server,
        r#"{"level":"verbose","message":"m","service":"s"}"#,
        "level",
    )
    .await;
}

#[actix_web::test]
async fn missing_required_fields_are_named() {
    let server = Server::start().await;
    rejected_field(&server, r#"{"message":"m","service":"s"}"#, "level").await;
    rejected_field(&server, r#"{"level":"info","service":"s"}"#, "message").await;
    rejected_field(&server, r#"{"level":"info","message":"m"}"#, "service").await;
}

#[actix_web::test]
async fn empty_message_is_rejected() {
    let server = Server::start().await;
    rejected_field(
        &server,
        r#"{"level":"info","message":"","service":"s"}"#,
        "message",
    )
    .await;
}

#[actix_web::test]
async fn message_over_10_kb_is_rejected() {
    let server = Server::start().await;
    let at_limit = json!({"level": "info", "service": "s", "message": "x".repeat(10 * 1024)});
    assert_eq!(server.post_log(&at_limit).await.0, StatusCode::ACCEPTED);
    let over = json!({"level": "info", "service": "s", "message": "x".repeat(10 * 1024 + 1)});
    let answer = rejected(&server, &over.to_string()).await;
    assert_eq!(answer["field"], "message");
    assert!(
        answer["error"].as_str().unwrap().contains("10240"),
        "{answer}"
    );
}

#[actix_web::test]
async fn service_over_100_chars_or_empty_is_rejected() {
    let server = Server::start().await;
    let long = json!({"level": "info", "message": "m", "service": "s".repeat(101)});
    rejected_field(&server, &long.to_string(), "service").await;
    rejected_field(
        &server,
        r#"{"level":"info","message":"m","service":""}"#,
        "service",
    )
    .await;
}

#[actix_web::test]
async fn bad_timestamp_is_rejected() {
    let server = Server::start().await;
    rejected_field(
        &server,
        r#"{"level":"info","message":"m","service":"s","timestamp":"01/02/2025"}"#,
        "timestamp",
    )
    .await;
}

#[actix_web::test]
async fn unknown_top_level_field_is_rejected() {
    let server = Server::start().await;
    rejected_field(
        &server,
        r#"{"level":"info","message":"m","service":"s","host":"a"}"#,
        "host",
    )
    .await;
}

#[actix_web::test]
async fn wrong_types_are_rejected() {
    let server = Server::start().await;
    rejected_field(
        &server,
        r#"{"level":1,"message":"m","service":"s"}"#,
        "level",
    )
    .await;
    rejected_field(
        &server,
        r#"{"level":"info","message":{"a":1},"service":"s"}"#,
        "message",
    )
    .await;
    rejected_field(
        &server,
        r#"{"level":"info","message":"m","service":"s","attributes":["a"]}"#,
        "attributes",
    )
    .await;
}

/// Structured loggers' attributes (pino, structlog, zap): numbers and
/// booleans stored as their JSON text, nested objects as dotted keys, null
/// dropped, through `/log` and both forms of `/log/bulk`, read back from
/// `/api/logs` as docs/api.md documents.
#[actix_web::test]
async fn attributes_of_every_json_type_are_stored_as_documented() {
    let server = Server::start().await;
    let attributes = json!({
        "user": "ada", "attempt": 3, "latency_ms": 12.5, "big": 12345678901234567890u64,
        "negative": -4, "cached": true, "retried": false, "trace": null,
        "http": {"method": "GET", "status": 503, "route": {"name": "orders", "id": null}},
        "empty": {}
    });
    let expected = json!({
        "user": "ada", "attempt": "3", "latency_ms": "12.5", "big": "12345678901234567890",
        "negative": "-4", "cached": "true", "retried": "false",
        "http.method": "GET", "http.status": "503", "http.route.name": "orders"
    });
    let entry = |service: &str| json!({"level": "info", "message": "typed", "service": service, "attributes": attributes});
    let (status, answer) = server.post_log(&entry("typed-single")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let array = Value::Array(vec![entry("typed-array"), entry("typed-array")]);
    let (status, answer) = server
        .post("/log/bulk", Some("application/json"), array.to_string())
        .await;
    assert_eq!(
        (status, &answer["accepted"]),
        (StatusCode::ACCEPTED, &json!(2)),
        "{answer}"
    );
    let ndjson = format!("{}\n{}\n", entry("typed-ndjson"), entry("typed-ndjson"));
    let (status, answer) = server
        .post("/log/bulk", Some("application/x-ndjson"), ndjson)
        .await;
    assert_eq!(
        (status, &answer["accepted"]),
        (StatusCode::ACCEPTED, &json!(2)),
        "{answer}"
    );
    server.wait_stored(5).await;
    let (_, logs) = server.get("/api/logs?limit=10").await;
    let logs = logs.as_array().expect("rows");
    assert_eq!(logs.len(), 5);
    for row in logs {
        assert_eq!(row["attributes"], expected, "{row}");
    }
    // The language compares the text numerically, as for shippers' numbers.
    let (_, found) = server
        .get("/api/logs?query=http.status:%3E%3D500%20cached:true")
        .await;
    assert_eq!(found.as_array().map(Vec::len), Some(5), "{found}");
}

#[actix_web::test]
async fn attributes_break_no_other_rule() {
    let server = Server::start().await;
    rejected_field(
        &server,
        r#"{"level":"info","message":"m","service":"s","attributes":{"a":{"tags":["x"]}}}"#,
        "attributes.a.tags",
    )
    .await;
    rejected_field(
        &server,
        r#"{"level":"info","message":"m","service":"s","attributes":{"a.b":"x","a":{"b":1}}}"#,
        "attributes.a.b",
    )
    .await;
    // Every flattened leaf counts against the limit of 64.
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!(i))).collect();
    let body =
        json!({"level": "info", "message": "m", "service": "s", "attributes": {"nested": many}});
    let answer = rejected(&server, &body.to_string()).await;
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("too many attributes"),
        "{answer}"
    );
    // A bulk entry breaking a rule is refused alone.
    let bulk = format!(
        "{}\n{}\n",
        json!({"level": "info", "message": "ok", "service": "s", "attributes": {"n": 1}}),
        json!({"level": "info", "message": "no", "service": "s", "attributes": {"n": [1]}})
    );
    let (status, answer) = server
        .post("/log/bulk", Some("application/x-ndjson"), bulk)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(
        (&answer["accepted"], &answer["rejected"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(answer["errors"][0]["field"], "attributes.n", "{answer}");
}

#[actix_web::test]
async fn malformed_json_is_rejected() {
    let server = Server::start().await;
    let answer = rejected(&server, r#"{"level":"info","message":"m""#).await;
    assert!(
        answer["error"].as_str().unwrap().contains("malformed JSON"),
        "{answer}"
    );
    rejected(&server, "[1,2]").await;
}

#[actix_web::test]
async fn bad_utf8_is_rejected() {
    let server = Server::start().await;
    let body = b"{\"level\":\"info\",\"message\":\"caf\xe9\",\"service\":\"s\"}".to_vec();
    let (status, answer) = server.post("/log", Some("application/json"), body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"].as_str().unwrap().contains("UTF-8"),
        "{answer}"
    );
}

#[actix_web::test]
async fn body_over_50_kb_is_413() {
    let server = Server::start().await;
    let body = format!(
        r#"{{"level":"info","service":"s","message":"m","attributes":{{"pad":"{}"}}}}"#,
        "x".repeat(51 * 1024)
    );
    let (status, answer) = server.post("/log", Some("application/json"), body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        answer["error"].as_str().unwrap().contains("51200"),
        "{answer}"
    );
}

#[actix_web::test]
async fn missing_content_type_is_415() {
    let server = Server::start().await;
    let (status, answer) = server
        .post("/log", None, log("info", "s", "m").to_string())
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{answer}"
    );
}

#[actix_web::test]
async fn non_json_content_type_is_415() {
    let server = Server::start().await;
    let (status, answer) = server
        .post(
            "/log",
            Some("text/plain"),
            log("info", "s", "m").to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(answer["field"], "Content-Type");
    let (status, _) = server
        .post(
            "/log",
            Some("application/json; charset=utf-8"),
            log("info", "s", "m").to_string(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "parameters on the media type are fine"
    );
}

#[actix_web::test]
async fn bulk_json_array_reports_invalid_entries_by_index() {
    let server = Server::start().await;
    let body = json!([
        log("info", "web", "one"),
        {"level": "nope", "message": "two", "service": "web"},
        log("error", "web", "three"),
        {"level": "info", "message": "", "service": "web"},
    ]);
    let (status, answer) = server
        .post("/log/bulk", Some("application/json"), body.to_string())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"], 2);
    assert_eq!(answer["errors"][0]["index"], 1);
    assert_eq!(answer["errors"][0]["field"], "level");
    assert_eq!(answer["errors"][1]["index"], 3);
    server.wait_stored(2).await;
}

#[actix_web::test]
async fn bulk_ndjson_reports_invalid_lines() {
    let server = Server::start().await;
    let body = format!(
        "{}\n{{not json\n\n{}\n{}\n",
        log("info", "a", "1"),
        log("warn", "b", "2"),
        json!({"level": "info", "message": "3"})
    );
    let (status, answer) = server
        .post("/log/bulk", Some("application/x-ndjson"), body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(answer["errors"][0]["line"], 2);
    assert_eq!(answer["errors"][1]["line"], 5);
    assert_eq!(answer["errors"][1]["field"], "service");
    server.wait_stored(2).await;
}

#[actix_web::test]
async fn bulk_with_no_valid_entry_is_400() {
    let server = Server::start().await;
    let (status, answer) = server
        .post(
            "/log/bulk",
            Some("application/x-ndjson"),
            "{\"level\":\"x\"}\n[]\n",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["accepted"], 0);
    assert_eq!(answer["rejected"], 2);
    let (status, _) = server
        .post("/log/bulk", Some("application/json"), "{\"not\":\"array\"}")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = server.post("/log/bulk", Some("text/csv"), "a,b").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[actix_web::test]
async fn bulk_over_its_limit_is_413() {
    let server =
        Server::launch(Launch::default().env("OGLOGSTREAM_INGEST__MAX_BULK_BYTES", "4096")).await;
    let line = log("info", "s", &"x".repeat(100)).to_string();
    let body = vec![line; 50].join("\n");
    let (status, answer) = server
        .post("/log/bulk", Some("application/x-ndjson"), body)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("4096"));
}

#[actix_web::test]
async fn full_queue_answers_503_with_retry_after_and_loses_nothing() {
    // The batcher holds its first delivery for 30 s (batch never fills), so
    // the 10-log queue stays full until shutdown flushes it.
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::launch(
        Launch::default()
            .data_dir(data.path())
            .env("OGLOGSTREAM_INGEST__QUEUE_CAPACITY", "10")
            .env("BATCH_SIZE", "1000")
            .env("FLUSH_TIMEOUT", "30s"),
    )
    .await;
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..20 {
        let response = server
            .client
            .post(server.url("/log"))
            .insert_header(("Content-Type", "application/json"))
            .send_body(log("info", "s", &format!("m{i}")).to_string())
            .await
            .unwrap();
        match response.status() {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = response
                    .headers()
                    .get("Retry-After")
                    .map(|v| v.to_str().unwrap().to_string());
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(accepted, 10);
    assert_eq!(refused.as_deref(), Some("1"), "503 carries Retry-After");
    assert!(
        server
            .terminate(std::time::Duration::from_secs(20))
            .success()
    );
    let server = Server::launch(Launch::default().data_dir(data.path())).await;
    server.wait_stored(10).await;
}
