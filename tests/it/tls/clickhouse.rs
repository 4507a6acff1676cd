//! ClickHouse's native protocol over TLS: a private `clickhouse-server`
//! (18.16, the oldest we support) with `tcp_port_secure` and an
//! `<openSSL><server>` certificate from a private CA, and a user with a
//! password. The store works over it (the password from a file), and
//! refuses a server whose certificate another CA signed, and a wrong
//! password, naming what to fix on `/health`.

use crate::split::deps::ClickHouse;
use crate::support::certs::{Identity, Pki};
use crate::support::{Launch, Server, free_port, log};
use awc::http::StatusCode;
use std::time::Duration;

pub const PASSWORD: &str = "ch-secret-7Qx2";

/// A server with a secure native port (its number returned) and the user
/// `logwriter` with [`PASSWORD`]; the plain ports stay for the test's own
/// HTTP queries as `default`.
pub async fn secure_clickhouse(identity: &Identity) -> (ClickHouse, u16) {
    let mut clickhouse = ClickHouse::prepare_minimal();
    let secure_port = free_port();
    clickhouse.write_minimal_config(&format!(
        "<tcp_port_secure>{secure_port}</tcp_port_secure>
  <openSSL><server>
    <certificateFile>{cert}</certificateFile>
    <privateKeyFile>{key}</privateKeyFile>
    <verificationMode>none</verificationMode>
    <loadDefaultCAFile>false</loadDefaultCAFile>
    <cacheSessions>true</cacheSessions>
    <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
    <preferServerCiphers>true</preferServerCiphers>
  </server></openSSL>",
        cert = identity.cert.display(),
        key = identity.key.display(),
    ));
    let users = format!(
        r#"<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default>
    <logwriter><password>{PASSWORD}</password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></logwriter>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"#
    );
    std::fs::write(clickhouse.config_dir().join("users.xml"), users).expect("users.xml");
    clickhouse.launch().await;
    (clickhouse, secure_port)
}

/// A `--role all` instance storing in ClickHouse over TLS.
fn over_tls(dsn: &str, ca: &str, password_file: &str) -> Launch {
    Launch::default()
        .env("CLICKHOUSE_DSN", dsn)
        .env("OGLOGSTREAM_CLICKHOUSE__TLS_CA", ca)
        .env("OGLOGSTREAM_CLICKHOUSE__PASSWORD_FILE", password_file)
}

/// Polls `/health` until storage is unavailable saying `words`.
async fn storage_refused(server: &Server, words: &[&str]) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = server.try_get("/health").await;
        if let Some((StatusCode::SERVICE_UNAVAILABLE, health)) = &answer
            && let Some(said) = health["storage_status"].as_str()
            && words.iter().all(|word| said.contains(word))
        {
            return said.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no /health saying {words:?}; last answer {answer:?}; log:\n{}",
            server.logs()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn the_store_works_over_tls_and_refuses_a_stranger_or_a_wrong_password() {
    let pki = Pki::new("ClickHouse CA");
    let (clickhouse, secure_port) = secure_clickhouse(&pki.server("clickhouse")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("clickhouse-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    let password_file = password_file.to_str().expect("utf-8");
    let dsn = format!("clickhouse://logwriter@127.0.0.1:{secure_port}/tls_store?secure=true");

    let server = Server::launch(over_tls(&dsn, &pki.ca_str(), password_file)).await;
    let id = server
        .accept(&log("info", "ch-tls", "stored over tls"))
        .await;
    server.wait_stored(1).await;
    let stored = clickhouse
        .query(&format!(
            "SELECT count() FROM tls_store.logs WHERE id = '{id}'"
        ))
        .await
        .expect("a count");
    assert_eq!(stored.trim(), "1");

    // A CA that did not sign the server's certificate.
    let stranger = Pki::new("Stranger CA");
    let refused = Server::launch(Launch {
        no_wait: true,
        ..over_tls(&dsn, &stranger.ca_str(), password_file)
    })
    .await;
    let said = storage_refused(&refused, &["clickhouse.tls_ca", "not trusted"]).await;
    assert!(said.contains("over TLS"), "{said}");

    // The right CA, the wrong password: named, never shown.
    let wrong_file = dir.path().join("wrong-password");
    std::fs::write(&wrong_file, "not-the-ch-password").expect("password file");
    let wrong = Server::launch(Launch {
        no_wait: true,
        ..over_tls(&dsn, &pki.ca_str(), wrong_file.to_str().expect("utf-8"))
    })
    .await;
    let said = storage_refused(&wrong, &["clickhouse.password_file"]).await;
    assert!(!said.contains("not-the-ch-password"), "{said}");
    assert!(!wrong.logs().contains("not-the-ch-password"));

    // TLS asked for against the plain port: a clear failure, not a hang.
    let plain_port = format!(
        "clickhouse://logwriter@127.0.0.1:{}/tls_store?secure=true",
        clickhouse.tcp_port
    );
    let mismatched = Server::launch(Launch {
        no_wait: true,
        ..over_tls(&plain_port, &pki.ca_str(), password_file)
    })
    .await;
    storage_refused(&mismatched, &["TLS"]).await;
}

#[test]
fn contradicting_settings_are_refused_naming_them() {
    let pki = Pki::new("ClickHouse CA");
    let ca = pki.ca_str();
    let cases: [(&str, &str); 2] = [
        (
            "clickhouse://u:inline@127.0.0.1:9440/db?secure=true",
            "clickhouse.password_file",
        ),
        (
            "clickhouse://u@127.0.0.1:9440/db?secure=false",
            "clickhouse.tls_ca",
        ),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("pw");
    std::fs::write(&password_file, "pw").expect("password file");
    for (dsn, named) in cases {
        let output = crate::support::run_to_exit(
            &["--listen", "127.0.0.1:0"],
            &[
                ("CLICKHOUSE_DSN", dsn),
                ("OGLOGSTREAM_CLICKHOUSE__TLS_CA", &ca),
                (
                    "OGLOGSTREAM_CLICKHOUSE__PASSWORD_FILE",
                    password_file.to_str().expect("utf-8"),
                ),
            ],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{dsn} started");
        assert!(stderr.contains(named), "{dsn}: {stderr}");
        assert!(
            !stderr.contains("inline"),
            "the DSN's password shown: {stderr}"
        );
    }
}
