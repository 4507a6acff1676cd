//! `tenants.otlp_attribute`: each OTLP resource names its tenant, as the
//! Collector's pipelines and Loki's exporter route per resource. One
//! export from the real OpenTelemetry Python SDK holding resources of two
//! tenants, over OTLP/HTTP and OTLP/gRPC (and OTLP/JSON by hand), lands in
//! both tenants and nowhere else; a key bound to one tenant gets partial
//! success for another's resource, and nothing of it is stored.

use crate::shippers::{client_command, run_client, with_otlp_grpc};
use crate::support::{Launch, Server, eventually, free_port};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const INGEST_A: &str = "ingest-key-team-a-0123456789";
const INGEST_ANY: &str = "ingest-key-any-tenant-0123456789";
const READ_ANY: &str = "read-key-any-tenant-0123456789";

async fn launch() -> (Server, u16) {
    let grpc = free_port();
    let server = Server::launch(with_otlp_grpc(
        Launch::default()
            .env("FLUSH_TIMEOUT", "50ms")
            .env("OGLOGSTREAM_TENANTS__ENABLED", "true")
            .env("OGLOGSTREAM_TENANTS__OTLP_ATTRIBUTE", "tenant.id")
            .env("OGLOGSTREAM_TENANTS__OVERRIDES__SLOW__INGEST_RATE", "0.01")
            .env("OGLOGSTREAM_TENANTS__OVERRIDES__SLOW__INGEST_BURST", "1")
            .env(
                "OGLOGSTREAM_SECURITY__INGEST_KEYS",
                &format!(r#"[{{key="{INGEST_A}", tenants=["team-a"]}}, "{INGEST_ANY}"]"#),
            )
            .env(
                "OGLOGSTREAM_SECURITY__READ_KEYS",
                &format!(r#"["{READ_ANY}"]"#),
            ),
        grpc,
    ))
    .await;
    (server, grpc)
}

/// A resource of the export: its tenant attribute (none: `None`) and messages.
fn resource(tenant: Option<&str>, messages: &[&str]) -> Value {
    let mut attributes = json!({"service.name": "otlp-tenants"});
    if let Some(tenant) = tenant {
        attributes["tenant.id"] = json!(tenant);
    }
    json!({"attributes": attributes, "messages": messages})
}

/// One export through the SDK; what the server answered.
async fn export(
    server: &Server,
    grpc: u16,
    transport: &str,
    key: &str,
    resources: Vec<Value>,
) -> Value {
    let plan = json!({
        "transport": transport,
        "url": server.url(""),
        "grpc": format!("127.0.0.1:{grpc}"),
        "key": key,
        "resources": resources,
    });
    let name = format!("otlp_tenants.py over {transport}");
    let stdout = run_client(&name, client_command("otlp_tenants.py"), plan.to_string()).await;
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{name}: {e}: {stdout}"))
}

/// Every stored message starting with `prefix`, with the tenant it is stored
/// under, read across the tenants it could be in, once `ready` holds.
async fn stored_tenants(
    server: &Server,
    prefix: &str,
    ready: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    let url = server.url("/api/logs?limit=1000&service=otlp-tenants");
    eventually(
        &format!("the logs of {prefix}"),
        Duration::from_secs(30),
        || async {
            let mut response = server
                .client
                .get(&url)
                .insert_header(("Authorization", format!("Bearer {READ_ANY}")))
                .insert_header(("X-Scope-OrgID", "team-a|team-b|default"))
                .send()
                .await
                .ok()?;
            let rows: Value = response.json().limit(16 << 20).await.ok()?;
            let stored: BTreeMap<String, String> = rows
                .as_array()?
                .iter()
                .filter_map(|row| {
                    let message = row["message"].as_str()?;
                    message.starts_with(prefix).then(|| {
                        (
                            message.to_string(),
                            row["tenant"].as_str().unwrap_or("?").to_string(),
                        )
                    })
                })
                .collect();
            ready(&stored).then_some(stored)
        },
    )
    .await
}

fn tenants_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(message, tenant)| (message.to_string(), tenant.to_string()))
        .collect()
}

