//! Operations and security: metrics, request ids, rate limits, client
//! addresses behind proxies, CORS, API keys, retention, hostile input.

use crate::support::{Launch, Server, eventually, log};
use awc::http::StatusCode;
use serde_json::json;
use std::io::{Read, Write};
use std::time::Duration;

async fn get_text(server: &Server, path: &str) -> (StatusCode, String) {
    let mut response = server.client.get(server.url(path)).send().await.unwrap();
    let body = response.body().limit(8 << 20).await.unwrap();
    (
        response.status(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[actix_web::test]
async fn metrics_are_present_and_valid_after_traffic() {
    let server = Server::start().await;
    for i in 0..5 {
        server.accept(&log("info", "m", &format!("n{i}"))).await;
    }
    server.post("/log", Some("application/json"), "{oops").await;
    server.post("/log", Some("text/plain"), "x").await;
    server.wait_stored(5).await;
    server.get("/api/logs?level=info").await;

    let (status, text) = get_text(&server, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        "oglogstream_logs_accepted_total{protocol=\"json\"} 5",
        "oglogstream_logs_accepted_total{protocol=\"otlp\"} 0",
        "oglogstream_logs_rejected_total{protocol=\"json\",reason=\"invalid\"} 1",
        "oglogstream_logs_rejected_total{protocol=\"json\",reason=\"unsupported_media_type\"} 1",
        "oglogstream_syslog_connections 0",
        "oglogstream_logs_stored_total 5",
        "oglogstream_queue_depth 0",
        "oglogstream_queue_capacity 20000",
        "oglogstream_dependency_up{dependency=\"bus\"} 1",
        "oglogstream_dependency_up{dependency=\"storage\"} 1",
        "oglogstream_live_clients 0",
        "oglogstream_dead_letter_logs 0",
        "oglogstream_store_size_bytes ",
        "oglogstream_store_write_seconds_count ",
        "oglogstream_batch_size_logs_bucket{le=",
        "oglogstream_http_request_duration_seconds_count{route=\"/log\",method=\"POST\",status=\"202\"} 5",
        "oglogstream_http_request_duration_seconds_count{route=\"/api/logs\",method=\"GET\",status=\"200\"} 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        !text.contains("oglogstream_tenant_"),
        "no per-tenant series while tenancy is off"
    );

    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; make test installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[actix_web::test]
async fn request_ids_are_echoed_or_generated() {
    let server = Server::start().await;
    let response = server
        .client
        .get(server.url("/api/stats"))
        .insert_header(("X-Request-Id", "trace-abc-123"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("x-request-id").unwrap(),
        "trace-abc-123"
    );
    let response = server
        .client
        .get(server.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("x-request-id").map(|v| v.len()),
        Some(36)
    );
}

async fn post_from(server: &Server, forwarded_for: Option<&str>) -> (StatusCode, Option<String>) {
    let mut request = server
        .client
        .post(server.url("/log"))
        .insert_header(("Content-Type", "application/json"));
    if let Some(forwarded_for) = forwarded_for {
        request = request.insert_header(("X-Forwarded-For", forwarded_for));
    }
    let response = request
        .send_body(log("info", "rl", "m").to_string())
        .await
        .unwrap();
    let retry = response
        .headers()
        .get("Retry-After")
        .map(|v| v.to_str().unwrap().to_string());
    (response.status(), retry)
}

#[actix_web::test]
async fn rate_limit_answers_429_then_recovers_after_refill() {
    let server = Server::launch(
        Launch::default()
            .env("OGLOGSTREAM_RATE_LIMIT__INGEST_PER_SECOND", "2")
            .env("OGLOGSTREAM_RATE_LIMIT__INGEST_BURST", "3"),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(post_from(&server, None).await.0, StatusCode::ACCEPTED);
    }
    let (status, retry_after) = post_from(&server, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("1"));
    let (status, _) = server.get("/api/stats").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the query limit is separate (and off)"
    );
    eventually("the bucket to refill", Duration::from_secs(5), || async {
        (post_from(&server, None).await.0 == StatusCode::ACCEPTED).then_some(())
    })
    .await;
}

#[actix_web::test]
async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let server = Server::launch(
        Launch::default()
            .env("OGLOGSTREAM_RATE_LIMIT__INGEST_PER_SECOND", "0.01")
            .env("OGLOGSTREAM_RATE_LIMIT__INGEST_BURST", "2"),
    )
    .await;
    assert_eq!(
        post_from(&server, Some("198.51.100.1")).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post_from(&server, Some("198.51.100.2")).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post_from(&server, Some("198.51.100.3")).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "a new X-Forwarded-For does not buy a new bucket"
    );
}

#[actix_web::test]
async fn forwarded_for_from_a_trusted_proxy_names_the_client() {
    let server = Server::launch(
        Launch::default()
            .env("OGLOGSTREAM_RATE_LIMIT__INGEST_PER_SECOND", "0.01")
            .env("OGLOGSTREAM_RATE_LIMIT__INGEST_BURST", "1")
            .env(
                "OGLOGSTREAM_SECURITY__TRUSTED_PROXIES",
                "[\"127.0.0.1/32\"]",
            ),
    )
    .await;
    assert_eq!(
        post_from(&server, Some("198.51.100.1")).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post_from(&server, Some("198.51.100.2")).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post_from(&server, Some("198.51.100.1")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A client's own prefix is not believed: the proxy's appended address counts.
    assert_eq!(
        post_from(&server, Some("10.9.9.9, 198.51.100.2")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[actix_web::test]
async fn cors_allows_listed_and_own_origins_only() {
    let server = Server::launch(Launch::default().env(
        "OGLOGSTREAM_SECURITY__CORS_ALLOWED_ORIGINS",
        "[\"https://grafana.example.com\"]",
    ))
    .await;
    let preflight = |origin: &str| {
        server
            .client
            .request(awc::http::Method::OPTIONS, server.url("/log"))
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "POST"))
            .insert_header(("Access-Control-Request-Headers", "content-type"))
            .send()
    };
    let allowed = preflight("https://grafana.example.com").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .unwrap(),
        "https://grafana.example.com"
    );
    assert!(
        allowed
            .headers()
            .get("access-control-allow-methods")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        allowed
            .headers()
            .get("access-control-allow-headers")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Content-Type")
    );

    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let own = preflight(&format!("http://127.0.0.1:{}", server.port))
        .await
        .unwrap();
    assert_eq!(
        own.status(),
        StatusCode::NO_CONTENT,
        "the dashboard's own origin"
    );

    let get = |origin: &'static str| {
        server
            .client
            .get(server.url("/api/stats"))
            .insert_header(("Origin", origin))
            .send()
    };
    let response = get("https://grafana.example.com").await.unwrap();
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .unwrap(),
        "https://grafana.example.com"
    );
    let response = get("https://evil.example").await.unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[actix_web::test]
async fn api_keys_guard_ingest_and_read_over_http_and_websocket() {
    let read_key = "read-key-0123456789abcdef";
    let read_hash = oglogstream::security::auth::hashed_form(read_key);
    let server = Server::launch(
        Launch::default()
            .env(
                "OGLOGSTREAM_SECURITY__INGEST_KEYS",
                "[\"ingest-key-0123456789abcdef\"]",
            )
            .env(
                "OGLOGSTREAM_SECURITY__READ_KEYS",
                &format!("[\"{read_hash}\"]"),
            ),
    )
    .await;
    let post = |key: Option<(&'static str, String)>| {
        let mut request = server
            .client
            .post(server.url("/log"))
            .insert_header(("Content-Type", "application/json"));
        if let Some(header) = key {
            request = request.insert_header(header);
        }
        request.send_body(log("info", "auth", "m").to_string())
    };
    let mut missing = post(None).await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "missing or invalid API key"}),
        "no detail leaked"
    );
    assert_eq!(
        post(Some((
            "Authorization",
            "Bearer wrong-key-0123456789abc".into()
        )))
        .await
        .unwrap()
        .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(Some(("Authorization", format!("Bearer {read_key}"))))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED,
        "a read key cannot ingest"
    );
    assert_eq!(
        post(Some((
            "Authorization",
            "Bearer ingest-key-0123456789abcdef".into()
        )))
        .await
        .unwrap()
        .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post(Some(("X-API-Key", "ingest-key-0123456789abcdef".into())))
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );

    let read = |key: Option<String>| {
        let mut request = server.client.get(server.url("/api/logs"));
        if let Some(key) = key {
            request = request.insert_header(("Authorization", format!("Bearer {key}")));
        }
        request.send()
    };
    assert_eq!(read(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        read(Some("ingest-key-0123456789abcdef".into()))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        read(Some(read_key.into())).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        server.get("/health").await.0,
        StatusCode::OK,
        "health stays open for load balancers"
    );
    assert_eq!(
        get_text(&server, "/").await.0,
        StatusCode::OK,
        "the dashboard loads, then asks for a key"
    );
    assert_eq!(
        get_text(&server, "/metrics").await.0,
        StatusCode::UNAUTHORIZED
    );

    let refused = server.client.ws(server.ws_url("/ws/live")).connect().await;
    match refused {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
            assert_eq!(status, StatusCode::UNAUTHORIZED)
        }
        other => panic!(
            "expected 401, got {:?}",
            other.map(|(response, _)| response.status())
        ),
    }
    let wrong = server
        .client
        .ws(server.ws_url("/ws/live?api_key=nope"))
        .connect()
        .await;
    assert!(wrong.is_err());
    let (response, _connection) = server
        .client
        .ws(server.ws_url(&format!("/ws/live?api_key={read_key}")))
        .connect()
        .await
        .expect("the read key opens the live stream");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
}

#[actix_web::test]
async fn retention_removes_only_expired_rows() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::launch(Launch::default().data_dir(data.path())).await;
    let now = time::OffsetDateTime::now_utc();
    let stamp = |age: time::Duration| {
        (now - age)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let logs = json!([
        {"level": "info", "service": "old", "message": "three days old", "timestamp": stamp(time::Duration::days(3))},
        {"level": "error", "service": "old", "message": "two days old", "timestamp": stamp(time::Duration::days(2))},
        {"level": "info", "service": "new", "message": "two hours old", "timestamp": stamp(time::Duration::hours(2))},
        {"level": "warn", "service": "new", "message": "just now", "timestamp": stamp(time::Duration::ZERO)},
    ]);
    server
        .post("/log/bulk", Some("application/json"), logs.to_string())
        .await;
    server.wait_stored(4).await;
    assert!(server.terminate(Duration::from_secs(20)).success());

    // Retention runs at start, then hourly.
    let server = Server::launch(
        Launch::default()
            .data_dir(data.path())
            .env("OGLOGSTREAM_STORAGE__RETENTION_DAYS", "1"),
    )
    .await;
    server.wait_stored(2).await;
    let (_, rows) = server.get("/api/logs").await;
    let messages: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["just now", "two hours old"]);
    let (_, services) = server.get("/api/services").await;
    assert_eq!(
        services,
        json!([{"service": "new", "count": 2}]),
        "rollups expire with the rows"
    );
}

