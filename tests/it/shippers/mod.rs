//! The shippers' protocols end to end (issues 11 and 24): OTLP/HTTP logs,
//! OTLP over gRPC, Loki push, Elasticsearch bulk and syslog, sent by the real client libraries
//! and daemons (`tests/clients`, rsyslog, util-linux `logger`) to the real
//! binary, in `--role all` (`real_clients`) and split behind HAProxy
//! (`split`); the protocols' rules, limits and refusals (`rules`); logs
//! made inside real SDK spans, found by their trace ids (`traced_spans`).
//!
//! A test gives a client a [`Plan`] (JSON on its stdin: the logs to send)
//! and checks with [`assert_arrived`] that every planned log was stored
//! once, with its service, level, message, timestamp and attributes.

mod grpc_rules;
mod real_clients;
pub(crate) mod rules;
mod split;
mod traced_spans;

use crate::support::eventually;
use oglogstream::domain::time::parse_rfc3339;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A client program gets this long to send its logs and exit.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);

/// 2025-01-01T12:00:00.123Z: planned logs are a second apart from here.
const PLAN_START_MS: i64 = 1_735_732_800_123;

pub const LEVELS: [&str; 5] = ["debug", "info", "warn", "error", "fatal"];

pub struct Planned {
    pub message: String,
    pub level: &'static str,
    pub time_ms: i64,
    pub attributes: Vec<(String, String)>,
}

/// The logs one client sends: one per level, each message unique to the
/// service, the same attributes on each.
pub struct Plan {
    pub service: String,
    pub logs: Vec<Planned>,
}

impl Plan {
    pub fn new(service: &str, attributes: &[(&str, &str)]) -> Plan {
        let logs = LEVELS
            .iter()
            .enumerate()
            .map(|(n, level)| Planned {
                message: format!("{service} says {level} #{n}: ünïcode ✓ \"quoted\""),
                level,
                time_ms: PLAN_START_MS + 1000 * n as i64,
                attributes: attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            })
            .collect();
        Plan {
            service: service.to_string(),
            logs,
        }
    }

    /// The client's stdin; `extra` fields are merged in (`index`, ...).
    pub fn to_json(&self, url: &str, key: Option<&str>, extra: Value) -> String {
        let mut plan = json!({
            "url": url,
            "service": self.service,
            "key": key,
            "logs": self.logs.iter().map(|log| json!({
                "message": log.message,
                "level": log.level,
                "time_ms": log.time_ms,
                "attributes": log.attributes.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<serde_json::Map<String, Value>>(),
            })).collect::<Vec<_>>(),
        });
        if let (Some(plan), Some(extra)) = (plan.as_object_mut(), extra.as_object()) {
            plan.extend(extra.clone());
        }
        plan.to_string()
    }
}

/// What a stored log's timestamp must be.
#[derive(Clone, Copy)]
pub enum Timing {
    /// The planned time, within this many microseconds (clients that pass
    /// times through a float lose a little).
    Planned { tolerance_us: i64 },
    /// Between these instants (µs): clients that stamp their own time.
    Between(i64, i64),
}

/// What every stored log of a plan must show beyond the plan itself.
pub struct Expect<'a> {
    pub timing: Timing,
    /// Attributes the client or protocol adds (a scope name, the index).
    pub extra_attributes: &'a [(&'a str, &'a str)],
    /// Attribute keys that must not be there (used up as service or level).
    pub absent_attributes: &'a [&'a str],
}

