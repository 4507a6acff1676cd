//! OTLP over gRPC's rules, asked with a bare HTTP/2 client (the load
//! generator's) so every answer's status, message and trailers can be
//! looked at: the same mapping and limits as OTLP/HTTP, keys as metadata,
//! gzip, partial success, and the gRPC codes exporters act on. The real
//! SDKs' exporters are in `real_clients` and `split`.

use super::real_clients::{Target, grpc_plan, otlp_grpc_python};
use super::rules::{gzip, messages_of, metric, otlp_protobuf, send, wait_metric};
use super::{Plan, client_command, client_output};
use crate::support::{Launch, Server, eventually, free_port};
use awc::http::StatusCode;
use oglogstream::domain::shippers::protobuf::{Fields, values_of};
use oglogstream::loadgen::grpc::{GrpcAnswer, GrpcConnection, frame};
use serde_json::json;
use std::time::Duration;

const EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
const KEY: &str = "grpc-ingest-key-0123456789";

fn with_grpc(launch: Launch, port: u16) -> Launch {
    launch.env(
        "OGLOGSTREAM_OTLP__GRPC_LISTEN",
        &format!("127.0.0.1:{port}"),
    )
}

async fn export(
    connection: &mut GrpcConnection,
    metadata: &[(&str, &str)],
    message: &[u8],
) -> GrpcAnswer {
    connection
        .call(EXPORT, metadata, frame(message, false))
        .await
        .expect("an answer")
}

/// `ExportLogsServiceResponse.partial_success`: (rejected, message).
fn partial_success(body: &[u8]) -> Option<(u64, String)> {
    let partial = values_of(body, 1).next()?.ok()?.bytes().ok()?;
    let mut rejected = 0;
    let mut message = String::new();
    for field in Fields::new(partial) {
        match field.ok()? {
            (1, value) => rejected = value.integer().ok()?,
            (2, value) => message = value.string().ok()?.to_string(),
            _ => {}
        }
    }
    Some((rejected, message))
}

/// The retry delay in seconds from `google.rpc.retryinfo-bin`, if sent.
fn retry_delay(answer: &GrpcAnswer) -> Option<u64> {
    use base64::Engine;
    let value = answer
        .metadata
        .get("google.rpc.retryinfo-bin")?
        .to_str()
        .ok()?;
    let info = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(value.trim_end_matches('='))
        .ok()?;
    let duration = values_of(&info, 1).next()?.ok()?.bytes().ok()?;
    values_of(duration, 1).next()?.ok()?.integer().ok()
}