#[actix_web::test]
async fn each_resource_lands_in_the_tenant_it_names_over_http_and_grpc() {
    let (server, grpc) = launch().await;
    for transport in ["http", "grpc"] {
        let ok = if transport == "http" {
            json!(200)
        } else {
            json!("OK")
        };
        // No header at all: every resource names its tenant, two of them.
        let m = |name: &str| format!("{transport}-mixed-{name}");
        let (a1, a2, b1) = (m("a1"), m("a2"), m("b1"));
        let answer = export(
            &server,
            grpc,
            transport,
            INGEST_ANY,
            vec![
                resource(Some("team-a"), &[&a1, &a2]),
                resource(Some("team-b"), &[&b1]),
            ],
        )
        .await;
        assert_eq!(answer["result"], "SUCCESS", "{transport}: {answer}");
        assert_eq!(answer["status"], ok, "{transport}: {answer}");
        assert_eq!(answer["rejected"], 0, "{transport}: {answer}");
        let expected = tenants_of(&[(&a1, "team-a"), (&a2, "team-a"), (&b1, "team-b")]);
        let stored = stored_tenants(&server, &m(""), |s| s.len() >= 3).await;
        assert_eq!(stored, expected, "{transport}: each in its tenant, once");

        // A key bound to team-a: team-b's resource is refused (partial
        // success naming it), a resource naming none takes the key's.
        let m = |name: &str| format!("{transport}-bound-{name}");
        let (own, foreign, unnamed) = (m("own"), m("foreign"), m("unnamed"));
        let answer = export(
            &server,
            grpc,
            transport,
            INGEST_A,
            vec![
                resource(Some("team-a"), &[&own]),
                resource(Some("team-b"), &[&foreign]),
                resource(None, &[&unnamed]),
            ],
        )
        .await;
        assert_eq!(answer["status"], ok, "{transport}: {answer}");
        assert_eq!(answer["rejected"], 1, "{transport}: {answer}");
        let message = answer["error_message"].as_str().unwrap_or_default();
        assert!(message.contains("team-b"), "{transport}: {answer}");
        // The export went to the bus as one batch: once the stored part is
        // there, the refused part would be too.
        let stored = stored_tenants(&server, &m(""), |s| s.len() >= 2).await;
        assert_eq!(
            stored,
            tenants_of(&[(&own, "team-a"), (&unnamed, "team-a")]),
            "{transport}: nothing of team-b's resource stored"
        );

        // Every record refused: 403 (PERMISSION_DENIED over gRPC).
        let answer = export(
            &server,
            grpc,
            transport,
            INGEST_A,
            vec![resource(Some("team-b"), &["never stored"])],
        )
        .await;
        assert_eq!(answer["result"], "FAILURE", "{transport}: {answer}");
        let forbidden = if transport == "http" {
            json!(403)
        } else {
            json!("PERMISSION_DENIED")
        };
        assert_eq!(answer["status"], forbidden, "{transport}: {answer}");

        // No header, and a resource naming no tenant: its records have
        // none (401 when nothing else is stored); a bad id is refused too.
        let answer = export(
            &server,
            grpc,
            transport,
            INGEST_ANY,
            vec![resource(None, &["no tenant"])],
        )
        .await;
        let unauthenticated = if transport == "http" {
            json!(401)
        } else {
            json!("UNAUTHENTICATED")
        };
        assert_eq!(answer["status"], unauthenticated, "{transport}: {answer}");
        let m = |name: &str| format!("{transport}-bad-{name}");
        let good = m("good");
        let answer = export(
            &server,
            grpc,
            transport,
            INGEST_ANY,
            vec![
                resource(Some("not a tenant!"), &["bad id"]),
                resource(Some("team-b"), &[&good]),
            ],
        )
        .await;
        assert_eq!(answer["rejected"], 1, "{transport}: {answer}");
        assert!(
            answer["error_message"]
                .as_str()
                .is_some_and(|m| m.contains("invalid tenant id")),
            "{transport}: {answer}"
        );
        let stored = stored_tenants(&server, &m(""), |s| !s.is_empty()).await;
        assert_eq!(stored, tenants_of(&[(&good, "team-b")]), "{transport}");
    }
}

