//! No ingest path writes the audit log's service: `/log`, `/log/bulk`,
//! OTLP, Loki, Elasticsearch and syslog each refuse `oglogstream.audit` in
//! their own way (a 400 naming `service`, a per-record error, a partial
//! success, a counted refusal), store the request's other logs, and the
//! audit log stays empty.

use super::audit_records;
use crate::shippers::{free_udp_port, with_syslog};
use crate::support::{Launch, Server, free_port};
use awc::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn post(
    server: &Server,
    path: &str,
    content_type: &str,
    body: String,
) -> (StatusCode, String) {
    let mut response = server
        .client
        .post(server.url(path))
        .insert_header(("Content-Type", content_type))
        .send_body(body)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let bytes = response.body().await.expect("body");
    (
        response.status(),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[actix_web::test]
async fn every_ingest_protocol_refuses_the_audit_service() {
    let udp = free_udp_port();
    let server = Server::launch(with_syslog(
        Launch::default().env("FLUSH_TIMEOUT", "50ms"),
        free_port(),
        udp,
    ))
    .await;
    let audit = "oglogstream.audit";

    let (status, body) = post(
        &server,
        "/log",
        "application/json",
        json!({"level": "info", "message": "forged", "service": "OGLogStream.Audit"}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["field"], "service");
    assert!(
        body["error"].as_str().unwrap().contains("reserved"),
        "{body}"
    );

    let (status, body) = post(
        &server,
        "/log/bulk",
        "application/json",
        json!([
            {"level": "info", "message": "kept", "service": "web-bulk"},
            {"level": "info", "message": "forged", "service": audit},
        ])
        .to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(body["errors"][0]["field"], "service");

    let otlp = |service: &str, message: &str| {
        json!({"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
               "scopeLogs": [{"logRecords": [{"body": {"stringValue": message}}]}]})
    };
    let (status, body) = post(
        &server,
        "/v1/logs",
        "application/json",
        json!({"resourceLogs": [otlp("web-otlp", "kept"), otlp(audit, "forged")]}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["partialSuccess"]["rejectedLogRecords"], "1", "{body}");
    assert!(
        body["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("reserved")
    );

    let now = format!("{}", oglogstream::domain::time::now_micros() * 1000);
    let (status, body) = post(
        &server,
        "/loki/api/v1/push",
        "application/json",
        json!({"streams": [
            {"stream": {"service_name": "web-loki"}, "values": [[now, "kept"]]},
            {"stream": {"app": audit}, "values": [[now, "forged"]]},
        ]})
        .to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("reserved"), "{body}");

    let (status, body) = post(
        &server,
        "/_bulk",
        "application/x-ndjson",
        format!(
            "{{\"index\":{{\"_index\":\"app\"}}}}\n{}\n{{\"index\":{{\"_index\":\"app\"}}}}\n{}\n",
            json!({"message": "kept", "service": "web-es"}),
            json!({"message": "forged", "service": {"name": audit}})
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["errors"], true);
    assert_eq!(body["items"][0]["index"]["status"], 201, "{body}");
    assert_eq!(body["items"][1]["index"]["status"], 400, "{body}");
    let reason = body["items"][1]["index"]["error"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("reserved"), "{body}");

    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for app in ["web-syslog", audit] {
        let line = format!("<14>1 2025-06-01T12:00:00Z host {app} - - - kept-or-forged");
        socket.send_to(line.as_bytes(), ("127.0.0.1", udp)).unwrap();
    }

    // Every protocol's other log is stored; no forged one is.
    let services = ["web-bulk", "web-otlp", "web-loki", "web-es", "web-syslog"];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let stats = loop {
        let (_, stats) = server.get("/api/stats").await;
        let all = services
            .iter()
            .all(|service| stats["logs_by_service"][service] == 1);
        if all || std::time::Instant::now() > deadline {
            break stats;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    for service in services {
        assert_eq!(stats["logs_by_service"][service], 1, "{service}: {stats}");
    }
    let (_, stats) = server.get("/api/stats").await;
    assert_eq!(stats["total_logs"], 5, "{stats}");
    // Open: the anonymous caller is an admin, who would see audit records.
    assert!(audit_records(&server, None).await.is_empty());
}
