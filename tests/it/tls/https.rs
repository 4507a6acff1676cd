//! HTTPS on the binary's own listener, with certificates from a private CA
//! made by `openssl`: the API and live tail over a certificate chain, a
//! renewal picked up without a restart (and a broken one survived), TLS 1.2
//! and 1.3 only, client certificates for ingest, and unusable settings
//! refused naming the setting.

use crate::support::certs::{Identity, Pki, client_config};
use crate::support::{Launch, Server, eventually, log, next_log, run_to_exit};
use awc::http::StatusCode;
use rustls::pki_types::ServerName;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub fn https(identity: &Identity) -> Launch {
    Launch::default()
        .env("OGLOGSTREAM_SERVER__TLS_CERT", identity.cert_str())
        .env("OGLOGSTREAM_SERVER__TLS_KEY", identity.key_str())
}

/// The leaf certificate the server presents in a fresh handshake, as DER;
/// `None` when the handshake fails.
async fn presented(port: u16, ca: &Path) -> Option<Vec<u8>> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(ca, None)));
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let name = ServerName::try_from("localhost").expect("a name");
    let tls = connector.connect(name, stream).await.ok()?;
    Some(tls.get_ref().1.peer_certificates()?.first()?.to_vec())
}

/// Replaces `target` by `source`'s bytes in one rename, as certbot and
/// Kubernetes' secret volumes do.
fn replace(source: &Path, target: &Path) {
    let staging = target.with_extension("staging");
    std::fs::copy(source, &staging).expect("copy");
    std::fs::rename(&staging, target).expect("rename");
}

#[actix_web::test]
async fn https_with_a_chain_serves_ingest_queries_and_live_tail() {
    let root = Pki::new("Test Root CA");
    // Clients trust the root only: the server must send the intermediate.
    let identity = root.intermediate().server("server");
    let server = Server::launch(https(&identity).https(client_config(&root.ca(), None))).await;
    let (response, mut live) = server
        .client
        .ws(server.ws_url("/ws/live"))
        .connect()
        .await
        .expect("a WebSocket over TLS");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let id = server.accept(&log("info", "tls-app", "over https")).await;
    let frame = next_log(&mut live, Duration::from_secs(10))
        .await
        .expect("the log on the live tail");
    assert_eq!(frame["id"], id.as_str());
    server.wait_stored(1).await;
    let (status, page) = server.get("/api/logs?service=tls-app").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page[0]["message"], "over https", "{page}");
    // No plain HTTP on the same port.
    let plain = awc::Client::default()
        .get(format!("http://127.0.0.1:{}/health", server.port))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered on the HTTPS port");
    assert!(
        server.logs().contains("listen=https://127.0.0.1:"),
        "the start-up line says https: {}",
        server.logs()
    );
}

#[actix_web::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_survived() {
    let root = Pki::new("Test Root CA");
    let issuing = root.intermediate();
    let first = issuing.server("first");
    // The server reads copies, which the test then rewrites.
    let live_cert = root.dir().join("live-chain.pem");
    let live_key = root.dir().join("live.key");
    std::fs::copy(&first.cert, &live_cert).expect("copy");
    std::fs::copy(&first.key, &live_key).expect("copy");
    let live = Identity {
        cert: live_cert.clone(),
        key: live_key.clone(),
    };
    let server = Server::launch(https(&live).https(client_config(&root.ca(), None))).await;
    assert_eq!(
        presented(server.port, &root.ca()).await,
        Some(first.leaf_der())
    );

    // A broken renewal (a truncated file): the old certificate stays.
    std::fs::write(
        root.dir().join("broken.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n",
    )
    .expect("write");
    replace(&root.dir().join("broken.pem"), &live_cert);
    eventually(
        "a warning about the unusable renewal",
        Duration::from_secs(30),
        || async {
            // Handshakes make the server look at its files.
            let _ = presented(server.port, &root.ca()).await;
            let logs = server.logs();
            (logs.contains("cannot be used") && logs.contains("server.tls_cert")).then_some(())
        },
    )
    .await;
    assert_eq!(
        presented(server.port, &root.ca()).await,
        Some(first.leaf_der()),
        "still the previous certificate"
    );

    // The real renewal, the certificate written before its key: for a
    // moment the pair does not match, then it does.
    let renewed = issuing.server("renewed");
    replace(&renewed.cert, &live_cert);
    replace(&renewed.key, &live_key);
    eventually(
        "the renewed certificate",
        Duration::from_secs(30),
        || async {
            (presented(server.port, &root.ca()).await == Some(renewed.leaf_der())).then_some(())
        },
    )
    .await;
    // Requests go on over the new certificate (a new connection pool).
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(client_config(&root.ca(), None))))
        .finish();
    let response = client
        .get(server.url("/health"))
        .send()
        .await
        .expect("health over the renewed certificate");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(server.logs().contains("TLS certificate reloaded"));
}

