//! What `haproxy/haproxy.cfg` itself decides, with one `--role all` instance
//! behind every backend: which backend a path reaches (the shippers' paths
//! included), the body limits it
//! enforces before any instance sees the request, the request id it passes
//! on, and the answers it gives itself (`/health`, no instance available).

use super::HaProxy;
use crate::support::Server;
use awc::http::StatusCode;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends raw bytes and reads the answer until the connection closes.
fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to HAProxy");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A POST whose head declares `length` bytes; only `body` follows.
fn post_head(path: &str, length: usize, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn has_request_id(raw_answer: &str) -> bool {
    raw_answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .contains("\r\nx-request-id:")
}

async fn sessions(haproxy: &HaProxy, backend: &str) -> u64 {
    haproxy
        .row(backend, "BACKEND")
        .await
        .map(|row| row.total_sessions)
        .unwrap_or_else(|| panic!("backend {backend} in HAProxy's statistics"))
}

#[actix_web::test]
async fn haproxy_routes_limits_and_answers_for_the_platform() {
    let server = Server::start().await;
    let haproxy = HaProxy::one_of_each(server.port, server.port, server.port).await;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();

    let mut response = client
        .get(haproxy.url("/health"))
        .send()
        .await
        .expect("GET");
    let health: Value = response.json().await.expect("JSON");
    assert_eq!(response.status(), StatusCode::OK, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["healthy_instances"],
        json!({"ingest": 1, "process": 1, "query": 1})
    );

    // /log* reaches the ingest backend, everything else the query backend.
    let (ingest_before, query_before) = (
        sessions(&haproxy, "ingest").await,
        sessions(&haproxy, "query").await,
    );
    let mut response = client
        .post(haproxy.url("/log"))
        .insert_header(("Content-Type", "application/json"))
        .send_body(r#"{"level":"info","message":"through haproxy","service":"routing"}"#)
        .await
        .expect("POST /log");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // No id sent: HAProxy made one (a UUID) and the instance used it.
    let generated = response.headers().get("x-request-id").expect("an id");
    let generated = generated.to_str().expect("ascii").to_string();
    assert!(
        generated.len() == 36 && generated.matches('-').count() == 4,
        "a UUID from HAProxy: {generated}"
    );
    let _ = response.body().await;
    server.wait_stored(1).await;
    let mut response = client
        .get(haproxy.url("/api/logs?service=routing"))
        .insert_header(("X-Request-Id", "my-trace-1"))
        .send()
        .await
        .expect("GET /api/logs");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("x-request-id").expect("an id"),
        "my-trace-1",
        "a client's own id is kept"
    );
    let rows: Value = response.json().await.expect("JSON");
    assert_eq!(rows[0]["message"], "through haproxy", "{rows}");
    let mut page = client
        .get(haproxy.url("/explorer"))
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.body().await.expect("page");
    assert!(String::from_utf8_lossy(&page).contains("<html") || page.starts_with(b"<!doctype"));
    // A saved view's short link and the views API are the query role's:
    // `/v/` is not `/v1/` (OTLP, ingest's).
    for path in ["/v/k3x9q2mw7h", "/api/views"] {
        let mut response = client.get(haproxy.url(path)).send().await.expect("GET");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let _ = response.body().await;
    }
    let (_, live) = client
        .ws(format!("ws://127.0.0.1:{}/ws/live", haproxy.http_port))
        .connect()
        .await
        .expect("the live stream through HAProxy");
    drop(live);
    assert_eq!(sessions(&haproxy, "ingest").await, ingest_before + 1);
    assert_eq!(sessions(&haproxy, "query").await, query_before + 5);

    // The shippers' paths reach the ingest backend too; `GET /`, an
    // Elasticsearch client's first call, the query backend, which answers
    // it as Elasticsearch.
    let (ingest_before, query_before) = (
        sessions(&haproxy, "ingest").await,
        sessions(&haproxy, "query").await,
    );
    let bulk = "{\"index\":{}}\n{\"message\":\"routed\",\"service\":\"routing\"}\n";
    for (path, content_type, body, status) in [
        (
            "/v1/logs",
            "application/json",
            r#"{"resourceLogs":[]}"#,
            StatusCode::OK,
        ),
        (
            "/loki/api/v1/push",
            "application/json",
            r#"{"streams":[]}"#,
            StatusCode::NO_CONTENT,
        ),
        (
            "/routing-index/_bulk",
            "application/x-ndjson",
            bulk,
            StatusCode::OK,
        ),
        (
            "/_bulk",
            "application/x-ndjson",
            "{\"index\":{\"_index\":\"r\"}}\n{\"msg\":\"x\"}\n",
            StatusCode::OK,
        ),
    ] {
        let mut response = client
            .post(haproxy.url(path))
            .insert_header(("Content-Type", content_type))
            .send_body(body)
            .await
            .expect("POST");
        assert_eq!(response.status(), status, "{path}");
        let _ = response.body().await;
    }
    let mut response = client
        .get(haproxy.url("/"))
        .insert_header(("Accept", "application/json"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("x-elastic-product")
            .expect("the product header"),
        "Elasticsearch"
    );
    let info: Value = response.json().await.expect("JSON");
    assert!(
        info["version"]["number"]
            .as_str()
            .is_some_and(|v| v.starts_with("8.")),
        "{info}"
    );
    assert_eq!(sessions(&haproxy, "ingest").await, ingest_before + 4);
    assert_eq!(sessions(&haproxy, "query").await, query_before + 1);

    // Bodies over the services' limits are refused by HAProxy from the
    // declared length, in the services' error shape; the instance never
    // sees them (it would have added an X-Request-Id).
    let ingest_before = sessions(&haproxy, "ingest").await;
    for (path, limit) in [
        ("/log", 51_200usize),
        ("/log/bulk", 10 * 1024 * 1024),
        ("/v1/logs", 10 * 1024 * 1024),
        ("/my-index/_bulk", 10 * 1024 * 1024),
    ] {
        let answer = raw_exchange(haproxy.http_port, &post_head(path, limit + 1, b""));
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(
            answer.contains(&format!(
                "{{\"error\":\"request body is larger than the limit of {limit} bytes\"}}"
            )),
            "{path}: {answer}"
        );
        assert!(!has_request_id(&answer), "answered by HAProxy: {answer}");
    }
    assert_eq!(sessions(&haproxy, "ingest").await, ingest_before);
    // At the limit, the request goes through (and is judged by the instance).
    let at_limit = raw_exchange(
        haproxy.http_port,
        &post_head("/log", 51_200, &[b' '; 51_200]),
    );
    assert!(at_limit.starts_with("HTTP/1.1 400"), "{at_limit}");
    assert!(
        has_request_id(&at_limit),
        "answered by the instance: {at_limit}"
    );

    // With no instance left, HAProxy answers itself: 503, JSON, Retry-After.
    server.signal(libc::SIGKILL);
    haproxy
        .wait_for_states(&[
            ("ingest", "ingest1", "DOWN"),
            ("process", "process1", "DOWN"),
            ("query", "query1", "DOWN"),
        ])
        .await;
    let mut response = client
        .get(haproxy.url("/health"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers().get("retry-after").expect("Retry-After"),
        "2"
    );
    let health: Value = response.json().await.expect("JSON");
    assert_eq!(health["status"], "unavailable");
    assert_eq!(
        health["healthy_instances"],
        json!({"ingest": 0, "process": 0, "query": 0})
    );
    for path in ["/api/stats", "/log"] {
        let mut response = client
            .post(haproxy.url(path))
            .insert_header(("Content-Type", "application/json"))
            .send_body("{}")
            .await
            .expect("an answer");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(response.headers().contains_key("retry-after"), "{path}");
        let error: Value = response.json().await.expect("JSON");
        assert!(
            error["error"]
                .as_str()
                .is_some_and(|e| e.contains("no healthy instance")),
            "{path}: {error}"
        );
    }

    let mut stats = client
        .get(haproxy.stats_url("/stats"))
        .send()
        .await
        .expect("GET");
    assert_eq!(stats.status(), StatusCode::OK);
    let stats = stats.body().await.expect("stats page");
    assert!(String::from_utf8_lossy(&stats).contains("Statistics Report"));
}

/// OTLP over gRPC through HAProxy's HTTP/2 frontend (:4317): calls reach
/// the ingest instance's gRPC listener (the `ingest_grpc` backend, in
/// rotation while the instance's `/health` answers), the instance's gRPC
/// answers come back as they are; with the instance gone the backend
/// leaves rotation.
#[actix_web::test]
async fn haproxy_carries_otlp_grpc_to_the_ingest_instances() {
    use oglogstream::loadgen::grpc::{GrpcConnection, frame};
    let grpc = crate::support::free_port();
    let server = Server::launch(crate::support::Launch::default().env(
        "OGLOGSTREAM_OTLP__GRPC_LISTEN",
        &format!("127.0.0.1:{grpc}"),
    ))
    .await;
    let haproxy = HaProxy::one_of_each_with_grpc(server.port, grpc, server.port, server.port).await;
    let mut connection = GrpcConnection::connect(&haproxy.grpc_address())
        .await
        .expect("HAProxy's gRPC frontend");
    let export = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    let before = sessions(&haproxy, "ingest_grpc").await;
    // One record: resource service.name "via-haproxy-grpc", body "routed".
    let request = crate::shippers::rules::otlp_protobuf("via-haproxy-grpc", &[(Some("routed"), 9)]);
    let answer = connection
        .call(export, &[], frame(&request, false))
        .await
        .expect("an answer");
    assert_eq!(answer.code, 0, "{answer:?}");
    let answer = connection
        .call(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Nothing",
            &[],
            frame(&request, false),
        )
        .await
        .expect("an answer");
    assert_eq!(answer.code, 12, "the instance's own answer: {answer:?}");
    assert!(sessions(&haproxy, "ingest_grpc").await > before);
    server.wait_stored(1).await;
    let (_, rows) = server.get("/api/logs?service=via-haproxy-grpc").await;
    assert_eq!(rows[0]["message"], "routed", "{rows}");

    server.signal(libc::SIGKILL);
    haproxy
        .wait_for_states(&[("ingest_grpc", "ingest_grpc1", "DOWN")])
        .await;
}

/// Grafana points at HAProxy: the Loki query API's reads (GET and
/// form-encoded POST, and `tail`'s WebSocket) reach the query backend,
/// while Loki push stays on ingest.
#[actix_web::test]
async fn haproxy_sends_loki_reads_to_query_and_push_to_ingest() {
    let server = Server::start().await;
    let haproxy = HaProxy::one_of_each(server.port, server.port, server.port).await;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let (ingest_before, query_before) = (
        sessions(&haproxy, "ingest").await,
        sessions(&haproxy, "query").await,
    );
    let push = r#"{"streams":[{"stream":{"service_name":"grafana-route"},"values":[["1735725600000000000","through haproxy"]]}]}"#;
    let mut response = client
        .post(haproxy.url("/loki/api/v1/push"))
        .insert_header(("Content-Type", "application/json"))
        .send_body(push)
        .await
        .expect("POST push");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let _ = response.body().await;
    server.wait_stored(1).await;
    let mut answer = client
        .get(haproxy.url("/loki/api/v1/query?query=vector(1)%2Bvector(1)&time=4000000000"))
        .send()
        .await
        .expect("Save & test through HAProxy");
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(body["data"]["result"][0]["value"], json!([4, "2"]));
    let mut lines = client
        .get(haproxy.url(
            "/loki/api/v1/query_range?query=%7Bservice_name%3D%22grafana-route%22%7D&start=1735725500000000000&end=1735725700000000000",
        ))
        .send()
        .await
        .expect("query_range");
    let lines: Value = lines.json().await.expect("JSON");
    assert_eq!(
        lines["data"]["result"][0]["values"][0][1], "through haproxy",
        "{lines}"
    );
    let mut series = client
        .post(haproxy.url("/loki/api/v1/series"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .send_body("match%5B%5D=%7B%7D&start=1735725500000000000&end=1735725700000000000")
        .await
        .expect("POST series");
    let series: Value = series.json().await.expect("JSON");
    assert_eq!(series["data"], json!([{"service_name": "grafana-route"}]));
    let (_, tail) = client
        .ws(format!(
            "ws://127.0.0.1:{}/loki/api/v1/tail?query=%7Bservice_name%3D%22grafana-route%22%7D",
            haproxy.http_port
        ))
        .connect()
        .await
        .expect("tail through HAProxy");
    drop(tail);
    assert_eq!(sessions(&haproxy, "ingest").await, ingest_before + 1);
    assert_eq!(sessions(&haproxy, "query").await, query_before + 4);
}
