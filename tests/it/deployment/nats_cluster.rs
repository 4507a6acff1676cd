//! A shipped NATS cluster configuration (k8s/nats.yaml's ConfigMap,
//! deploy/compose/nats-cluster.conf), run for real: one `nats-server` per
//! node on loopback, until JetStream has formed its cluster.

use super::system_tool;
use crate::support::free_port;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
pub struct NatsPorts {
    pub client: u16,
    pub cluster: u16,
    pub monitor: u16,
}

/// A shipped `nats.conf` for node `node` on loopback. The transformation,
/// and the only one:
///
/// - the client (`listen: 0.0.0.0:4222`), monitoring (`http: 0.0.0.0:8222`)
///   and cluster (`listen: 0.0.0.0:6222` in `cluster {}`) listeners move to
///   the node's loopback ports;
/// - each route `nats://HOST:6222` goes to the loopback cluster port of
///   the node `HOST` names (`route_hosts[n]` is node n's host name);
/// - `store_dir` and `pid_file` move into `directory`.
///
/// Every other line is kept. A listener or route in another form panics,
/// and so does a file without every node's route, so the shipped file
/// cannot drift from what the test runs.
pub fn loopback_nats_config(
    original: &str,
    node: usize,
    ports: &[NatsPorts],
    directory: &Path,
    route_hosts: &[&str],
) -> String {
    let mut in_cluster = false;
    let mut routed = vec![false; route_hosts.len()];
    let mut lines = Vec::new();
    for line in original.lines() {
        let trimmed = line.trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        if trimmed.starts_with("cluster {") {
            in_cluster = true;
        }
        let key_value = trimmed
            .split_once(':')
            .map(|(key, value)| (key.trim(), value.trim()));
        let replaced = match key_value {
            Some(("listen", "0.0.0.0:4222")) if !in_cluster => {
                Some(format!("listen: 127.0.0.1:{}", ports[node].client))
            }
            Some(("listen", "0.0.0.0:6222")) if in_cluster => {
                Some(format!("listen: 127.0.0.1:{}", ports[node].cluster))
            }
            Some(("http", "0.0.0.0:8222")) => {
                Some(format!("http: 127.0.0.1:{}", ports[node].monitor))
            }
            Some(("listen" | "http", value)) => panic!("nats.conf: unexpected listener {value:?}"),
            Some(("store_dir", _)) => Some(format!("store_dir: {:?}", directory.join("jetstream"))),
            Some(("pid_file", _)) => Some(format!("pid_file: {:?}", directory.join("nats.pid"))),
            Some(("nats", _)) => {
                let host = trimmed
                    .strip_prefix("nats://")
                    .and_then(|rest| rest.strip_suffix(":6222"))
                    .unwrap_or_else(|| panic!("nats.conf: unexpected route {trimmed:?}"));
                let peer = route_hosts
                    .iter()
                    .position(|known| *known == host)
                    .unwrap_or_else(|| {
                        panic!("nats.conf: route to {host}, not a node ({route_hosts:?})")
                    });
                routed[peer] = true;
                Some(format!("nats://127.0.0.1:{}", ports[peer].cluster))
            }
            _ => None,
        };
        lines.push(match replaced {
            Some(new) => format!("{indent}{new}"),
            None => line.to_string(),
        });
    }
    assert!(
        routed.iter().all(|routed| *routed),
        "nats.conf routes to every node of {route_hosts:?}"
    );
    lines.join("\n") + "\n"
}

/// `nats-server` processes, one per node, killed on drop.
pub struct NatsNodes {
    children: Vec<Child>,
    pub ports: Vec<NatsPorts>,
    workspace: tempfile::TempDir,
    client: awc::Client,
}

impl NatsNodes {
    /// One node per entry of `route_hosts` from `config`, node n with the
    /// environment `environment(n)` (where the file names its server).
    pub fn start(
        config: &str,
        route_hosts: &[&str],
        environment: impl Fn(usize) -> Vec<(String, String)>,
    ) -> NatsNodes {
        let ports: Vec<NatsPorts> = route_hosts
            .iter()
            .map(|_| NatsPorts {
                client: free_port(),
                cluster: free_port(),
                monitor: free_port(),
            })
            .collect();
        let workspace = tempfile::tempdir().expect("temp dir");
        let mut children = Vec::new();
        for node in 0..route_hosts.len() {
            let directory = workspace.path().join(format!("node-{node}"));
            std::fs::create_dir_all(&directory).expect("node directory");
            let file = directory.join("nats.conf");
            let loopback = loopback_nats_config(config, node, &ports, &directory, route_hosts);
            std::fs::write(&file, loopback).expect("write nats.conf");
            let log = std::fs::File::create(directory.join("nats.log")).expect("log file");
            let child = Command::new(system_tool("nats-server", "nats-server"))
                .arg("--config")
                .arg(&file)
                .envs(environment(node))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start nats-server");
            children.push(child);
        }
        NatsNodes {
            children,
            ports,
            workspace,
            client: awc::Client::builder()
                .timeout(Duration::from_secs(5))
                .finish(),
        }
    }

    pub fn logs(&self) -> String {
        (0..self.ports.len())
            .map(|node| {
                let path = self.workspace.path().join(format!("node-{node}/nats.log"));
                std::fs::read_to_string(path).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n----\n")
    }

    /// Status and body of a GET on node `node`'s monitoring port.
    pub async fn monitor(&self, node: usize, path: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.ports[node].monitor);
        let mut response = self.client.get(url).send().await.ok()?;
        let body = response.body().limit(1 << 20).await.ok()?;
        Some((
            response.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        ))
    }

    /// Waits until every node reports a JetStream meta group of all nodes
    /// with a leader; returns the server names the nodes report.
    pub async fn wait_for_jetstream_cluster(&self) -> Vec<String> {
        let nodes = self.ports.len();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut names = Vec::new();
        for node in 0..nodes {
            loop {
                let jsz = self.monitor(node, "/jsz").await;
                if let Some((200, body)) = &jsz {
                    let jsz: Value = serde_json::from_str(body).unwrap_or_default();
                    let meta = &jsz["meta_cluster"];
                    if meta["cluster_size"].as_u64() == Some(nodes as u64)
                        && meta["leader"]
                            .as_str()
                            .is_some_and(|leader| !leader.is_empty())
                    {
                        break;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "no JetStream cluster of {nodes} with a leader; node {node}'s /jsz: {jsz:?}\nlogs:\n{}",
                    self.logs()
                );
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
            let varz = self.monitor(node, "/varz").await;
            let varz: Value = varz
                .and_then(|(_, body)| serde_json::from_str(&body).ok())
                .unwrap_or_default();
            names.push(varz["server_name"].as_str().unwrap_or_default().to_string());
        }
        names
    }
}

impl Drop for NatsNodes {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
