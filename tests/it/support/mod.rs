//! Test harness: starts the real `oglogstream` binary on a free loopback port
//! with its own data directory, talks HTTP/WebSocket to it, and kills it on
//! drop. Waiting is always polling against a deadline.

#![allow(dead_code)]

pub mod certs;

use awc::http::StatusCode;
use serde_json::Value;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_oglogstream");

/// Environment variables that would leak the developer's settings into a test.
const ISOLATED_ENV: &[&str] = &[
    "HTTP_PORT",
    "NATS_URL",
    "CLICKHOUSE_DSN",
    "BATCH_SIZE",
    "FLUSH_TIMEOUT",
    "MAX_RETRIES",
    "SHUTDOWN_TIMEOUT",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "RUST_LOG",
    "OGLOGSTREAM_ROLE",
];

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// Polls `check` every 20 ms until it yields a value or `within` passes.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How to start a server.
#[derive(Clone, Default)]
pub struct Launch {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Reuse a data directory (for restart tests); a fresh one otherwise.
    pub data_dir: Option<PathBuf>,
    /// Skip waiting for `/health` to answer 200.
    pub no_wait: bool,
    /// Talk HTTPS to the server with this client configuration (its CA,
    /// maybe a client certificate); plain HTTP when `None`.
    pub https: Option<Arc<rustls::ClientConfig>>,
    /// Listen on this port (when the configuration must name it, as a
    /// sign-in's redirect URL does); a free one otherwise.
    pub port: Option<u16>,
}

impl Launch {
    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn arg(mut self, arg: &str) -> Launch {
        self.args.push(arg.into());
        self
    }

    pub fn data_dir(mut self, dir: &Path) -> Launch {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    pub fn https(mut self, client: rustls::ClientConfig) -> Launch {
        self.https = Some(Arc::new(client));
        self
    }

    pub fn port(mut self, port: u16) -> Launch {
        self.port = Some(port);
        self
    }
}

pub struct Server {
    child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
    /// Owns the temporary directory (data, logs) until the server is dropped.
    _workspace: tempfile::TempDir,
    stderr_path: PathBuf,
    pub client: awc::Client,
    /// `http` or `https`.
    scheme: &'static str,
}

impl Server {
    pub async fn start() -> Server {
        Server::launch(Launch::default()).await
    }

    pub async fn launch(launch: Launch) -> Server {
        let workspace = tempfile::tempdir().expect("temp dir");
        let data_dir = launch
            .data_dir
            .clone()
            .unwrap_or_else(|| workspace.path().join("data"));
        let port = launch.port.unwrap_or_else(free_port);
        let stderr_path = workspace.path().join("server.log");
        let mut command = Command::new(BINARY);
        command
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data_dir)
            .args(&launch.args)
            // Not the repository root: the shipped config file must not
            // leak into tests that do not ask for it.
            .current_dir(workspace.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).expect("log file"));
        for key in ISOLATED_ENV {
            command.env_remove(key);
        }
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start oglogstream");
        let client = match &launch.https {
            None => awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
            Some(tls) => awc::Client::builder()
                .connector(awc::Connector::new().rustls_0_23(Arc::clone(tls)))
                .timeout(Duration::from_secs(30))
                .finish(),
        };
        let server = Server {
            child,
            port,
            data_dir,
            _workspace: workspace,
            stderr_path,
            client,
            scheme: if launch.https.is_some() {
                "https"
            } else {
                "http"
            },
        };
        if !launch.no_wait {
            server.wait_healthy().await;
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    pub fn ws_url(&self, path: &str) -> String {
        let scheme = if self.scheme == "https" { "wss" } else { "ws" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.client.get(self.url("/health")).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server did not become healthy; its log:\n{}",
                self.logs()
            );
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let mut response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let body = response.body().limit(64 << 20).await.expect("body");
        (response.status(), parse_body(&body))
    }

    /// [`get`](Server::get), or `None` while the server does not answer.
    pub async fn try_get(&self, path: &str) -> Option<(StatusCode, Value)> {
        let mut response = self.client.get(self.url(path)).send().await.ok()?;
        let body = response.body().limit(64 << 20).await.ok()?;
        Some((response.status(), parse_body(&body)))
    }

    pub async fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.post(self.url(path));
        if let Some(content_type) = content_type {
            request = request.insert_header(("Content-Type", content_type));
        }
        let mut response = request
            .send_body(body.into())
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let body = response.body().limit(64 << 20).await.expect("body");
        (response.status(), parse_body(&body))
    }

