//! Every real shipper against one `--role all` server with an ingest key:
//! the OpenTelemetry Python SDK (protobuf) and JS SDK (JSON),
//! python-logging-loki (both its JSON forms), winston-loki (snappy
//! protobuf), the official Elasticsearch client's `helpers.bulk`, rsyslog's
//! omelasticsearch and omfwd, and util-linux `logger` over TCP and UDP, all
//! at once. Each delivers its plan once, exactly as planned; the ingest
//! metrics count each protocol.

use super::{
    Expect, Plan, Timing, assert_arrived, client_command, free_udp_port, now_us, run_client,
    stored, with_otlp_grpc, with_syslog,
};
use crate::support::{Launch, Server, eventually, free_port};
use awc::http::StatusCode;
use serde_json::json;
use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const KEY: &str = "shipper-ingest-key-0123456789";

/// Where the shippers send: an HTTP base URL (an instance or HAProxy) and
/// an ingest instance's syslog ports.
#[derive(Clone)]
pub struct Target<'a> {
    pub url: String,
    /// Reads back what was stored (`/api/logs`).
    pub reader: &'a awc::Client,
    pub key: Option<&'a str>,
    /// OTLP over gRPC: HOST:PORT of the listener (or HAProxy's frontend).
    pub otlp_grpc: String,
    pub syslog_tcp: u16,
    pub syslog_udp: Option<u16>,
}

