//! The Kubernetes manifests in `k8s/`: valid against the API schemas
//! (`kubernetes-validate --strict`, offline), consistent with one another
//! (selectors, ports, autoscaler and disruption-budget targets, ConfigMap and
//! Secret references, NATS addresses), the ConfigMap identical to
//! `config/oglogstream.toml`, the NATS configuration forming a three-node
//! JetStream cluster in the real `nats-server`, and each role's settings
//! accepted by the real binary.

use super::nats_cluster::NatsNodes;
use super::{
    assert_succeeds, read_repository_file, repository_file, strings, test_venv_tool, yaml_documents,
};
use crate::support::{Launch, Server, eventually};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MANIFESTS: &str = "k8s";
const ROLES: [&str; 3] = ["ingest", "process", "query"];
/// `kubectl apply -k k8s/`'s list; not a Kubernetes resource itself.
const KUSTOMIZATION: &str = "kustomization.yaml";
/// Applied on its own, edited or replaced by `kubectl create secret`.
const SECRET: &str = "clickhouse-secret.yaml";

/// The resource files of k8s/ (every `.yaml` but the kustomization).
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repository_file(MANIFESTS))
        .expect("k8s/")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .filter(|path| !path.ends_with(KUSTOMIZATION))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "manifests: {files:?}");
    files
}

fn kubernetes_validate(files: &[PathBuf]) -> std::process::Output {
    Command::new(test_venv_tool("kubernetes-validate"))
        .arg("--strict")
        .arg("--quiet")
        .args(files)
        .output()
        .expect("run kubernetes-validate")
}

/// Every resource of every manifest, keyed by `(kind, name)`.
fn resources() -> BTreeMap<(String, String), Value> {
    let mut resources = BTreeMap::new();
    for file in manifest_files() {
        let relative = format!(
            "{MANIFESTS}/{}",
            file.file_name().expect("name").to_string_lossy()
        );
        for document in yaml_documents(&relative) {
            let kind = document["kind"].as_str().expect("kind").to_string();
            let name = document["metadata"]["name"]
                .as_str()
                .expect("name")
                .to_string();
            let previous = resources.insert((kind.clone(), name.clone()), document);
            assert!(previous.is_none(), "{kind} {name} defined twice");
        }
    }
    resources
}

fn resource<'a>(
    resources: &'a BTreeMap<(String, String), Value>,
    kind: &str,
    name: &str,
) -> &'a Value {
    resources
        .get(&(kind.to_string(), name.to_string()))
        .unwrap_or_else(|| panic!("no {kind} {name} in k8s/"))
}

/// Whether every `key: value` of `selector` is among `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .expect("a label map")
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

