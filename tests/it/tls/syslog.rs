//! Syslog over TLS (RFC 5425) on `syslog.tls_listen`: a private rsyslogd
//! forwards through its GnuTLS driver (`gtls`, Debian's rsyslog-gnutls),
//! octet-counted as the RFC frames it, verifying our certificate by name;
//! with `syslog.tls_client_ca` it must present a certificate of its own,
//! and a sender without one is refused (and counted).

use crate::support::certs::{Identity, Pki};
use crate::support::{Launch, Server, eventually, free_port};
use serde_json::Value;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A private rsyslogd reading lines on a TCP port and forwarding each to
/// our TLS listener.
struct Rsyslogd {
    child: Child,
    input_port: u16,
    workspace: tempfile::TempDir,
}

impl Rsyslogd {
    fn start(tls_port: u16, ca: &Path, identity: Option<&Identity>) -> Rsyslogd {
        let workspace = tempfile::tempdir().expect("temp dir");
        let work = workspace.path().join("work");
        std::fs::create_dir(&work).expect("work dir");
        let input_port = free_port();
        let own_certificate = identity
            .map(|identity| {
                format!(
                    "DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\"",
                    identity.cert.display(),
                    identity.key.display()
                )
            })
            .unwrap_or_default();
        let config = format!(
            r#"global(workDirectory="{work}" DefaultNetstreamDriverCAFile="{ca}" {own_certificate})
module(load="imptcp")
input(type="imptcp" address="127.0.0.1" port="{input_port}" ruleset="ship")
ruleset(name="ship") {{
  action(type="omfwd" target="127.0.0.1" port="{tls_port}" protocol="tcp"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format")
}}
"#,
            work = work.display(),
            ca = ca.display(),
        );
        let config_path = workspace.path().join("rsyslog.conf");
        std::fs::write(&config_path, config).expect("rsyslog.conf");
        let log = std::fs::File::create(workspace.path().join("rsyslogd.log")).expect("log");
        let child = Command::new(rsyslogd_binary())
            .arg("-n")
            .arg("-f")
            .arg(&config_path)
            .arg("-i")
            .arg(workspace.path().join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start rsyslogd");
        Rsyslogd {
            child,
            input_port,
            workspace,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.workspace.path().join("rsyslogd.log")).unwrap_or_default()
    }

    /// Writes RFC 5424 lines of `service` to rsyslogd's input.
    async fn send(&self, service: &str, messages: &[String]) {
        let mut input = eventually("rsyslogd listening", Duration::from_secs(20), || async {
            TcpStream::connect(("127.0.0.1", self.input_port)).ok()
        })
        .await;
        for (n, message) in messages.iter().enumerate() {
            let line = format!(
                "<166>1 2026-01-02T03:04:0{}.000Z host-{n} {service} 4{n} ID{n} - {message}\n",
                n % 10
            );
            input.write_all(line.as_bytes()).expect("to rsyslogd");
        }
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rsyslogd_binary() -> PathBuf {
    let binary = ["/usr/sbin/rsyslogd", "/usr/bin/rsyslogd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .expect("rsyslogd is not installed (scripts/install-test-deps.sh installs it)");
    assert!(
        Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so").is_file()
            || Path::new("/usr/lib/rsyslog/lmnsd_gtls.so").is_file(),
        "rsyslog's gtls driver is missing: install Debian's rsyslog-gnutls (scripts/install-test-deps.sh does)"
    );
    binary
}

fn syslog_tls(port: u16, identity: &Identity) -> Launch {
    Launch::default()
        .env(
            "OGLOGSTREAM_SYSLOG__TLS_LISTEN",
            &format!("127.0.0.1:{port}"),
        )
        .env("OGLOGSTREAM_SYSLOG__TLS_CERT", identity.cert_str())
        .env("OGLOGSTREAM_SYSLOG__TLS_KEY", identity.key_str())
}

async fn stored(server: &Server, service: &str, count: usize, daemon: &Rsyslogd) -> Vec<Value> {
    let path = format!("/api/logs?order=asc&limit=1000&service={service}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, rows) = server.get(&path).await;
        let rows = rows.as_array().cloned().unwrap_or_default();
        if rows.len() >= count {
            return rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {count} logs arrived; rsyslogd's log:\n{}\nour log:\n{}",
            rows.len(),
            daemon.log(),
            server.logs()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn rsyslog_ships_over_tls_to_the_rfc_5425_listener() {
    let pki = Pki::new("Syslog CA");
    let port = free_port();
    let server = Server::launch(syslog_tls(port, &pki.server("syslog"))).await;
    let daemon = Rsyslogd::start(port, &pki.ca(), None);
    let messages: Vec<String> = (0..5).map(|n| format!("over tls {n}")).collect();
    daemon.send("tls-sender", &messages).await;
    let rows = stored(&server, "tls-sender", messages.len(), &daemon).await;
    let mut got: Vec<&str> = rows
        .iter()
        .filter_map(|row| row["message"].as_str())
        .collect();
    got.sort();
    assert_eq!(got, messages.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(rows[0]["attributes"]["facility"], "local4", "{}", rows[0]);
    // The plain listener was not asked for and is not there.
    assert!(server.logs().contains("listening for syslog over TLS"));
    assert!(!server.logs().contains("listening for syslog over TCP"));
}

#[actix_web::test]
async fn with_a_client_ca_only_senders_with_a_certificate_get_in() {
    let pki = Pki::new("Syslog CA");
    let senders = Pki::new("Senders CA");
    let port = free_port();
    let server = Server::launch(
        syslog_tls(port, &pki.server("syslog"))
            .env("OGLOGSTREAM_SYSLOG__TLS_CLIENT_CA", &senders.ca_str()),
    )
    .await;
    // Without a certificate, the handshake fails and is counted.
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .arg("-CAfile")
        .arg(pki.ca())
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    assert!(output.status.code().is_some());
    eventually(
        "the refused handshake counted",
        Duration::from_secs(20),
        || async {
            let mut response = server
                .client
                .get(server.url("/metrics"))
                .send()
                .await
                .ok()?;
            let text = String::from_utf8(response.body().await.ok()?.to_vec()).ok()?;
            text.lines()
                .any(|line| line == "oglogstream_syslog_tls_handshake_failures_total 1")
                .then_some(())
        },
    )
    .await;
    // rsyslogd with a certificate the CA signed ships.
    let daemon = Rsyslogd::start(port, &pki.ca(), Some(&senders.client("rsyslog-sender")));
    let messages = vec!["mutual tls".to_string()];
    daemon.send("mtls-sender", &messages).await;
    let rows = stored(&server, "mtls-sender", 1, &daemon).await;
    assert_eq!(rows[0]["message"], "mutual tls");
}