#[actix_web::test]
async fn hostile_filters_get_400_or_correct_results_never_500() {
    let server = Server::start().await;
    let tricky = [
        "it's",
        "back\\slash",
        "100%",
        "under_score",
        "nul\u{0}byte",
        "日本語テキスト",
        "\"quoted\"",
        "'; DROP TABLE logs; --",
    ];
    for (i, text) in tricky.iter().enumerate() {
        server.accept(&json!({"level": "info", "service": format!("svc {text}"), "message": format!("msg {text} #{i}")})).await;
    }
    server.accept(&log("info", "plain", "plain message")).await;
    server.wait_stored(tricky.len() as u64 + 1).await;
    let encode = |text: &str| -> String {
        serde_urlencoded::to_string([("v", text)]).unwrap()[2..].to_string()
    };
    for text in tricky {
        for endpoint in ["/api/logs", "/api/stats", "/api/histogram", "/api/services"] {
            for name in ["q", "service"] {
                let (status, body) = server
                    .get(&format!("{endpoint}?{name}={}", encode(text)))
                    .await;
                assert_eq!(status, StatusCode::OK, "{endpoint}?{name}={text:?}: {body}");
            }
            for name in ["level", "from", "to"] {
                let (status, body) = server
                    .get(&format!("{endpoint}?{name}={}", encode(text)))
                    .await;
                assert_eq!(
                    status,
                    StatusCode::BAD_REQUEST,
                    "{endpoint}?{name}={text:?}: {body}"
                );
            }
        }
        let (_, rows) = server.get(&format!("/api/logs?q={}", encode(text))).await;
        let rows = rows.as_array().unwrap().clone();
        assert_eq!(
            rows.len(),
            1,
            "exactly the log containing {text:?}: {rows:?}"
        );
        let (_, stats) = server
            .get(&format!("/api/stats?service={}", encode(text)))
            .await;
        assert_eq!(stats["total_logs"], 1, "service {text:?}");
    }
    let (status, _) = server.get("/api/logs?q=%").await;
    assert_eq!(status, StatusCode::OK);
    let (_, rows) = server.get("/api/logs?q=_").await;
    assert_eq!(
        rows.as_array().unwrap().len(),
        1,
        "_ is literal, not a wildcard"
    );
    let (_, stats) = server.get("/api/stats").await;
    assert_eq!(stats["total_logs"], tricky.len() + 1, "store intact");
}

