//! A tenant's own `retention`: its logs past it go (and their counts),
//! another tenant's stay, on both stores.

use crate::support::{Launch, Server, eventually};
use awc::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn post(server: &Server, tenant: &str, message: &str, timestamp: &str) {
    let body =
        json!({"level": "info", "service": "web", "message": message, "timestamp": timestamp});
    let response = server
        .client
        .post(server.url("/log"))
        .insert_header(("X-Scope-OrgID", tenant))
        .insert_header(("Content-Type", "application/json"))
        .send_body(body.to_string())
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

async fn total(server: &Server, tenant: &str) -> Value {
    let mut response = server
        .client
        .get(server.url("/api/stats?from=2000-01-01T00:00:00Z"))
        .insert_header(("X-Scope-OrgID", tenant))
        .send()
        .await
        .expect("a response");
    let stats: Value = response.json().await.expect("stats");
    stats["total_logs"].clone()
}

fn launch(data_dir: &std::path::Path) -> Launch {
    Launch::default()
        .data_dir(data_dir)
        .env("FLUSH_TIMEOUT", "50ms")
        .env("OGLOGSTREAM_TENANTS__ENABLED", "true")
        .env("OGLOGSTREAM_TENANTS__OVERRIDES__BRIEF__RETENTION", "1h")
}

async fn retention_keeps_to_each_tenant(launch: impl Fn() -> Launch) {
    let old = domain_time(-3 * 3600);
    let new = domain_time(0);
    let mut server = Server::launch(launch()).await;
    post(&server, "brief", "old", &old).await;
    post(&server, "brief", "new", &new).await;
    post(&server, "kept", "old", &old).await;
    eventually("three logs stored", Duration::from_secs(20), || async {
        (total(&server, "brief").await == 2 && total(&server, "kept").await == 1).then_some(())
    })
    .await;
    // Retention runs as the process role starts, then hourly.
    assert!(server.terminate(Duration::from_secs(30)).success());
    let server = Server::launch(launch()).await;
    eventually(
        "brief's old log deleted",
        Duration::from_secs(30),
        || async { (total(&server, "brief").await == 1).then_some(()) },
    )
    .await;
    assert_eq!(
        total(&server, "kept").await,
        1,
        "another tenant's log stays"
    );
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap_or_default()
            .contains("oglogstream_retention_deleted_logs_total{reason=\"tenant\"} 1"),
        "{metrics}"
    );
}

fn domain_time(offset_seconds: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    oglogstream::domain::time::format_rfc3339((now + offset_seconds) * 1_000_000)
}

#[actix_web::test]
async fn a_tenants_retention_deletes_only_its_logs() {
    let workspace = tempfile::tempdir().expect("a temporary directory");
    let data = workspace.path().join("data");
    retention_keeps_to_each_tenant(|| launch(&data)).await;
}

#[actix_web::test]
async fn a_tenants_retention_deletes_only_its_logs_on_clickhouse() {
    let clickhouse = crate::split::deps::ClickHouse::start().await;
    let workspace = tempfile::tempdir().expect("a temporary directory");
    let data = workspace.path().join("data");
    let dsn = clickhouse.dsn("tenant_retention");
    retention_keeps_to_each_tenant(|| launch(&data).env("CLICKHOUSE_DSN", &dsn)).await;
}
