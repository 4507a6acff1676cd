//! Saved views (`/api/views`, issue 25) against the real binary, on the
//! embedded store and on a private ClickHouse 18.16: the contract (create,
//! list, open, change, delete), the refusals with the field to fix, who may
//! change whose view, the audit records of changes, views kept across a
//! restart, and tenants that never see each other's views.

use crate::split::deps::ClickHouse;
use crate::support::{Launch, Server, eventually};
use awc::http::{Method, StatusCode};
use oglogstream::security::auth::fingerprint;
use serde_json::{Value, json};
use std::time::Duration;

const ALICE: &str = "read-key-alice-0123456789";
const BOB: &str = "read-key-bob-0123456789ab";
const ADMIN: &str = "admin-key-views-0123456789";

/// Two read keys (viewers, since an admin key exists) and an admin key.
fn with_keys(launch: Launch) -> Launch {
    launch
        .env("FLUSH_TIMEOUT", "50ms")
        .env(
            "OGLOGSTREAM_SECURITY__READ_KEYS",
            &format!(r#"["{ALICE}", "{BOB}"]"#),
        )
        .env(
            "OGLOGSTREAM_SECURITY__ADMIN_KEYS",
            &format!(r#"["{ADMIN}"]"#),
        )
}

/// What an answer brought: status, `Location`, JSON body.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: Value,
}

/// A request with a key, maybe a tenant header and a body (sent as is when
/// it is a string, as JSON otherwise).
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    key: &str,
    tenant: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut request = server
        .client
        .request(method.clone(), server.url(path))
        .insert_header(("X-API-Key", key));
    if let Some(tenant) = tenant {
        request = request.insert_header(("X-Scope-OrgID", tenant));
    }
    let mut response = match body {
        Some(Value::String(raw)) => {
            request
                .insert_header(("Content-Type", "application/json"))
                .send_body(raw.clone())
                .await
        }
        Some(body) => {
            request
                .insert_header(("Content-Type", "application/json"))
                .send_body(body.to_string())
                .await
        }
        None => request.send().await,
    }
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let location = response
        .headers()
        .get("Location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let bytes = response.body().limit(16 << 20).await.expect("a body");
    Answer {
        status: response.status(),
        location,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn get(server: &Server, path: &str, key: &str) -> Answer {
    call(server, Method::GET, path, key, None, None).await
}

async fn post(server: &Server, key: &str, body: &Value) -> Answer {
    call(server, Method::POST, "/api/views", key, None, Some(body)).await
}

async fn put(server: &Server, id: &str, key: &str, body: &Value) -> Answer {
    let path = format!("/api/views/{id}");
    call(server, Method::PUT, &path, key, None, Some(body)).await
}

async fn delete(server: &Server, id: &str, key: &str) -> Answer {
    let path = format!("/api/views/{id}");
    call(server, Method::DELETE, &path, key, None, None).await
}

/// Saves a view and returns it as answered.
async fn saved(server: &Server, key: &str, body: &Value) -> Value {
    let answer = post(server, key, body).await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{body}: {}",
        answer.body
    );
    let id = answer.body["id"].as_str().expect("an id").to_string();
    assert_eq!(
        answer.location.as_deref(),
        Some(format!("/api/views/{id}").as_str())
    );
    answer.body
}

fn names(list: &Value) -> Vec<String> {
    list["views"]
        .as_array()
        .expect("a list of views")
        .iter()
        .map(|view| view["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Asserts a 400 naming `field`.
async fn refused(server: &Server, body: Value, field: &str) -> Value {
    let answer = post(server, ALICE, &body).await;
    assert_eq!(
        answer.status,
        StatusCode::BAD_REQUEST,
        "{body}: {}",
        answer.body
    );
    assert_eq!(answer.body["field"], field, "{body}: {}", answer.body);
    assert!(
        answer.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        answer.body
    );
    answer.body
}

/// The contract on a running server; returns the list as it stands at the
/// end, which a restart must keep.
async fn contract(server: &Server) -> Value {
    // What the dashboard learns it may offer: every reader saves views,
    // only an editor or admin changes anyone's.
    for (key, manage) in [(BOB, false), (ADMIN, true)] {
        let me = get(server, "/auth/me", key).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
        assert_eq!(me.body["permissions"]["views.write"], true, "{}", me.body);
        assert_eq!(
            me.body["permissions"]["views.manage"], manage,
            "{}",
            me.body
        );
    }

    let empty = get(server, "/api/views", ALICE).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    assert_eq!(empty.body, json!({"views": []}));

    // Every field, and a view of nothing but a name (the defaults).
    let checkout = saved(
        server,
        ALICE,
        &json!({
            "name": "Checkout errors",
            "query": "service:checkout level:>=error",
            "range": {"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"},
            "columns": ["region", "http.status"],
            "split_by": "region",
            "order": "asc",
            "wrap": true
        }),
    )
    .await;
    let id = checkout["id"].as_str().expect("an id").to_string();
    assert!(
        id.len() == 10
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{id}"
    );
    assert_eq!(checkout["name"], "Checkout errors");
    assert_eq!(checkout["query"], "service:checkout level:>=error");
    assert_eq!(
        checkout["range"],
        json!({"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"})
    );
    assert_eq!(checkout["columns"], json!(["region", "http.status"]));
    assert_eq!(
        (&checkout["split_by"], &checkout["order"], &checkout["wrap"]),
        (&json!("region"), &json!("asc"), &json!(true))
    );
    assert_eq!(checkout["owner"], fingerprint(ALICE));
    assert_eq!(checkout["tenant"], "default");
    assert!(
        checkout["created"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(checkout["created"], checkout["updated"]);

    let billing = saved(server, BOB, &json!({"name": "billing slow"})).await;
    let billing_id = billing["id"].as_str().expect("an id").to_string();
    assert_eq!(
        (
            &billing["query"],
            &billing["range"],
            &billing["columns"],
            &billing["split_by"],
            &billing["order"],
            &billing["wrap"],
            &billing["owner"]
        ),
        (
            &json!(""),
            &json!({"last": "24h"}),
            &json!([]),
            &json!("level"),
            &json!("desc"),
            &json!(false),
            &json!(fingerprint(BOB))
        )
    );
    let unsplit = saved(
        server,
        ADMIN,
        &json!({"name": "checkout errors", "split_by": null, "range": {"last": "7d"}}),
    )
    .await;
    assert_eq!(unsplit["split_by"], Value::Null);
    assert_eq!(unsplit["range"], json!({"last": "7d"}));
    let scratch = saved(server, ALICE, &json!({"name": "scratch"})).await;
    let scratch_id = scratch["id"].as_str().expect("an id").to_string();

    // Listed to every reader by name, ignoring case, then by id.
    let list = get(server, "/api/views", BOB).await;
    assert_eq!(list.status, StatusCode::OK);
    let mut same_name = [&checkout, &unsplit];
    same_name.sort_by_key(|view| view["id"].as_str().unwrap_or_default().to_string());
    assert_eq!(
        list.body,
        json!({"views": [billing, same_name[0], same_name[1], scratch]})
    );

    // Opened by id; an unknown or malformed id is a 404 naming it.
    let opened = get(server, &format!("/api/views/{id}"), BOB).await;
    assert_eq!((opened.status, &opened.body), (StatusCode::OK, &checkout));
    for missing in ["zzzzzzzzzz", "NOT-AN-ID", "k3x9q2mw7h0"] {
        let answer = get(server, &format!("/api/views/{missing}"), ALICE).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(answer.body["error"], format!("no view {missing}"));
    }

    // Refusals name the field to fix.
    let bad_query = refused(
        server,
        json!({"name": "n", "query": "service:checkout level:loud"}),
        "query",
    )
    .await;
    assert_eq!(bad_query["position"], 24, "{bad_query}");
    refused(
        server,
        json!({"name": "n", "range": {"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}}),
        "range",
    )
    .await;
    refused(
        server,
        json!({"name": "n", "range": {"last": "soon"}}),
        "range.last",
    )
    .await;
    refused(
        server,
        json!({"name": "n", "range": {"from": "yesterday", "to": "2026-12-01T00:00:00Z"}}),
        "range.from",
    )
    .await;
    let columns: Vec<String> = (0..21).map(|n| format!("column{n}")).collect();
    refused(server, json!({"name": "n", "columns": columns}), "columns").await;
    refused(server, json!({"name": "n", "colour": "red"}), "colour").await;
    refused(server, json!({"query": "level:error"}), "name").await;
    refused(server, json!({"name": "x".repeat(101)}), "name").await;
    refused(server, json!({"name": "n", "order": "newest"}), "order").await;
    refused(
        server,
        json!({"name": "n", "split_by": "message"}),
        "split_by",
    )
    .await;
    refused(server, json!("{not json"), "body").await;
    let large = post(
        server,
        ALICE,
        &json!({"name": "n", "query": "x".repeat(70_000)}),
    )
    .await;
    assert_eq!(
        large.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        large.body
    );

    // Another reader may neither change nor delete it; its owner and an
    // admin may.
    let renamed = json!({"name": "Checkout errors (EU)", "query": "service:checkout region:eu-*"});
    for answer in [
        put(server, &id, BOB, &renamed).await,
        delete(server, &id, BOB).await,
    ] {
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
        assert_eq!(answer.body["field"], "owner", "{}", answer.body);
    }
    let changed = put(server, &id, ALICE, &renamed).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["name"], "Checkout errors (EU)");
    assert_eq!(
        changed.body["range"],
        json!({"last": "24h"}),
        "replaced whole"
    );
    assert_eq!(
        (
            &changed.body["id"],
            &changed.body["owner"],
            &changed.body["created"]
        ),
        (&checkout["id"], &checkout["owner"], &checkout["created"])
    );
    assert!(changed.body["updated"].as_str() > checkout["updated"].as_str());
    // A view read back can be sent back as it is.
    let mut by_admin = changed.body.clone();
    by_admin["wrap"] = json!(true);
    let changed = put(server, &id, ADMIN, &by_admin).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["wrap"], true);
    assert_eq!(
        changed.body["owner"],
        fingerprint(ALICE),
        "an admin's change keeps the owner"
    );
    let invalid = put(server, &id, ALICE, &json!({"name": ""})).await;
    assert_eq!(
        (invalid.status, &invalid.body["field"]),
        (StatusCode::BAD_REQUEST, &json!("name"))
    );
    let unknown = put(server, "zzzzzzzzzz", ADMIN, &renamed).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let gone = delete(server, &billing_id, BOB).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    let gone = delete(server, &scratch_id, ADMIN).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    for deleted in [&billing_id, &scratch_id] {
        let answer = get(server, &format!("/api/views/{deleted}"), ALICE).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        let again = delete(server, deleted, ADMIN).await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
    }
    let list = get(server, "/api/views", ALICE).await;
    assert_eq!(
        names(&list.body),
        ["checkout errors", "Checkout errors (EU)"],
        "{}",
        list.body
    );

    // Every change is in the audit log, with the view it changed.
    eventually(
        "the views' audit records",
        Duration::from_secs(20),
        || async {
            let records = crate::auth::audit_records(server, Some(ADMIN)).await;
            let changes: Vec<(String, String)> = records
                .iter()
                .filter(|record| {
                    record["attributes"]["audit.action"]
                        .as_str()
                        .is_some_and(|action| action.starts_with("view."))
                })
                .map(|record| {
                    (
                        record["attributes"]["audit.action"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        record["attributes"]["audit.target"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect();
            let expected = [
                ("view.create", &id),
                ("view.replace", &id),
                ("view.delete", &billing_id),
                ("view.delete", &scratch_id),
            ];
            let all_there = changes
                .iter()
                .filter(|(action, _)| action == "view.create")
                .count()
                == 4
                && expected.iter().all(|(action, target)| {
                    changes.contains(&(action.to_string(), target.to_string()))
                });
            all_there.then_some(())
        },
    )
    .await;
    list.body
}

/// Runs the contract, restarts the server on the same store and checks the
/// views are all there.
async fn contract_and_restart(launch: Launch) {
    let data = tempfile::tempdir().expect("a data dir");
    let mut server = Server::launch(launch.clone().data_dir(data.path())).await;
    let kept = contract(&server).await;
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    drop(server);
    let server = Server::launch(launch.data_dir(data.path())).await;
    let after = get(&server, "/api/views", BOB).await;
    assert_eq!((after.status, after.body), (StatusCode::OK, kept));
}

#[actix_web::test]
async fn views_are_saved_listed_changed_and_kept_across_a_restart() {
    contract_and_restart(with_keys(Launch::default())).await;
}

/// The same, and tenants, on one private ClickHouse 18.16 server.
#[actix_web::test]
async fn views_on_clickhouse() {
    let clickhouse = ClickHouse::start().await;
    let launch = with_keys(Launch::default()).env("CLICKHOUSE_DSN", &clickhouse.dsn("views"));
    contract_and_restart(launch).await;
    let server = Server::launch(with_tenants(
        Launch::default().env("CLICKHOUSE_DSN", &clickhouse.dsn("views_tenants")),
    ))
    .await;
    let (_, health) = server.get("/health").await;
    assert_eq!(health["storage"], "clickhouse", "{health}");
    tenants_isolate_views(&server).await;
}

const READ_A: &str = "read-key-views-team-a-0123456789";
const READ_B: &str = "read-key-views-team-b-0123456789";
const READ_ANY: &str = "read-key-views-any-tenant-012345";

/// A tenant keeps at most 1000 views: the next is refused naming `views`,
/// and deleting one makes room.
#[actix_web::test]
async fn a_tenant_keeps_at_most_a_thousand_views() {
    use futures_util::StreamExt;
    let server = Server::launch(with_keys(Launch::default())).await;
    let ids: Vec<String> = futures_util::stream::iter(0..1000)
        .map(|n| {
            let server = &server;
            async move {
                saved(server, ALICE, &json!({"name": format!("view {n}")})).await["id"]
                    .as_str()
                    .expect("an id")
                    .to_string()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let body = refused(&server, json!({"name": "one too many"}), "views").await;
    assert!(
        body["error"].as_str().unwrap_or_default().contains("1000"),
        "{body}"
    );
    assert_eq!(
        delete(&server, &ids[0], ALICE).await.status,
        StatusCode::NO_CONTENT
    );
    saved(&server, ALICE, &json!({"name": "in its place"})).await;
}

fn with_tenants(launch: Launch) -> Launch {
    launch.env("OGLOGSTREAM_TENANTS__ENABLED", "true").env(
        "OGLOGSTREAM_SECURITY__READ_KEYS",
        &format!(
            r#"[{{key="{READ_A}", tenants=["team-a"]}}, {{key="{READ_B}", tenants=["team-b"]}}, "{READ_ANY}"]"#
        ),
    )
}

#[actix_web::test]
async fn tenants_see_only_their_own_views() {
    tenants_isolate_views(&Server::launch(with_tenants(Launch::default())).await).await;
}

async fn tenants_isolate_views(server: &Server) {
    let list = |key: &'static str, tenant: Option<&'static str>| async move {
        let answer = call(server, Method::GET, "/api/views", key, tenant, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        names(&answer.body)
    };
    let a_view = saved(server, READ_A, &json!({"name": "team a's"})).await;
    assert_eq!(a_view["tenant"], "team-a");
    let a_id = a_view["id"].as_str().expect("an id").to_string();
    let b_view = call(
        server,
        Method::POST,
        "/api/views",
        READ_ANY,
        Some("team-b"),
        Some(&json!({"name": "team b's"})),
    )
    .await;
    assert_eq!(b_view.status, StatusCode::CREATED, "{}", b_view.body);
    assert_eq!(b_view.body["tenant"], "team-b");

    assert_eq!(list(READ_A, None).await, ["team a's"]);
    assert_eq!(list(READ_B, None).await, ["team b's"]);
    assert_eq!(list(READ_ANY, Some("team-a")).await, ["team a's"]);
    assert_eq!(
        list(READ_ANY, Some("team-a|team-b")).await,
        ["team a's", "team b's"]
    );
    assert!(list(READ_ANY, Some("team-c")).await.is_empty());

    // To another tenant the view does not exist, whatever it tries.
    let path = format!("/api/views/{a_id}");
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!({"name": "taken over"}))),
        (Method::DELETE, None),
    ] {
        let answer = call(server, method.clone(), &path, READ_B, None, body.as_ref()).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{method}: {}",
            answer.body
        );
    }
    let still = call(server, Method::GET, &path, READ_A, None, None).await;
    assert_eq!((still.status, &still.body), (StatusCode::OK, &a_view));

    // A view is saved in one tenant.
    let several = call(
        server,
        Method::POST,
        "/api/views",
        READ_ANY,
        Some("team-a|team-b"),
        Some(&json!({"name": "both"})),
    )
    .await;
    assert_eq!(several.status, StatusCode::BAD_REQUEST, "{}", several.body);
    assert_eq!(several.body["field"], "X-Scope-OrgID");
}
