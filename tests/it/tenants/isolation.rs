//! One team never reads another's logs, through any read: rows, counts,
//! histograms, facets, export, context, live tail and the Loki API.

use crate::support::{Launch, Server, eventually, log};
use awc::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const INGEST_A: &str = "ingest-key-team-a-0123456789";
const INGEST_ANY: &str = "ingest-key-any-tenant-0123456789";
const READ_A: &str = "read-key-team-a-0123456789";
const READ_ANY: &str = "read-key-any-tenant-0123456789";

/// Keys bound to tenants, as an operator writes them in the environment
/// (figment's syntax: `{key=…, tenants=[…]}` beside plain strings).
fn launch() -> Launch {
    Launch::default()
        .env("FLUSH_TIMEOUT", "50ms")
        .env("OGLOGSTREAM_TENANTS__ENABLED", "true")
        .env(
            "OGLOGSTREAM_SECURITY__INGEST_KEYS",
            &format!(r#"[{{key="{INGEST_A}", tenants=["team-a"]}}, "{INGEST_ANY}"]"#),
        )
        .env(
            "OGLOGSTREAM_SECURITY__READ_KEYS",
            &format!(r#"[{{key="{READ_A}", tenants=["team-a"]}}, "{READ_ANY}"]"#),
        )
}

/// A request with a key and maybe a tenant header.
async fn send(
    server: &Server,
    method: &str,
    path: &str,
    key: &str,
    tenant: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = match method {
        "POST" => server.client.post(server.url(path)),
        _ => server.client.get(server.url(path)),
    }
    .insert_header(("Authorization", format!("Bearer {key}")));
    if let Some(tenant) = tenant {
        request = request.insert_header(("X-Scope-OrgID", tenant));
    }
    let mut response = match body {
        Some(body) => request
            .insert_header(("Content-Type", "application/json"))
            .send_body(body.to_string())
            .await
            .expect("a response"),
        None => request.send().await.expect("a response"),
    };
    let status = response.status();
    let bytes = response.body().limit(64 << 20).await.expect("a body");
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

fn messages(rows: &Value) -> Vec<String> {
    let mut messages: Vec<String> = rows
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| row["message"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    messages.sort();
    messages
}

#[actix_web::test]
async fn each_team_reads_only_its_own_logs_and_the_refusals_say_which_header_to_fix() {
    isolation(&Server::launch(launch()).await).await;
}

/// The same on the ClickHouse store (one private 18.16 server).
#[actix_web::test]
async fn each_team_reads_only_its_own_logs_on_clickhouse() {
    let clickhouse = crate::split::deps::ClickHouse::start().await;
    let server = Server::launch(launch().env("CLICKHOUSE_DSN", &clickhouse.dsn("tenants"))).await;
    let (_, health) = server.get("/health").await;
    assert_eq!(health["storage"], "clickhouse", "{health}");
    isolation(&server).await;
}

async fn isolation(server: &Server) {
    // Writes: the bound key's tenant; a plain key names one.
    for (key, tenant, message) in [
        (INGEST_A, None, "a1"),
        (INGEST_A, Some("team-a"), "a2"),
        (INGEST_ANY, Some("team-b"), "b1"),
        (INGEST_ANY, Some("team-c"), "c1"),
    ] {
        let (status, body) = send(
            server,
            "POST",
            "/log",
            key,
            tenant,
            Some(&log("info", "web", message)),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{message}: {body}");
    }
    // Refusals name the header.
    let refusals = [
        (INGEST_A, Some("team-b"), StatusCode::FORBIDDEN),
        (INGEST_ANY, None, StatusCode::UNAUTHORIZED),
        (INGEST_ANY, Some("not a tenant!"), StatusCode::BAD_REQUEST),
        (INGEST_ANY, Some("team-a|team-b"), StatusCode::BAD_REQUEST),
    ];
    for (key, tenant, expected) in refusals {
        let (status, body) = send(
            server,
            "POST",
            "/log",
            key,
            tenant,
            Some(&log("info", "web", "refused")),
        )
        .await;
        assert_eq!(status, expected, "{tenant:?}: {body}");
        assert_eq!(body["field"], "X-Scope-OrgID", "{body}");
    }

    // Every log stored: all four tenants' counts add up.
    eventually("the four logs stored", Duration::from_secs(20), || async {
        let (_, stats) = send(
            server,
            "GET",
            "/api/stats",
            READ_ANY,
            Some("team-a|team-b|team-c"),
            None,
        )
        .await;
        (stats["total_logs"] == 4).then_some(())
    })
    .await;

    // Rows: a team-a key sees team-a's, with or without the header.
    let (_, rows) = send(server, "GET", "/api/logs", READ_A, None, None).await;
    assert_eq!(messages(&rows), ["a1", "a2"], "{rows}");
    assert!(
        rows[0].get("tenant").is_none(),
        "one tenant: rows need not say"
    );
    let (status, body) = send(server, "GET", "/api/logs", READ_A, Some("team-b"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["field"], "X-Scope-OrgID");
    let (_, rows) = send(server, "GET", "/api/logs", READ_ANY, Some("team-b"), None).await;
    assert_eq!(messages(&rows), ["b1"], "{rows}");
    let (status, body) = send(server, "GET", "/api/logs", READ_ANY, None, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no default tenant: {body}"
    );
    // Several tenants: rows say whose.
    let (_, rows) = send(
        server,
        "GET",
        "/api/logs",
        READ_ANY,
        Some("team-a|team-c"),
        None,
    )
    .await;
    assert_eq!(messages(&rows), ["a1", "a2", "c1"], "{rows}");
    for row in rows.as_array().unwrap() {
        let tenant = row["tenant"].as_str().unwrap();
        assert_eq!(
            &row["message"].as_str().unwrap()[..1],
            &tenant[tenant.len() - 1..],
            "{row}"
        );
    }

    // A cursor is its tenant's: another tenant's request refuses it.
    let response = server
        .client
        .get(server.url("/api/logs?limit=1"))
        .insert_header(("Authorization", format!("Bearer {READ_A}")))
        .send()
        .await
        .expect("a page");
    let cursor = response
        .headers()
        .get("x-next-cursor")
        .and_then(|v| v.to_str().ok())
        .expect("a next page")
        .to_string();
    let (status, _) = send(
        server,
        "GET",
        &format!("/api/logs?limit=1&cursor={cursor}"),
        READ_A,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(
        server,
        "GET",
        &format!("/api/logs?limit=1&cursor={cursor}"),
        READ_ANY,
        Some("team-b"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Counts, histogram, facets, fields, export: only team-a's two logs.
    let (_, stats) = send(server, "GET", "/api/stats", READ_A, None, None).await;
    assert_eq!(stats["total_logs"], 2, "{stats}");
    let (_, histogram) = send(server, "GET", "/api/histogram", READ_A, None, None).await;
    let total: u64 = histogram["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["total"].as_u64())
        .sum();
    assert_eq!(total, 2, "{histogram}");
    let (_, facets) = send(
        server,
        "GET",
        "/api/facets?fields=service",
        READ_A,
        None,
        None,
    )
    .await;
    assert_eq!(facets["total"], 2, "{facets}");
    let (_, export) = send(
        server,
        "GET",
        "/api/export?format=ndjson",
        READ_A,
        None,
        None,
    )
    .await;
    let exported: Vec<Value> = export
        .as_str()
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("an NDJSON row"))
        .collect();
    assert_eq!(messages(&Value::Array(exported)), ["a1", "a2"]);

    // Context around another team's log: not found.
    let (_, rows) = send(server, "GET", "/api/logs", READ_ANY, Some("team-b"), None).await;
    let b1 = rows[0]["id"].as_str().unwrap().to_string();
    let (status, _) = send(
        server,
        "GET",
        &format!("/api/logs/{b1}/context"),
        READ_A,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The Loki API as Grafana sends it, with the header.
    let query = "/loki/api/v1/query_range?query=%7Bservice_name%3D%22web%22%7D&limit=100";
    let (status, answer) = send(server, "GET", query, READ_ANY, Some("team-c"), None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let lines: Vec<&str> = answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|stream| stream["values"].as_array().unwrap())
        .map(|value| value[1].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["c1"], "{answer}");
    let (status, _) = send(server, "GET", query, READ_A, Some("team-c"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Several tenants: each stream says whose, as Loki's answers do.
    let (_, answer) = send(server, "GET", query, READ_ANY, Some("team-a|team-c"), None).await;
    let mut tenants: Vec<&str> = answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stream| stream["stream"]["__tenant_id__"].as_str().unwrap_or("none"))
        .collect();
    tenants.sort();
    assert_eq!(tenants, ["team-a", "team-c"], "{answer}");

    // Alert rules are a tenant's: counted over its logs, listed to it.
    let rule =
        json!({"name": "web logs", "query": "service:web", "window": "1h", "threshold": 100});
    let (status, body) = send(
        server,
        "POST",
        "/api/alerts/rules",
        READ_A,
        None,
        Some(&rule),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send(
        server,
        "POST",
        "/api/alerts/rules",
        READ_A,
        None,
        Some(&json!({"name": "theirs", "query": "", "window": "1h", "threshold": 1, "tenant": "team-b"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["field"], "tenant");
    let names = |list: &Value| -> Vec<String> {
        list["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|rule| rule["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, list) = send(server, "GET", "/api/alerts", READ_A, None, None).await;
    assert_eq!(names(&list), ["web logs"], "{list}");
    let (_, list) = send(server, "GET", "/api/alerts", READ_ANY, Some("team-b"), None).await;
    assert_eq!(names(&list), Vec::<String>::new(), "{list}");
    let (_, preview) = send(
        server,
        "GET",
        "/api/alerts/preview?query=service%3Aweb&window=1h",
        READ_A,
        None,
        None,
    )
    .await;
    assert_eq!(preview["count"], 2, "team-a's two logs: {preview}");
}

#[actix_web::test]
async fn a_default_tenant_takes_what_names_none() {
    let server =
        Server::launch(launch().env("OGLOGSTREAM_TENANTS__DEFAULT_TENANT", "shared")).await;
    let (status, body) = send(
        &server,
        "POST",
        "/log",
        INGEST_ANY,
        None,
        Some(&log("info", "web", "unnamed")),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually(
        "stored under the default tenant",
        Duration::from_secs(20),
        || async {
            let (_, rows) = send(&server, "GET", "/api/logs", READ_ANY, Some("shared"), None).await;
            (messages(&rows) == ["unnamed"]).then_some(())
        },
    )
    .await;
    let (_, rows) = send(&server, "GET", "/api/logs", READ_ANY, Some("team-a"), None).await;
    assert_eq!(rows, json!([]));
}
