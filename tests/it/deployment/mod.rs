//! The scale-out deployment: `haproxy/haproxy.cfg`, `compose.yaml` and the
//! image's health check, checked with the real tools (Debian's `haproxy` and
//! `docker-compose`, which parses compose files without a Docker engine).
//! A missing tool fails the test with the package to install: `make test`
//! installs them.
//!
//! `routing` and `failover` run the same HAProxy configuration on loopback,
//! in front of real processes of the binary; [`loopback_haproxy_config`] is
//! the one transformation they apply to it. `observability` checks the
//! Grafana dashboard and the Prometheus rules (`deploy/`) with `promtool`
//! and against a real scrape; `kubernetes` the manifests in `k8s/` with
//! `kubernetes-validate`.

use crate::support::Server;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod compose_cluster;
mod failover;
mod kubernetes;
mod nats_cluster;
mod observability;
mod routing;

pub const HAPROXY_CONFIG: &str = "haproxy/haproxy.cfg";

pub fn repository_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub fn read_repository_file(relative: &str) -> String {
    std::fs::read_to_string(repository_file(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

/// A system tool, looked up on PATH and in the Debian locations (`/usr/sbin`
/// is not on every user's PATH). Fails the test, naming the package, when
/// the tool is missing.
pub fn system_tool(name: &str, debian_package: &str) -> PathBuf {
    let path_dirs = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: this test needs it (Debian package `{debian_package}`; \
                 `make test` installs it)"
            )
        })
}

/// A program from the tests' Python virtual environment (`target/test-venv`,
/// packages pinned in `tests/requirements.txt`). Fails the test, naming the
/// command that installs it, when it is missing.
pub fn test_venv_tool(name: &str) -> PathBuf {
    let tool = repository_file("target/test-venv/bin").join(name);
    assert!(
        tool.is_file(),
        "{} is missing: run scripts/install-test-deps.sh (make test does), which installs \
         tests/requirements.txt into target/test-venv",
        tool.display()
    );
    tool
}

/// Every document of a YAML file (`---`-separated), as JSON values: PyYAML
/// (pinned in tests/requirements.txt) parses, serde_json carries them here.
pub fn yaml_documents(relative: &str) -> Vec<serde_json::Value> {
    parse_yaml(relative, &read_repository_file(relative))
}

/// [`yaml_documents`] of a text; `what` names it in a failure.
pub fn parse_yaml(what: &str, text: &str) -> Vec<serde_json::Value> {
    let script = "import json, sys, yaml\n\
                  json.dump(list(yaml.safe_load_all(sys.stdin)), sys.stdout)";
    let mut python = Command::new(test_venv_tool("python"))
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    python
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write YAML to python");
    let output = python.wait_with_output().expect("python");
    assert!(
        output.status.success(),
        "{what} is not valid YAML: {}",
        describe(&output)
    );
    serde_json::from_slice(&output.stdout).expect("PyYAML's JSON")
}

/// The strings of a JSON array (nothing for anything else).
pub fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| item.as_str().expect("a string").to_string())
        .collect()
}

/// `(source, target)` of each volume of a service in resolved compose
/// output (`SOURCE:TARGET[:MODE]`; sources of bind mounts are absolute).
pub fn compose_mounts(service: &serde_json::Value) -> Vec<(String, String)> {
    strings(&service["volumes"])
        .iter()
        .map(|volume| {
            let parts: Vec<&str> = volume.split(':').collect();
            (parts[0].to_string(), parts[1].to_string())
        })
        .collect()
}

