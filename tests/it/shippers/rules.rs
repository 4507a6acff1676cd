//! The shippers' protocols' rules on the real binary: answers in each
//! protocol's own shape (OTLP's `google.rpc.Status` in the request's
//! encoding, Loki's plain text, Elasticsearch's error object and
//! per-item results), compressed bodies and zip bombs, chunked bodies,
//! limits (cut where the protocol cannot refuse one record, refused where it
//! can), syslog's garbage lines and connection limit, 503 + Retry-After and
//! TCP back-pressure on a full queue, rate limits.

use super::{free_udp_port, with_syslog};
use crate::support::{Launch, Server, eventually, free_port};
use awc::http::StatusCode;
use oglogstream::domain::shippers::protobuf::{
    Fields, Value as Wire, put_bytes_field, put_varint_field,
};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

/// A request with headers; the status, the headers we look at and the body.
pub(super) async fn send(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, awc::http::header::HeaderMap, Vec<u8>) {
    let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = server.client.request(method, server.url(path));
    for header in headers {
        request = request.insert_header(*header);
    }
    let mut response = request.send_body(body).await.expect("an answer");
    let body = response
        .body()
        .limit(16 << 20)
        .await
        .expect("body")
        .to_vec();
    (response.status(), response.headers().clone(), body)
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
}

pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

/// `google.rpc.Status { code = 1; message = 2; }` from protobuf.
fn status_of(body: &[u8]) -> (u64, String) {
    let mut code = 0;
    let mut message = String::new();
    for field in Fields::new(body) {
        match field.expect("a protobuf Status") {
            (1, value) => code = value.integer().expect("code"),
            (2, value) => message = value.string().expect("message").to_string(),
            _ => {}
        }
    }
    (code, message)
}

/// One OTLP resource with `service`, one scope, these records (each a
/// `(body, severity_number)`; no body when `None`).
pub(crate) fn otlp_protobuf(service: &str, records: &[(Option<&str>, u64)]) -> Vec<u8> {
    let message = |build: &dyn Fn(&mut Vec<u8>)| {
        let mut out = Vec::new();
        build(&mut out);
        out
    };
    let string_value = |text: &str| message(&|out| put_bytes_field(out, 1, text.as_bytes()));
    let service_attribute = message(&|out| {
        put_bytes_field(out, 1, b"service.name");
        put_bytes_field(out, 2, &string_value(service));
    });
    let resource = message(&|out| put_bytes_field(out, 1, &service_attribute));
    let scope_logs = message(&|out| {
        for (body, severity) in records {
            let record = message(&|out| {
                put_varint_field(out, 2, *severity);
                if let Some(body) = body {
                    put_bytes_field(out, 5, &string_value(body));
                }
            });
            put_bytes_field(out, 2, &record);
        }
    });
    let resource_logs = message(&|out| {
        put_bytes_field(out, 1, &resource);
        put_bytes_field(out, 2, &scope_logs);
    });
    message(&|out| put_bytes_field(out, 1, &resource_logs))
}