    /// Posts until the server accepts (202), sending again while it answers
    /// 503 with its queue full, as a shipper does: a loaded machine's writer
    /// may fall behind a test that sends faster than it stores.
    pub async fn post_accepted(&self, path: &str, content_type: &str, body: String) {
        eventually(
            &format!("POST {path} to be accepted"),
            Duration::from_secs(60),
            || async {
                let (status, answer) = self.post(path, Some(content_type), body.clone()).await;
                match status {
                    StatusCode::ACCEPTED => Some(()),
                    StatusCode::SERVICE_UNAVAILABLE => None,
                    other => panic!("POST {path}: {other} {answer}"),
                }
            },
        )
        .await;
    }

    pub async fn post_log(&self, log: &Value) -> (StatusCode, Value) {
        self.post("/log", Some("application/json"), log.to_string())
            .await
    }

    /// Posts and asserts 202; returns the id.
    pub async fn accept(&self, log: &Value) -> String {
        let (status, body) = self.post_log(log).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// Waits until `/api/stats` counts `total` logs.
    pub async fn wait_stored(&self, total: u64) {
        eventually(
            &format!("{total} logs stored"),
            Duration::from_secs(20),
            || async {
                let (_, stats) = self.get("/api/stats").await;
                (stats["total_logs"].as_u64() == Some(total)).then_some(())
            },
        )
        .await;
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// SIGTERM, then waits (up to `within`) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit(within)
    }

    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit in {within:?}; log:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Lines of a server's log a failing test shows (its warnings and errors
/// are what says why, on a CI machine nobody can look at afterwards).
const LOG_LINES_ON_FAILURE: usize = 30;

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let logs = self.logs();
            let lines: Vec<&str> = logs.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_LINES_ON_FAILURE)..];
            eprintln!(
                "--- the last {} lines of the server on port {} ---\n{}",
                tail.len(),
                self.port,
                tail.join("\n")
            );
        }
    }
}

fn parse_body(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Runs the binary to completion (for start-up failures).
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let workspace = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .current_dir(workspace.path())
        .stdin(Stdio::null());
    for key in ISOLATED_ENV {
        command.env_remove(key);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run oglogstream")
}

pub fn log(level: &str, service: &str, message: &str) -> Value {
    serde_json::json!({"level": level, "service": service, "message": message})
}

/// Collects every stored id through `/api/logs` paging.
pub async fn all_ids(server: &Server) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let (status, page) = server
            .get(&format!(
                "/api/logs?order=asc&limit=1000&offset={}",
                ids.len()
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let rows = page.as_array().expect("array");
        ids.extend(
            rows.iter()
                .map(|row| row["id"].as_str().unwrap_or_default().to_string()),
        );
        if rows.len() < 1000 {
            return ids;
        }
    }
}

/// A `/ws/live` connection as awc opens it.
pub type LiveConnection = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

/// The next text frame of a live connection as JSON, skipping pings;
/// `None` after `within` or when the connection ends.
pub async fn next_log(connection: &mut LiveConnection, within: Duration) -> Option<Value> {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let frame = tokio::time::timeout_at(deadline, connection.next())
            .await
            .ok()??;
        if let Ok(awc::ws::Frame::Text(bytes)) = frame {
            return serde_json::from_slice(&bytes).ok();
        }
    }
}