/// Runs a tool and fails the test with its output unless it exits 0.
pub fn assert_succeeds(what: &str, command: &mut Command) -> Output {
    let output = run(command);
    assert!(output.status.success(), "{what}: {}", describe(&output));
    output
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `haproxy -c -f FILE`: exits 0 only for a valid configuration.
pub fn assert_haproxy_accepts(config_file: &Path) {
    let output = run(Command::new(system_tool("haproxy", "haproxy"))
        .arg("-c")
        .arg("-f")
        .arg(config_file));
    assert!(
        output.status.success(),
        "haproxy rejects {}: {}",
        config_file.display(),
        describe(&output)
    );
}

/// The shipped HAProxy configuration, for processes on loopback instead of
/// compose's containers. The transformation, and the only one:
///
/// - each `server-template <prefix> <count> <name>:<port> <parameters>` line
///   becomes one `server <prefix><n> 127.0.0.1:<port n> <parameters>` line per
///   port given for that prefix (the parameters, health checks included, are
///   kept as written; `resolvers` and `init-addr` only apply to host names,
///   so they are inert on addresses);
/// - each `bind :<port>` line becomes `bind 127.0.0.1:<free port>` (its
///   options kept), through `binds` (shipped port -> port to use);
/// - a template's `port <n>` (a check on another port of the same
///   instance) becomes the port of that instance in the template whose
///   address has port `n`.
///
/// Every other line is kept byte for byte. Panics when the file has a
/// template or a bind the caller did not map, so the file cannot drift away
/// from what the fail-over test covers.
pub fn loopback_haproxy_config(
    original: &str,
    binds: &HashMap<u16, u16>,
    servers: &HashMap<&str, Vec<u16>>,
) -> String {
    let mut generated = String::with_capacity(original.len() + 1024);
    for line in original.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["server-template", prefix, _count, _address, parameters @ ..] => {
                let ports = servers.get(prefix).unwrap_or_else(|| {
                    panic!("{HAPROXY_CONFIG}: no ports given for server-template {prefix}")
                });
                // `check port N`: the same instance's port of another
                // template (the one whose address has port N).
                let check_port_of = parameters
                    .iter()
                    .position(|word| *word == "port")
                    .map(|at| {
                        let shipped = parameters.get(at + 1).copied().unwrap_or_default();
                        let template = check_port_templates(original, shipped);
                        let ports = servers.get(template.as_str()).unwrap_or_else(|| {
                            panic!("{HAPROXY_CONFIG}: no ports given for {template}, whose port {prefix} checks")
                        });
                        (at + 1, ports)
                    });
                for (index, port) in ports.iter().enumerate() {
                    let mut parameters: Vec<String> =
                        parameters.iter().map(|word| word.to_string()).collect();
                    if let Some((at, check_ports)) = check_port_of {
                        parameters[at] = check_ports
                            .get(index)
                            .unwrap_or_else(|| {
                                panic!("{prefix}: a check port for server {}", index + 1)
                            })
                            .to_string();
                    }
                    generated.push_str(&format!(
                        "{indent}server {prefix}{} 127.0.0.1:{port} {}\n",
                        index + 1,
                        parameters.join(" ")
                    ));
                }
            }
            ["bind", address, options @ ..] => {
                let shipped: u16 = address
                    .strip_prefix(':')
                    .and_then(|port| port.parse().ok())
                    .unwrap_or_else(|| {
                        panic!("{HAPROXY_CONFIG}: expected `bind :PORT`, found {line:?}")
                    });
                let port = binds.get(&shipped).unwrap_or_else(|| {
                    panic!("{HAPROXY_CONFIG}: no loopback port given for bind :{shipped}")
                });
                // Options (`proto h2`) are kept as written.
                let options: String = options.iter().map(|option| format!(" {option}")).collect();
                generated.push_str(&format!("{indent}bind 127.0.0.1:{port}{options}\n"));
            }
            ["bind"] => panic!("{HAPROXY_CONFIG}: expected `bind :PORT`, found {line:?}"),
            _ => {
                generated.push_str(line);
                generated.push('\n');
            }
        }
    }
    generated
}

/// The template whose servers listen on `port` of the same hosts (for a
/// `check port` of another template): `ingest` for the ingest instances'
/// HTTP port 8080, say.
fn check_port_templates(original: &str, port: &str) -> String {
    original
        .lines()
        .find_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["server-template", prefix, _count, address, ..]
                    if address.rsplit(':').next() == Some(port)
                        && !line.contains(&format!("port {port}")) =>
                {
                    Some(prefix.to_string())
                }
                _ => None,
            }
        })
        .unwrap_or_else(|| panic!("{HAPROXY_CONFIG}: no server-template listens on port {port}"))
}

/// HAProxy running the shipped configuration in the foreground (`-db`) on
/// loopback, killed on drop.
pub struct HaProxy {
    child: Child,
    pub http_port: u16,
    pub stats_port: u16,
    /// The OTLP/gRPC frontend.
    pub grpc_port: u16,
    log_path: PathBuf,
    client: awc::Client,
    _workspace: tempfile::TempDir,
}

/// One row of the statistics page's CSV export: a frontend, a backend
/// (`server` is `BACKEND`) or one of its servers.
#[derive(Clone, Debug)]
pub struct StatsRow {
    pub proxy: String,
    pub server: String,
    /// `UP`, `DOWN`, `OPEN`, `MAINT`...
    pub status: String,
    /// Sessions open now.
    pub current_sessions: u64,
    /// Sessions since start.
    pub total_sessions: u64,
}

