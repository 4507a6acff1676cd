//! A tenant's own `retention`: its logs past it go (and their counts),
//! another tenant's stay; retention rules delete exactly what they name,
//! with tenants on and off; on both stores.

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

/// Retention rules (`[[retention.rules]]` and a tenant's `retention_rules`):
/// the first matching rule decides, the tenant's `retention` takes what no
/// rule names, and a rule keeping longer protects what it names.
const RULES: &str = r#"
[tenants]
enabled = true
[tenants.overrides.team-a]
retention = "7d"
retention_rules = [
    { query = "level:debug", keep = "3d" },
    { query = "service:audit", keep = "400d" },
]
[[retention.rules]]
query = "service:batch"
keep = "1d"
"#;

/// (tenant, level, service, message, age in days, kept)
const RULED_LOGS: &[(&str, &str, &str, &str, i64, bool)] = &[
    ("team-a", "debug", "api", "debug past its 3d rule", 5, false),
    (
        "team-a",
        "debug",
        "api",
        "debug within its 3d rule",
        1,
        true,
    ),
    (
        "team-a",
        "info",
        "audit",
        "audit kept past 7d by its 400d rule",
        10,
        true,
    ),
    (
        "team-a",
        "debug",
        "audit",
        "debug audit: the first rule decides",
        5,
        false,
    ),
    (
        "team-a",
        "info",
        "api",
        "no rule: past the tenant's 7d",
        10,
        false,
    ),
    (
        "team-a",
        "info",
        "api",
        "no rule: within the tenant's 7d",
        5,
        true,
    ),
    (
        "team-a",
        "info",
        "batch",
        "the global 1d rule after team-a's",
        2,
        false,
    ),
    ("team-b", "info", "batch", "the global 1d rule", 2, false),
    ("team-b", "debug", "api", "no rule, no retention", 5, true),
    (
        "team-b",
        "info",
        "api",
        "no rule, no retention, old",
        500,
        true,
    ),
];

async fn post_log(
    server: &Server,
    tenant: &str,
    level: &str,
    service: &str,
    message: &str,
    days: i64,
) {
    let body = json!({
        "level": level,
        "service": service,
        "message": message,
        "timestamp": domain_time(-days * 86_400),
        "attributes": {"kind": service},
    });
    let response = server
        .client
        .post(server.url("/log"))
        .insert_header(("X-Scope-OrgID", tenant))
        .insert_header(("Content-Type", "application/json"))
        .send_body(body.to_string())
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::ACCEPTED, "{message}");
}

async fn read(server: &Server, tenant: &str, path: &str) -> Value {
    let mut response = server
        .client
        .get(server.url(path))
        .insert_header(("X-Scope-OrgID", tenant))
        .send()
        .await
        .expect("a response");
    response.json().await.expect("JSON")
}

/// A tenant's stored messages (sorted), its stats total and its facet
/// counts of `service` and `kind`, which must agree with the rows.
async fn stored(server: &Server, tenant: &str) -> Vec<String> {
    let rows = read(
        server,
        tenant,
        "/api/logs?from=2000-01-01T00:00:00Z&limit=100",
    )
    .await;
    let rows = rows.as_array().cloned().unwrap_or_default();
    let mut messages: Vec<String> = rows
        .iter()
        .filter_map(|row| row["message"].as_str().map(str::to_string))
        .collect();
    messages.sort();
    messages
}

