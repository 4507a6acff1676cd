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

/// JetStream's storage limit for test servers. Unset, a server allows 75% of
/// the disk's free space, so a stream asking for a few GiB (the stream setup
/// tests raise limits to 16 GiB) failed on a nearly full disk; the limit
/// only bounds reservations, nothing is written ahead.
const MAX_FILE_STORE: &str = "1T";

/// `nats-server` with JetStream, its store in a temporary directory.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// More of the server's configuration (TLS, authorization).
    extra_config: String,
}

impl Nats {
    pub async fn start() -> Nats {
        Nats::start_with("").await
    }

    /// With `extra_config` added to the server's configuration file.
    pub async fn start_with(extra_config: &str) -> Nats {
        let mut nats = Nats {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            extra_config: extra_config.to_string(),
        };
        nats.resume().await;
        nats
    }

    /// The server's own log (its refusals, for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
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
        let config = self.dir.path().join("nats.conf");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{store}\", max_file_store: {MAX_FILE_STORE} }}\n{extra}\n",
                port = self.port,
                store = self.dir.path().join("jetstream").display(),
                extra = self.extra_config,
            ),
        )
        .expect("write nats.conf");
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let address = format!("127.0.0.1:{}", self.port);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&address).is_err() {
            // A configuration it refuses makes it exit: say why.
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            assert!(
                exited.is_none() && std::time::Instant::now() < deadline,
                "nats-server did not listen (exit: {exited:?}); its log:\n{}",
                self.log()
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Debian's ZooKeeper (`zookeeper` package), standalone, data in a
/// temporary directory: for replicated ClickHouse tables.
pub struct ZooKeeper {
    child: Option<Child>,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl ZooKeeper {
    pub async fn start() -> ZooKeeper {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let jar = "/usr/share/java/zookeeper.jar";
        assert!(
            Path::new(jar).is_file(),
            "{jar} is missing: install Debian's zookeeper (scripts/install-test-deps.sh does)"
        );
        let log = std::fs::File::create(dir.path().join("zookeeper.log")).expect("log");
        let child = Command::new("java")
            .args([
                "-cp",
                &format!("/etc/zookeeper/conf:{jar}"),
                "-Dzookeeper.admin.enableServer=false",
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                &port.to_string(),
            ])
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ZooKeeper");
        let address = format!("127.0.0.1:{port}");
        eventually("ZooKeeper to listen", Duration::from_secs(30), || {
            let up = std::net::TcpStream::connect(&address).is_ok();
            async move { up.then_some(()) }
        })
        .await;
        ZooKeeper {
            child: Some(child),
            port,
            _dir: dir,
        }
    }

    /// The `<zookeeper>` element of a ClickHouse config. A short session:
    /// a killed replica's session (and its "active" mark) expires in
    /// seconds, so its restart resumes replicating without waiting 30 s.
    pub fn clickhouse_xml(&self) -> String {
        format!(
            "<zookeeper><node><host>127.0.0.1</host><port>{}</port></node>\
             <session_timeout_ms>4000</session_timeout_ms></zookeeper>",
            self.port
        )
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

fn nats_server_binary() -> PathBuf {
    binary(
        "nats-server",
        &[
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ],
    )
}

/// Three `nats-server` processes on loopback forming one JetStream cluster,
/// each from a written config file, with its store in a temporary directory.
/// Nodes can be killed, stopped gracefully and started again.
pub struct NatsCluster {
    nodes: Vec<ClusterNode>,
    dir: tempfile::TempDir,
}

struct ClusterNode {
    name: String,
    port: u16,
    child: Option<Child>,
}

impl NatsCluster {
    /// Starts three nodes and waits until JetStream answers (a meta leader
    /// is elected).
    pub async fn start() -> NatsCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, route)| format!("nats-route://127.0.0.1:{route}"))
            .collect();
        let mut nodes = Vec::new();
        for (index, (port, route)) in ports.iter().enumerate() {
            let name = format!("n{}", index + 1);
            let config = format!(
                "server_name: {name}\n\
                 listen: 127.0.0.1:{port}\n\
                 jetstream {{ store_dir: \"{store}\", max_file_store: {MAX_FILE_STORE} }}\n\
                 cluster {{\n  name: oglogstream\n  listen: 127.0.0.1:{route}\n  routes: [{routes}]\n}}\n",
                store = dir.path().join(&name).display(),
                routes = routes.join(", "),
            );
            std::fs::write(dir.path().join(format!("{name}.conf")), config).expect("write config");
            nodes.push(ClusterNode {
                name,
                port: *port,
                child: None,
            });
        }
        let mut cluster = NatsCluster { nodes, dir };
        for index in 0..3 {
            cluster.launch(index);
        }
        let url = cluster.url();
        eventually(
            "the NATS cluster's JetStream",
            Duration::from_secs(60),
            || {
                let url = url.clone();
                async move {
                    let admin = JetStreamAdmin::connect(&url).await?;
                    let info = admin.api("INFO", serde_json::json!({})).await?;
                    info.get("error").is_none().then_some(())
                }
            },
        )
        .await;
        cluster
    }

    fn launch(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        assert!(node.child.is_none(), "{} is running", node.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", node.name)))
            .expect("log");
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(self.dir.path().join(format!("{}.conf", node.name)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        node.child = Some(child);
    }

    /// Every node, comma-separated, as `NATS_URL` takes them.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn index_of(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.name == name)
            .unwrap_or_else(|| panic!("no node named {name}"))
    }

    /// SIGKILL: nothing is flushed, no leadership handed over.
    pub fn kill(&mut self, index: usize) {
        kill(&mut self.nodes[index].child);
    }

    /// SIGTERM, then waits for the node to exit.
    pub fn terminate(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            // SAFETY: signalling our own child process.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "nats-server ignored SIGTERM"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts a stopped node again with its store.
    pub fn restart(&mut self, index: usize) {
        self.launch(index);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            kill(&mut node.child);
        }
    }
}

/// JetStream's JSON API from the test, as an operator's `nats` CLI would use
/// it: to look at streams and change them behind the application's back.
pub struct JetStreamAdmin {
    client: async_nats::Client,
}

impl JetStreamAdmin {
    pub async fn connect(url: &str) -> Option<JetStreamAdmin> {
        let servers: Vec<&str> = url.split(',').collect();
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(Duration::from_secs(5)))
            .connect(servers.as_slice())
            .await
            .ok()?;
        Some(JetStreamAdmin { client })
    }

    /// `$JS.API.<subject>` with a JSON payload; `None` when nobody answers.
    pub async fn api(
        &self,
        subject: &str,
        payload: serde_json::Value,
    ) -> Option<serde_json::Value> {
        let message = self
            .client
            .request(format!("$JS.API.{subject}"), payload.to_string().into())
            .await
            .ok()?;
        serde_json::from_slice(&message.payload).ok()
    }

    /// A JetStream publish with a `Nats-Msg-Id`; the broker's ack (which
    /// says `"duplicate": true` when a message with that id is stored
    /// already, within the stream's duplicate window).
    pub async fn publish_with_id(
        &self,
        subject: &str,
        id: &str,
        payload: &str,
    ) -> serde_json::Value {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        let message = self
            .client
            .request_with_headers(subject.to_string(), headers, payload.to_string().into())
            .await
            .expect("a JetStream ack");
        serde_json::from_slice(&message.payload).expect("a JSON ack")
    }

    /// A JetStream publish with the given headers; the broker's ack.
    pub async fn publish_with_headers(
        &self,
        subject: &str,
        headers: &[(&str, &str)],
        payload: Vec<u8>,
    ) -> serde_json::Value {
        let mut map = async_nats::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, *value);
        }
        let message = self
            .client
            .request_with_headers(subject.to_string(), map, payload.into())
            .await
            .expect("a JetStream ack");
        serde_json::from_slice(&message.payload).expect("a JSON ack")
    }

    /// The stream's info once JetStream answers for it.
    pub async fn stream_info(&self, stream: &str) -> serde_json::Value {
        eventually(
            &format!("info of stream {stream}"),
            Duration::from_secs(30),
            || async {
                let info = self
                    .api(&format!("STREAM.INFO.{stream}"), serde_json::json!({}))
                    .await?;
                info.get("config").is_some().then_some(info)
            },
        )
        .await
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

    /// Ports and a directory, and a config of our own rather than a copy
    /// of the packaged one: it starts in a fraction of a second. `extra` is
    /// XML put inside `<yandex>` (a cluster, macros, ZooKeeper).
    pub fn prepare_minimal() -> ClickHouse {
        let dir = tempfile::tempdir().expect("temp dir");
        ClickHouse {
            child: None,
            tcp_port: free_port(),
            http_port: free_port(),
            dir,
            http: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
            env: Vec::new(),
        }
    }

    pub fn write_minimal_config(&self, extra: &str) {
        let dir = self.dir.path().display();
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{dir}/log/server.log</log><errorlog>{dir}/log/error.log</errorlog><size>100M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{tcp}</tcp_port>
  <http_port>{http}</http_port>
  <interserver_http_port>{interserver}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/tmp/</tmp_path>
  <user_files_path>{dir}/user_files/</user_files_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  {extra}
</yandex>
"#,
            tcp = self.tcp_port,
            http = self.http_port,
            interserver = free_port(),
        );
        std::fs::write(self.dir.path().join("config.xml"), config).expect("write config");
        let users = r#"<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"#;
        std::fs::write(self.dir.path().join("users.xml"), users).expect("write users");
    }

    /// Kills the server (SIGKILL); `launch` starts it again with its data.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Stops the server as an operator would (SIGTERM, then waits for it to
    /// exit; SIGKILL after a minute). A replica of 18.16 killed in the
    /// middle of a merge can come back without a rollup part the other
    /// replica has merged away (seen 1 run in 4-6), which is ClickHouse's
    /// recovery, not ours to test.
    pub fn shut_down(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
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
        // A few seconds alone; over a minute once with the suite and builds
        // loading both cores.
        eventually(
            "clickhouse-server to answer",
            Duration::from_secs(150),
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

/// `<remote_servers>` naming a cluster of `shards`, each a list of replicas.
pub fn cluster_xml(name: &str, shards: &[Vec<&ClickHouse>], internal_replication: bool) -> String {
    let mut xml = format!("<remote_servers><{name}>");
    for replicas in shards {
        xml.push_str(&format!(
            "<shard><internal_replication>{internal_replication}</internal_replication>"
        ));
        for replica in replicas {
            xml.push_str(&format!(
                "<replica><host>127.0.0.1</host><port>{}</port></replica>",
                replica.tcp_port
            ));
        }
        xml.push_str("</shard>");
    }
    xml.push_str(&format!("</{name}></remote_servers>"));
    xml
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