impl HaProxy {
    /// `haproxy/haproxy.cfg` through [`loopback_haproxy_config`], with the
    /// servers of each template on the given ports, on free ports.
    /// Without an `ingest_grpc` entry its backend has no server (and
    /// the gRPC frontend no instance to reach).
    pub fn in_front_of(servers: &HashMap<&str, Vec<u16>>) -> HaProxy {
        let (http_port, stats_port, grpc_port) = (
            crate::support::free_port(),
            crate::support::free_port(),
            crate::support::free_port(),
        );
        let mut servers = servers.clone();
        servers.entry("ingest_grpc").or_default();
        let config = loopback_haproxy_config(
            &read_repository_file(HAPROXY_CONFIG),
            &HashMap::from([(80, http_port), (8404, stats_port), (4317, grpc_port)]),
            &servers,
        );
        let workspace = tempfile::tempdir().expect("temp dir");
        let config_path = workspace.path().join("haproxy.cfg");
        std::fs::write(&config_path, config).expect("write haproxy.cfg");
        let log_path = workspace.path().join("haproxy.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(system_tool("haproxy", "haproxy"))
            .arg("-db")
            .arg("-f")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        HaProxy {
            child,
            http_port,
            stats_port,
            grpc_port,
            log_path,
            client: awc::Client::builder()
                .timeout(Duration::from_secs(10))
                .finish(),
            _workspace: workspace,
        }
    }

    /// In front of one instance per role (`--role all` may fill all
    /// three), once HAProxy has every one of them in rotation.
    pub async fn one_of_each(ingest: u16, process: u16, query: u16) -> HaProxy {
        let haproxy = HaProxy::in_front_of(&HashMap::from([
            ("ingest", vec![ingest]),
            ("process", vec![process]),
            ("query", vec![query]),
        ]));
        haproxy
            .wait_for_states(&[
                ("ingest", "ingest1", "UP"),
                ("process", "process1", "UP"),
                ("query", "query1", "UP"),
            ])
            .await;
        haproxy
    }

    /// In front of one instance per role, the ingest instance's OTLP gRPC
    /// listener on `ingest_grpc`, once all are in rotation.
    pub async fn one_of_each_with_grpc(
        ingest: u16,
        ingest_grpc: u16,
        process: u16,
        query: u16,
    ) -> HaProxy {
        let haproxy = HaProxy::in_front_of(&HashMap::from([
            ("ingest", vec![ingest]),
            ("ingest_grpc", vec![ingest_grpc]),
            ("process", vec![process]),
            ("query", vec![query]),
        ]));
        haproxy
            .wait_for_states(&[
                ("ingest", "ingest1", "UP"),
                ("ingest_grpc", "ingest_grpc1", "UP"),
                ("process", "process1", "UP"),
                ("query", "query1", "UP"),
            ])
            .await;
        haproxy
    }

    /// HOST:PORT of the OTLP/gRPC frontend.
    pub fn grpc_address(&self) -> String {
        format!("127.0.0.1:{}", self.grpc_port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    pub fn stats_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.stats_port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The statistics page's CSV export; empty while HAProxy is not up.
    pub async fn stats(&self) -> Vec<StatsRow> {
        let Ok(mut response) = self.client.get(self.stats_url("/stats;csv")).send().await else {
            return Vec::new();
        };
        let body = response.body().limit(1 << 20).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let column = |name: &str| {
            header
                .iter()
                .position(|c| *c == name)
                .unwrap_or_else(|| panic!("no {name} column in HAProxy's CSV: {header:?}"))
        };
        let (status, current, total) = (column("status"), column("scur"), column("stot"));
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|fields| fields.len() > status.max(current).max(total))
            .map(|fields| StatsRow {
                proxy: fields[0].to_string(),
                server: fields[1].to_string(),
                status: fields[status].to_string(),
                current_sessions: fields[current].parse().unwrap_or(0),
                total_sessions: fields[total].parse().unwrap_or(0),
            })
            .collect()
    }

    pub async fn row(&self, proxy: &str, server: &str) -> Option<StatsRow> {
        self.stats()
            .await
            .into_iter()
            .find(|row| row.proxy == proxy && row.server == server)
    }

    /// Polls the statistics until every `(backend, server, status)` holds.
    pub async fn wait_for_states(&self, wanted: &[(&str, &str, &str)]) {
        let within = Duration::from_secs(20);
        let deadline = Instant::now() + within;
        loop {
            let rows = self.stats().await;
            let reached = wanted.iter().all(|(proxy, server, status)| {
                rows.iter().any(|row| {
                    row.proxy == *proxy && row.server == *server && row.status == *status
                })
            });
            if reached {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy did not reach {wanted:?} within {within:?}; stats: {rows:?}\nlog:\n{}",
                self.logs()
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_shipped_haproxy_config_is_valid() {
    // Validates without Docker's DNS server: `init-addr none` lets the
    // templates start unresolved, and the resolvers are not contacted by -c.
    assert_haproxy_accepts(&repository_file(HAPROXY_CONFIG));
}

#[test]
fn the_loopback_config_differs_from_the_shipped_one_only_in_addresses() {
    let original = read_repository_file(HAPROXY_CONFIG);
    let binds = HashMap::from([(80, 18000), (8404, 18404), (4317, 14317)]);
    let servers = HashMap::from([
        ("ingest", vec![19001, 19002, 19003]),
        ("ingest_grpc", vec![19031, 19032, 19033]),
        ("process", vec![19011, 19012, 19013]),
        ("query", vec![19021, 19022, 19023]),
    ]);
    let generated = loopback_haproxy_config(&original, &binds, &servers);

    let without_addresses = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| {
                let first = line.split_whitespace().next();
                !matches!(first, Some("server" | "server-template" | "bind"))
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(without_addresses(&original), without_addresses(&generated));
    for (prefix, ports) in &servers {
        for (index, port) in ports.iter().enumerate() {
            let line = match *prefix {
                // Checked on the same instance's HTTP port.
                "ingest_grpc" => format!(
                    "server {prefix}{} 127.0.0.1:{port} proto h2 check port {} ",
                    index + 1,
                    servers["ingest"][index]
                ),
                _ => format!("server {prefix}{} 127.0.0.1:{port} check", index + 1),
            };
            assert!(generated.contains(&line), "{line:?} in:\n{generated}");
        }
    }
    assert!(generated.contains("bind 127.0.0.1:18000\n"));
    assert!(generated.contains("bind 127.0.0.1:14317 proto h2\n"));
    assert!(generated.contains("bind 127.0.0.1:18404\n"));
    assert!(
        !generated
            .lines()
            .any(|line| line.trim_start().starts_with("server-template")),
        "{generated}"
    );

    let workspace = tempfile::tempdir().expect("temp dir");
    let file = workspace.path().join("haproxy.cfg");
    std::fs::write(&file, &generated).expect("write config");
    assert_haproxy_accepts(&file);
}

/// `docker-compose config`: parses, validates and prints the resolved file.
fn compose_config(profile: Option<&str>) -> String {
    compose_config_of(&["compose.yaml"], profile)
}

/// `docker-compose -f FILE... config`: the files merged as compose merges
/// them (later files override earlier ones), validated and resolved.
pub fn compose_config_of(files: &[&str], profile: Option<&str>) -> String {
    let mut command = Command::new(system_tool("docker-compose", "docker-compose"));
    command
        .current_dir(repository_file(""))
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROFILES")
        .env_remove("CLICKHOUSE_PASSWORD");
    for file in files {
        command.arg("-f").arg(file);
    }
    if let Some(profile) = profile {
        command.arg("--profile").arg(profile);
    }
    let output = run(command.arg("config"));
    assert!(
        output.status.success(),
        "{files:?} do not parse (profile {profile:?}): {}",
        describe(&output)
    );
    String::from_utf8(output.stdout).expect("utf-8 config")
}

/// The lines of one service in `docker-compose config` output (services
/// are indented by two spaces, their keys by four).
fn service_block<'a>(config: &'a str, service: &str) -> Vec<&'a str> {
    let header = format!("  {service}:");
    let mut lines = config.lines().skip_while(|line| *line != header);
    assert!(
        lines.next().is_some(),
        "service {service} in the resolved compose file:\n{config}"
    );
    lines.take_while(|line| line.starts_with("    ")).collect()
}

#[test]
fn compose_file_parses_and_its_roles_scale() {
    let config = compose_config(None);
    for service in [
        "nats",
        "clickhouse",
        "ingest",
        "process",
        "query",
        "haproxy",
    ] {
        service_block(&config, service);
    }
    for role in ["ingest", "process", "query"] {
        let block = service_block(&config, role).join("\n");
        // `--scale` needs replicas that do not collide on a name or a port.
        assert!(!block.contains("container_name:"), "{role}:\n{block}");
        assert!(!block.contains("ports:"), "{role}:\n{block}");
        assert!(
            block.contains(&format!("OGLOGSTREAM_ROLE: {role}")),
            "{role}:\n{block}"
        );
        assert!(
            block.contains("NATS_URL: nats://nats:4222"),
            "{role}:\n{block}"
        );
        assert!(
            block.contains("condition: service_healthy"),
            "{role}:\n{block}"
        );
    }
    let haproxy = service_block(&config, "haproxy").join("\n");
    assert!(
        haproxy.contains("published: 80")
            && haproxy.contains("published: 8404")
            && haproxy.contains("published: 4317"),
        "{haproxy}"
    );
    // HAProxy's gRPC backend reaches the ingest instances' gRPC listener.
    let ingest = service_block(&config, "ingest").join("\n");
    assert!(
        ingest.contains("OGLOGSTREAM_OTLP__GRPC_LISTEN: 0.0.0.0:4317")
            && read_repository_file(HAPROXY_CONFIG).contains(" ingest:4317 proto h2 "),
        "{ingest}"
    );
    assert!(
        haproxy.contains("/usr/local/etc/haproxy/haproxy.cfg"),
        "{haproxy}"
    );
    let nats = service_block(&config, "nats").join("\n");
    assert!(nats.contains("- -js") && nats.contains("/data"), "{nats}");

    let dev = compose_config(Some("dev"));
    let block = service_block(&dev, "dev").join("\n");
    assert!(block.contains("OGLOGSTREAM_ROLE: all"), "{block}");
    assert!(block.contains("published: 8080"), "{block}");
    assert!(block.contains("- dev"), "{block}");
}

/// No Docker engine here to build the image: check what a build depends on.
/// Every `COPY` source exists and is not left out of the build context by
/// `.dockerignore`; the runtime stage runs as a non-root user with a
/// health check.
#[test]
fn the_dockerfile_copies_what_the_build_context_holds() {
    let dockerfile = read_repository_file("Dockerfile");
    let ignored: Vec<String> = read_repository_file(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect();
    let mut sources = Vec::new();
    for line in dockerfile.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["COPY", arguments @ .., _destination] = words.as_slice()
            && !arguments.iter().any(|a| a.starts_with("--from="))
        {
            sources.extend(
                arguments
                    .iter()
                    .map(|s| s.trim_end_matches('/').to_string()),
            );
        }
    }
    assert!(sources.len() >= 3, "COPY sources: {sources:?}");
    for source in &sources {
        assert!(
            repository_file(source).exists(),
            "Dockerfile copies {source}, which does not exist"
        );
        let excluded = ignored
            .iter()
            .any(|pattern| source == pattern || source.starts_with(&format!("{pattern}/")));
        assert!(
            !excluded,
            "Dockerfile copies {source}, which .dockerignore leaves out"
        );
    }
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 3, "web, build and runtime stages");
    let runtime = &dockerfile[dockerfile.rfind("\nFROM ").expect("a runtime stage")..];
    assert!(
        runtime.contains("\nUSER oglogstream\n"),
        "runs as a non-root user"
    );
    assert!(runtime.contains("\nHEALTHCHECK "), "has a health check");
    assert!(runtime.contains("ENTRYPOINT [\"/usr/local/bin/oglogstream\"]"));
}

/// Answers every connection with `status`, once per connection.
fn fixed_status_server(status: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    port
}

fn image_health_check(port: u16) -> Output {
    run(Command::new(repository_file("docker/healthcheck.sh")).env("HTTP_PORT", port.to_string()))
}

#[actix_web::test]
async fn the_image_health_check_passes_only_on_200() {
    let dockerfile = read_repository_file("Dockerfile");
    assert!(
        dockerfile.contains("COPY docker/healthcheck.sh /usr/local/bin/oglogstream-healthcheck")
            && dockerfile.contains("CMD [\"/usr/local/bin/oglogstream-healthcheck\"]"),
        "the Dockerfile's HEALTHCHECK runs docker/healthcheck.sh"
    );

    let server = Server::start().await;
    let healthy = image_health_check(server.port);
    assert!(healthy.status.success(), "{}", describe(&healthy));

    let unavailable = image_health_check(fixed_status_server("503 Service Unavailable"));
    assert!(!unavailable.status.success(), "{}", describe(&unavailable));

    let nothing_listening = crate::support::free_port();
    let refused = image_health_check(nothing_listening);
    assert!(!refused.status.success(), "{}", describe(&refused));
}