pub(super) async fn metric(server: &Server, line_start: &str) -> Option<u64> {
    let (_, text) = server.get("/metrics").await;
    text.as_str()?
        .lines()
        .find(|line| line.starts_with(line_start))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

pub(super) async fn wait_metric(server: &Server, line_start: &str, value: u64) {
    eventually(
        &format!("{line_start} {value}"),
        Duration::from_secs(20),
        || async { (metric(server, line_start).await == Some(value)).then_some(()) },
    )
    .await;
}

pub(super) async fn messages_of(server: &Server, service: &str) -> Vec<Value> {
    let (_, rows) = server
        .get(&format!("/api/logs?order=asc&service={service}"))
        .await;
    rows.as_array().cloned().unwrap_or_default()
}

#[actix_web::test]
async fn shipper_protocols_answer_in_their_own_shapes_and_keep_the_limits() {
    let syslog_port = free_port();
    let server = Server::launch(
        Launch::default()
            .env("OGLOGSTREAM_INGEST__MAX_BULK_BYTES", "1048576")
            .env("OGLOGSTREAM_INGEST__MAX_MESSAGE_BYTES", "100")
            .env(
                "OGLOGSTREAM_SYSLOG__TCP_LISTEN",
                &format!("127.0.0.1:{syslog_port}"),
            )
            .env("OGLOGSTREAM_SYSLOG__MAX_CONNECTIONS", "2")
            .env("OGLOGSTREAM_SYSLOG__MAX_LINE_BYTES", "1024"),
    )
    .await;
    let protobuf = [("Content-Type", "application/x-protobuf")];
    let json_type = [("Content-Type", "application/json")];

    // ---- OTLP ------------------------------------------------------------
    // A record without a body is refused in partial_success; the rest stored.
    let body = otlp_protobuf("otlp-rules", &[(Some("kept"), 17), (None, 9)]);
    let (status, headers, answer) = send(&server, "POST", "/v1/logs", &protobuf, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get("content-type").expect("type"),
        "application/x-protobuf"
    );
    let partial = Fields::new(&answer)
        .next()
        .expect("partial_success")
        .expect("protobuf")
        .1;
    let fields: Vec<(u32, Wire<'_>)> = Fields::new(partial.bytes().expect("message"))
        .collect::<Result<_, _>>()
        .expect("protobuf");
    assert_eq!(fields[0], (1, Wire::Varint(1)), "rejected_log_records");
    assert!(
        fields[1]
            .1
            .string()
            .expect("error_message")
            .contains("no body")
    );
    let (status, _, answer) = send(
        &server,
        "POST",
        "/v1/logs",
        &json_type,
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"json kept"}},{}]}]}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json_of(&answer)["partialSuccess"]["rejectedLogRecords"],
        "1"
    );
    // Malformed bodies: 400 with a Status in the request's encoding.
    let (status, _, answer) = send(
        &server,
        "POST",
        "/v1/logs",
        &protobuf,
        b"\x0a\x09oops".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (code, message) = status_of(&answer);
    assert_eq!(code, 3, "INVALID_ARGUMENT");
    assert!(message.contains("protobuf"), "{message}");
    let (status, _, answer) = send(
        &server,
        "POST",
        "/v1/logs",
        &json_type,
        b"{\"resourceLogs\":7}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&answer)["code"], 3, "{}", json_of(&answer));
    let (status, _, _) = send(
        &server,
        "POST",
        "/v1/logs",
        &[("Content-Type", "text/plain")],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _, _) = send(
        &server,
        "POST",
        "/v1/logs",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "br"),
        ],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // gzip: inflated and decoded; a bomb is refused once past the limit.
    let gzipped = gzip(&otlp_protobuf("otlp-gzip", &[(Some("inflated"), 9)]));
    let gzip_protobuf = [
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "gzip"),
    ];
    let (status, _, _) = send(&server, "POST", "/v1/logs", &gzip_protobuf, gzipped).await;
    assert_eq!(status, StatusCode::OK);
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 100_000, "a small body: {} bytes", bomb.len());
    let (status, _, answer) = send(&server, "POST", "/v1/logs", &gzip_protobuf, bomb.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(status_of(&answer).0, 8, "RESOURCE_EXHAUSTED");
    // Chunked, without Content-Length (the Node SDK sends so).
    let json_body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"otlp-chunked"}}]},"scopeLogs":[{"logRecords":[{"body":{"stringValue":"chunked"}}]}]}]}"#;
    let (head, tail) = json_body.split_at(40);
    let mut raw = format!(
        "POST /v1/logs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
        head.len()
    )
    .into_bytes();
    raw.extend_from_slice(head);
    raw.extend_from_slice(format!("\r\n{:x}\r\n", tail.len()).as_bytes());
    raw.extend_from_slice(tail);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(&raw).expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // ---- Loki --------------------------------------------------------------
    let loki = "/loki/api/v1/push";
    let (status, headers, answer) = send(
        &server,
        "POST",
        loki,
        &json_type,
        br#"{"streams":[{"stream":{"app":"x"},"values":[["yesterday","line"]]}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        headers
            .get("content-type")
            .expect("type")
            .to_str()
            .expect("text")
            .starts_with("text/plain")
    );
    assert!(String::from_utf8_lossy(&answer).contains("yesterday"));
    let (status, _, _) = send(
        &server,
        "POST",
        loki,
        &protobuf,
        b"not snappy at all".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Snappy announces its inflated size first: 2 MiB is refused unread.
    let (status, _, _) = send(
        &server,
        "POST",
        loki,
        &protobuf,
        vec![0x80, 0x80, 0x80, 0x01, 0, 0],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, _) = send(
        &server,
        "POST",
        loki,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        bomb,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Loki cannot refuse one entry: a long line is cut and says so; an
    // empty one is counted and skipped.
    let long_line = "é".repeat(80);
    let push = json!({"streams": [{"stream": {"service_name": "loki-rules", "level": "Warning"},
        "values": [["1735732800000000000", long_line], ["1735732800000000001", ""]]}]});
    let (status, _, answer) = send(
        &server,
        "POST",
        loki,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        gzip(push.to_string().as_bytes()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // ---- Elasticsearch -----------------------------------------------------
    let ndjson = [(
        "Content-Type",
        "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
    )];
    let (status, headers, answer) = send(
        &server,
        "POST",
        "/_bulk",
        &ndjson,
        b"{\"index\":\n".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        headers.get("x-elastic-product").expect("product"),
        "Elasticsearch"
    );
    let error = json_of(&answer);
    assert_eq!(error["status"], 400, "{error}");
    assert_eq!(
        error["error"]["type"], "illegal_argument_exception",
        "{error}"
    );
    assert!(
        error["error"]["root_cause"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("line [1]")),
        "{error}"
    );
    let bulk = [
        json!({"index": {"_id": "ok-1"}}),
        json!({"message": "es kept", "level": "error"}),
        json!({"create": {}}),
        json!("not an object"),
        json!({"index": {}}),
        json!({"message": "x".repeat(101)}),
        json!({"delete": {"_id": "1"}}),
    ]
    .iter()
    .map(|line| format!("{line}\n"))
    .collect::<String>();
    let (status, headers, answer) = send(
        &server,
        "PUT",
        "/es-rules/_bulk?refresh=true&pipeline=p",
        &ndjson,
        bulk.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", json_of(&answer));
    assert_eq!(
        headers.get("x-elastic-product").expect("product"),
        "Elasticsearch"
    );
    let answer = json_of(&answer);
    assert_eq!(answer["errors"], true);
    let items: Vec<(String, u64, String)> = answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let (action, result) = item
                .as_object()
                .and_then(|o| o.iter().next())
                .expect("one action");
            (
                action.clone(),
                result["status"].as_u64().unwrap_or(0),
                result["_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        items
            .iter()
            .map(|(a, s, _)| (a.as_str(), *s))
            .collect::<Vec<_>>(),
        vec![
            ("index", 201),
            ("create", 400),
            ("index", 400),
            ("delete", 400)
        ],
        "{answer}"
    );
    assert_eq!(items[0].2, "ok-1", "the client's _id echoed");
    assert_eq!(
        answer["items"][2]["index"]["error"]["reason"],
        "message is 101 bytes; the limit is 100 bytes"
    );
    let (status, headers, answer) = send(
        &server,
        "POST",
        "/_bulk",
        &[("Content-Type", "text/plain")],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        headers.get("x-elastic-product").expect("product"),
        "Elasticsearch"
    );
    assert_eq!(
        json_of(&answer)["error"]["type"],
        "media_type_header_exception"
    );
    let (status, _, _) = send(&server, "POST", "/_bulk", &ndjson, Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // `/` is Elasticsearch for clients, the dashboard for browsers.
    let (status, headers, _) = send(&server, "HEAD", "/", &[], Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get("x-elastic-product").expect("product"),
        "Elasticsearch"
    );
    let (status, headers, page) = send(
        &server,
        "GET",
        "/",
        &[("Accept", "text/html,application/xhtml+xml")],
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key("x-elastic-product"));
    assert!(
        String::from_utf8_lossy(&page)
            .to_ascii_lowercase()
            .contains("<!doctype html")
    );

    // ---- syslog over TCP ---------------------------------------------------
    // A garbage line and an over-long one are counted and skipped; the
    // connection's other messages arrive.
    let mut connection = TcpStream::connect(("127.0.0.1", syslog_port)).expect("syslog");
    let long = format!("<13>1 - - syslog-rules - - - {}\n", "y".repeat(2000));
    let stream = [
        "<11>1 2025-01-01T12:00:00Z h syslog-rules - - - before the garbage\n",
        "this is not syslog\n",
        &long,
        "<12>Jan  1 12:00:01 h syslog-rules[7]: after the garbage\n",
    ]
    .concat();
    connection.write_all(stream.as_bytes()).expect("send");
    drop(connection);

    // ---- what was stored ---------------------------------------------------
    let syslog_rows = eventually("syslog logs", Duration::from_secs(20), || async {
        let rows = messages_of(&server, "syslog-rules").await;
        (rows.len() == 2).then_some(rows)
    })
    .await;
    assert_eq!(
        syslog_rows
            .iter()
            .map(|r| (
                r["level"].as_str().unwrap_or(""),
                r["message"].as_str().unwrap_or("")
            ))
            .collect::<Vec<_>>(),
        vec![
            ("error", "before the garbage"),
            ("warn", "after the garbage")
        ]
    );
    assert_eq!(syslog_rows[1]["attributes"]["procid"], "7");
    let loki_rows = messages_of(&server, "loki-rules").await;
    assert_eq!(loki_rows.len(), 1, "{loki_rows:?}");
    assert_eq!(loki_rows[0]["message"], "é".repeat(50), "cut to 100 bytes");
    assert_eq!(loki_rows[0]["level"], "warn");
    assert_eq!(
        loki_rows[0]["attributes"]["oglogstream.truncated"],
        "message"
    );
    for (service, message) in [
        ("otlp-rules", "kept"),
        ("otlp-gzip", "inflated"),
        ("otlp-chunked", "chunked"),
        ("es-rules", "es kept"),
    ] {
        let rows = messages_of(&server, service).await;
        assert_eq!(rows.len(), 1, "{service}: {rows:?}");
        assert_eq!(rows[0]["message"], message);
    }
    for (line, value) in [
        (
            "oglogstream_logs_rejected_total{protocol=\"syslog\",reason=\"invalid\"}",
            1,
        ),
        (
            "oglogstream_logs_rejected_total{protocol=\"syslog\",reason=\"too_large\"}",
            1,
        ),
        (
            "oglogstream_logs_rejected_total{protocol=\"loki\",reason=\"invalid\"}",
            3,
        ),
        (
            "oglogstream_logs_rejected_total{protocol=\"loki\",reason=\"too_large\"}",
            2,
        ),
        (
            "oglogstream_logs_rejected_total{protocol=\"otlp\",reason=\"unsupported_media_type\"}",
            2,
        ),
        (
            "oglogstream_logs_rejected_total{protocol=\"elasticsearch\",reason=\"invalid\"}",
            5,
        ),
        (
            "oglogstream_logs_accepted_total{protocol=\"elasticsearch\"}",
            1,
        ),
        ("oglogstream_logs_accepted_total{protocol=\"syslog\"}", 2),
    ] {
        assert_eq!(metric(&server, line).await, Some(value), "{line}");
    }

    // ---- syslog connection limit -------------------------------------------
    let _first = TcpStream::connect(("127.0.0.1", syslog_port)).expect("first");
    let _second = TcpStream::connect(("127.0.0.1", syslog_port)).expect("second");
    wait_metric(&server, "oglogstream_syslog_connections ", 2).await;
    let mut third = TcpStream::connect(("127.0.0.1", syslog_port)).expect("third");
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    assert_eq!(third.read(&mut byte).ok(), Some(0), "closed at once");
    wait_metric(&server, "oglogstream_syslog_connections_refused_total ", 1).await;
}

#[actix_web::test]
async fn a_full_queue_gets_503_over_http_back_pressure_over_tcp_and_counted_drops_over_udp() {
    let (tcp, udp) = (free_port(), free_udp_port());
    // The batcher holds its first delivery until the flush timer (the batch
    // never fills), so the 10-log queue stays full that long.
    let server = Server::launch(with_syslog(
        Launch::default()
            .env("OGLOGSTREAM_INGEST__QUEUE_CAPACITY", "10")
            .env("BATCH_SIZE", "1000")
            .env("FLUSH_TIMEOUT", "3s"),
        tcp,
        udp,
    ))
    .await;
    let fill: String = (0..10)
        .map(|n| {
            format!(
                "{}\n",
                json!({"level": "info", "service": "filler", "message": format!("fill {n}")})
            )
        })
        .collect();
    let (status, body) = server
        .post("/log/bulk", Some("application/x-ndjson"), fill)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    for (path, content_type, body) in [
        (
            "/v1/logs",
            "application/json",
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}"#,
        ),
        (
            "/loki/api/v1/push",
            "application/json",
            r#"{"streams":[{"stream":{"app":"x"},"values":[["1","x"]]}]}"#,
        ),
        (
            "/_bulk",
            "application/x-ndjson",
            "{\"index\":{\"_index\":\"x\"}}\n{\"message\":\"x\"}\n",
        ),
    ] {
        let (status, headers, answer) = send(
            &server,
            "POST",
            path,
            &[("Content-Type", content_type)],
            body.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(
            headers.get("retry-after").expect("Retry-After"),
            "1",
            "{path}"
        );
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.contains("queue is full"), "{path}: {answer}");
    }

    // UDP cannot wait: dropped and counted.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("udp");
    socket
        .send_to(
            b"<14>1 - - udp-overload - - - dropped while full",
            ("127.0.0.1", udp),
        )
        .expect("datagram");
    wait_metric(
        &server,
        "oglogstream_logs_rejected_total{protocol=\"syslog\",reason=\"overloaded\"}",
        1,
    )
    .await;

    // TCP waits: more lines than the whole queue holds, all stored once the
    // queue drains, none lost.
    let lines: String = (0..25)
        .map(|n| format!("<14>1 - - tcp-overload - - - held {n}\n"))
        .collect();
    let mut connection = TcpStream::connect(("127.0.0.1", tcp)).expect("syslog");
    connection.write_all(lines.as_bytes()).expect("send");
    drop(connection);
    let rows = eventually("the held syslog lines", Duration::from_secs(60), || async {
        let rows = messages_of(&server, "tcp-overload").await;
        (rows.len() >= 25).then_some(rows)
    })
    .await;
    let mut held: Vec<&str> = rows
        .iter()
        .filter_map(|row| row["message"].as_str())
        .collect();
    held.sort();
    let mut sent: Vec<String> = (0..25).map(|n| format!("held {n}")).collect();
    sent.sort();
    assert_eq!(held, sent);
    assert!(messages_of(&server, "udp-overload").await.is_empty());
    assert_eq!(
        metric(
            &server,
            "oglogstream_logs_rejected_total{protocol=\"otlp\",reason=\"overloaded\"}"
        )
        .await,
        Some(1)
    );
}

#[actix_web::test]
async fn rate_limits_cover_the_shipper_paths() {
    let server = Server::launch(
        Launch::default()
            .env("OGLOGSTREAM_RATE_LIMIT__INGEST_PER_SECOND", "0.01")
            .env("OGLOGSTREAM_RATE_LIMIT__INGEST_BURST", "1"),
    )
    .await;
    let (status, _, _) = send(
        &server,
        "POST",
        "/loki/api/v1/push",
        &[("Content-Type", "application/json")],
        br#"{"streams":[]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the burst allows one");
    for path in ["/v1/logs", "/loki/api/v1/push", "/_bulk", "/idx/_bulk"] {
        let (status, headers, _) = send(
            &server,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert!(headers.contains_key("retry-after"), "{path}");
    }
    for (protocol, count) in [("otlp", 1), ("loki", 1), ("elasticsearch", 2)] {
        let line = format!(
            "oglogstream_logs_rejected_total{{protocol=\"{protocol}\",reason=\"rate_limited\"}}"
        );
        assert_eq!(metric(&server, &line).await, Some(count), "{line}");
    }
}
