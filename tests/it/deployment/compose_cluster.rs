//! The production cluster for compose (`compose.yaml` + `compose.cluster.yaml`,
//! files in `deploy/compose/`): parsed and resolved by `docker-compose`, its
//! services wired to one another as the configuration files name them, the
//! NATS file forming a three-node JetStream cluster in the real `nats-server`,
//! and the ClickHouse files loaded by the real `clickhouse-server` into a
//! cluster of two shards of two replicas.

use super::nats_cluster::NatsNodes;
use super::{
    compose_config_of, compose_mounts, parse_yaml, read_repository_file, repository_file, strings,
    test_venv_tool,
};
use crate::split::deps::ClickHouse;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const CLUSTER_FILES: [&str; 2] = ["compose.yaml", "compose.cluster.yaml"];
const NATS_CONFIG: &str = "deploy/compose/nats-cluster.conf";
const CLICKHOUSE_CONFIG: [&str; 3] = ["remote_servers.xml", "macros.xml", "zookeeper.xml"];
const ROLES: [&str; 3] = ["ingest", "process", "query"];

/// The services of the merged, resolved cluster files.
fn cluster_services() -> BTreeMap<String, Value> {
    let resolved = compose_config_of(&CLUSTER_FILES, None);
    let config = parse_yaml("docker-compose config", &resolved).remove(0);
    config["services"]
        .as_object()
        .expect("services")
        .iter()
        .map(|(name, service)| (name.clone(), service.clone()))
        .collect()
}

