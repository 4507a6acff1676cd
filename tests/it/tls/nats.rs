//! NATS with TLS and each kind of credential `nats-server` deployments use,
//! on a real server configured for it: mutual TLS with a private CA, users
//! with passwords (one from a file), a token, nkey users, and an
//! operator/account/user JWT setup with a memory resolver (the nkeys made
//! and the JWTs signed here). The split roles (`--role ingest` and
//! `--role process,query`) connect with each and deliver logs; a wrong
//! credential or an untrusted certificate shows on `/health` and in the log
//! naming the setting to fix.

use crate::split::deps::Nats;
use crate::support::certs::{Identity, Pki};
use crate::support::{Launch, Server, eventually, log};
use awc::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use std::time::Duration;

/// A role of the binary on `nats` with `env` (credentials, TLS files).
fn role(role: &str, nats: &Nats, env: &[(&str, &str)]) -> Launch {
    let mut launch = Launch::default()
        .arg("--role")
        .arg(role)
        .env("NATS_URL", &nats.url())
        .env("FLUSH_TIMEOUT", "100ms");
    for (key, value) in env {
        launch = launch.env(key, value);
    }
    launch
}

/// Starts a role and waits until it is healthy; a failure shows the
/// server's log and the broker's (its refusals say why).
async fn healthy(launch: Launch, nats: &Nats) -> Server {
    let server = Server::launch(Launch {
        no_wait: true,
        ..launch
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = server.try_get("/health").await;
        if matches!(answer, Some((StatusCode::OK, _))) {
            return server;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not healthy: {answer:?}\nour log:\n{}\nnats-server's log:\n{}",
            server.logs(),
            nats.log()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts an ingest and a process,query instance with `env` and checks
/// that a log posted to one is stored and read through the other.
async fn split_roles_deliver(nats: &Nats, env: &[(&str, &str)], marker: &str) {
    let store = healthy(role("process,query", nats, env), nats).await;
    let ingest = healthy(role("ingest", nats, env), nats).await;
    let id = ingest.accept(&log("info", "nats-auth", marker)).await;
    eventually(
        &format!("{marker} stored through NATS"),
        Duration::from_secs(30),
        || async {
            let (_, page) = store.get("/api/logs?service=nats-auth").await;
            page.as_array()
                .is_some_and(|rows| rows.iter().any(|row| row["id"] == id.as_str()))
                .then_some(())
        },
    )
    .await;
    let (_, health) = ingest.get("/health").await;
    assert_eq!(health["bus_status"], "ok", "{health}");
}

#[actix_web::test]
async fn mutual_tls_with_a_private_ca() {
    let pki = Pki::new("NATS CA");
    let server_identity = pki.intermediate().server("nats");
    let nats = Nats::start_with(&tls_block(&pki, &server_identity)).await;
    let client = pki.client("oglogstream");
    let env = [
        ("OGLOGSTREAM_NATS__TLS_CA", pki.ca_str()),
        ("OGLOGSTREAM_NATS__TLS_CERT", client.cert_str().to_string()),
        ("OGLOGSTREAM_NATS__TLS_KEY", client.key_str().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    split_roles_deliver(&nats, &env, "over mutual tls").await;
}

/// The server's TLS, verifying client certificates against the same CA.
fn tls_block(pki: &Pki, identity: &Identity) -> String {
    format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 5\n}}\n",
        identity.cert.display(),
        identity.key.display(),
        pki.ca().display()
    )
}

#[actix_web::test]
async fn an_untrusted_server_certificate_or_a_missing_client_certificate_is_named() {
    let pki = Pki::new("NATS CA");
    let nats = Nats::start_with(&tls_block(&pki, &pki.server("nats"))).await;
    let other = Pki::new("Some Other CA");
    let client = pki.client("oglogstream");
    // Trusting the wrong CA.
    let wrong_ca = Server::launch(Launch {
        no_wait: true,
        ..role(
            "ingest",
            &nats,
            &[
                ("OGLOGSTREAM_NATS__TLS_CA", &other.ca_str()),
                ("OGLOGSTREAM_NATS__TLS_CERT", client.cert_str()),
                ("OGLOGSTREAM_NATS__TLS_KEY", client.key_str()),
            ],
        )
    })
    .await;
    let said = unhealthy_bus(&wrong_ca, "nats.tls_ca").await;
    assert!(said.contains("not trusted"), "{said}");
    // Trusting the right CA but without the certificate the server asks for.
    let anonymous = Server::launch(Launch {
        no_wait: true,
        ..role(
            "ingest",
            &nats,
            &[("OGLOGSTREAM_NATS__TLS_CA", &pki.ca_str())],
        )
    })
    .await;
    let said = unhealthy_bus(&anonymous, "nats.tls_cert").await;
    assert!(said.contains("nats.tls_key"), "{said}");
}

/// Polls `/health` until it answers 503 with the bus's status naming
/// `setting`; returns that status, once the log has said it too (at ERROR).
async fn unhealthy_bus(server: &Server, setting: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = server.try_get("/health").await;
        if let Some((StatusCode::SERVICE_UNAVAILABLE, health)) = &answer
            && let Some(said) = health["bus_status"].as_str()
            && said.contains(setting)
            && server
                .logs()
                .lines()
                .any(|line| line.contains("ERROR") && line.contains(setting))
        {
            return said.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no /health or log naming {setting}; last answer {answer:?}; log:\n{}",
            server.logs()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

const USERS: &str = r#"authorization {
  users: [
    { user: "ingest", password: "0123-ingest-secret" }
    { user: "processor", password: "processor secret" }
  ]
}"#;

#[actix_web::test]
async fn users_with_passwords_from_the_environment_and_a_file() {
    let nats = Nats::start_with(USERS).await;
    let store_dir = tempfile::tempdir().expect("temp dir");
    let password_file = store_dir.path().join("nats-password");
    std::fs::write(&password_file, "processor secret\n").expect("password file");
    let store = Server::launch(role(
        "process,query",
        &nats,
        &[
            ("OGLOGSTREAM_NATS__USER", "processor"),
            (
                "OGLOGSTREAM_NATS__PASSWORD_FILE",
                password_file.to_str().expect("utf-8"),
            ),
        ],
    ))
    .await;
    // A password of digits, taken verbatim from the environment (a
    // TOML-like reading would have made it the number 123).
    let ingest = Server::launch(role(
        "ingest",
        &nats,
        &[
            ("OGLOGSTREAM_NATS__USER", "ingest"),
            ("OGLOGSTREAM_NATS__PASSWORD", "0123-ingest-secret"),
        ],
    ))
    .await;
    let id = ingest.accept(&log("info", "nats-auth", "with users")).await;
    eventually("the log stored", Duration::from_secs(30), || async {
        let (_, page) = store.get("/api/logs?service=nats-auth").await;
        (page[0]["id"] == id.as_str()).then_some(())
    })
    .await;
}

#[actix_web::test]
async fn a_wrong_or_missing_password_is_named_on_health_and_in_the_log() {
    let nats = Nats::start_with(USERS).await;
    let wrong = Server::launch(Launch {
        no_wait: true,
        ..role(
            "ingest",
            &nats,
            &[
                ("OGLOGSTREAM_NATS__USER", "ingest"),
                ("OGLOGSTREAM_NATS__PASSWORD", "not-the-password"),
            ],
        )
    })
    .await;
    let said = unhealthy_bus(&wrong, "nats.user and nats.password").await;
    assert!(said.contains("refused the credentials"), "{said}");
    assert!(!said.contains("not-the-password") && !wrong.logs().contains("not-the-password"));
    let missing = Server::launch(Launch {
        no_wait: true,
        ..role("ingest", &nats, &[])
    })
    .await;
    let said = unhealthy_bus(&missing, "nats.token").await;
    assert!(said.contains("requires credentials"), "{said}");
    // Ingest refuses rather than accepting what it cannot publish.
    let (status, _) = wrong.post_log(&log("info", "x", "y")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[actix_web::test]
async fn a_token() {
    let nats = Nats::start_with("authorization { token: \"t0k3n-for-tests\" }").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "t0k3n-for-tests\n").expect("token file");
    split_roles_deliver(
        &nats,
        &[(
            "OGLOGSTREAM_NATS__TOKEN_FILE",
            token_file.to_str().expect("utf-8"),
        )],
        "with a token",
    )
    .await;
    let wrong = Server::launch(Launch {
        no_wait: true,
        ..role("ingest", &nats, &[("OGLOGSTREAM_NATS__TOKEN", "guess")])
    })
    .await;
    unhealthy_bus(&wrong, "nats.token").await;
}

#[actix_web::test]
async fn nkey_users_by_public_key() {
    let user = KeyPair::new_user();
    let stranger = KeyPair::new_user();
    let nats = Nats::start_with(&format!(
        "authorization {{ users: [ {{ nkey: \"{}\" }} ] }}",
        user.public_key()
    ))
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let seed_file = dir.path().join("user.nk");
    std::fs::write(&seed_file, format!("{}\n", user.seed().expect("seed"))).expect("seed file");
    split_roles_deliver(
        &nats,
        &[(
            "OGLOGSTREAM_NATS__NKEY_SEED_FILE",
            seed_file.to_str().expect("utf-8"),
        )],
        "with an nkey",
    )
    .await;
    let stranger_file = dir.path().join("stranger.nk");
    std::fs::write(&stranger_file, stranger.seed().expect("seed")).expect("seed file");
    let refused = Server::launch(Launch {
        no_wait: true,
        ..role(
            "ingest",
            &nats,
            &[(
                "OGLOGSTREAM_NATS__NKEY_SEED_FILE",
                stranger_file.to_str().expect("utf-8"),
            )],
        )
    })
    .await;
    unhealthy_bus(&refused, "nats.nkey_seed_file").await;
}

/// A JWT signed by `issuer` (the nkeys scheme: ed25519 over
/// `header.claims`, base64url without padding).
fn jwt(issuer: &KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let issued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let claims = serde_json::json!({
        "jti": format!("{subject}-{issued_at}"),
        "iat": issued_at,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{claims}");
    let signature = issuer.sign(signed.as_bytes()).expect("signature");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A `.creds` file as nsc writes it.
fn creds(user_jwt: &str, user: &KeyPair) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n",
        user.seed().expect("seed")
    )
}

#[actix_web::test]
async fn operator_account_and_user_jwts_with_a_memory_resolver() {
    let operator = KeyPair::new_operator();
    // JetStream needs a system account in operator mode.
    let system = KeyPair::new_account();
    let account = KeyPair::new_account();
    let user = KeyPair::new_user();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "test-operator",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    // JetStream is on for the account when it has storage limits.
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "logs",
        serde_json::json!({
            "type": "account", "version": 2,
            "limits": {
                "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                "wildcards": true, "conn": -1, "leaf": -1,
                "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1
            },
            "default_permissions": {"pub": {}, "sub": {}}
        }),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "oglogstream",
        serde_json::json!({
            "type": "user", "version": 2,
            "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1
        }),
    );
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        serde_json::json!({"type": "account", "version": 2, "limits": {"conn": -1}}),
    );
    let nats = Nats::start_with(&format!(
        "operator: \"{operator_jwt}\"\nsystem_account: {system}\nresolver: MEMORY\n\
         resolver_preload: {{\n  {system}: \"{system_jwt}\"\n  {account}: \"{account_jwt}\"\n}}\n",
        system = system.public_key(),
        account = account.public_key()
    ))
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let creds_file = dir.path().join("oglogstream.creds");
    std::fs::write(&creds_file, creds(&user_jwt, &user)).expect("creds file");
    let env = [(
        "OGLOGSTREAM_NATS__CREDS_FILE",
        creds_file.to_str().expect("utf-8"),
    )];
    let store = healthy(role("process,query", &nats, &env), &nats).await;
    let ingest = healthy(role("ingest", &nats, &env), &nats).await;
    let id = ingest.accept(&log("info", "nats-auth", "with a jwt")).await;
    eventually("the log stored", Duration::from_secs(30), || async {
        let (_, page) = store.get("/api/logs?service=nats-auth").await;
        (page[0]["id"] == id.as_str()).then_some(())
    })
    .await;
    // A user the account did not sign is refused, named.
    let impostor = KeyPair::new_user();
    let forged = jwt(
        &KeyPair::new_account(),
        &impostor.public_key(),
        "impostor",
        serde_json::json!({"type": "user", "version": 2, "pub": {}, "sub": {}}),
    );
    let forged_file = dir.path().join("forged.creds");
    std::fs::write(&forged_file, creds(&forged, &impostor)).expect("creds file");
    let refused = Server::launch(Launch {
        no_wait: true,
        ..role(
            "ingest",
            &nats,
            &[(
                "OGLOGSTREAM_NATS__CREDS_FILE",
                forged_file.to_str().expect("utf-8"),
            )],
        )
    })
    .await;
    unhealthy_bus(&refused, "nats.creds_file").await;
}