#[actix_web::test]
async fn oversized_and_deeply_nested_input_is_refused() {
    let server = Server::start().await;
    let (status, _) = server
        .get(&format!("/api/logs?q={}", "x".repeat(1001)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = server
        .get(&format!("/api/logs?service={}", "x".repeat(101)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let (status, _) = server
        .post("/log/bulk", Some("application/json"), deep.clone())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let nested = format!(
        r#"{{"level":"info","message":"m","service":"s","attributes":{{"a":{}1{}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let (status, _) = server.post("/log", Some("application/json"), nested).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        server.get("/health").await.0,
        StatusCode::OK,
        "still serving"
    );
}

#[actix_web::test]
async fn a_client_that_stalls_mid_body_gets_408() {
    let server =
        Server::launch(Launch::default().env("OGLOGSTREAM_SERVER__BODY_READ_TIMEOUT", "1s")).await;
    let port = server.port;
    let answer = actix_web::rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        stream
            .write_all(b"POST /log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"level\":")
            .unwrap();
        let mut answer = String::new();
        let mut buffer = [0u8; 1024];
        while let Ok(n) = stream.read(&mut buffer) {
            if n == 0 {
                break;
            }
            answer.push_str(&String::from_utf8_lossy(&buffer[..n]));
            if answer.contains("\r\n\r\n") && answer.contains('}') {
                break;
            }
        }
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}
