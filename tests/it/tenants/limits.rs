//! One noisy tenant does not starve the rest: its ingest rate is its own,
//! refused with 429 and `Retry-After`, and the overrides file changes it
//! while the server runs.

use crate::support::{Launch, Server, eventually, log};
use awc::http::StatusCode;
use serde_json::Value;
use std::time::Duration;

async fn post(server: &Server, tenant: &str, message: &str) -> (StatusCode, Option<String>, Value) {
    let mut response = server
        .client
        .post(server.url("/log"))
        .insert_header(("X-Scope-OrgID", tenant))
        .insert_header(("Content-Type", "application/json"))
        .send_body(log("info", "web", message).to_string())
        .await
        .expect("a response");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (response.status(), retry_after, body)
}

#[actix_web::test]
async fn a_tenant_over_its_rate_gets_429_and_the_others_go_on() {
    let workspace = tempfile::tempdir().expect("a temporary directory");
    let overrides = workspace.path().join("overrides.toml");
    std::fs::write(
        &overrides,
        "[overrides.noisy]\ningest_rate = 0.01\ningest_burst = 2\n",
    )
    .expect("the overrides file");
    let server = Server::launch(
        Launch::default()
            .env("OGLOGSTREAM_TENANTS__ENABLED", "true")
            .env(
                "OGLOGSTREAM_TENANTS__OVERRIDES_FILE",
                overrides.to_str().expect("a UTF-8 path"),
            ),
    )
    .await;
    // The file is read as the server starts: wait for its limit to hold.
    eventually(
        "the noisy tenant limited",
        Duration::from_secs(20),
        || async {
            let (status, _, _) = post(&server, "noisy", "n").await;
            (status == StatusCode::TOO_MANY_REQUESTS).then_some(())
        },
    )
    .await;
    let (status, retry_after, body) = post(&server, "noisy", "again").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry_after.is_some(), "Retry-After tells it when");
    assert_eq!(body["field"], "tenants.ingest_rate", "{body}");
    // Each refused log is counted once, as rate limited (the request's 429
    // was counted a second time, as invalid).
    let (_, metrics) = server.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default();
    let refused = |reason: &str| {
        let series =
            format!("oglogstream_logs_rejected_total{{protocol=\"json\",reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&series)?.parse::<u64>().ok())
    };
    assert!(refused("rate_limited") >= Some(2), "{metrics}");
    assert_eq!(refused("invalid"), Some(0), "{metrics}");
    for n in 0..20 {
        let (status, _, body) = post(&server, "quiet", &format!("q{n}")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    // Raising the limit in the file takes effect without a restart.
    std::fs::write(&overrides, "[overrides.noisy]\ningest_rate = 1000\n").expect("rewritten");
    eventually("the new limit read", Duration::from_secs(20), || async {
        let (status, _, _) = post(&server, "noisy", "accepted").await;
        (status == StatusCode::ACCEPTED).then_some(())
    })
    .await;
}

#[actix_web::test]
async fn reads_keep_to_a_tenants_range_and_live_tails() {
    let server = Server::launch(
        Launch::default()
            .env("OGLOGSTREAM_TENANTS__ENABLED", "true")
            .env(
                "OGLOGSTREAM_TENANTS__OVERRIDES__SHORT__MAX_QUERY_RANGE",
                "1h",
            )
            .env(
                "OGLOGSTREAM_TENANTS__OVERRIDES__SHORT__MAX_LIVE_CONNECTIONS",
                "1",
            ),
    )
    .await;
    let get = |path: String, tenant: &'static str| {
        let request = server
            .client
            .get(server.url(&path))
            .insert_header(("X-Scope-OrgID", tenant));
        async move {
            let mut response = request.send().await.expect("a response");
            let body = response.json::<Value>().await.unwrap_or(Value::Null);
            (response.status(), body)
        }
    };
    let day = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
    let (status, body) = get(format!("/api/logs?{day}"), "short").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "tenants.max_query_range", "{body}");
    let (status, body) = get(format!("/api/stats?{day}"), "short").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Without from, a read covers the tenant's range before its end.
    let (status, body) = get("/api/logs".into(), "short").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = get(format!("/api/logs?{day}"), "long").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another tenant is not limited: {body}"
    );

    let open = || {
        server
            .client
            .ws(server.ws_url("/ws/live"))
            .header("X-Scope-OrgID", "short")
            .connect()
    };
    let first = open().await.expect("the first live tail");
    let second = open().await;
    assert!(
        matches!(
            &second,
            Err(awc::error::WsClientError::InvalidResponseStatus(status))
                if *status == StatusCode::TOO_MANY_REQUESTS
        ),
        "a second live tail is refused: {:?}",
        second.as_ref().map(|_| ())
    );
    drop(first);
    eventually("the slot freed", Duration::from_secs(20), || async {
        open().await.ok().map(|_| ())
    })
    .await;
}
