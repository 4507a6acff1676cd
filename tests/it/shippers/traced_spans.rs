//! Issue 25: logs made inside real spans of the OpenTelemetry Python SDK
//! (`tests/clients/otlp_traced_logs.py`: its `TracerProvider`, nested
//! `start_as_current_span`, the OTLP/HTTP log exporter) arrive with the ids
//! the SDK made, and `trace_id:` on `/api/logs` finds each trace's logs
//! across its services, with their span ids, on the embedded store and on
//! ClickHouse, without a time range and within one hour.

use super::{client_command, run_client};
use crate::support::{Launch, Server, eventually};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[actix_web::test]
async fn sdk_spans_are_found_by_trace_id_on_the_embedded_store() {
    let server = Server::launch(Launch::default()).await;
    sdk_spans_are_found_by_trace_id(&server).await;
}

#[actix_web::test]
async fn sdk_spans_are_found_by_trace_id_on_clickhouse() {
    let clickhouse = crate::split::deps::ClickHouse::start().await;
    let server =
        Server::launch(Launch::default().env("CLICKHOUSE_DSN", &clickhouse.dsn("traces"))).await;
    let (_, health) = server.get("/health").await;
    assert_eq!(health["storage"], "clickhouse", "{health}");
    sdk_spans_are_found_by_trace_id(&server).await;
}

/// One log as the SDK made it (the client's printout) or as stored.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    message: String,
    service: String,
    trace_id: Option<String>,
    span_id: Option<String>,
}

impl Seen {
    fn of(row: &Value) -> Seen {
        let text = |key: &str| row[key].as_str().map(str::to_string);
        Seen {
            message: text("message").unwrap_or_default(),
            service: text("service").unwrap_or_default(),
            trace_id: text("trace_id"),
            span_id: text("span_id"),
        }
    }
}

async fn rows(server: &Server, path: &str) -> Vec<Seen> {
    let (status, body) = server.get(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body.as_array()
        .unwrap_or_else(|| panic!("{path}: rows in {body}"))
        .iter()
        .map(Seen::of)
        .collect()
}

fn query(text: &str) -> String {
    serde_urlencoded::to_string([("query", text)]).expect("a query string")
}

async fn sdk_spans_are_found_by_trace_id(server: &Server) {
    let run = format!("traced-{}", std::process::id());
    let plan = json!({"url": server.url(""), "key": null, "run": run}).to_string();
    let printed = run_client(
        "OpenTelemetry Python SDK, logs in spans",
        client_command("otlp_traced_logs.py"),
        plan,
    )
    .await;
    let made: Vec<Seen> = serde_json::from_str::<Vec<Value>>(printed.trim())
        .unwrap_or_else(|e| panic!("the client's printout ({e}): {printed}"))
        .iter()
        .map(Seen::of)
        .collect();

    // What the SDK made: two traces of three nested spans each, crossing
    // two services, and one log outside every span.
    let mut traces: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    for seen in &made {
        if let Some(trace_id) = &seen.trace_id {
            traces
                .entry(trace_id.clone())
                .or_default()
                .push(seen.clone());
        }
    }
    assert_eq!(traces.len(), 2, "{made:#?}");
    for logs in traces.values() {
        let spans: BTreeSet<&str> = logs.iter().filter_map(|l| l.span_id.as_deref()).collect();
        let services: BTreeSet<&str> = logs.iter().map(|l| l.service.as_str()).collect();
        assert_eq!(
            (logs.len(), spans.len(), services.len()),
            (5, 3, 2),
            "{logs:#?}"
        );
    }
    assert_eq!(
        made.iter().filter(|seen| seen.trace_id.is_none()).count(),
        1
    );

    // Everything arrived, ids and all.
    let marked = format!("/api/logs?limit=1000&{}", query(&format!("\"{run}\"")));
    let stored = eventually(
        "the SDK's logs to be stored",
        Duration::from_secs(30),
        || async {
            let stored = rows(server, &marked).await;
            (stored.len() >= made.len()).then_some(stored)
        },
    )
    .await;
    let sorted = |mut logs: Vec<Seen>| {
        logs.sort();
        logs
    };
    assert_eq!(sorted(stored), sorted(made.clone()));

    // Each trace by its id, across both services, in time order: without a
    // range, within the last hour, however the id is cased.
    let now_ms = oglogstream::domain::time::now_micros() / 1000;
    for (trace_id, logs) in &traces {
        for path in [
            format!(
                "/api/logs?order=asc&{}",
                query(&format!("trace_id:{trace_id}"))
            ),
            format!(
                "/api/logs?order=asc&from={}&to={}&{}",
                now_ms - 3_600_000,
                now_ms + 60_000,
                query(&format!("trace_id:{}", trace_id.to_uppercase()))
            ),
        ] {
            // ClickHouse fills the trace view (`logs_by_trace`) right after
            // the insert's rows land in `logs`, so a read in between can
            // find the logs by marker and not yet by trace id.
            let found = eventually(
                &format!("{path} to answer"),
                Duration::from_secs(10),
                || async {
                    let found = rows(server, &path).await;
                    (&found == logs).then_some(found)
                },
            )
            .await;
            assert_eq!(&found, logs, "{path}");
        }
        // The same trace's logs of one service, and a trace's error.
        let path = format!(
            "/api/logs?order=asc&service=traced-payments&{}",
            query(&format!("trace_id:{trace_id}"))
        );
        let payments: Vec<Seen> = logs
            .iter()
            .filter(|log| log.service == "traced-payments")
            .cloned()
            .collect();
        assert_eq!(rows(server, &path).await, payments, "{path}");
        let path = format!(
            "/api/logs?{}",
            query(&format!("trace_id:{trace_id} level:error"))
        );
        let errors = rows(server, &path).await;
        assert!(
            errors.len() == 1 && errors[0].message.ends_with("card declined, retrying"),
            "{errors:#?}"
        );
        // Each span's logs by its id.
        for log in logs {
            let span_id = log.span_id.as_deref().expect("a span id");
            let path = format!(
                "/api/logs?order=asc&{}",
                query(&format!("span_id:{span_id}"))
            );
            let expected: Vec<Seen> = logs
                .iter()
                .filter(|other| other.span_id.as_deref() == Some(span_id))
                .cloned()
                .collect();
            assert_eq!(rows(server, &path).await, expected, "{path}");
        }
    }
}
