//! Secrets never printed: planted passwords and tokens (in `nats.url`, in
//! the ClickHouse DSN and its query string, in the environment and in
//! files) must not appear in the real server's log (at debug level, so the
//! client libraries' lines count too), in `/health` or in `/metrics` —
//! neither while every dependency refuses them (the error paths, which
//! name URLs) nor while everything works.

use super::clickhouse::{PASSWORD as CLICKHOUSE_PASSWORD, secure_clickhouse};
use crate::split::deps::Nats;
use crate::support::certs::Pki;
use crate::support::{Launch, Server, log};
use awc::http::StatusCode;
use std::time::Duration;

const NATS_PASSWORD: &str = "planted-nats-password-4f1d";

/// Everything a client or an operator can read from the server.
async fn everything_said(server: &Server) -> String {
    let (_, health) = server.get("/health").await;
    let mut metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("/metrics");
    let metrics = metrics.body().limit(16 << 20).await.expect("metrics body");
    format!(
        "{}\n{health}\n{}",
        server.logs(),
        String::from_utf8_lossy(&metrics)
    )
}

fn assert_absent(said: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !said.contains(secret),
            "the secret {secret:?} was printed:\n{said}"
        );
    }
}

#[actix_web::test]
async fn planted_secrets_stay_out_of_logs_health_and_metrics() {
    let nats = Nats::start_with(&format!(
        "authorization {{ users: [ {{ user: \"ingest\", password: \"{NATS_PASSWORD}\" }} ] }}"
    ))
    .await;
    let pki = Pki::new("ClickHouse CA");
    let (_clickhouse, secure_port) = secure_clickhouse(&pki.server("clickhouse")).await;

    // Refused everywhere: wrong secrets in the URL, the DSN and its query
    // string, so that errors naming them are logged and answered.
    let wrong_nats = "planted-wrong-nats-9c2e";
    let wrong_dsn = "planted-wrong-dsn-77ab";
    let query_token = "planted-query-token-31e0";
    let refused = Server::launch(Launch {
        no_wait: true,
        ..Launch::default()
            .env("LOG_LEVEL", "debug")
            .env(
                "NATS_URL",
                &format!("nats://ingest:{wrong_nats}@127.0.0.1:{}", nats.port),
            )
            .env(
                "CLICKHOUSE_DSN",
                &format!(
                    "clickhouse://logwriter:{wrong_dsn}@127.0.0.1:{secure_port}/secrets?secure=true&password={query_token}"
                ),
            )
            .env("OGLOGSTREAM_CLICKHOUSE__TLS_CA", &pki.ca_str())
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = refused.try_get("/health").await;
        let both_named = answer.as_ref().is_some_and(|(status, health)| {
            *status == StatusCode::SERVICE_UNAVAILABLE
                && health["bus_status"]
                    .as_str()
                    .is_some_and(|said| said.contains("nats.url"))
                && health["storage_status"]
                    .as_str()
                    .is_some_and(|said| said.contains("clickhouse.password_file"))
        });
        if both_named {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no /health naming both refusals: {answer:?}\n{}",
            refused.logs()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let said = everything_said(&refused).await;
    assert_absent(&said, &[wrong_nats, wrong_dsn, query_token]);
    // The addresses were printed, without their secrets.
    assert!(
        said.contains("clickhouse://logwriter:***@127.0.0.1"),
        "{said}"
    );
    assert!(said.contains("password=***"), "{said}");

    // Everything works: the right secrets, from the environment and a file.
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("clickhouse-password");
    std::fs::write(&password_file, CLICKHOUSE_PASSWORD).expect("password file");
    let working = Server::launch(
        Launch::default()
            .env("LOG_LEVEL", "debug")
            .env("NATS_URL", &nats.url())
            .env("OGLOGSTREAM_NATS__USER", "ingest")
            .env("OGLOGSTREAM_NATS__PASSWORD", NATS_PASSWORD)
            .env(
                "CLICKHOUSE_DSN",
                &format!("clickhouse://logwriter@127.0.0.1:{secure_port}/secrets?secure=true"),
            )
            .env("OGLOGSTREAM_CLICKHOUSE__TLS_CA", &pki.ca_str())
            .env(
                "OGLOGSTREAM_CLICKHOUSE__PASSWORD_FILE",
                password_file.to_str().expect("utf-8"),
            ),
    )
    .await;
    working.accept(&log("info", "secrets", "all good")).await;
    working.wait_stored(1).await;
    assert_absent(
        &everything_said(&working).await,
        &[NATS_PASSWORD, CLICKHOUSE_PASSWORD],
    );
}