/// `openssl s_client` asking for one protocol version: the version
/// negotiated, if any.
fn negotiated(port: u16, ca: &Path, version_flag: &str) -> Option<String> {
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .arg("-CAfile")
        .arg(ca)
        .arg(version_flag)
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.trim().strip_prefix("New, "))
        .and_then(|rest| rest.split(',').next())
        .filter(|version| *version != "(NONE)")
        .map(str::to_string)
}

#[actix_web::test]
async fn only_tls_1_2_and_1_3_are_spoken() {
    let root = Pki::new("Test Root CA");
    let server =
        Server::launch(https(&root.server("server")).https(client_config(&root.ca(), None))).await;
    let port = server.port;
    let ca = root.ca();
    assert_eq!(negotiated(port, &ca, "-tls1_3").as_deref(), Some("TLSv1.3"));
    assert_eq!(negotiated(port, &ca, "-tls1_2").as_deref(), Some("TLSv1.2"));
    // Debian's OpenSSL 3 no longer offers TLS 1.1 at all, so the question
    // "would we speak it?" is asked with a hand-made TLS 1.1 ClientHello:
    // a server that spoke 1.1 would answer with a ServerHello (record type
    // 22); we answer with a fatal alert (21, level 2; rustls says
    // handshake_failure, since none of 1.1's suites is one it has).
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    std::io::Write::write_all(&mut stream, &tls_1_1_client_hello()).expect("hello");
    let mut answer = [0u8; 7];
    std::io::Read::read_exact(&mut stream, &mut answer).expect("an answer");
    assert_eq!(
        (answer[0], answer[5]),
        (21, 2),
        "not a fatal alert: {answer:?}"
    );
    // decode_error would mean the hello was malformed, proving nothing.
    assert_ne!(answer[6], 50, "the hand-made hello is malformed");
}

/// A ClientHello offering at most TLS 1.1, with suites and extensions a
/// TLS 1.1 server with an EC certificate would accept.
fn tls_1_1_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version: TLS 1.1
    body.extend([7u8; 32]); // random
    body.push(0); // no session id
    // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, TLS_RSA_WITH_AES_128_CBC_SHA
    body.extend([0x00, 0x04, 0xc0, 0x09, 0x00, 0x2f]);
    body.extend([0x01, 0x00]); // compression: none
    let extensions = [
        0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17, // supported_groups: secp256r1
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
    ];
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut handshake = vec![0x01]; // client_hello
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01]; // handshake record
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