async fn counts_agree_with_rows(server: &Server, tenant: &str) -> Result<(), String> {
    let rows = read(
        server,
        tenant,
        "/api/logs?from=2000-01-01T00:00:00Z&limit=100",
    )
    .await;
    let rows = rows.as_array().cloned().unwrap_or_default();
    let mut by_service = std::collections::BTreeMap::<String, u64>::new();
    for row in &rows {
        *by_service
            .entry(row["service"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let stats = read(server, tenant, "/api/stats?from=2000-01-01T00:00:00Z").await;
    if stats["total_logs"] != rows.len() {
        return Err(format!("{tenant}: stats {stats} vs {} rows", rows.len()));
    }
    let facets = read(
        server,
        tenant,
        "/api/facets?fields=service,kind&from=2000-01-01T00:00:00Z",
    )
    .await;
    if facets["total"] != rows.len() {
        return Err(format!("{tenant}: facets {facets} vs {} rows", rows.len()));
    }
    for field in facets["fields"].as_array().cloned().unwrap_or_default() {
        let counted: std::collections::BTreeMap<String, u64> = field["values"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|v| {
                (
                    v["value"].as_str().unwrap_or_default().to_string(),
                    v["count"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        if counted != by_service {
            return Err(format!("{tenant}: facet {field} vs rows {by_service:?}"));
        }
    }
    Ok(())
}

async fn rules_delete_exactly_what_they_name(launch: impl Fn() -> Launch) {
    rules_delete(
        launch,
        RULED_LOGS,
        &["team-a", "team-b"],
        &[("rule", 4), ("tenant", 1)],
    )
    .await;
}

/// Sends `logs`, restarts (retention runs as the process role starts) and
/// waits until exactly the logs marked kept are left in each of `tenants`,
/// counts and facets agree with them, and the metrics count `deleted` by
/// reason.
async fn rules_delete(
    launch: impl Fn() -> Launch,
    logs: &[(&str, &str, &str, &str, i64, bool)],
    tenants: &[&str],
    deleted: &[(&str, u64)],
) {
    let mut server = Server::launch(launch()).await;
    for (tenant, level, service, message, days, _) in logs {
        post_log(&server, tenant, level, service, message, *days).await;
    }
    let sent = |tenant: &str| logs.iter().filter(|l| l.0 == tenant).count();
    eventually("every log stored", Duration::from_secs(30), || async {
        for tenant in tenants {
            if stored(&server, tenant).await.len() != sent(tenant) {
                return None;
            }
        }
        Some(())
    })
    .await;
    // Retention runs as the process role starts, then hourly.
    assert!(server.terminate(Duration::from_secs(30)).success());
    let server = Server::launch(launch()).await;
    let expected = |tenant: &str| {
        let mut kept: Vec<String> = logs
            .iter()
            .filter(|l| l.0 == tenant && l.5)
            .map(|l| l.3.to_string())
            .collect();
        kept.sort();
        kept
    };
    eventually("the rules applied", Duration::from_secs(60), || async {
        for tenant in tenants {
            if stored(&server, tenant).await != expected(tenant) {
                return None;
            }
        }
        Some(())
    })
    .await;
    for tenant in tenants {
        eventually(
            "counts agree with rows",
            Duration::from_secs(30),
            || async { counts_agree_with_rows(&server, tenant).await.ok() },
        )
        .await;
        counts_agree_with_rows(&server, tenant)
            .await
            .expect("counts agree with rows");
    }
    // Counted once each deletion returns (on ClickHouse, once its
    // mutations are done, which the rows may show a moment earlier).
    eventually("the deletions counted", Duration::from_secs(30), || async {
        let (_, metrics) = server.get("/metrics").await;
        let metrics = metrics.as_str().unwrap_or_default().to_string();
        deleted
            .iter()
            .map(|(reason, n)| {
                format!("oglogstream_retention_deleted_logs_total{{reason=\"{reason}\"}} {n}")
            })
            .collect::<Vec<_>>()
            .iter()
            .all(|line| metrics.contains(line))
            .then_some(())
    })
    .await;
}

fn launch_with_rules(workspace: &std::path::Path) -> Launch {
    let config = workspace.join("rules.toml");
    std::fs::write(&config, RULES).expect("a config file");
    Launch::default()
        .data_dir(&workspace.join("data"))
        .env("FLUSH_TIMEOUT", "50ms")
        .arg("--config")
        .arg(config.to_str().expect("a UTF-8 path"))
}

#[actix_web::test]
async fn retention_rules_delete_exactly_what_they_name() {
    let workspace = tempfile::tempdir().expect("a temporary directory");
    rules_delete_exactly_what_they_name(|| launch_with_rules(workspace.path())).await;
}

#[actix_web::test]
async fn retention_rules_delete_exactly_what_they_name_on_clickhouse() {
    let clickhouse = crate::split::deps::ClickHouse::start().await;
    let workspace = tempfile::tempdir().expect("a temporary directory");
    let dsn = clickhouse.dsn("retention_rules");
    rules_delete_exactly_what_they_name(|| {
        launch_with_rules(workspace.path()).env("CLICKHOUSE_DSN", &dsn)
    })
    .await;
}

/// Tenancy off: the global rules apply to every log (all in `default`),
/// and what they do not name keeps `storage.retention_days`, unless a rule
/// keeping longer protects it.
#[actix_web::test]
async fn global_rules_apply_with_tenants_off() {
    let workspace = tempfile::tempdir().expect("a temporary directory");
    let config = workspace.path().join("rules.toml");
    std::fs::write(
        &config,
        r#"
[storage]
retention_days = 30
[[retention.rules]]
query = "level:debug"
keep = "3d"
[[retention.rules]]
query = "service:audit"
keep = "400d"
"#,
    )
    .expect("a config file");
    let launch = || {
        Launch::default()
            .data_dir(&workspace.path().join("data"))
            .env("FLUSH_TIMEOUT", "50ms")
            .arg("--config")
            .arg(config.to_str().expect("a UTF-8 path"))
    };
    rules_delete(
        launch,
        &[
            ("default", "debug", "api", "debug past 3d", 5, false),
            ("default", "info", "api", "within 30d", 5, true),
            ("default", "info", "api", "past 30d", 40, false),
            ("default", "info", "audit", "audit kept past 30d", 40, true),
        ],
        &["default"],
        &[("rule", 1), ("age", 1)],
    )
    .await;
}
