//! Only an admin reads the audit log: a viewer's every read endpoint (logs,
//! stats, histogram, services, facets, fields, export, context, live tail)
//! never shows an audit record, while an admin's shows them all.

use super::{ADMIN_KEY, EDITOR_KEY, READ_KEY, get_as, wait_for_audit};
use crate::support::{Launch, Server, eventually, log, next_log};
use awc::http::StatusCode;
use serde_json::Value;
use std::time::Duration;

const AUDIT: &str = "oglogstream.audit";

fn services_of(rows: &Value) -> Vec<String> {
    rows.as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| row["service"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn histogram_total(histogram: &Value) -> u64 {
    histogram["buckets"]
        .as_array()
        .map(|buckets| buckets.iter().filter_map(|b| b["total"].as_u64()).sum())
        .unwrap_or(0)
}

#[actix_web::test]
async fn a_viewer_never_reads_the_audit_log_and_an_admin_always_does() {
    let server = Server::launch(
        Launch::default()
            .env("FLUSH_TIMEOUT", "50ms")
            .env(
                "OGLOGSTREAM_SECURITY__READ_KEYS",
                &format!("[\"{READ_KEY}\"]"),
            )
            .env(
                "OGLOGSTREAM_SECURITY__EDITOR_KEYS",
                &format!("[\"{EDITOR_KEY}\"]"),
            )
            .env(
                "OGLOGSTREAM_SECURITY__ADMIN_KEYS",
                &format!("[\"{ADMIN_KEY}\"]"),
            ),
    )
    .await;
    let viewer = Some(READ_KEY);
    let admin = Some(ADMIN_KEY);
    server.accept(&log("info", "web", "first")).await;
    server.accept(&log("error", "web", "second")).await;
    // Two refusals: two audit records.
    for _ in 0..2 {
        assert_eq!(server.get("/api/logs").await.0, StatusCode::UNAUTHORIZED);
    }
    let audit = wait_for_audit(&server, admin, 2).await;
    eventually("both web logs stored", Duration::from_secs(20), || async {
        let (_, stats) = get_as(&server, admin, "/api/stats").await;
        (stats["total_logs"] == 4).then_some(())
    })
    .await;

    let (_, rows) = get_as(&server, viewer, "/api/logs?limit=100").await;
    assert_eq!(services_of(&rows), ["web", "web"], "{rows}");
    let (_, rows) = get_as(&server, admin, "/api/logs?limit=100").await;
    assert_eq!(
        services_of(&rows).iter().filter(|s| *s == AUDIT).count(),
        2,
        "{rows}"
    );
    // Asking for it by name shows a viewer nothing.
    let (_, rows) = get_as(&server, viewer, "/api/logs?service=oglogstream.audit").await;
    assert_eq!(rows, serde_json::json!([]));

    let (_, stats) = get_as(&server, viewer, "/api/stats").await;
    assert_eq!(stats["total_logs"], 2, "{stats}");
    assert!(stats["logs_by_service"].get(AUDIT).is_none(), "{stats}");
    let (_, stats) = get_as(&server, admin, "/api/stats").await;
    assert_eq!(stats["logs_by_service"][AUDIT], 2, "{stats}");

    let (_, histogram) = get_as(&server, viewer, "/api/histogram").await;
    assert_eq!(histogram_total(&histogram), 2);
    let (_, histogram) = get_as(&server, admin, "/api/histogram").await;
    assert_eq!(histogram_total(&histogram), 4);

    let (_, services) = get_as(&server, viewer, "/api/services").await;
    assert_eq!(services_of(&services), ["web"], "{services}");
    let (_, services) = get_as(&server, admin, "/api/services").await;
    assert!(
        services_of(&services).contains(&AUDIT.to_string()),
        "{services}"
    );

    let facet_values = |facets: &Value| -> Vec<String> {
        facets["facets"][0]["values"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .map(|v| v["value"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (_, facets) = get_as(&server, viewer, "/api/facets?fields=service").await;
    assert_eq!(facet_values(&facets), ["web"], "{facets}");
    assert_eq!(facets["total"], 2);
    let (_, facets) = get_as(&server, admin, "/api/facets?fields=service").await;
    assert!(
        facet_values(&facets).contains(&AUDIT.to_string()),
        "{facets}"
    );

    let field_names = |fields: &Value| -> Vec<String> {
        fields
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| f["field"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (_, fields) = get_as(&server, viewer, "/api/fields").await;
    assert!(
        !field_names(&fields).iter().any(|f| f.starts_with("audit.")),
        "{fields}"
    );
    let (_, fields) = get_as(&server, admin, "/api/fields").await;
    assert!(
        field_names(&fields).contains(&"audit.action".to_string()),
        "{fields}"
    );

    let export_lines = |body: &Value| match body {
        // NDJSON is not one JSON value: the helper hands back the text.
        Value::String(text) => text.lines().filter(|l| !l.is_empty()).count(),
        other => usize::from(other.is_object()),
    };
    let (status, export) = get_as(&server, viewer, "/api/export?format=ndjson").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(export_lines(&export), 2, "{export}");
    assert!(!export.to_string().contains(AUDIT));
    let (_, export) = get_as(&server, admin, "/api/export?format=ndjson").await;
    assert_eq!(export_lines(&export), 4, "{export}");

    let audit_id = audit[0]["id"].as_str().unwrap();
    let context = format!("/api/logs/{audit_id}/context?scope=all");
    let (status, body) = get_as(&server, viewer, &context).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = get_as(&server, admin, &context).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Around a log of its own, a viewer's context skips the audit records.
    let (_, rows) = get_as(&server, viewer, "/api/logs?limit=1&order=asc").await;
    let web_id = rows[0]["id"].as_str().unwrap();
    let (_, body) = get_as(
        &server,
        viewer,
        &format!("/api/logs/{web_id}/context?scope=all"),
    )
    .await;
    assert!(!body.to_string().contains(AUDIT), "{body}");

    // The split histogram, patterns and the Loki API read through the same
    // scope.
    let (_, split) = get_as(&server, viewer, "/api/histogram?by=service").await;
    assert!(!split.to_string().contains(AUDIT), "{split}");
    let (_, split) = get_as(&server, admin, "/api/histogram?by=service").await;
    assert!(split.to_string().contains(AUDIT), "{split}");
    let (status, patterns) = get_as(&server, viewer, "/api/patterns").await;
    assert_eq!(status, StatusCode::OK, "{patterns}");
    assert!(!patterns.to_string().contains("audit"), "{patterns}");
    let loki_audit =
        "/loki/api/v1/query_range?query=%7Bservice_name%3D%22oglogstream.audit%22%7D&limit=100";
    let (status, answer) = get_as(&server, viewer, loki_audit).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"]["result"], serde_json::json!([]), "{answer}");
    let (_, answer) = get_as(&server, admin, loki_audit).await;
    assert_ne!(answer["data"]["result"], serde_json::json!([]), "{answer}");
    let services_label = "/loki/api/v1/label/service_name/values";
    let (_, values) = get_as(&server, viewer, services_label).await;
    assert!(!values.to_string().contains(AUDIT), "{values}");
    let (_, values) = get_as(&server, admin, services_label).await;
    assert!(values.to_string().contains(AUDIT), "{values}");

    // Alerting counts the audit log only for a rule that names it, which
    // only an admin may preview or make.
    let groups = |preview: &Value| preview["groups"].to_string();
    let warn_by_service = "/api/alerts/preview?query=level%3A%3E%3Dwarn&window=1h&group_by=service";
    let (status, preview) = get_as(&server, viewer, warn_by_service).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert!(!groups(&preview).contains(AUDIT), "{preview}");
    assert_eq!(preview["count"], 1, "the error log only: {preview}");
    let audit_preview = "/api/alerts/preview?query=service%3A%22oglogstream.audit%22&window=1h&group_by=audit.actor";
    let (status, body) = get_as(&server, viewer, audit_preview).await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::FORBIDDEN, &serde_json::json!("query")),
        "{body}"
    );
    let (status, preview) = get_as(&server, admin, audit_preview).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert!(preview["count"].as_u64().unwrap() >= 2, "{preview}");
    let audit_rule = serde_json::json!({"name": "refusals", "query": "service:\"oglogstream.audit\" audit.outcome:denied",
                                        "window": "5m", "threshold": 100});
    let create = |key: &'static str| {
        let request = server
            .client
            .post(server.url("/api/alerts/rules"))
            .insert_header(("X-API-Key", key))
            .insert_header(("Content-Type", "application/json"));
        let body = audit_rule.to_string();
        async move { request.send_body(body).await.unwrap().status() }
    };
    assert_eq!(create(EDITOR_KEY).await, StatusCode::FORBIDDEN);
    assert_eq!(create(ADMIN_KEY).await, StatusCode::CREATED);

    // Live tail: an audit record reaches the admin's stream; the viewer's
    // next frame is the log published after it.
    let connect = |key: &str| {
        let url = server.ws_url(&format!("/ws/live?api_key={key}"));
        let client = server.client.clone();
        async move { client.ws(url).connect().await.expect("websocket").1 }
    };
    let mut viewer_live = connect(READ_KEY).await;
    let mut admin_live = connect(ADMIN_KEY).await;
    assert_eq!(server.get("/api/logs").await.0, StatusCode::UNAUTHORIZED);
    let frame = next_log(&mut admin_live, Duration::from_secs(20))
        .await
        .expect("the admin's stream shows the audit record");
    assert_eq!(frame["service"], AUDIT, "{frame}");
    server
        .accept(&log("info", "web", "after the audit record"))
        .await;
    let frame = next_log(&mut viewer_live, Duration::from_secs(20))
        .await
        .expect("the viewer's stream shows the next log");
    assert_eq!(frame["message"], "after the audit record", "{frame}");
}
