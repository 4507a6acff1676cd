//! `/metrics` by tenant, while tenancy is on: logs accepted per tenant and
//! refusals per tenant and limit, for the first 100 tenants seen; the rest
//! are summed as `other`, so 105 tenants make 101 series, and the scrape
//! still passes `promtool check metrics`.

use crate::support::{Launch, Server, log};
use awc::http::StatusCode;
use std::io::Write;

async fn post(server: &Server, tenant: &str, message: &str) -> StatusCode {
    server
        .client
        .post(server.url("/log"))
        .insert_header(("X-Scope-OrgID", tenant))
        .insert_header(("Content-Type", "application/json"))
        .send_body(log("info", "web", message).to_string())
        .await
        .expect("a response")
        .status()
}

fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

fn promtool_check(text: &str) {
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; make test installs it)");
    if let Some(mut stdin) = promtool.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("promtool's stdin");
    }
    let output = promtool.wait_with_output().expect("promtool's answer");
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[actix_web::test]
async fn metrics_count_by_tenant_the_first_hundred_named_and_the_rest_as_other() {
    let server = Server::launch(
        Launch::default()
            .env("OGLOGSTREAM_TENANTS__ENABLED", "true")
            .env("OGLOGSTREAM_TENANTS__OVERRIDES__NOISY__INGEST_RATE", "0.01")
            .env("OGLOGSTREAM_TENANTS__OVERRIDES__NOISY__INGEST_BURST", "1")
            .env(
                "OGLOGSTREAM_TENANTS__OVERRIDES__FULL__INGEST_BYTES_PER_DAY",
                "1KiB",
            )
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
    // Three tenants meet their limits first, so they are among the named.
    assert_eq!(post(&server, "noisy", "n1").await, StatusCode::ACCEPTED);
    assert_eq!(
        post(&server, "noisy", "n2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        post(&server, "full", &"x".repeat(2000)).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let day = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
    let response = server
        .client
        .get(server.url(&format!("/api/logs?{day}")))
        .insert_header(("X-Scope-OrgID", "short"))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let open = || {
        server
            .client
            .ws(server.ws_url("/ws/live"))
            .header("X-Scope-OrgID", "short")
            .connect()
    };
    let _first = open().await.expect("the first live tail");
    assert!(open().await.is_err(), "a second live tail is refused");
    // 102 more tenants, 105 in all: 97 of these get series of their own.
    for n in 0..102 {
        let tenant = format!("t{n:03}");
        assert_eq!(post(&server, &tenant, "hi").await, StatusCode::ACCEPTED);
    }

    let mut response = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("a response");
    let body = response.body().limit(8 << 20).await.expect("a body");
    let text = String::from_utf8_lossy(&body).into_owned();
    let accepted = "oglogstream_tenant_logs_accepted_total";
    let series = text
        .lines()
        .filter(|line| line.starts_with(&format!("{accepted}{{")))
        .count();
    assert_eq!(series, 101, "100 tenants named and other:\n{text}");
    for (tenant, logs) in [
        ("noisy", 1),
        ("full", 0),
        ("short", 0),
        ("t000", 1),
        ("t096", 1),
        ("other", 5),
    ] {
        let name = format!("{accepted}{{tenant=\"{tenant}\"}}");
        assert_eq!(sample(&text, &name), Some(logs), "{name} in\n{text}");
    }
    assert!(
        !text.contains("tenant=\"t097\""),
        "t097 is other's:\n{text}"
    );
    let limited = "oglogstream_tenant_limited_total";
    for (tenant, limit, refusals) in [
        ("noisy", "rate", 1),
        ("noisy", "quota", 0),
        ("full", "quota", 1),
        ("short", "query_range", 1),
        ("short", "live_connections", 1),
        ("other", "rate", 0),
    ] {
        let name = format!("{limited}{{tenant=\"{tenant}\",limit=\"{limit}\"}}");
        assert_eq!(sample(&text, &name), Some(refusals), "{name} in\n{text}");
    }
    promtool_check(&text);
}