/// Names of the services that mount the repository file `relative` at `target`.
fn services_mounting(
    services: &BTreeMap<String, Value>,
    relative: &str,
    target: &str,
) -> BTreeSet<String> {
    let source = repository_file(relative).display().to_string();
    services
        .iter()
        .filter(|(_, service)| {
            compose_mounts(service).contains(&(source.clone(), target.to_string()))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

fn environment<'a>(service: &'a Value, key: &str) -> Option<&'a str> {
    service["environment"][key].as_str()
}

/// The cluster of `remote_servers.xml`: its name and, per shard, its
/// replicas' host names (Python's ElementTree parses the XML).
fn remote_servers() -> (String, Vec<Vec<String>>) {
    let script = "import json, sys, xml.etree.ElementTree as tree\n\
                  clusters = tree.parse(sys.argv[1]).getroot().find('remote_servers')\n\
                  cluster = clusters[0]\n\
                  shards = [[r.findtext('host') for r in s.findall('replica')] for s in cluster.findall('shard')]\n\
                  json.dump([cluster.tag, shards], sys.stdout)";
    let output = Command::new(test_venv_tool("python"))
        .arg("-c")
        .arg(script)
        .arg(repository_file(
            "deploy/compose/clickhouse/remote_servers.xml",
        ))
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// The host names between `<host>` tags of a file.
fn xml_hosts(text: &str) -> Vec<String> {
    text.split("<host>")
        .skip(1)
        .map(|rest| {
            rest.split("</host>")
                .next()
                .expect("closing tag")
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn the_cluster_files_wire_three_nats_nodes_and_two_shards_of_two_replicas() {
    let services = cluster_services();

    // NATS: the nodes are the services running the cluster file, named
    // apart, each on its own volume; the file routes to exactly them.
    let nats_nodes = services_mounting(&services, NATS_CONFIG, "/etc/nats/nats.conf");
    assert_eq!(nats_nodes.len(), 3, "three NATS nodes: {nats_nodes:?}");
    let mut server_names = BTreeSet::new();
    let mut data_volumes = BTreeSet::new();
    for node in &nats_nodes {
        let service = &services[node];
        assert_eq!(
            service["command"],
            serde_json::json!(["--config", "/etc/nats/nats.conf"]),
            "{node}"
        );
        server_names.insert(
            environment(service, "SERVER_NAME")
                .expect("SERVER_NAME")
                .to_string(),
        );
        let data = compose_mounts(service)
            .into_iter()
            .find(|(_, target)| target == "/data");
        data_volumes.insert(
            data.unwrap_or_else(|| panic!("{node}: a volume on /data"))
                .0,
        );
    }
    assert_eq!(
        server_names.len(),
        3,
        "distinct server names: {server_names:?}"
    );
    assert_eq!(data_volumes.len(), 3, "a volume per node: {data_volumes:?}");
    let routes: BTreeSet<String> = read_repository_file(NATS_CONFIG)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("nats://"))
        .map(|route| route.trim_end_matches(":6222").to_string())
        .collect();
    assert_eq!(
        routes, nats_nodes,
        "{NATS_CONFIG} routes to every NATS node"
    );

    // ClickHouse: the servers are the services with the cluster files; each
    // one's shard and replica macros place it where remote_servers.xml does.
    let mut clickhouse_nodes: Option<BTreeSet<String>> = None;
    for file in CLICKHOUSE_CONFIG {
        let mounting = services_mounting(
            &services,
            &format!("deploy/compose/clickhouse/{file}"),
            &format!("/etc/clickhouse-server/config.d/{file}"),
        );
        if let Some(previous) = &clickhouse_nodes {
            assert_eq!(previous, &mounting, "every ClickHouse server mounts {file}");
        }
        clickhouse_nodes = Some(mounting);
    }
    let clickhouse_nodes = clickhouse_nodes.expect("ClickHouse servers");
    let (cluster, shards) = remote_servers();
    assert_eq!(shards.len(), 2, "two shards: {shards:?}");
    assert!(
        shards.iter().all(|replicas| replicas.len() == 2),
        "two replicas each: {shards:?}"
    );
    let placed: BTreeSet<String> = shards.iter().flatten().cloned().collect();
    assert_eq!(
        placed, clickhouse_nodes,
        "remote_servers.xml names every ClickHouse service"
    );
    for (index, replicas) in shards.iter().enumerate() {
        for host in replicas {
            let service = &services[host];
            assert_eq!(
                environment(service, "CLICKHOUSE_SHARD"),
                Some(format!("{:02}", index + 1).as_str()),
                "{host}: the shard macro"
            );
            assert_eq!(
                environment(service, "CLICKHOUSE_REPLICA"),
                Some(host.as_str()),
                "{host}: the replica macro"
            );
            // Replicas fetch parts from one another by host name.
            assert_eq!(
                service["hostname"].as_str(),
                Some(host.as_str()),
                "{host}: hostname"
            );
            let aliases = strings(&service["networks"]["default"]["aliases"]);
            assert!(
                aliases.contains(&"clickhouse-cluster".to_string()),
                "{host}: alias"
            );
            assert!(
                compose_mounts(service)
                    .iter()
                    .any(|(_, target)| target == "/var/lib/clickhouse"),
                "{host}: data on a volume"
            );
        }
    }

    // ZooKeeper: the ensemble is what zookeeper.xml lists.
    let zookeeper_nodes: BTreeSet<String> = services
        .iter()
        .filter(|(_, service)| service["environment"]["ZOO_MY_ID"].is_number())
        .map(|(name, _)| name.clone())
        .collect();
    let listed: BTreeSet<String> = xml_hosts(&read_repository_file(
        "deploy/compose/clickhouse/zookeeper.xml",
    ))
    .into_iter()
    .collect();
    assert_eq!(listed, zookeeper_nodes, "zookeeper.xml lists the ensemble");
    let ids: BTreeSet<u64> = zookeeper_nodes
        .iter()
        .map(|node| {
            services[node]["environment"]["ZOO_MY_ID"]
                .as_u64()
                .expect("id")
        })
        .collect();
    assert_eq!(ids.len(), 3, "three ZooKeeper nodes with distinct ids");

    // The roles: every NATS node, three replicas; the store roles on the cluster.
    for role in ROLES {
        let service = &services[role];
        let urls: BTreeSet<String> = environment(service, "NATS_URL")
            .expect("NATS_URL")
            .split(',')
            .map(|url| {
                url.trim_start_matches("nats://")
                    .trim_end_matches(":4222")
                    .to_string()
            })
            .collect();
        assert_eq!(urls, nats_nodes, "{role}: NATS_URL names every node");
        assert_eq!(
            environment(service, "OGLOGSTREAM_NATS__REPLICAS"),
            Some("3"),
            "{role}"
        );
        let dependencies: BTreeSet<String> = service["depends_on"]
            .as_object()
            .expect("depends_on")
            .keys()
            .cloned()
            .collect();
        assert!(
            dependencies.is_superset(&nats_nodes),
            "{role} waits for every NATS node"
        );
        if role == "ingest" {
            assert!(environment(service, "CLICKHOUSE_DSN").is_none());
            continue;
        }
        let dsn = environment(service, "CLICKHOUSE_DSN").expect("CLICKHOUSE_DSN");
        assert!(dsn.contains("@clickhouse-cluster:9000/"), "{role}: {dsn}");
        assert_eq!(
            environment(service, "OGLOGSTREAM_CLICKHOUSE__CLUSTER"),
            Some(cluster.as_str()),
            "{role}"
        );
        assert_eq!(
            environment(service, "OGLOGSTREAM_CLICKHOUSE__REPLICATED"),
            Some("true"),
            "{role}"
        );
        assert!(
            dependencies.is_superset(&clickhouse_nodes),
            "{role} waits for every ClickHouse server"
        );
    }
}

#[actix_web::test]
async fn the_compose_nats_file_forms_a_three_node_jetstream_cluster() {
    let services = cluster_services();
    let hosts = ["nats", "nats-2", "nats-3"];
    let server_names: Vec<String> = hosts
        .iter()
        .map(|host| {
            environment(&services[*host], "SERVER_NAME")
                .expect("SERVER_NAME")
                .to_string()
        })
        .collect();
    let nodes = NatsNodes::start(&read_repository_file(NATS_CONFIG), &hosts, |node| {
        vec![("SERVER_NAME".to_string(), server_names[node].clone())]
    });
    assert_eq!(nodes.wait_for_jetstream_cluster().await, server_names);
    let health_check = strings(&services["nats-2"]["healthcheck"]["test"]);
    let path = health_check
        .last()
        .and_then(|url| url.strip_prefix("http://127.0.0.1:8222"))
        .expect("the health check asks the monitoring port");
    for node in 0..hosts.len() {
        assert!(
            matches!(nodes.monitor(node, path).await, Some((200, _))),
            "{path} on node {node}"
        );
    }
}

/// The ClickHouse files as a real server loads them (`config.d/`), with the
/// environment compose gives `clickhouse-4`. The one change: the cluster's
/// host names become 127.0.0.1, since the compose names do not resolve here
/// (ClickHouse resolves them when asked about the cluster).
#[actix_web::test]
async fn the_clickhouse_cluster_files_load_into_a_real_server() {
    let services = cluster_services();
    let node = &services["clickhouse-4"];
    let mut clickhouse = ClickHouse::prepare();
    let config_d = clickhouse.config_dir().join("config.d");
    std::fs::create_dir_all(&config_d).expect("config.d");
    let (cluster, shards) = remote_servers();
    for file in CLICKHOUSE_CONFIG {
        let mut text = read_repository_file(&format!("deploy/compose/clickhouse/{file}"));
        if file == "remote_servers.xml" {
            for host in shards.iter().flatten() {
                text = text.replace(&format!("<host>{host}</host>"), "<host>127.0.0.1</host>");
            }
        }
        std::fs::write(config_d.join(file), text).expect("write config.d");
    }
    for key in [
        "CLICKHOUSE_SHARD",
        "CLICKHOUSE_REPLICA",
        "CLICKHOUSE_PASSWORD",
    ] {
        let value = environment(node, key).unwrap_or_else(|| panic!("clickhouse-4: {key}"));
        clickhouse.env.push((key.to_string(), value.to_string()));
    }
    clickhouse.launch().await;

    let layout = clickhouse
        .query(&format!(
            "SELECT shard_num, replica_num, user, port FROM system.clusters \
             WHERE cluster = '{cluster}' ORDER BY shard_num, replica_num FORMAT TSV"
        ))
        .await
        .expect("system.clusters");
    assert_eq!(
        layout,
        "1\t1\toglogstream\t9000\n1\t2\toglogstream\t9000\n2\t1\toglogstream\t9000\n2\t2\toglogstream\t9000\n"
    );
    let macros = clickhouse
        .query("SELECT macro, substitution FROM system.macros ORDER BY macro FORMAT TSV")
        .await
        .expect("system.macros");
    assert_eq!(
        macros,
        format!("cluster\t{cluster}\nreplica\tclickhouse-4\nshard\t02\n")
    );
}