#[actix_web::test]
async fn otlp_over_grpc_keeps_the_rules_of_otlp_http() {
    let port = free_port();
    let server = Server::launch(with_grpc(
        Launch::default()
            .env("OGLOGSTREAM_SECURITY__INGEST_KEYS", &format!("[\"{KEY}\"]"))
            .env("OGLOGSTREAM_INGEST__MAX_BULK_BYTES", "65536"),
        port,
    ))
    .await;
    let mut grpc = GrpcConnection::connect(&format!("127.0.0.1:{port}"))
        .await
        .expect("the gRPC listener");
    let bearer = format!("Bearer {KEY}");
    let two = otlp_protobuf("grpc-rules", &[(Some("first"), 9), (Some("second"), 17)]);

    // No key, a wrong key, a key in a form gRPC metadata does not carry it:
    // UNAUTHENTICATED, nothing stored.
    for metadata in [
        vec![],
        vec![("authorization", "Bearer wrong-key-0123456789")],
        vec![("x-api-key", "wrong-key-0123456789")],
    ] {
        let answer = export(&mut grpc, &metadata, &two).await;
        assert_eq!(answer.code, 16, "{metadata:?}: {answer:?}");
        assert!(answer.message.contains("API key"), "{answer:?}");
    }

    // Both key forms, plain and gzip.
    let answer = export(&mut grpc, &[("authorization", &bearer)], &two).await;
    assert_eq!((answer.code, answer.body.len()), (0, 0), "{answer:?}");
    let gzipped = otlp_protobuf("grpc-rules-gzip", &[(Some("packed"), 13)]);
    let answer = grpc
        .call(
            EXPORT,
            &[("x-api-key", KEY), ("grpc-encoding", "gzip")],
            frame(&gzip(&gzipped), true),
        )
        .await
        .expect("an answer");
    assert_eq!(answer.code, 0, "{answer:?}");

    // A record without a body is refused alone: partial success.
    let partial = otlp_protobuf("grpc-rules", &[(Some("third"), 5), (None, 9)]);
    let answer = export(&mut grpc, &[("authorization", &bearer)], &partial).await;
    assert_eq!(answer.code, 0, "{answer:?}");
    let (rejected, message) = partial_success(&answer.body).expect("partial_success");
    assert_eq!(rejected, 1);
    assert!(
        message.contains("record 1") && message.contains("no body"),
        "{message}"
    );

    // Not an ExportLogsServiceRequest: INVALID_ARGUMENT, never retried.
    let answer = export(&mut grpc, &[("authorization", &bearer)], b"\x0a\xff\xff").await;
    assert_eq!(answer.code, 3, "{answer:?}");
    assert!(answer.message.contains("malformed protobuf"), "{answer:?}");

    // Over ingest.max_bulk_bytes, sent as it is or inflating past it:
    // RESOURCE_EXHAUSTED without a retry delay (the same message would be
    // refused again), nothing stored.
    let big = "x".repeat(70_000);
    let too_large = otlp_protobuf("grpc-rules-big", &[(Some(big.as_str()), 9)]);
    let answer = export(&mut grpc, &[("authorization", &bearer)], &too_large).await;
    assert_eq!((answer.code, retry_delay(&answer)), (8, None), "{answer:?}");
    let answer = grpc
        .call(
            EXPORT,
            &[("authorization", &bearer), ("grpc-encoding", "gzip")],
            frame(&gzip(&too_large), true),
        )
        .await
        .expect("an answer");
    assert_eq!((answer.code, retry_delay(&answer)), (8, None), "{answer:?}");

    // Only LogsService/Export is served.
    let answer = grpc
        .call(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            &[("authorization", &bearer)],
            frame(&two, false),
        )
        .await
        .expect("an answer");
    assert_eq!(answer.code, 12, "{answer:?}");

    server.wait_stored(4).await;
    // `service=` matches a substring; rows come in arrival order.
    let stored: Vec<(String, String, String)> = messages_of(&server, "grpc-rules")
        .await
        .iter()
        .map(|row| {
            (
                row["service"].as_str().unwrap_or_default().to_string(),
                row["message"].as_str().unwrap_or_default().to_string(),
                row["level"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let row = |service: &str, message: &str, level: &str| {
        (service.to_string(), message.to_string(), level.to_string())
    };
    assert_eq!(
        stored,
        [
            row("grpc-rules", "first", "info"),
            row("grpc-rules", "second", "error"),
            row("grpc-rules-gzip", "packed", "warn"),
            row("grpc-rules", "third", "debug"),
        ]
    );
    assert!(messages_of(&server, "grpc-rules-big").await.is_empty());
    for (line, value) in [
        ("oglogstream_logs_accepted_total{protocol=\"otlp\"}", 4),
        (
            "oglogstream_logs_rejected_total{protocol=\"otlp\",reason=\"unauthorized\"}",
            3,
        ),
        (
            "oglogstream_logs_rejected_total{protocol=\"otlp\",reason=\"invalid\"}",
            2,
        ),
        (
            "oglogstream_logs_rejected_total{protocol=\"otlp\",reason=\"too_large\"}",
            2,
        ),
    ] {
        assert_eq!(metric(&server, line).await, Some(value), "{line}");
    }
}

#[actix_web::test]
async fn a_full_queue_answers_resource_exhausted_with_a_retry_delay() {
    let port = free_port();
    // The batcher holds its first delivery until the flush timer, so the
    // 10-log queue stays full that long (as in rules.rs).
    let server = Server::launch(with_grpc(
        Launch::default()
            .env("OGLOGSTREAM_INGEST__QUEUE_CAPACITY", "10")
            .env("BATCH_SIZE", "1000")
            .env("FLUSH_TIMEOUT", "3s"),
        port,
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
    let (status, _, _) = send(
        &server,
        "POST",
        "/log/bulk",
        &[("Content-Type", "application/x-ndjson")],
        fill.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let mut grpc = GrpcConnection::connect(&format!("127.0.0.1:{port}"))
        .await
        .expect("the gRPC listener");
    let message = otlp_protobuf("grpc-full", &[(Some("waited"), 9)]);
    let answer = export(&mut grpc, &[], &message).await;
    assert_eq!(answer.code, 8, "{answer:?}");
    assert!(answer.message.contains("queue is full"), "{answer:?}");
    assert_eq!(retry_delay(&answer), Some(1), "{answer:?}");
    assert!(
        answer.metadata.contains_key("grpc-status-details-bin"),
        "{answer:?}"
    );
    wait_metric(
        &server,
        "oglogstream_logs_rejected_total{protocol=\"otlp\",reason=\"overloaded\"}",
        1,
    )
    .await;
    // Retried as an exporter does once the delay has passed: taken once
    // the queue has drained.
    eventually(
        "the export taken after the queue drained",
        Duration::from_secs(30),
        || {
            let mut grpc = grpc.clone();
            let message = message.clone();
            async move { (export(&mut grpc, &[], &message).await.code == 0).then_some(()) }
        },
    )
    .await;
    server.wait_stored(11).await;
    assert_eq!(messages_of(&server, "grpc-full").await.len(), 1);
}

/// The OpenTelemetry Python SDK's exporter against a full pipeline: told
/// `RESOURCE_EXHAUSTED` with a retry delay, it waits and retries, and every
/// log is stored once; with no key or a wrong one it gets `UNAUTHENTICATED`
/// and nothing is stored.
#[actix_web::test]
async fn the_python_sdk_retries_a_full_pipeline_and_is_refused_without_a_key() {
    let port = free_port();
    let server = Server::launch(with_grpc(
        Launch::default()
            .env("OGLOGSTREAM_SECURITY__INGEST_KEYS", &format!("[\"{KEY}\"]"))
            .env("OGLOGSTREAM_INGEST__QUEUE_CAPACITY", "10")
            .env("BATCH_SIZE", "1000")
            .env("FLUSH_TIMEOUT", "3s"),
        port,
    ))
    .await;
    let target = Target {
        url: server.url(""),
        reader: &server.client,
        key: Some(KEY),
        otlp_grpc: format!("127.0.0.1:{port}"),
        syslog_tcp: 0,
        syslog_udp: None,
    };

    for key in [None, Some("wrong-key-0123456789")] {
        let plan = Plan::new("grpc-refused", &[]);
        let stdin = grpc_plan(
            &plan,
            &Target {
                key,
                ..target.clone()
            },
            json!({"timeout_s": 5}),
        );
        let output = client_output(
            "OpenTelemetry Python SDK, gRPC, no key",
            client_command("otlp_grpc_logs.py"),
            stdin,
        )
        .await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{key:?}: refused");
        assert!(stderr.contains("UNAUTHENTICATED"), "{key:?}: {stderr}");
    }

    let fill: String = (0..10)
        .map(|n| {
            format!(
                "{}\n",
                json!({"level": "info", "service": "filler", "message": format!("fill {n}")})
            )
        })
        .collect();
    let (status, _, _) = send(
        &server,
        "POST",
        "/log/bulk",
        &[("Content-Type", "application/x-ndjson"), ("x-api-key", KEY)],
        fill.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let counts = otlp_grpc_python(&target, "x-api-key").await;
    assert_eq!(counts["exports"], 1, "{counts}");
    assert!(
        counts["retries"]
            .as_u64()
            .is_some_and(|retries| retries >= 1),
        "the first export met the full queue and was retried: {counts}"
    );
    assert!(
        metric(
            &server,
            "oglogstream_logs_rejected_total{protocol=\"otlp\",reason=\"overloaded\"}"
        )
        .await
        .is_some_and(|refused| refused >= 1)
    );
    assert!(messages_of(&server, "grpc-refused").await.is_empty());
}