/// OTLP/JSON, which the SDKs do not send over HTTP but the Collector can.
#[actix_web::test]
async fn otlp_json_resources_name_their_tenants_too() {
    let (server, _) = launch().await;
    let resource = |tenant: &str, message: &str| {
        json!({
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "otlp-tenants"}},
                {"key": "tenant.id", "value": {"stringValue": tenant}}]},
            "scopeLogs": [{"logRecords": [{"body": {"stringValue": message}}]}]
        })
    };
    let body = json!({"resourceLogs": [
        resource("team-a", "json-a"),
        resource("team-b", "json-b"),
    ]});
    let mut response = server
        .client
        .post(server.url("/v1/logs"))
        .insert_header(("Authorization", format!("Bearer {INGEST_A}")))
        .insert_header(("Content-Type", "application/json"))
        .send_body(body.to_string())
        .await
        .expect("a response");
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("an answer");
    assert_eq!(
        answer["partialSuccess"]["rejectedLogRecords"], "1",
        "{answer}"
    );
    let stored = stored_tenants(&server, "json-", |s| !s.is_empty()).await;
    assert_eq!(stored, tenants_of(&[("json-a", "team-a")]));

    // Each tenant's records take from its own rate: the slow tenant's
    // second export is refused, the other tenant's records beside it not.
    let mut answers = Vec::new();
    for (n, pair) in [["rate-a1", "rate-slow1"], ["rate-a2", "rate-slow2"]]
        .iter()
        .enumerate()
    {
        let body =
            json!({"resourceLogs": [resource("team-a", pair[0]), resource("slow", pair[1])]});
        let mut response = server
            .client
            .post(server.url("/v1/logs"))
            .insert_header(("Authorization", format!("Bearer {INGEST_ANY}")))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body.to_string())
            .await
            .expect("a response");
        assert_eq!(response.status(), 200, "export {n}");
        answers.push(response.json::<Value>().await.expect("an answer"));
    }
    assert_eq!(answers[0], json!({}), "the first within the burst");
    assert_eq!(
        answers[1]["partialSuccess"]["rejectedLogRecords"], "1",
        "{}",
        answers[1]
    );
    let message = answers[1]["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("tenant slow is over its ingest rate"),
        "{message}"
    );
    let url = server.url("/api/logs?limit=100&service=otlp-tenants");
    let stored = eventually("the rate exports", Duration::from_secs(30), || async {
        let mut response = server
            .client
            .get(&url)
            .insert_header(("Authorization", format!("Bearer {READ_ANY}")))
            .insert_header(("X-Scope-OrgID", "team-a|slow"))
            .send()
            .await
            .ok()?;
        let rows: Value = response.json().await.ok()?;
        let mut messages: Vec<String> = rows
            .as_array()?
            .iter()
            .filter_map(|row| row["message"].as_str().map(str::to_string))
            .filter(|message| message.starts_with("rate-"))
            .collect();
        messages.sort();
        (messages.len() >= 3).then_some(messages)
    })
    .await;
    assert_eq!(stored, ["rate-a1", "rate-a2", "rate-slow1"]);
}

/// Split roles over NATS: the ingest role sends one batch holding both
/// tenants' records; each record carries its tenant to the process role.
#[actix_web::test]
async fn split_roles_carry_each_resources_tenant_over_nats() {
    let nats = crate::split::deps::Nats::start().await;
    let clickhouse = crate::split::deps::ClickHouse::start().await;
    let role = |role: &str| {
        Launch::default()
            .arg("--role")
            .arg(role)
            .env("NATS_URL", &nats.url())
            .env("FLUSH_TIMEOUT", "100ms")
            .env("CLICKHOUSE_DSN", &clickhouse.dsn("otlp_tenants"))
            .env("OGLOGSTREAM_TENANTS__ENABLED", "true")
            .env("OGLOGSTREAM_TENANTS__OTLP_ATTRIBUTE", "tenant.id")
            .env(
                "OGLOGSTREAM_SECURITY__INGEST_KEYS",
                &format!(r#"["{INGEST_ANY}"]"#),
            )
            .env(
                "OGLOGSTREAM_SECURITY__READ_KEYS",
                &format!(r#"["{READ_ANY}"]"#),
            )
    };
    let _process = Server::launch(role("process")).await;
    let ingest = Server::launch(role("ingest")).await;
    let query = Server::launch(role("query")).await;
    let answer = export(
        &ingest,
        0,
        "http",
        INGEST_ANY,
        vec![
            resource(Some("team-a"), &["split-a1", "split-a2"]),
            resource(Some("team-b"), &["split-b1"]),
        ],
    )
    .await;
    assert_eq!(answer["result"], "SUCCESS", "{answer}");
    assert_eq!(answer["rejected"], 0, "{answer}");
    let stored = stored_tenants(&query, "split-", |s| s.len() >= 3).await;
    assert_eq!(
        stored,
        tenants_of(&[
            ("split-a1", "team-a"),
            ("split-a2", "team-a"),
            ("split-b1", "team-b")
        ])
    );
}