#[actix_web::test]
async fn the_real_shippers_deliver_every_log_once_to_role_all() {
    let started = Instant::now();
    let (tcp, udp, grpc) = (free_port(), free_udp_port(), free_port());
    let server = Server::launch(with_otlp_grpc(
        with_syslog(
            Launch::default().env("OGLOGSTREAM_SECURITY__INGEST_KEYS", &format!("[\"{KEY}\"]")),
            tcp,
            udp,
        ),
        grpc,
    ))
    .await;
    let target = Target {
        url: server.url(""),
        reader: &server.client,
        key: Some(KEY),
        otlp_grpc: format!("127.0.0.1:{grpc}"),
        syslog_tcp: tcp,
        syslog_udp: Some(udp),
    };
    futures_util::join!(every_shipper(&target), loki_python(&target, "0"));

    // Without the key every shipper path is refused (the Elasticsearch one
    // still as Elasticsearch), and counted under its protocol.
    for (path, content_type) in [
        ("/v1/logs", "application/json"),
        ("/loki/api/v1/push", "application/json"),
        ("/_bulk", "application/x-ndjson"),
    ] {
        let response = server
            .client
            .post(server.url(path))
            .insert_header(("Content-Type", content_type))
            .send_body("{}")
            .await
            .expect("POST");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            response.headers().contains_key("x-elastic-product"),
            path == "/_bulk",
            "{path}"
        );
    }
    let expected = [
        // OTLP/HTTP and OTLP/gRPC, from each SDK.
        "oglogstream_logs_accepted_total{protocol=\"otlp\"} 20",
        "oglogstream_logs_accepted_total{protocol=\"loki\"} 15",
        "oglogstream_logs_accepted_total{protocol=\"elasticsearch\"} 10",
        "oglogstream_logs_accepted_total{protocol=\"syslog\"} 15",
        "oglogstream_logs_accepted_total{protocol=\"json\"} 0",
        "oglogstream_logs_rejected_total{protocol=\"otlp\",reason=\"unauthorized\"} 1",
        "oglogstream_logs_rejected_total{protocol=\"loki\",reason=\"unauthorized\"} 1",
        "oglogstream_logs_rejected_total{protocol=\"elasticsearch\",reason=\"unauthorized\"} 1",
        "oglogstream_logs_rejected_total{protocol=\"syslog\",reason=\"invalid\"} 0",
    ];
    let (_, metrics) = server.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    for line in expected {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    eprintln!(
        "eleven real shippers into --role all: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Every shipper at once (python-logging-loki in its current JSON form).
pub async fn every_shipper(target: &Target<'_>) {
    futures_util::join!(
        otlp_python(target),
        otlp_node(target),
        otlp_grpc_python(target, "bearer"),
        otlp_grpc_node(target),
        loki_python(target, "1"),
        winston_loki(target),
        elasticsearch_python(target),
        rsyslog(target),
        logger(target, Transport::Tcp),
        logger(target, Transport::Udp),
    );
}

pub async fn otlp_python(target: &Target<'_>) {
    let plan = Plan::new("otlp-python", &[("order.id", "A-17"), ("region", "eu")]);
    let stdin = plan.to_json(&target.url, target.key, json!({}));
    run_client(
        "OpenTelemetry Python SDK",
        client_command("otlp_logs.py"),
        stdin,
    )
    .await;
    let rows = stored(target.reader, &target.url, &plan.service, plan.logs.len()).await;
    let expect = Expect {
        // Python's logging keeps times as float seconds.
        timing: Timing::Planned { tolerance_us: 1000 },
        extra_attributes: &[
            ("otel.scope.name", "checkout.orders"),
            ("telemetry.sdk.language", "python"),
        ],
        absent_attributes: &["service.name"],
    };
    assert_arrived("OpenTelemetry Python SDK", &plan, &rows, &expect);
}

pub async fn otlp_node(target: &Target<'_>) {
    let plan = Plan::new("otlp-node", &[("order.id", "A-17"), ("region", "eu")]);
    let stdin = plan.to_json(&target.url, target.key, json!({}));
    run_client(
        "OpenTelemetry JS SDK",
        client_command("otlp_logs.mjs"),
        stdin,
    )
    .await;
    let rows = stored(target.reader, &target.url, &plan.service, plan.logs.len()).await;
    let expect = Expect {
        timing: Timing::Planned { tolerance_us: 0 },
        extra_attributes: &[
            ("otel.scope.name", "checkout.web"),
            ("otel.scope.version", "2.1.0"),
        ],
        absent_attributes: &["service.name"],
    };
    assert_arrived("OpenTelemetry JS SDK", &plan, &rows, &expect);
}

/// Each planned log's span: (trace id, span id) in lowercase hex.
pub fn spans(plan: &Plan) -> Vec<(String, String)> {
    (0..plan.logs.len() as u64)
        .map(|n| {
            (
                format!(
                    "{:032x}",
                    0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128 + u128::from(n)
                ),
                format!("{:016x}", 0x00f0_67aa_0ba9_02b7_u64 + n),
            )
        })
        .collect()
}

/// The plan's stdin for an OTLP gRPC client: the listener and the spans.
pub fn grpc_plan(plan: &Plan, target: &Target<'_>, extra: serde_json::Value) -> String {
    let spans: Vec<serde_json::Value> = spans(plan)
        .into_iter()
        .map(|(trace_id, span_id)| json!({"trace_id": trace_id, "span_id": span_id}))
        .collect();
    let mut fields = json!({"grpc": target.otlp_grpc, "spans": spans});
    if let (Some(fields), Some(extra)) = (fields.as_object_mut(), extra.as_object()) {
        fields.extend(extra.clone());
    }
    plan.to_json(&target.url, target.key, fields)
}

/// Every stored log carries the trace and span ids of its planned span, as
/// fields of their own (not attributes).
fn assert_spans(client: &str, plan: &Plan, rows: &[serde_json::Value]) {
    for (log, (trace_id, span_id)) in plan.logs.iter().zip(spans(plan)) {
        let row = rows
            .iter()
            .find(|row| row["message"] == log.message)
            .unwrap_or_else(|| panic!("{client}: {:?} stored", log.message));
        assert_eq!(row["trace_id"], trace_id.as_str(), "{client}: {row}");
        assert_eq!(row["span_id"], span_id.as_str(), "{client}: {row}");
    }
}

/// The OpenTelemetry Python SDK's gRPC exporter, gzip, the key as
/// `key_form` ("bearer" or "x-api-key"); returns what the client printed
/// (`{"exports": N, "retries": N}`).
pub async fn otlp_grpc_python(target: &Target<'_>, key_form: &str) -> serde_json::Value {
    let plan = Plan::new(
        &format!("otlp-grpc-python-{key_form}"),
        &[("order.id", "A-17"), ("region", "eu")],
    );
    let stdin = grpc_plan(&plan, target, json!({"key_form": key_form}));
    let printed = run_client(
        "OpenTelemetry Python SDK, gRPC exporter",
        client_command("otlp_grpc_logs.py"),
        stdin,
    )
    .await;
    let rows = stored(target.reader, &target.url, &plan.service, plan.logs.len()).await;
    let expect = Expect {
        timing: Timing::Planned { tolerance_us: 1000 },
        extra_attributes: &[
            ("otel.scope.name", "checkout.orders"),
            ("telemetry.sdk.language", "python"),
        ],
        absent_attributes: &["service.name"],
    };
    assert_arrived("OpenTelemetry Python SDK, gRPC", &plan, &rows, &expect);
    assert_spans("OpenTelemetry Python SDK, gRPC", &plan, &rows);
    serde_json::from_str(printed.trim())
        .unwrap_or_else(|_| panic!("the client's counts: {printed}"))
}

/// The OpenTelemetry JS SDK's gRPC exporter, the key as x-api-key.
pub async fn otlp_grpc_node(target: &Target<'_>) {
    let plan = Plan::new("otlp-grpc-node", &[("order.id", "A-17"), ("region", "eu")]);
    let stdin = grpc_plan(&plan, target, json!({}));
    run_client(
        "OpenTelemetry JS SDK, gRPC exporter",
        client_command("otlp_grpc_logs.mjs"),
        stdin,
    )
    .await;
    let rows = stored(target.reader, &target.url, &plan.service, plan.logs.len()).await;
    let expect = Expect {
        timing: Timing::Planned { tolerance_us: 0 },
        extra_attributes: &[
            ("otel.scope.name", "checkout.web"),
            ("otel.scope.version", "2.1.0"),
        ],
        absent_attributes: &["service.name"],
    };
    assert_arrived("OpenTelemetry JS SDK, gRPC", &plan, &rows, &expect);
    assert_spans("OpenTelemetry JS SDK, gRPC", &plan, &rows);
}

/// `version` "1" is Loki's current JSON form (the library stamps the send
/// time), "0" the legacy one (the library's default; record times).
pub async fn loki_python(target: &Target<'_>, version: &str) {
    let plan = Plan::new(
        &format!("loki-python-v{version}"),
        &[("region", "eu"), ("env", "prod")],
    );
    let stdin = plan.to_json(&target.url, target.key, json!({"loki_version": version}));
    let before = now_us();
    run_client(
        "python-logging-loki",
        client_command("loki_logging.py"),
        stdin,
    )
    .await;
    let timing = match version {
        "0" => Timing::Planned { tolerance_us: 1 },
        _ => Timing::Between(before, now_us()),
    };
    let rows = stored(target.reader, &target.url, &plan.service, plan.logs.len()).await;
    let expect = Expect {
        timing,
        extra_attributes: &[("logger", "billing")],
        absent_attributes: &["severity", "service_name"],
    };
    assert_arrived("python-logging-loki", &plan, &rows, &expect);
}

pub async fn winston_loki(target: &Target<'_>) {
    let plan = Plan::new("loki-winston", &[("region", "eu"), ("env", "prod")]);
    let stdin = plan.to_json(&target.url, target.key, json!({}));
    run_client("winston-loki", client_command("winston_loki.mjs"), stdin).await;
    let rows = stored(target.reader, &target.url, &plan.service, plan.logs.len()).await;
    let expect = Expect {
        timing: Timing::Planned { tolerance_us: 0 },
        extra_attributes: &[],
        absent_attributes: &["level", "service_name"],
    };
    assert_arrived("winston-loki", &plan, &rows, &expect);
}

pub async fn elasticsearch_python(target: &Target<'_>) {
    let plan = Plan::new("es-python", &[("order.id", "A-17"), ("region", "eu")]);
    let stdin = plan.to_json(&target.url, target.key, json!({"index": "es-python-logs"}));
    let answer = run_client(
        "elasticsearch-py helpers.bulk",
        client_command("elasticsearch_bulk.py"),
        stdin,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&answer).ok(),
        Some(json!({"stored": 5, "errors": []})),
        "{answer}"
    );
    let rows = stored(target.reader, &target.url, &plan.service, plan.logs.len()).await;
    let expect = Expect {
        timing: Timing::Planned { tolerance_us: 0 },
        extra_attributes: &[("index", "es-python-logs")],
        absent_attributes: &["log.level", "service.name", "@timestamp", "message"],
    };
    assert_arrived("elasticsearch-py", &plan, &rows, &expect);
}

/// Syslog severities of our levels (debug, info, warn, error, fatal).
const SEVERITIES: [u8; 5] = [7, 6, 4, 3, 2];
/// local3 for logger, local4 for rsyslog.
const LOCAL3: u8 = 19;
const LOCAL4: u8 = 20;

fn priority(facility: u8, level_index: usize) -> u8 {
    facility * 8 + SEVERITIES[level_index]
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string()
}

#[derive(Clone, Copy)]
pub enum Transport {
    /// RFC 5424, octet-counted.
    Tcp,
    /// RFC 3164 (the BSD format), one datagram each.
    Udp,
}

/// util-linux `logger`, each stdin line a message with its own priority
/// (`--prio-prefix`).
pub async fn logger(target: &Target<'_>, transport: Transport) {
    let (service, port, options): (&str, u16, &[&str]) = match transport {
        Transport::Tcp => (
            "logger-tcp",
            target.syslog_tcp,
            &[
                "--tcp",
                "--octet-count",
                "--rfc5424",
                "--msgid",
                "TEST",
                "--sd-id",
                "order@32473",
                "--sd-param",
                "id=\"A-17\"",
            ],
        ),
        Transport::Udp => (
            "logger-udp",
            target.syslog_udp.expect("a UDP port"),
            &["--udp", "--rfc3164"],
        ),
    };
    let plan = Plan::new(service, &[]);
    let lines: String = plan
        .logs
        .iter()
        .enumerate()
        .map(|(n, log)| format!("<{}>{}\n", priority(LOCAL3, n), log.message))
        .collect();
    let mut command = Command::new("logger");
    command
        .args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args(options)
        .args(["--prio-prefix", "--tag", service])
        // RFC 3164 times carry no zone: the server reads them as UTC.
        .env("TZ", "UTC");
    // RFC 3164 times are whole seconds.
    let before = now_us() - 1_000_000;
    run_client(service, command, lines).await;
    let rows = stored(target.reader, &target.url, service, plan.logs.len()).await;
    let host = hostname();
    let short_host = host.split('.').next().unwrap_or_default().to_string();
    let extra: Vec<(&str, &str)> = match transport {
        Transport::Tcp => vec![
            ("hostname", host.as_str()),
            ("facility", "local3"),
            ("msgid", "TEST"),
            ("order@32473.id", "A-17"),
        ],
        Transport::Udp => vec![("hostname", short_host.as_str()), ("facility", "local3")],
    };
    let expect = Expect {
        timing: Timing::Between(before, now_us()),
        extra_attributes: &extra,
        absent_attributes: &[],
    };
    assert_arrived(service, &plan, &rows, &expect);
}

/// A private rsyslogd (foreground, its own work directory and pid file)
/// reading RFC 5424 lines on a TCP port and forwarding each to our
/// Elasticsearch bulk API (omelasticsearch, the key as the Basic password)
/// and to our syslog TCP listener (omfwd, newline framing).
struct Rsyslogd {
    child: Child,
    input_port: u16,
    _workspace: tempfile::TempDir,
}

impl Rsyslogd {
    fn start(target: &Target<'_>) -> Rsyslogd {
        let workspace = tempfile::tempdir().expect("temp dir");
        let work = workspace.path().join("work");
        std::fs::create_dir(&work).expect("work dir");
        let input_port = free_port();
        let http = target
            .url
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once(':'))
            .map(|(host, port)| (host.to_string(), port.trim_end_matches('/').to_string()))
            .expect("http://host:port");
        let credentials = match target.key {
            Some(key) => format!("uid=\"rsyslog\" pwd=\"{key}\""),
            None => String::new(),
        };
        let config = format!(
            r#"global(workDirectory="{work}")
module(load="imptcp")
module(load="omelasticsearch")
input(type="imptcp" address="127.0.0.1" port="{input_port}" ruleset="ship")
template(name="oglogstream-json" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="severity" name="syslogseverity-text" format="jsonf")
  property(outname="facility" name="syslogfacility-text" format="jsonf")
  property(outname="service" name="programname" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}}
ruleset(name="ship") {{
  action(type="omelasticsearch" server="{host}" serverport="{port}" template="oglogstream-json"
         searchIndex="rsyslog-logs" bulkmode="on" {credentials})
  action(type="omfwd" target="127.0.0.1" port="{syslog}" protocol="tcp"
         template="RSYSLOG_SyslogProtocol23Format")
}}
"#,
            work = work.display(),
            host = http.0,
            port = http.1,
            syslog = target.syslog_tcp,
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
            _workspace: workspace,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._workspace.path().join("rsyslogd.log")).unwrap_or_default()
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rsyslogd_binary() -> PathBuf {
    ["/usr/sbin/rsyslogd", "/usr/bin/rsyslogd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .expect("rsyslogd is not installed (Debian packages rsyslog and rsyslog-elasticsearch; `make test` installs them)")
}

pub async fn rsyslog(target: &Target<'_>) {
    let service = "rsyslog-app";
    let plan = Plan::new(service, &[]);
    let mut daemon = Rsyslogd::start(target);
    let mut input = eventually("rsyslogd listening", Duration::from_secs(20), || async {
        TcpStream::connect(("127.0.0.1", daemon.input_port)).ok()
    })
    .await;
    for (n, log) in plan.logs.iter().enumerate() {
        let time = oglogstream::domain::time::format_rfc3339(log.time_ms * 1000);
        let line = format!(
            "<{}>1 {time} web-{n} {service} 4{n} ID{n} [order@32473 id=\"A-{n}\"] {}\n",
            priority(LOCAL4, n),
            log.message
        );
        input.write_all(line.as_bytes()).expect("to rsyslogd");
    }
    drop(input);
    // Each log arrives twice: through Elasticsearch bulk and through syslog.
    let rows = stored(target.reader, &target.url, service, 2 * plan.logs.len()).await;
    let (via_bulk, via_syslog): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|row| row["attributes"]["index"] == "rsyslog-logs");
    let context = |path: &str| format!("rsyslog {path}; rsyslogd's log:\n{}", daemon.log());
    assert_arrived(
        &context("omelasticsearch"),
        &plan,
        &via_bulk,
        &Expect {
            timing: Timing::Planned { tolerance_us: 0 },
            extra_attributes: &[("facility", "local4")],
            absent_attributes: &["severity", "service"],
        },
    );
    assert_arrived(
        &context("omfwd"),
        &plan,
        &via_syslog,
        &Expect {
            timing: Timing::Planned { tolerance_us: 0 },
            extra_attributes: &[("facility", "local4")],
            absent_attributes: &["index"],
        },
    );
    for (n, log) in plan.logs.iter().enumerate() {
        let host = format!("web-{n}");
        let order = format!("A-{n}");
        let by_bulk = via_bulk
            .iter()
            .find(|row| row["message"] == log.message)
            .expect("row");
        assert_eq!(by_bulk["attributes"]["host"], host.as_str(), "{by_bulk}");
        let by_syslog = via_syslog
            .iter()
            .find(|row| row["message"] == log.message)
            .expect("row");
        for (key, value) in [
            ("hostname", host.as_str()),
            ("procid", &format!("4{n}")),
            ("msgid", &format!("ID{n}")),
            ("order@32473.id", order.as_str()),
        ] {
            assert_eq!(by_syslog["attributes"][key], value, "{key}: {by_syslog}");
        }
    }
    daemon.child.kill().ok();
}