/// Every planned log stored exactly once, as planned. `rows` are the
/// stored logs of the plan's service.
pub fn assert_arrived(client: &str, plan: &Plan, rows: &[Value], expect: &Expect<'_>) {
    assert_eq!(
        rows.len(),
        plan.logs.len(),
        "{client}: expected each of {} logs once, found {}: {rows:#?}",
        plan.logs.len(),
        rows.len()
    );
    for log in &plan.logs {
        let matching: Vec<&Value> = rows
            .iter()
            .filter(|row| row["message"] == log.message)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "{client}: {:?} stored once: {rows:#?}",
            log.message
        );
        let row = matching[0];
        assert_eq!(row["service"], plan.service.as_str(), "{client}: {row}");
        assert_eq!(row["level"], log.level, "{client}: {row}");
        let stored = row["timestamp"]
            .as_str()
            .and_then(|t| parse_rfc3339(t).ok())
            .unwrap_or_else(|| panic!("{client}: a timestamp in {row}"));
        match expect.timing {
            Timing::Planned { tolerance_us } => assert!(
                (stored - log.time_ms * 1000).abs() <= tolerance_us,
                "{client}: timestamp {} is not the planned {} ms: {row}",
                row["timestamp"],
                log.time_ms
            ),
            Timing::Between(from, to) => assert!(
                (from..=to).contains(&stored),
                "{client}: timestamp {} is not between {from} and {to} µs: {row}",
                row["timestamp"]
            ),
        }
        let attributes = &row["attributes"];
        let wanted = log
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(expect.extra_attributes.iter().copied());
        for (key, value) in wanted {
            assert_eq!(attributes[key], value, "{client}: attribute {key} of {row}");
        }
        for key in expect.absent_attributes {
            assert!(
                attributes.get(key).is_none(),
                "{client}: no attribute {key} in {row}"
            );
        }
    }
}

/// The stored logs whose service is exactly `service`, once there are at
/// least `count` (they may keep arriving: `assert_arrived` checks the count).
pub async fn stored(
    client: &awc::Client,
    base_url: &str,
    service: &str,
    count: usize,
) -> Vec<Value> {
    let url = format!("{base_url}/api/logs?order=asc&limit=1000&service={service}");
    eventually(
        &format!("{count} logs of {service}"),
        Duration::from_secs(60),
        || async {
            let mut response = client.get(&url).send().await.ok()?;
            let rows: Value = response.json().limit(16 << 20).await.ok()?;
            let rows: Vec<Value> = rows
                .as_array()?
                .iter()
                .filter(|row| row["service"] == service)
                .cloned()
                .collect();
            (rows.len() >= count).then_some(rows)
        },
    )
    .await
}

pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The tests' Python (scripts/install-test-deps.sh makes it).
pub fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/install-test-deps.sh (`make test` does)",
        python.display()
    );
    python
}

/// `python <script>` or `node <script>` from `tests/clients`.
pub fn client_command(script: &str) -> Command {
    let mut command = if script.ends_with(".py") {
        Command::new(python())
    } else {
        assert!(
            clients_dir().join("node_modules").is_dir(),
            "tests/clients/node_modules is missing: run scripts/install-test-deps.sh (`make test` does)"
        );
        Command::new("node")
    };
    command.arg(script).current_dir(clients_dir());
    command
}

/// Runs a client to completion with `stdin`, killing it after
/// [`CLIENT_TIMEOUT`]; fails the test (with its output) unless it exits 0.
/// Returns its stdout.
pub async fn run_client(name: &str, command: Command, stdin: String) -> String {
    let output = client_output(name, command, stdin).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs a client to completion with `stdin`, killing it after
/// [`CLIENT_TIMEOUT`]; whatever its exit, its output.
pub async fn client_output(
    name: &str,
    mut command: Command,
    stdin: String,
) -> std::process::Output {
    use std::io::Write;
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: cannot start {command:?}: {e}"));
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("client stdin");
    }
    let pid = child.id() as i32;
    let waiting = actix_web::rt::task::spawn_blocking(move || child.wait_with_output());
    match actix_web::rt::time::timeout(CLIENT_TIMEOUT, waiting).await {
        Ok(output) => output.expect("client thread").expect("client output"),
        Err(_) => {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{name}: no exit within {CLIENT_TIMEOUT:?}");
        }
    }
}

/// Syslog listeners on these loopback ports.
pub fn with_syslog(launch: crate::support::Launch, tcp: u16, udp: u16) -> crate::support::Launch {
    launch
        .env(
            "OGLOGSTREAM_SYSLOG__TCP_LISTEN",
            &format!("127.0.0.1:{tcp}"),
        )
        .env(
            "OGLOGSTREAM_SYSLOG__UDP_LISTEN",
            &format!("127.0.0.1:{udp}"),
        )
}

/// OTLP over gRPC on this loopback port.
pub fn with_otlp_grpc(launch: crate::support::Launch, port: u16) -> crate::support::Launch {
    launch.env(
        "OGLOGSTREAM_OTLP__GRPC_LISTEN",
        &format!("127.0.0.1:{port}"),
    )
}

/// A free loopback UDP port (syslog over UDP).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .expect("a free UDP port")
}

pub fn now_us() -> i64 {
    oglogstream::domain::time::now_micros()
}
