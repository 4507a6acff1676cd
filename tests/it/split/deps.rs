//! Private NATS and ClickHouse servers for one test: free loopback ports,
//! state in a temporary directory, killed on drop. Never the system-wide
//! instance, its ports or its data.

use crate::support::{eventually, free_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn binary(name: &str, candidates: &[&str]) -> PathBuf {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed (looked at {candidates:?}); the README's test command installs it")
        })
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `nats-server -js` with its JetStream store in a temporary directory.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Nats {
    pub async fn start() -> Nats {
        let mut nats = Nats {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        nats.resume().await;
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: nothing is flushed on the way out).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on the same port with the same store.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.path().join("nats.log")).expect("log");
        let child = Command::new(binary(
            "nats-server",
            &[
                "/usr/sbin/nats-server",
                "/usr/bin/nats-server",
                "/usr/local/bin/nats-server",
            ],
        ))
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-js",
            "-sd",
        ])
        .arg(self.dir.path().join("jetstream"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start nats-server");
        self.child = Some(child);
        let address = format!("127.0.0.1:{}", self.port);
        eventually("nats-server to listen", Duration::from_secs(20), || {
            let up = std::net::TcpStream::connect(&address).is_ok();
            async move { up.then_some(()) }
        })
        .await;
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// `clickhouse-server` from a copy of the system config with every port and
/// path moved into a temporary directory.
pub struct ClickHouse {
    child: Option<Child>,
    pub tcp_port: u16,
    pub http_port: u16,
    dir: tempfile::TempDir,
    http: awc::Client,
    /// The server's environment (what `from_env` in its config reads).
    pub env: Vec<(String, String)>,
}

impl ClickHouse {
    /// Writes the config (so ports are known) without starting the server.
    pub fn prepare() -> ClickHouse {
        let dir = tempfile::tempdir().expect("temp dir");
        let tcp_port = free_port();
        let http_port = free_port();
        let config = std::fs::read_to_string("/etc/clickhouse-server/config.xml")
            .expect("/etc/clickhouse-server/config.xml (install clickhouse-server)");
        let config = rewrite_config(&config, dir.path(), tcp_port, http_port);
        std::fs::write(dir.path().join("config.xml"), config).expect("write config");
        std::fs::copy(
            "/etc/clickhouse-server/users.xml",
            dir.path().join("users.xml"),
        )
        .expect("copy users.xml");
        ClickHouse {
            child: None,
            tcp_port,
            http_port,
            dir,
            http: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
            env: Vec::new(),
        }
    }

    /// Where `config.xml` is: files in its `config.d/` are merged into it.
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    pub async fn start() -> ClickHouse {
        let mut clickhouse = ClickHouse::prepare();
        clickhouse.launch().await;
        clickhouse
    }

    /// Starts the prepared server and waits until it answers queries.
    pub async fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("stderr.log")).expect("log");
        let child = Command::new(binary(
            "clickhouse-server",
            &["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"],
        ))
        .arg(format!(
            "--config-file={}",
            self.dir.path().join("config.xml").display()
        ))
        .current_dir(self.dir.path())
        .envs(self.env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start clickhouse-server");
        self.child = Some(child);
        eventually(
            "clickhouse-server to answer",
            Duration::from_secs(60),
            || async {
                self.query("SELECT 1")
                    .await
                    .ok()
                    .filter(|r| r.trim() == "1")
            },
        )
        .await;
    }

    pub fn dsn(&self, database: &str) -> String {
        format!(
            "clickhouse://default:@127.0.0.1:{}/{database}",
            self.tcp_port
        )
    }

    /// Runs `sql` over the HTTP interface; the body as text.
    pub async fn query(&self, sql: &str) -> Result<String, String> {
        let mut response = self
            .http
            .post(format!("http://127.0.0.1:{}/", self.http_port))
            .send_body(sql.to_string())
            .await
            .map_err(|e| e.to_string())?;
        let body = response
            .body()
            .limit(64 << 20)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&body).into_owned();
        if response.status().is_success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    pub async fn number(&self, sql: &str) -> u64 {
        let text = self
            .query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{sql}: not a number: {text}"))
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Moves ports and paths of the packaged config into `dir`. Only the
/// top-level `<path>` is data (a nested one names a ZooKeeper node), and every
/// listening port that is enabled gets a private one; TLS ports are dropped.
fn rewrite_config(config: &str, dir: &Path, tcp_port: u16, http_port: u16) -> String {
    let dir = dir.display();
    let mut out = String::with_capacity(config.len());
    for line in config.lines() {
        let trimmed = line.trim();
        let replaced = if trimmed.starts_with("<path>/var/lib/clickhouse") {
            format!("<path>{dir}/data/</path>")
        } else if trimmed.starts_with("<tmp_path>") {
            format!("<tmp_path>{dir}/tmp/</tmp_path>")
        } else if trimmed.starts_with("<user_files_path>") {
            format!("<user_files_path>{dir}/user_files/</user_files_path>")
        } else if trimmed.starts_with("<format_schema_path>") {
            format!("<format_schema_path>{dir}/format_schemas/</format_schema_path>")
        } else if trimmed.starts_with("<log>") {
            format!("<log>{dir}/log/clickhouse-server.log</log>")
        } else if trimmed.starts_with("<errorlog>") {
            format!("<errorlog>{dir}/log/clickhouse-server.err.log</errorlog>")
        } else if trimmed.starts_with("<http_port>") {
            format!("<http_port>{http_port}</http_port>")
        } else if trimmed.starts_with("<tcp_port>") {
            format!("<tcp_port>{tcp_port}</tcp_port>")
        } else if trimmed.starts_with("<interserver_http_port>") {
            format!(
                "<interserver_http_port>{}</interserver_http_port>",
                free_port()
            )
        } else if trimmed.starts_with("<mysql_port>") {
            format!("<mysql_port>{}</mysql_port>", free_port())
        } else if trimmed.starts_with("<postgresql_port>") {
            format!("<postgresql_port>{}</postgresql_port>", free_port())
        } else if trimmed.starts_with("<https_port>")
            || trimmed.starts_with("<tcp_port_secure>")
            || trimmed.starts_with("<listen_host>")
        {
            // Loopback only, plain text only: added below.
            String::new()
        } else {
            line.to_string()
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    out.replacen(
        "<http_port>",
        "<listen_host>127.0.0.1</listen_host>\n<http_port>",
        1,
    )
}