#[actix_web::test]
async fn ingest_needs_a_client_certificate_the_rest_does_not() {
    let root = Pki::new("Test Root CA");
    let machines = Pki::new("Machines CA");
    let stranger = Pki::new("Stranger CA");
    let server = Server::launch(
        https(&root.server("server"))
            .env("OGLOGSTREAM_SERVER__TLS_CLIENT_CA", &machines.ca_str())
            .https(client_config(&root.ca(), None)),
    )
    .await;
    // A browser (no certificate) reads, and is refused ingest.
    let (status, body) = server.post_log(&log("info", "m2m", "no cert")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|error| error.contains("server.tls_client_ca")),
        "{body}"
    );
    let (status, _) = server.get("/api/logs").await;
    assert_eq!(status, StatusCode::OK);
    // A machine with a certificate the CA signed ships.
    let shipper = client(&root.ca(), Some(&machines.client("shipper")));
    let response = shipper
        .post(server.url("/log"))
        .insert_header(("Content-Type", "application/json"))
        .send_body(log("info", "m2m", "with cert").to_string())
        .await
        .expect("a request with a client certificate");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // A certificate from another CA does not get a connection.
    let intruder = client(&root.ca(), Some(&stranger.client("intruder")));
    let refused = intruder
        .post(server.url("/log"))
        .insert_header(("Content-Type", "application/json"))
        .send_body(log("info", "m2m", "wrong CA").to_string())
        .await;
    assert!(refused.is_err(), "a stranger's certificate was accepted");
    server.wait_stored(1).await;
    let (_, page) = server.get("/api/logs?service=m2m").await;
    assert_eq!(page.as_array().map(Vec::len), Some(1), "{page}");
}

fn client(ca: &Path, identity: Option<&Identity>) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(client_config(ca, identity))))
        .timeout(Duration::from_secs(10))
        .finish()
}

#[actix_web::test]
async fn client_auth_all_refuses_any_connection_without_a_certificate() {
    let root = Pki::new("Test Root CA");
    let machines = Pki::new("Machines CA");
    let machine = machines.client("collector");
    let server = Server::launch(
        https(&root.server("server"))
            .env("OGLOGSTREAM_SERVER__TLS_CLIENT_CA", &machines.ca_str())
            .env("OGLOGSTREAM_SERVER__TLS_CLIENT_AUTH", "all")
            .https(client_config(&root.ca(), Some(&machine))),
    )
    .await;
    let anonymous = client(&root.ca(), None)
        .get(server.url("/health"))
        .send()
        .await;
    assert!(
        anonymous.is_err(),
        "a client without a certificate connected"
    );
    server.accept(&log("info", "all", "with cert")).await;
}

#[test]
fn unusable_tls_settings_stop_start_up_naming_the_setting() {
    let root = Pki::new("Test Root CA");
    let one = root.server("one");
    let other = root.server("other");
    let listen = ["--listen", "127.0.0.1:0"];
    // (environment, the setting named, the problem stated)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 4] = [
        (
            &[("OGLOGSTREAM_SERVER__TLS_CERT", one.cert_str())],
            "server.tls_key",
            "give the private key",
        ),
        (
            &[
                ("OGLOGSTREAM_SERVER__TLS_CERT", one.cert_str()),
                ("OGLOGSTREAM_SERVER__TLS_KEY", other.key_str()),
            ],
            "server.tls_key",
            "is not the key of the certificate",
        ),
        (
            &[
                ("OGLOGSTREAM_SERVER__TLS_CERT", "/nonexistent/cert.pem"),
                ("OGLOGSTREAM_SERVER__TLS_KEY", one.key_str()),
            ],
            "server.tls_cert",
            "/nonexistent/cert.pem: cannot read it",
        ),
        (
            &[
                ("OGLOGSTREAM_SERVER__TLS_CERT", one.cert_str()),
                ("OGLOGSTREAM_SERVER__TLS_KEY", one.key_str()),
                ("OGLOGSTREAM_SERVER__TLS_CLIENT_AUTH", "sometimes"),
            ],
            "server.tls_client_auth",
            "\"sometimes\"",
        ),
    ];
    for (env, key, problem) in cases {
        let output = run_to_exit(&listen, env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{env:?} started");
        assert!(
            stderr.contains(key) && stderr.contains(problem),
            "{env:?}: expected {key} and {problem:?} in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