#[test]
fn every_manifest_passes_kubernetes_validate_strict_and_a_broken_one_does_not() {
    let files = manifest_files();
    let output = kubernetes_validate(&files);
    assert!(
        output.status.success(),
        "kubernetes-validate --strict rejects k8s/: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // The validator is strict and really runs: a misspelled field and a
    // wrong type in a copy of a shipped manifest are both refused.
    let original = read_repository_file("k8s/ingest.yaml");
    let workspace = tempfile::tempdir().expect("temp dir");
    for (name, from, to) in [
        ("misspelled.yaml", "readinessProbe:", "readinesProbe:"),
        ("wrong-type.yaml", "minReplicas: 2", "minReplicas: two"),
    ] {
        assert!(original.contains(from), "k8s/ingest.yaml has {from:?}");
        let broken = workspace.path().join(name);
        std::fs::write(&broken, original.replacen(from, to, 1)).expect("write");
        let output = kubernetes_validate(&[broken]);
        assert!(
            !output.status.success(),
            "kubernetes-validate accepted {name} ({to:?}): {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

/// `kubectl apply -k k8s/` applies every manifest but the Secret (so
/// applying again never overwrites the credentials), in the namespace the
/// production docs (docs/production.md) create.
#[test]
fn the_kustomization_lists_every_manifest_but_the_secret() {
    let kustomization = &yaml_documents(&format!("{MANIFESTS}/{KUSTOMIZATION}"))[0];
    let mut listed = strings(&kustomization["resources"]);
    listed.sort();
    let mut expected: Vec<String> = manifest_files()
        .iter()
        .map(|path| {
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != SECRET)
        .collect();
    expected.sort();
    assert_eq!(listed, expected, "k8s/{KUSTOMIZATION} resources");
    assert_eq!(kustomization["namespace"], "oglogstream");
    let images = kustomization["images"].as_array().expect("images");
    assert!(
        images.iter().any(|image| image["name"] == "oglogstream"),
        "the image is set in one place"
    );
    for role in ROLES {
        let deployment = read_repository_file(&format!("{MANIFESTS}/{role}.yaml"));
        assert!(
            deployment.contains("image: oglogstream:"),
            "{role} uses the image kustomize sets"
        );
    }
}

#[test]
fn the_configmap_is_generated_from_the_shipped_config_file() {
    let toml = read_repository_file("config/oglogstream.toml");
    let configmap = resources();
    let configmap = resource(&configmap, "ConfigMap", "oglogstream-config");
    assert_eq!(
        configmap["data"]["oglogstream.toml"].as_str(),
        Some(toml.as_str()),
        "k8s/configmap.yaml differs from config/oglogstream.toml: run `make k8s-configmap`"
    );
    let generated = assert_succeeds(
        "scripts/k8s-configmap.sh",
        &mut Command::new(repository_file("scripts/k8s-configmap.sh")),
    );
    assert_eq!(
        String::from_utf8_lossy(&generated.stdout),
        read_repository_file("k8s/configmap.yaml"),
        "k8s/configmap.yaml is not what scripts/k8s-configmap.sh prints: run `make k8s-configmap`"
    );
}

/// The container of a role's Deployment.
fn role_container(resources: &BTreeMap<(String, String), Value>, role: &str) -> Value {
    let deployment = resource(resources, "Deployment", &format!("oglogstream-{role}"));
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "{role}: one container");
    containers[0].clone()
}

/// A container's environment as the pod sees it: `envFrom` Secrets and
/// ConfigMaps first, then `env` (literal values and `secretKeyRef`s).
fn container_environment(
    resources: &BTreeMap<(String, String), Value>,
    container: &Value,
) -> BTreeMap<String, String> {
    let mut environment = BTreeMap::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let (kind, reference, data_key) = if source["secretRef"].is_object() {
            ("Secret", &source["secretRef"], "stringData")
        } else {
            ("ConfigMap", &source["configMapRef"], "data")
        };
        let referenced = resource(resources, kind, reference["name"].as_str().expect("name"));
        for (key, value) in referenced[data_key].as_object().expect("data") {
            environment.insert(key.clone(), value.as_str().expect("string").to_string());
        }
    }
    for variable in container["env"].as_array().into_iter().flatten() {
        let name = variable["name"].as_str().expect("name").to_string();
        let value = if let Some(value) = variable["value"].as_str() {
            value.to_string()
        } else if let Some(reference) = variable["valueFrom"]["secretKeyRef"].as_object() {
            let secret = resource(
                resources,
                "Secret",
                reference["name"].as_str().expect("name"),
            );
            secret["stringData"][reference["key"].as_str().expect("key")]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no such key in its Secret"))
                .to_string()
        } else {
            panic!("{name}: only literal values and secretKeyRefs are resolved here")
        };
        environment.insert(name, value);
    }
    environment
}

#[test]
fn the_manifests_fit_together() {
    let resources = resources();
    let nats = resource(&resources, "StatefulSet", "nats");
    let nats_replicas = nats["spec"]["replicas"].as_u64().expect("replicas");
    assert_eq!(nats_replicas, 3, "a three-node JetStream cluster");
    let headless_name = nats["spec"]["serviceName"].as_str().expect("serviceName");
    let headless = resource(&resources, "Service", headless_name);
    assert_eq!(
        headless["spec"]["clusterIP"], "None",
        "{headless_name} is headless"
    );
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    let expected_nats_url = (0..nats_replicas)
        .map(|node| format!("nats://nats-{node}.{headless_name}:4222"))
        .collect::<Vec<_>>()
        .join(",");

    // Each workload's pods, for the selectors below.
    let mut workloads: Vec<(String, Value)> = ROLES
        .iter()
        .map(|role| {
            let deployment = resource(&resources, "Deployment", &format!("oglogstream-{role}"));
            (
                role.to_string(),
                deployment["spec"]["template"]["metadata"]["labels"].clone(),
            )
        })
        .collect();
    workloads.push((
        "nats".into(),
        nats["spec"]["template"]["metadata"]["labels"].clone(),
    ));
    for (kind, name) in [("Service", "nats"), ("Service", headless_name)] {
        let selector = &resource(&resources, kind, name)["spec"]["selector"];
        assert!(
            selects(selector, &workloads[3].1),
            "{kind} {name} selects the NATS pods"
        );
    }

    for role in ROLES {
        let name = format!("oglogstream-{role}");
        let deployment = resource(&resources, "Deployment", &name);
        let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
        assert!(
            selects(&deployment["spec"]["selector"]["matchLabels"], pod_labels),
            "{name}: the selector matches its pods"
        );
        let container = role_container(&resources, role);
        let args = strings(&container["args"]);
        assert!(
            args.windows(2).any(|pair| pair == ["--role", role]),
            "{name}: runs --role {role}: {args:?}"
        );
        let port_names: Vec<&str> = container["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .map(|port| port["name"].as_str().expect("port name"))
            .collect();
        for probe in ["readinessProbe", "livenessProbe"] {
            let check = &container[probe]["httpGet"];
            assert_eq!(check["path"], "/health", "{name}: {probe} on /health");
            let port = check["port"].as_str().expect("a named port");
            assert!(port_names.contains(&port), "{name}: {probe} port {port}");
        }

        // The configuration file: the ConfigMap mounted where --config points.
        let config_argument = args
            .windows(2)
            .find(|pair| pair[0] == "--config")
            .map(|pair| pair[1].clone())
            .unwrap_or_else(|| panic!("{name}: --config"));
        let volumes = deployment["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .expect("volumes");
        let mounted = container["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .iter()
            .any(|mount| {
                let volume = volumes
                    .iter()
                    .find(|volume| volume["name"] == mount["name"])
                    .unwrap_or_else(|| panic!("{name}: volume {}", mount["name"]));
                let configmap = volume["configMap"]["name"].as_str();
                configmap == Some("oglogstream-config")
                    && Path::new(mount["mountPath"].as_str().expect("path"))
                        .join("oglogstream.toml")
                        == Path::new(&config_argument)
            });
        assert!(
            mounted,
            "{name}: oglogstream-config is mounted at {config_argument}"
        );

        let environment = container_environment(&resources, &container);
        assert_eq!(
            environment.get("NATS_URL"),
            Some(&expected_nats_url),
            "{name}: NATS_URL names every NATS node"
        );
        assert_eq!(
            environment
                .get("OGLOGSTREAM_NATS__REPLICAS")
                .map(String::as_str),
            Some(nats_replicas.to_string().as_str()),
            "{name}: the stream is replicated on every NATS node"
        );
        assert_eq!(
            environment.contains_key("CLICKHOUSE_DSN"),
            role != "ingest",
            "{name}: CLICKHOUSE_DSN where the role touches the store"
        );

        // Ingest listens for OTLP over gRPC on the port it names otlp-grpc,
        // which its Service exposes as 4317.
        if role == "ingest" {
            let listen = environment
                .get("OGLOGSTREAM_OTLP__GRPC_LISTEN")
                .unwrap_or_else(|| panic!("{name}: OGLOGSTREAM_OTLP__GRPC_LISTEN"));
            let grpc_port = container["ports"]
                .as_array()
                .expect("ports")
                .iter()
                .find(|port| port["name"] == "otlp-grpc")
                .and_then(|port| port["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("{name}: a container port named otlp-grpc"));
            assert!(
                listen.ends_with(&format!(":{grpc_port}")),
                "{name}: listens for gRPC on {listen}, the pod exposes {grpc_port}"
            );
            let service = resource(&resources, "Service", &name);
            assert!(
                service["spec"]["ports"]
                    .as_array()
                    .expect("ports")
                    .iter()
                    .any(|port| port["targetPort"] == "otlp-grpc" && port["port"] == 4317),
                "{name}: the Service exposes OTLP/gRPC on 4317"
            );
        }

        // Its Service sends to these pods' named port.
        let service = resource(&resources, "Service", &name);
        assert!(
            selects(&service["spec"]["selector"], pod_labels),
            "{name}: Service selector"
        );
        for port in service["spec"]["ports"].as_array().expect("ports") {
            let target = port["targetPort"].as_str().expect("a named targetPort");
            assert!(
                port_names.contains(&target),
                "{name}: Service targetPort {target}"
            );
        }
    }

    for role in ["ingest", "query"] {
        let name = format!("oglogstream-{role}");
        let autoscaler = resource(&resources, "HorizontalPodAutoscaler", &name);
        let target = &autoscaler["spec"]["scaleTargetRef"];
        assert_eq!(
            (target["kind"].as_str(), target["name"].as_str()),
            (Some("Deployment"), Some(name.as_str()))
        );
        let container = role_container(&resources, role);
        assert!(
            container["resources"]["requests"]["cpu"].is_string(),
            "{name}: CPU utilisation needs a CPU request"
        );
    }

    // Every workload has a disruption budget selecting its pods and no other's.
    let budgets: Vec<&Value> = resources
        .iter()
        .filter(|((kind, _), _)| kind == "PodDisruptionBudget")
        .map(|(_, budget)| budget)
        .collect();
    for (workload, labels) in &workloads {
        let covering: Vec<&&Value> = budgets
            .iter()
            .filter(|budget| selects(&budget["spec"]["selector"]["matchLabels"], labels))
            .collect();
        assert_eq!(
            covering.len(),
            1,
            "{workload}: exactly one PodDisruptionBudget"
        );
        for (other, other_labels) in &workloads {
            if other != workload {
                assert!(
                    !selects(
                        &covering[0]["spec"]["selector"]["matchLabels"],
                        other_labels
                    ),
                    "{workload}'s budget also selects {other}"
                );
            }
        }
    }

    // The Ingresses route every path HAProxy sends to ingest there too, the
    // rest to query.
    let mut routes: Vec<(String, String, String)> = Vec::new();
    for ((kind, name), ingress) in &resources {
        if kind != "Ingress" {
            continue;
        }
        for rule in ingress["spec"]["rules"].as_array().expect("rules") {
            for path in rule["http"]["paths"].as_array().expect("paths") {
                let service = path["backend"]["service"]["name"]
                    .as_str()
                    .expect("service");
                resource(&resources, "Service", service);
                let path_type = path["pathType"].as_str().expect("pathType").to_string();
                if path_type == "ImplementationSpecific" {
                    assert_eq!(
                        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"],
                        "true",
                        "Ingress {name}: a regular-expression path needs use-regex"
                    );
                }
                let path = path["path"].as_str().expect("path").to_string();
                routes.push((path_type, path, service.to_string()));
            }
        }
    }
    let routed_to_ingest = |types: &[&str], wanted: &str| {
        routes.iter().any(|(path_type, path, service)| {
            service == "oglogstream-ingest" && path == wanted && types.contains(&path_type.as_str())
        })
    };
    assert!(
        routes.contains(&("Prefix".into(), "/".into(), "oglogstream-query".into())),
        "everything else goes to query: {routes:?}"
    );
    let matchers = haproxy_ingest_matchers();
    assert!(
        matchers.len() >= 2,
        "HAProxy's ingest matchers: {matchers:?}"
    );
    for (criterion, value) in &matchers {
        let routed = match criterion.as_str() {
            "path" => routed_to_ingest(&["Exact", "Prefix"], value),
            "path_beg" => routed_to_ingest(&["Prefix"], value.trim_end_matches('/')),
            "path_reg" => {
                routed_to_ingest(&["ImplementationSpecific"], value.trim_start_matches('^'))
            }
            other => {
                panic!("HAProxy matches ingest paths by {other}, which this test does not map")
            }
        };
        assert!(
            routed,
            "HAProxy routes `{criterion} {value}` to ingest; k8s/ingress.yaml must too: {routes:?}"
        );
    }
}

/// `(criterion, value)` of every ACL that `use_backend ingest if ACL` names
/// in HAProxy's configuration, e.g. `("path_beg", "/log/")`.
fn haproxy_ingest_matchers() -> Vec<(String, String)> {
    let config = read_repository_file(super::HAPROXY_CONFIG);
    let lines: Vec<Vec<&str>> = config
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    let ingest_acls: Vec<&str> = lines
        .iter()
        .filter_map(|words| match words.as_slice() {
            ["use_backend", "ingest", "if", acl] => Some(*acl),
            ["use_backend", "ingest", ..] => {
                panic!(
                    "{}: a use_backend ingest line this test does not read: {words:?}",
                    super::HAPROXY_CONFIG
                )
            }
            _ => None,
        })
        .collect();
    lines
        .iter()
        .filter_map(|words| match words.as_slice() {
            ["acl", name, criterion, values @ ..] if ingest_acls.contains(name) => Some(
                values
                    .iter()
                    .map(|value| (criterion.to_string(), value.to_string()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

// ---- NATS: the StatefulSet's configuration, run for real ----------------

/// Starts one `nats-server` per StatefulSet replica from its ConfigMap (on
/// loopback, `POD_NAME` set as the StatefulSet sets it) and waits for a
/// JetStream cluster of all of them; then every probe path of the
/// StatefulSet must answer 200 on every node.
#[actix_web::test]
async fn the_nats_configuration_forms_a_three_node_jetstream_cluster() {
    let resources = resources();
    let config = resource(&resources, "ConfigMap", "nats-config")["data"]["nats.conf"]
        .as_str()
        .expect("nats.conf")
        .to_string();
    let statefulset = resource(&resources, "StatefulSet", "nats");
    let replicas = statefulset["spec"]["replicas"].as_u64().expect("replicas") as usize;
    let headless = statefulset["spec"]["serviceName"]
        .as_str()
        .expect("serviceName");
    let container = &statefulset["spec"]["template"]["spec"]["containers"][0];
    let pod_name_from_metadata = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .any(|variable| {
            variable["name"] == "POD_NAME"
                && variable["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        });
    assert!(
        pod_name_from_metadata,
        "the StatefulSet sets POD_NAME, which nats.conf names the server by"
    );

    let hosts: Vec<String> = (0..replicas)
        .map(|node| format!("nats-{node}.{headless}"))
        .collect();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let nodes = NatsNodes::start(&config, &hosts, |node| {
        vec![("POD_NAME".to_string(), format!("nats-{node}"))]
    });
    let names = nodes.wait_for_jetstream_cluster().await;
    assert_eq!(names, ["nats-0", "nats-1", "nats-2"], "server names");
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let check = &container[probe]["httpGet"];
        assert_eq!(check["port"], "monitor", "{probe} on the monitoring port");
        let path = check["path"].as_str().expect("path");
        for node in 0..replicas {
            eventually(
                &format!("{probe} {path} to answer 200 on node {node}"),
                Duration::from_secs(20),
                || async {
                    matches!(nodes.monitor(node, path).await, Some((200, _))).then_some(())
                },
            )
            .await;
        }
    }
}

// ---- the binary under each Deployment's settings ------------------------

/// Runs the binary with each role's arguments, environment and ConfigMap
/// (NATS and ClickHouse addresses as written, unreachable here), and
/// requires that it starts, serving `/health` for that role, instead of
/// refusing its configuration (exit code 2).
#[actix_web::test]
async fn each_role_starts_with_its_kubernetes_settings() {
    let resources = resources();
    let workspace = tempfile::tempdir().expect("temp dir");
    let config_file = workspace.path().join("oglogstream.toml");
    std::fs::write(
        &config_file,
        resource(&resources, "ConfigMap", "oglogstream-config")["data"]["oglogstream.toml"]
            .as_str()
            .expect("oglogstream.toml"),
    )
    .expect("write config");

    for role in ROLES {
        let container = role_container(&resources, role);
        let mut launch = Launch {
            no_wait: true,
            ..Launch::default()
        };
        let mut args = strings(&container["args"]).into_iter();
        while let Some(argument) = args.next() {
            if argument == "--config" {
                args.next();
                launch = launch
                    .arg("--config")
                    .arg(config_file.to_str().expect("UTF-8 path"));
            } else {
                launch = launch.arg(&argument);
            }
        }
        for (key, mut value) in container_environment(&resources, &container) {
            if key == "OGLOGSTREAM_OTLP__GRPC_LISTEN" {
                // The pod's 0.0.0.0:4317 is this machine's, maybe taken:
                // the same setting on a free loopback port.
                value = format!("127.0.0.1:{}", crate::support::free_port());
            }
            launch = launch.env(&key, &value);
        }
        let server = Server::launch(launch).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut response) = server.client.get(server.url("/health")).send().await {
                let body: Value = response.json().await.unwrap_or_default();
                assert_eq!(body["roles"], serde_json::json!([role]), "{role}: {body}");
                break;
            }
            // main's last words when start-up fails: "oglogstream: <why>".
            let log = server.logs();
            let refused = log.lines().any(|line| line.starts_with("oglogstream: "));
            assert!(
                !refused && Instant::now() < deadline,
                "{role} did not start with its Kubernetes settings; its log:\n{log}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
