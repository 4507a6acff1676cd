//! The differential isolation test (issue 22): three tenants whose logs
//! overlap on purpose (the same services, attribute keys, message words and
//! trace-id format), each with a service, an attribute key, a level and a
//! message template of its own, sent through every door (`/log`,
//! `/log/bulk`, OTLP/HTTP, OTLP/gRPC, Loki push, Elasticsearch `_bulk`,
//! syslog) with the tenant given by a bound key, by `X-Scope-OrgID` with a
//! plain key and by `tenants.default_tenant`. Then every read endpoint is
//! asked as each tenant, with each key form and with multi-tenant headers,
//! and its answer compared with what the corpus says those tenants sent:
//! nothing missing, nothing foreign. Both topologies: `--role all` on the
//! embedded store, and ingest + process + query on NATS and ClickHouse.

use crate::shippers::{free_udp_port, with_otlp_grpc, with_syslog};
use crate::split::deps::{ClickHouse, Nats};
use crate::support::{Launch, LiveConnection, Server, eventually, free_port, next_log};
use awc::http::StatusCode;
use oglogstream::domain::shippers::protobuf::{put_bytes_field, put_varint_field};
use oglogstream::loadgen::grpc::{GrpcConnection, frame};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const A: &str = "team-a";
const B: &str = "team-b";
const C: &str = "team-c";
const TENANTS: [&str; 3] = [A, B, C];

const INGEST_A: &str = "diff-ingest-key-team-a-0123456789";
const INGEST_ANY: &str = "diff-ingest-key-any-0123456789";
const READ_A: &str = "diff-read-key-team-a-0123456789";
const READ_B: &str = "diff-read-key-team-b-0123456789";
const READ_AB: &str = "diff-read-key-team-ab-0123456789";
const READ_ANY: &str = "diff-read-key-any-0123456789";
const ADMIN_AB: &str = "diff-admin-key-team-ab-0123456789";
const ADMIN_ANY: &str = "diff-admin-key-any-0123456789";

/// Syslog carries no tenant: its listener's `syslog.tenant` names one.
const SYSLOG_TENANT: &str = B;
/// Plain keys naming no tenant write and read as this one.
const DEFAULT_TENANT: &str = C;

// ---------------------------------------------------------------------------
// The corpus

#[derive(Clone, Copy, Debug, PartialEq)]
enum Door {
    Log,
    Bulk,
    OtlpHttp,
    OtlpGrpc,
    Loki,
    Elasticsearch,
    Syslog,
}

const DOORS: [Door; 7] = [
    Door::Log,
    Door::Bulk,
    Door::OtlpHttp,
    Door::OtlpGrpc,
    Door::Loki,
    Door::Elasticsearch,
    Door::Syslog,
];

/// One log as sent, and as every read must show it.
#[derive(Clone, Debug)]
struct Sent {
    tenant: &'static str,
    door: Door,
    service: String,
    level: &'static str,
    message: String,
    /// As stored, the protocol's own additions (`index`, `hostname`) included.
    attributes: BTreeMap<String, String>,
    trace_id: Option<String>,
}

/// What one tenant has of its own: a leak of any of these shows.
struct Own {
    service: &'static str,
    level: &'static str,
    key: &'static str,
    region: &'static str,
    template: fn(u64) -> String,
}

fn own(tenant: &str) -> Own {
    match tenant {
        A => Own {
            service: "only-a",
            level: "debug",
            key: "a_secret",
            region: "eu-west",
            template: |n| format!("cache warmed in {n} ms"),
        },
        B => Own {
            service: "only-b",
            level: "warn",
            key: "b_secret",
            region: "us-east",
            template: |n| format!("queue drained after {n} tries"),
        },
        _ => Own {
            service: "only-c",
            level: "fatal",
            key: "c_secret",
            region: "ap-south",
            template: |n| format!("disk rotated at {n} percent"),
        },
    }
}

/// Four logs per tenant and door (syslog: one tenant's): two in the shared
/// services with the shared template and the shared key `region` (each
/// tenant its own value), two with the tenant's own level and template, one
/// of them in its own service. The trace ids are the same in every tenant;
/// every message is unique (a running number), so a row says whose it is.
fn corpus() -> Vec<Sent> {
    let mut corpus = Vec::new();
    let mut n = 1000;
    for (door_number, door) in DOORS.into_iter().enumerate() {
        for tenant in TENANTS {
            if door == Door::Syslog && tenant != SYSLOG_TENANT {
                continue;
            }
            let own = own(tenant);
            let shapes: [(&str, &'static str, bool, bool); 4] = [
                ("checkout", "info", false, true),
                ("web", "error", false, true),
                (own.service, own.level, true, true),
                ("checkout", own.level, true, false),
            ];
            for (shape, (service, level, own_template, region)) in shapes.into_iter().enumerate() {
                n += 1;
                let message = if own_template {
                    (own.template)(n)
                } else {
                    format!("payment failed for order {n} after {} retries", n % 5 + 1)
                };
                let mut attributes = BTreeMap::new();
                let mut trace_id = None;
                if door == Door::Syslog {
                    // Syslog's header fields are its attributes.
                    attributes.insert("hostname".into(), "host-b".into());
                    attributes.insert("facility".into(), "local0".into());
                } else {
                    if region {
                        attributes.insert("region".into(), own.region.into());
                    }
                    if own_template {
                        attributes.insert(own.key.into(), format!("x{n}"));
                    }
                    // The same trace ids in every tenant: a lookup by
                    // trace id must still find only the reader's.
                    trace_id = Some(format!("{:032x}", 0x4bf9_0000 + door_number * 4 + shape));
                }
                if door == Door::Elasticsearch {
                    attributes.insert("index".into(), "app-logs".into());
                }
                corpus.push(Sent {
                    tenant,
                    door,
                    service: service.into(),
                    level,
                    message,
                    attributes,
                    trace_id,
                });
            }
        }
    }
    corpus
}

// ---------------------------------------------------------------------------
// Sending through every door

/// Where to send: an ingest instance and its gRPC and syslog listeners.
struct Doors<'a> {
    ingest: &'a Server,
    grpc: u16,
    syslog_tcp: u16,
}

/// How a tenant's writes name it: team-a by its bound key, team-b by the
/// header with a plain key, team-c by naming nothing (the default tenant).
fn ingest_auth(tenant: &str) -> (&'static str, Option<&'static str>) {
    match tenant {
        A => (INGEST_A, None),
        B => (INGEST_ANY, Some(B)),
        _ => (INGEST_ANY, None),
    }
}

fn attributes_json(sent: &Sent) -> serde_json::Map<String, Value> {
    let mut attributes: serde_json::Map<String, Value> = sent
        .attributes
        .iter()
        .filter(|(key, _)| key.as_str() != "index")
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    if let Some(trace_id) = &sent.trace_id {
        attributes.insert("trace_id".into(), Value::from(trace_id.as_str()));
    }
    attributes
}

fn our_json(sent: &Sent) -> Value {
    json!({"level": sent.level, "service": sent.service, "message": sent.message,
           "attributes": attributes_json(sent)})
}

fn severity_number(level: &str) -> u64 {
    match level {
        "debug" => 5,
        "info" => 9,
        "warn" => 13,
        "error" => 17,
        _ => 21,
    }
}

fn otlp_json(logs: &[&Sent]) -> Value {
    let resource_logs: Vec<Value> = logs
        .iter()
        .map(|sent| {
            let attributes: Vec<Value> = sent
                .attributes
                .iter()
                .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
                .collect();
            json!({
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": sent.service}}]},
                "scopeLogs": [{"logRecords": [{
                    "severityNumber": severity_number(sent.level),
                    "body": {"stringValue": sent.message},
                    "traceId": sent.trace_id,
                    "attributes": attributes,
                }]}],
            })
        })
        .collect();
    json!({ "resourceLogs": resource_logs })
}

/// `ExportLogsServiceRequest` in protobuf: one resource per log.
fn otlp_protobuf(logs: &[&Sent]) -> Vec<u8> {
    fn key_value(key: &str, value: &str) -> Vec<u8> {
        let mut any_value = Vec::new();
        put_bytes_field(&mut any_value, 1, value.as_bytes());
        let mut out = Vec::new();
        put_bytes_field(&mut out, 1, key.as_bytes());
        put_bytes_field(&mut out, 2, &any_value);
        out
    }
    let mut request = Vec::new();
    for sent in logs {
        let mut resource = Vec::new();
        put_bytes_field(&mut resource, 1, &key_value("service.name", &sent.service));
        let mut record = Vec::new();
        put_varint_field(&mut record, 2, severity_number(sent.level));
        let mut body = Vec::new();
        put_bytes_field(&mut body, 1, sent.message.as_bytes());
        put_bytes_field(&mut record, 5, &body);
        for (key, value) in &sent.attributes {
            put_bytes_field(&mut record, 6, &key_value(key, value));
        }
        if let Some(trace_id) = &sent.trace_id {
            let bytes: Vec<u8> = (0..16)
                .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).expect("hex"))
                .collect();
            put_bytes_field(&mut record, 9, &bytes);
        }
        let mut scope_logs = Vec::new();
        put_bytes_field(&mut scope_logs, 2, &record);
        let mut resource_logs = Vec::new();
        put_bytes_field(&mut resource_logs, 1, &resource);
        put_bytes_field(&mut resource_logs, 2, &scope_logs);
        put_bytes_field(&mut request, 1, &resource_logs);
    }
    request
}

fn loki_push(logs: &[&Sent]) -> Value {
    let now_ns = oglogstream::domain::time::now_micros() * 1000;
    let streams: Vec<Value> = logs
        .iter()
        .map(|sent| {
            let mut labels = json!({"service_name": sent.service, "level": sent.level});
            if let Some(region) = sent.attributes.get("region") {
                labels["region"] = Value::from(region.as_str());
            }
            // The rest as structured metadata.
            let metadata: serde_json::Map<String, Value> = attributes_json(sent)
                .into_iter()
                .filter(|(key, _)| key != "region")
                .collect();
            json!({"stream": labels, "values": [[now_ns.to_string(), sent.message, metadata]]})
        })
        .collect();
    json!({ "streams": streams })
}

fn elasticsearch_bulk(logs: &[&Sent]) -> String {
    let mut body = String::new();
    for sent in logs {
        let mut document = json!({"message": sent.message, "log": {"level": sent.level},
                                  "service": {"name": sent.service}});
        for (key, value) in attributes_json(sent) {
            document[key] = value;
        }
        body += &json!({"index": {"_index": "app-logs"}}).to_string();
        body += "\n";
        body += &document.to_string();
        body += "\n";
    }
    body
}

/// RFC 5424, newline-framed, facility local0.
fn syslog_lines(logs: &[&Sent]) -> String {
    logs.iter()
        .map(|sent| {
            let severity = match sent.level {
                "debug" => 7,
                "info" => 6,
                "warn" => 4,
                "error" => 3,
                _ => 2,
            };
            let now = oglogstream::domain::time::now_micros();
            let mut timestamp = String::new();
            oglogstream::domain::time::write_rfc3339(&mut timestamp, now);
            format!(
                "<{}>1 {timestamp} host-b {} - - - {}\n",
                16 * 8 + severity,
                sent.service,
                sent.message
            )
        })
        .collect()
}

async fn post(
    server: &Server,
    path: &str,
    tenant: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let (key, header) = ingest_auth(tenant);
    let mut request = server
        .client
        .post(server.url(path))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .insert_header(("Content-Type", content_type));
    if let Some(header) = header {
        request = request.insert_header(("X-Scope-OrgID", header));
    }
    let mut response = request.send_body(body).await.expect("an answer");
    let body = response.body().limit(16 << 20).await.expect("a body");
    (
        response.status(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Every log of the corpus through its door, as its tenant says it.
async fn send_through_every_door(doors: &Doors<'_>, corpus: &[Sent]) {
    for door in DOORS {
        for tenant in TENANTS {
            let logs: Vec<&Sent> = corpus
                .iter()
                .filter(|sent| sent.door == door && sent.tenant == tenant)
                .collect();
            if logs.is_empty() {
                continue;
            }
            let server = doors.ingest;
            let what = format!("{door:?} as {tenant}");
            match door {
                Door::Log => {
                    for sent in &logs {
                        let body = our_json(sent).to_string().into_bytes();
                        let (status, answer) =
                            post(server, "/log", tenant, "application/json", body).await;
                        assert_eq!(status, StatusCode::ACCEPTED, "{what}: {answer}");
                    }
                }
                Door::Bulk => {
                    let body: Vec<Value> = logs.iter().map(|sent| our_json(sent)).collect();
                    let (status, answer) = post(
                        server,
                        "/log/bulk",
                        tenant,
                        "application/json",
                        Value::from(body).to_string().into_bytes(),
                    )
                    .await;
                    assert_eq!(status, StatusCode::ACCEPTED, "{what}: {answer}");
                    assert!(answer.contains("\"rejected\":0"), "{what}: {answer}");
                }
                Door::OtlpHttp => {
                    // Both encodings: protobuf for one tenant, JSON for the rest.
                    let (content_type, body) = if tenant == A {
                        ("application/x-protobuf", otlp_protobuf(&logs))
                    } else {
                        (
                            "application/json",
                            otlp_json(&logs).to_string().into_bytes(),
                        )
                    };
                    let (status, answer) =
                        post(server, "/v1/logs", tenant, content_type, body).await;
                    assert_eq!(status, StatusCode::OK, "{what}: {answer}");
                }
                Door::OtlpGrpc => {
                    let (key, header) = ingest_auth(tenant);
                    let bearer = format!("Bearer {key}");
                    let mut metadata = vec![("authorization", bearer.as_str())];
                    if let Some(header) = header {
                        metadata.push(("x-scope-orgid", header));
                    }
                    let mut grpc = GrpcConnection::connect(&format!("127.0.0.1:{}", doors.grpc))
                        .await
                        .expect("the gRPC listener");
                    let answer = grpc
                        .call(
                            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                            &metadata,
                            frame(&otlp_protobuf(&logs), false),
                        )
                        .await
                        .expect("an answer");
                    assert_eq!(answer.code, 0, "{what}: {answer:?}");
                    assert!(answer.body.is_empty(), "{what}: partial success {answer:?}");
                }
                Door::Loki => {
                    let body = loki_push(&logs).to_string().into_bytes();
                    let (status, answer) = post(
                        server,
                        "/loki/api/v1/push",
                        tenant,
                        "application/json",
                        body,
                    )
                    .await;
                    assert_eq!(status, StatusCode::NO_CONTENT, "{what}: {answer}");
                }
                Door::Elasticsearch => {
                    let body = elasticsearch_bulk(&logs).into_bytes();
                    let (status, answer) =
                        post(server, "/_bulk", tenant, "application/x-ndjson", body).await;
                    assert_eq!(status, StatusCode::OK, "{what}: {answer}");
                    assert!(answer.contains("\"errors\":false"), "{what}: {answer}");
                }
                Door::Syslog => {
                    use std::io::Write;
                    let mut stream = std::net::TcpStream::connect(("127.0.0.1", doors.syslog_tcp))
                        .expect("the syslog listener");
                    stream
                        .write_all(syslog_lines(&logs).as_bytes())
                        .expect("syslog lines written");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Readers, and what each must see

/// One way of asking: a key, maybe a header, and the tenants it reads.
#[derive(Clone, Debug)]
struct Reader {
    key: &'static str,
    header: Option<&'static str>,
    tenants: Vec<&'static str>,
}

fn reader(key: &'static str, header: Option<&'static str>, tenants: &[&'static str]) -> Reader {
    Reader {
        key,
        header,
        tenants: tenants.to_vec(),
    }
}

/// Each tenant by its bound key, by its bound key naming it, by a plain
/// key with the header and by the default; two and three at once.
fn readers() -> Vec<Reader> {
    vec![
        reader(READ_A, None, &[A]),
        reader(READ_A, Some(A), &[A]),
        reader(READ_B, None, &[B]),
        reader(READ_ANY, Some(B), &[B]),
        reader(READ_ANY, Some(C), &[C]),
        reader(READ_ANY, None, &[DEFAULT_TENANT]),
        reader(READ_AB, None, &[A, B]),
        reader(READ_AB, Some(A), &[A]),
        reader(READ_AB, Some("team-a|team-b"), &[A, B]),
        reader(READ_ANY, Some("team-a|team-b"), &[A, B]),
        reader(READ_ANY, Some("team-b|team-c"), &[B, C]),
        reader(READ_ANY, Some("team-a|team-b|team-c"), &[A, B, C]),
    ]
}

/// What the tenants of a read sent.
struct View<'a> {
    tenants: Vec<&'static str>,
    rows: Vec<&'a Sent>,
}

fn expected_view<'a>(corpus: &'a [Sent], tenants: &[&'static str]) -> View<'a> {
    View {
        tenants: tenants.to_vec(),
        rows: corpus
            .iter()
            .filter(|sent| tenants.contains(&sent.tenant))
            .collect(),
    }
}

impl View<'_> {
    fn messages(&self) -> BTreeSet<String> {
        self.rows.iter().map(|sent| sent.message.clone()).collect()
    }

    fn count_by(&self, key: impl Fn(&Sent) -> Option<String>) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for sent in &self.rows {
            if let Some(value) = key(sent) {
                *counts.entry(value).or_insert(0) += 1;
            }
        }
        counts
    }

    fn services(&self) -> BTreeMap<String, u64> {
        self.count_by(|sent| Some(sent.service.clone()))
    }

    fn levels(&self) -> BTreeMap<String, u64> {
        let mut levels: BTreeMap<String, u64> = ["debug", "info", "warn", "error", "fatal"]
            .into_iter()
            .map(|level| (level.to_string(), 0))
            .collect();
        levels.extend(self.count_by(|sent| Some(sent.level.to_string())));
        levels
    }

    fn attribute(&self, key: &str) -> BTreeMap<String, u64> {
        self.count_by(|sent| sent.attributes.get(key).cloned())
    }

    fn keys(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for sent in &self.rows {
            for key in sent.attributes.keys() {
                *counts.entry(key.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    fn multi(&self) -> bool {
        self.tenants.len() > 1
    }
}

/// The tenant whose log this message is (messages are unique).
fn owner<'a>(corpus: &'a [Sent], message: &str) -> Option<&'a Sent> {
    corpus.iter().find(|sent| sent.message == message)
}

// ---------------------------------------------------------------------------
// Asking

struct Answer {
    status: StatusCode,
    headers: awc::http::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

async fn ask(server: &Server, reader: &Reader, path: &str) -> Answer {
    let mut request = server
        .client
        .get(server.url(path))
        .insert_header(("Authorization", format!("Bearer {}", reader.key)));
    if let Some(header) = reader.header {
        request = request.insert_header(("X-Scope-OrgID", header));
    }
    let mut response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let body = response.body().limit(64 << 20).await.expect("a body");
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A 200's JSON, else the test fails naming the reader and the answer.
async fn ask_ok(server: &Server, reader: &Reader, path: &str) -> Value {
    let answer = ask(server, reader, path).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{path} as {reader:?}: {}",
        answer.text
    );
    answer.json()
}

/// Rows of `/api/logs` (or export): each known, each of the view, and
/// saying its tenant exactly when the read names several.
fn check_rows(corpus: &[Sent], view: &View<'_>, rows: &[Value], what: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for row in rows {
        let message = row["message"].as_str().unwrap_or_default();
        let sent = owner(corpus, message).unwrap_or_else(|| panic!("{what}: unknown row {row}"));
        assert!(
            view.tenants.contains(&sent.tenant),
            "{what}: a row of {} leaked: {row}",
            sent.tenant
        );
        if view.multi() {
            assert_eq!(row["tenant"], sent.tenant, "{what}: {row}");
        } else {
            assert!(row.get("tenant").is_none(), "{what}: {row}");
        }
        assert_eq!(row["service"], sent.service.as_str(), "{what}: {row}");
        assert_eq!(row["level"], sent.level, "{what}: {row}");
        let attributes: BTreeMap<String, String> =
            serde_json::from_value(row["attributes"].clone()).unwrap_or_default();
        assert_eq!(attributes, sent.attributes, "{what}: {row}");
        assert_eq!(
            row["trace_id"].as_str(),
            sent.trace_id.as_deref(),
            "{what}: {row}"
        );
        assert!(seen.insert(message.to_string()), "{what}: twice: {row}");
    }
    seen
}

// ---------------------------------------------------------------------------
// One comparison per endpoint

/// `/api/logs` whole, and with filters the corpus can answer.
async fn compare_logs(server: &Server, corpus: &[Sent], reader: &Reader, view: &View<'_>) {
    let rows = ask_ok(server, reader, "/api/logs?limit=1000").await;
    let seen = check_rows(corpus, view, rows.as_array().unwrap(), "/api/logs");
    assert_eq!(seen, view.messages(), "/api/logs as {reader:?}");

    let a_trace = corpus
        .iter()
        .find(|sent| sent.tenant == A && sent.trace_id.is_some())
        .and_then(|sent| sent.trace_id.clone())
        .expect("a traced team-a log");
    type Keep = Box<dyn Fn(&Sent) -> bool>;
    let filters: Vec<(String, Keep)> = vec![
        (
            "query=region:eu-west".into(),
            Box::new(|s: &Sent| s.attributes.get("region").map(String::as_str) == Some("eu-west")),
        ),
        (
            "query=level:error".into(),
            Box::new(|s: &Sent| s.level == "error"),
        ),
        (
            "q=payment".into(),
            Box::new(|s: &Sent| s.message.contains("payment")),
        ),
        (
            "query=service:checkout".into(),
            Box::new(|s: &Sent| s.service == "checkout"),
        ),
        (
            "service=only".into(),
            Box::new(|s: &Sent| s.service.starts_with("only-")),
        ),
        (
            "level=debug,fatal".into(),
            Box::new(|s: &Sent| s.level == "debug" || s.level == "fatal"),
        ),
        (
            "query=b_secret:*".into(),
            Box::new(|s: &Sent| s.attributes.contains_key("b_secret")),
        ),
        (
            format!("query=trace_id:{a_trace}"),
            Box::new(move |s: &Sent| s.trace_id.as_deref() == Some(a_trace.as_str())),
        ),
    ];
    for (filter, keep) in filters {
        let path = format!("/api/logs?limit=1000&{filter}");
        let rows = ask_ok(server, reader, &path).await;
        let seen = check_rows(corpus, view, rows.as_array().unwrap(), &path);
        let expected: BTreeSet<String> = view
            .rows
            .iter()
            .filter(|sent| keep(sent))
            .map(|sent| sent.message.clone())
            .collect();
        assert_eq!(seen, expected, "{path} as {reader:?}");
    }
}

/// Paging by cursor lists the view once; the cursor is refused by a read
/// of other tenants. Returns the first page's cursor.
async fn compare_cursor_pages(
    server: &Server,
    corpus: &[Sent],
    reader: &Reader,
    view: &View<'_>,
) -> String {
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut first = None;
    loop {
        let path = match &cursor {
            None => "/api/logs?limit=7".to_string(),
            Some(cursor) => format!("/api/logs?limit=7&cursor={cursor}"),
        };
        let answer = ask(server, reader, &path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
        let rows = answer.json();
        for message in check_rows(corpus, view, rows.as_array().unwrap(), &path) {
            assert!(seen.insert(message.clone()), "{path}: {message} twice");
        }
        cursor = answer
            .headers
            .get("x-next-cursor")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        if first.is_none() {
            first = cursor.clone();
        }
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, view.messages(), "cursor pages as {reader:?}");
    first.expect("more than one page")
}

async fn compare_stats(server: &Server, reader: &Reader, view: &View<'_>) {
    let stats = ask_ok(server, reader, "/api/stats").await;
    assert_eq!(stats["total_logs"], view.rows.len(), "{reader:?}: {stats}");
    let levels: BTreeMap<String, u64> =
        serde_json::from_value(stats["logs_by_level"].clone()).expect("levels");
    assert_eq!(levels, view.levels(), "{reader:?}: {stats}");
    let services: BTreeMap<String, u64> =
        serde_json::from_value(stats["logs_by_service"].clone()).expect("services");
    assert_eq!(services, view.services(), "{reader:?}: {stats}");
}

async fn compare_histogram(server: &Server, reader: &Reader, view: &View<'_>) {
    let histogram = ask_ok(server, reader, "/api/histogram").await;
    let mut levels: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0;
    for bucket in histogram["buckets"].as_array().expect("buckets") {
        total += bucket["total"].as_u64().unwrap_or_default();
        for level in ["debug", "info", "warn", "error", "fatal"] {
            *levels.entry(level.into()).or_insert(0) += bucket[level].as_u64().unwrap_or_default();
        }
    }
    assert_eq!(total, view.rows.len() as u64, "{reader:?}: {histogram}");
    assert_eq!(levels, view.levels(), "{reader:?}: {histogram}");

    for (by, expected) in [
        ("service", view.services()),
        ("region", view.attribute("region")),
        ("a_secret", view.attribute("a_secret")),
    ] {
        let path = format!("/api/histogram?by={by}");
        let split = ask_ok(server, reader, &path).await;
        let values: BTreeSet<String> =
            serde_json::from_value(split["values"].clone()).expect("values");
        // Ten values at most are named; every one must be the view's.
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut missing = 0;
        for bucket in split["buckets"].as_array().expect("buckets") {
            missing += bucket["missing"].as_u64().unwrap_or_default();
            if let Some(bucket_counts) = bucket["counts"].as_object() {
                for (value, count) in bucket_counts {
                    *counts.entry(value.clone()).or_insert(0) += count.as_u64().unwrap_or(0);
                }
            }
        }
        for (value, count) in &counts {
            assert!(
                expected.get(value).is_some_and(|n| n >= count),
                "{path} as {reader:?}: a foreign value {value}: {split}"
            );
        }
        if expected.len() <= 10 {
            assert_eq!(
                values,
                expected.keys().cloned().collect(),
                "{path} as {reader:?}: {split}"
            );
            assert_eq!(counts, expected, "{path} as {reader:?}: {split}");
        }
        let with: u64 = expected.values().sum();
        if by != "service" {
            assert_eq!(
                missing,
                view.rows.len() as u64 - with,
                "{path} as {reader:?}: {split}"
            );
        }
    }
}

async fn compare_services(server: &Server, reader: &Reader, view: &View<'_>) {
    let services = ask_ok(server, reader, "/api/services").await;
    let services: BTreeMap<String, u64> = services
        .as_array()
        .expect("a list")
        .iter()
        .map(|entry| {
            (
                entry["service"].as_str().unwrap_or_default().to_string(),
                entry["count"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(services, view.services(), "/api/services as {reader:?}");
}

const ATTRIBUTE_KEYS: [&str; 7] = [
    "region", "a_secret", "b_secret", "c_secret", "index", "hostname", "facility",
];

async fn compare_facets(server: &Server, reader: &Reader, view: &View<'_>) {
    let fields = format!("level,service,{}", ATTRIBUTE_KEYS.join(","));
    let path = format!("/api/facets?limit=100&fields={fields}");
    let facets = ask_ok(server, reader, &path).await;
    assert_eq!(facets["total"], view.rows.len(), "{path} as {reader:?}");
    for facet in facets["facets"].as_array().expect("facets") {
        let field = facet["field"].as_str().expect("a field");
        let values: BTreeMap<String, u64> = facet["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|value| {
                (
                    value["value"].as_str().unwrap_or_default().to_string(),
                    value["count"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        let mut expected = match field {
            "level" => view.levels(),
            "service" => view.services(),
            key => view.attribute(key),
        };
        expected.retain(|_, count| *count > 0);
        assert_eq!(values, expected, "{path} as {reader:?}: facet {field}");
        assert_eq!(facet["distinct"], expected.len(), "{field}: {facet}");
    }

    // Unasked, only the view's own keys may be offered.
    let facets = ask_ok(server, reader, "/api/facets").await;
    let keys = view.keys();
    for facet in facets["facets"]
        .as_array()
        .expect("facets")
        .iter()
        .chain(facets["id_like"].as_array().expect("id_like"))
    {
        let field = facet["field"].as_str().unwrap_or_default();
        assert!(
            field == "level" || field == "service" || keys.contains_key(field),
            "/api/facets as {reader:?} offers a foreign field {field}: {facets}"
        );
    }
}

async fn compare_fields(server: &Server, reader: &Reader, view: &View<'_>) {
    let fields = ask_ok(server, reader, "/api/fields").await;
    let fields: BTreeMap<String, u64> = fields
        .as_array()
        .expect("a list")
        .iter()
        .map(|entry| {
            (
                entry["field"].as_str().unwrap_or_default().to_string(),
                entry["count"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(fields, view.keys(), "/api/fields as {reader:?}");
}

async fn compare_export(server: &Server, corpus: &[Sent], reader: &Reader, view: &View<'_>) {
    let answer = ask(server, reader, "/api/export?format=ndjson").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let rows: Vec<Value> = answer
        .text
        .lines()
        .map(|line| serde_json::from_str(line).expect("an NDJSON row"))
        .collect();
    let seen = check_rows(corpus, view, &rows, "/api/export");
    assert_eq!(seen, view.messages(), "/api/export as {reader:?}");
}

/// A log of the view has the view around it; another tenant's is a 404.
async fn compare_context(
    server: &Server,
    corpus: &[Sent],
    ids: &BTreeMap<String, String>,
    reader: &Reader,
    view: &View<'_>,
) {
    for sent in corpus.iter().filter(|sent| sent.door == Door::Log) {
        let id = &ids[&sent.message];
        let path = format!("/api/logs/{id}/context?scope=all&before=500&after=500");
        let answer = ask(server, reader, &path).await;
        if !view.tenants.contains(&sent.tenant) {
            assert_eq!(
                answer.status,
                StatusCode::NOT_FOUND,
                "{path}: a log of {} as {reader:?}: {}",
                sent.tenant,
                answer.text
            );
            continue;
        }
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
        let context = answer.json();
        let mut rows = vec![context["log"].clone()];
        rows.extend(context["before"].as_array().cloned().unwrap_or_default());
        rows.extend(context["after"].as_array().cloned().unwrap_or_default());
        let seen = check_rows(corpus, view, &rows, &path);
        assert_eq!(seen, view.messages(), "{path} as {reader:?}");
    }
}

/// What an alert rule would count now: a rule is one tenant's, so a read
/// of several must name which (`tenant=`, as creating the rule must), and
/// then counts that tenant's logs only.
async fn compare_alert_preview(server: &Server, reader: &Reader, view: &View<'_>) {
    let path = "/api/alerts/preview?query=&window=1h&group_by=service";
    let (path, counted) = if view.multi() {
        let refused = ask(server, reader, path).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{path} as {reader:?}: {}",
            refused.text
        );
        assert_eq!(refused.json()["field"], "tenant", "{}", refused.text);
        let first = view.tenants.iter().max().copied().unwrap_or_default();
        (format!("{path}&tenant={first}"), services_of(view, first))
    } else {
        (path.to_string(), view.services())
    };
    let preview = ask_ok(server, reader, &path).await;
    let mut groups = BTreeMap::new();
    for group in preview["groups"].as_array().expect("groups") {
        let service = group["labels"]["service"].as_str().unwrap_or_default();
        groups.insert(
            service.to_string(),
            group["value"].as_u64().unwrap_or_default(),
        );
    }
    assert_eq!(groups, counted, "{path} as {reader:?}: {preview}");
    assert_eq!(
        preview["count"],
        counted.values().sum::<u64>(),
        "{path} as {reader:?}: {preview}"
    );
}

/// One tenant's logs per service, out of a view holding it.
fn services_of(view: &View<'_>, tenant: &str) -> BTreeMap<String, u64> {
    let mut services = BTreeMap::new();
    for sent in view.rows.iter().filter(|sent| sent.tenant == tenant) {
        *services.entry(sent.service.clone()).or_insert(0) += 1;
    }
    services
}

/// Saved views are their tenant's: each tenant saves one, each reader
/// lists those of its tenants and gets a 404 for another's.
async fn compare_views(server: &Server, readers: &[Reader]) {
    let mut ids = BTreeMap::new();
    for saver in readers.iter().filter(|r| r.tenants.len() == 1) {
        let tenant = saver.tenants[0];
        if ids.contains_key(tenant) {
            continue;
        }
        let mut request = server
            .client
            .post(server.url("/api/views"))
            .insert_header(("Authorization", format!("Bearer {}", saver.key)))
            .insert_header(("Content-Type", "application/json"));
        if let Some(header) = saver.header {
            request = request.insert_header(("X-Scope-OrgID", header));
        }
        let view = json!({"name": format!("{tenant} errors"), "query": "level:error"});
        let mut response = request
            .send_body(view.to_string())
            .await
            .expect("an answer");
        let body: Value = response.json().await.expect("a view");
        assert_eq!(response.status(), StatusCode::CREATED, "{saver:?}: {body}");
        assert_eq!(body["tenant"], tenant, "{body}");
        ids.insert(tenant, body["id"].as_str().expect("an id").to_string());
    }
    assert_eq!(ids.len(), TENANTS.len(), "one view per tenant");
    for reader in readers {
        let listed = ask_ok(server, reader, "/api/views").await;
        let names: BTreeSet<String> = listed["views"]
            .as_array()
            .expect("views")
            .iter()
            .map(|view| view["name"].as_str().unwrap_or_default().to_string())
            .collect();
        let expected: BTreeSet<String> = reader
            .tenants
            .iter()
            .map(|t| format!("{t} errors"))
            .collect();
        assert_eq!(names, expected, "/api/views as {reader:?}");
        for (tenant, id) in &ids {
            let answer = ask(server, reader, &format!("/api/views/{id}")).await;
            let wanted = if reader.tenants.contains(tenant) {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(
                answer.status, wanted,
                "{tenant}'s view as {reader:?}: {}",
                answer.text
            );
        }
    }
}

/// The admin's per-tenant volume: an admin bound to tenants sees those,
/// a plain admin key every tenant, a read key nothing.
async fn compare_tenant_volumes(server: &Server, corpus: &[Sent]) {
    for (key, tenants) in [(ADMIN_AB, vec![A, B]), (ADMIN_ANY, TENANTS.to_vec())] {
        let admin = reader(key, None, &tenants);
        let answer = ask_ok(server, &admin, "/api/tenants").await;
        let mut volumes = BTreeMap::new();
        for volume in answer["tenants"].as_array().expect("tenants") {
            let tenant = volume["tenant"].as_str().unwrap_or_default().to_string();
            assert_eq!(volume["logs"], volume["logs_24h"], "{volume}");
            volumes.insert(tenant, volume["logs"].as_u64().unwrap_or_default());
        }
        let expected: BTreeMap<String, u64> = tenants
            .iter()
            .map(|tenant| {
                let logs = corpus.iter().filter(|sent| sent.tenant == *tenant).count();
                (tenant.to_string(), logs as u64)
            })
            .collect();
        assert_eq!(volumes, expected, "/api/tenants as {admin:?}: {answer}");
    }
    let answer = ask(server, &reader(READ_ANY, Some(A), &[A]), "/api/tenants").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text);
}

/// Whether a pattern's template (`<_>` for what varies) fits a message.
fn template_matches(template: &str, message: &str) -> bool {
    let mut rest = message;
    template
        .split("<_>")
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .all(|piece| match rest.find(piece) {
            Some(at) => {
                rest = &rest[at + piece.len()..];
                true
            }
            None => false,
        })
}

/// Every pattern is made of the view's messages, and together they count
/// each of its logs once.
async fn compare_patterns(server: &Server, reader: &Reader, view: &View<'_>) {
    let answer = ask_ok(server, reader, "/api/patterns?limit=1000").await;
    assert_eq!(answer["logs"], view.rows.len(), "{reader:?}: {answer}");
    let patterns = answer["patterns"].as_array().expect("patterns");
    let total: u64 = patterns
        .iter()
        .map(|pattern| pattern["count"].as_u64().unwrap_or_default())
        .sum();
    assert_eq!(total, view.rows.len() as u64, "{reader:?}: {answer}");
    let services = view.services();
    for pattern in patterns {
        let template = pattern["pattern"].as_str().unwrap_or_default();
        assert!(
            view.rows
                .iter()
                .any(|sent| template_matches(template, &sent.message)),
            "{reader:?}: the pattern {template:?} is none of the view's messages"
        );
        for service in pattern["services"].as_object().expect("services").keys() {
            assert!(
                services.contains_key(service),
                "{reader:?}: pattern {template:?} names foreign service {service}"
            );
        }
    }
}

fn url_encoded(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|pair| pair[1..].to_string())
        .expect("urlencoded")
}

/// The LogQL selector of every stream, URL-encoded.
fn every_stream() -> String {
    url_encoded(r#"{service_name=~".+"}"#)
}

/// Loki's `query_range` as Grafana's Explore asks it: every line of the
/// view, streams saying their tenant when the read names several.
async fn compare_loki_query_range(
    server: &Server,
    corpus: &[Sent],
    reader: &Reader,
    view: &View<'_>,
) {
    let selector = every_stream();
    let path = format!("/loki/api/v1/query_range?query={selector}&limit=5000");
    let answer = ask_ok(server, reader, &path).await;
    let mut lines = BTreeSet::new();
    for stream in answer["data"]["result"].as_array().expect("streams") {
        let labels = &stream["stream"];
        if view.multi() {
            let tenant = labels["__tenant_id__"].as_str().unwrap_or("none");
            assert!(view.tenants.contains(&tenant), "{path}: {labels}");
        }
        for value in stream["values"].as_array().expect("values") {
            let line = value[1].as_str().unwrap_or_default();
            let sent = owner(corpus, line).unwrap_or_else(|| panic!("{path}: unknown {line}"));
            assert!(
                view.tenants.contains(&sent.tenant),
                "{path} as {reader:?}: a line of {} leaked: {line}",
                sent.tenant
            );
            if view.multi() {
                assert_eq!(labels["__tenant_id__"], sent.tenant, "{path}: {labels}");
            }
            assert!(lines.insert(line.to_string()), "{path}: twice {line}");
        }
    }
    assert_eq!(lines, view.messages(), "{path} as {reader:?}");
}

/// An instant metric query, counted by the store, grouped by service.
async fn compare_loki_metric(server: &Server, reader: &Reader, view: &View<'_>) {
    let metric =
        url_encoded(r#"sum by (service_name) (count_over_time({service_name=~".+"}[10m]))"#);
    let path = format!("/loki/api/v1/query?query={metric}");
    let answer = ask_ok(server, reader, &path).await;
    let mut counts = BTreeMap::new();
    for sample in answer["data"]["result"].as_array().expect("samples") {
        let service = sample["metric"]["service_name"]
            .as_str()
            .unwrap_or_default();
        let count: u64 = sample["value"][1]
            .as_str()
            .and_then(|count| count.parse().ok())
            .unwrap_or_default();
        counts.insert(service.to_string(), count);
    }
    assert_eq!(counts, view.services(), "{path} as {reader:?}: {answer}");
}

/// Label names (`service_name` and the stream labels the view holds), each
/// label's values, and Drilldown's labels with their cardinality.
async fn compare_loki_labels(server: &Server, reader: &Reader, view: &View<'_>) {
    let selector = every_stream();
    let labels = ask_ok(server, reader, "/loki/api/v1/labels").await;
    let labels: BTreeSet<String> =
        serde_json::from_value(labels["data"].clone()).expect("label names");
    let keys = view.keys();
    let mut expected: BTreeSet<String> = ["service_name".to_string()].into();
    for key in ["region", "c_secret"] {
        if keys.contains_key(key) {
            expected.insert(key.to_string());
        }
    }
    assert_eq!(labels, expected, "/loki/api/v1/labels as {reader:?}");

    for (label, values) in [
        ("service_name", view.services()),
        ("region", view.attribute("region")),
        ("c_secret", view.attribute("c_secret")),
    ] {
        let path = format!("/loki/api/v1/label/{label}/values");
        let answer = ask_ok(server, reader, &path).await;
        let got: BTreeSet<String> =
            serde_json::from_value(answer["data"].clone()).unwrap_or_default();
        assert_eq!(
            got,
            values.keys().cloned().collect(),
            "{path} as {reader:?}: {answer}"
        );
    }

    // Drilldown's labels: the stream labels the view holds, with how many
    // values each has in it.
    let path = format!("/loki/api/v1/detected_labels?query={selector}");
    let answer = ask_ok(server, reader, &path).await;
    let detected: BTreeMap<String, u64> = answer["detectedLabels"]
        .as_array()
        .expect("detectedLabels")
        .iter()
        .map(|label| {
            (
                label["label"].as_str().unwrap_or_default().to_string(),
                label["cardinality"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let mut expected = BTreeMap::from([("service_name".to_string(), view.services().len() as u64)]);
    for key in ["region", "c_secret"] {
        let values = view.attribute(key);
        if !values.is_empty() {
            expected.insert(key.to_string(), values.len() as u64);
        }
    }
    assert_eq!(detected, expected, "{path} as {reader:?}: {answer}");
}

/// `series`: the view's services, and only its regions.
async fn compare_loki_series(server: &Server, reader: &Reader, view: &View<'_>) {
    let selector = every_stream();
    let path = format!("/loki/api/v1/series?match[]={selector}");
    let answer = ask_ok(server, reader, &path).await;
    let mut services = BTreeSet::new();
    let regions = view.attribute("region");
    for series in answer["data"].as_array().expect("series") {
        let service = series["service_name"].as_str().unwrap_or_default();
        services.insert(service.to_string());
        if let Some(region) = series["region"].as_str() {
            assert!(regions.contains_key(region), "{path}: {series}");
        }
    }
    assert_eq!(
        services,
        view.services().keys().cloned().collect(),
        "{path} as {reader:?}: {answer}"
    );
}

/// `index/stats` and Grafana's volume panel (`index/volume`).
async fn compare_loki_volumes(server: &Server, reader: &Reader, view: &View<'_>) {
    let selector = every_stream();
    let path = format!("/loki/api/v1/index/stats?query={selector}");
    let answer = ask_ok(server, reader, &path).await;
    assert_eq!(answer["entries"], view.rows.len(), "{path} as {reader:?}");

    let path = format!("/loki/api/v1/index/volume?query={selector}");
    let answer = ask_ok(server, reader, &path).await;
    let mut volumes = BTreeMap::new();
    for sample in answer["data"]["result"].as_array().expect("samples") {
        let service = sample["metric"]["service_name"]
            .as_str()
            .unwrap_or_default();
        let count: u64 = sample["value"][1]
            .as_str()
            .and_then(|count| count.parse().ok())
            .unwrap_or_default();
        volumes.insert(service.to_string(), count);
    }
    assert_eq!(volumes, view.services(), "{path} as {reader:?}: {answer}");
}

/// Drilldown's fields and patterns.
async fn compare_loki_drilldown(server: &Server, reader: &Reader, view: &View<'_>) {
    let selector = every_stream();
    // Drilldown's fields: a sample of the view's lines, so only "nothing
    // foreign" holds (stream labels and id-like fields stay out).
    let path = format!("/loki/api/v1/detected_fields?query={selector}");
    let answer = ask_ok(server, reader, &path).await;
    let keys = view.keys();
    for field in answer["fields"].as_array().expect("fields") {
        let label = field["label"].as_str().unwrap_or_default();
        assert!(
            label == "detected_level" || keys.contains_key(label),
            "{path} as {reader:?}: a foreign field {label}: {answer}"
        );
    }

    // Drilldown's patterns: the view's messages, each counted once.
    let path = format!("/loki/api/v1/patterns?query={selector}");
    let answer = ask_ok(server, reader, &path).await;
    let levels = view.levels();
    let mut total = 0;
    for pattern in answer["data"].as_array().expect("patterns") {
        let template = pattern["pattern"].as_str().unwrap_or_default();
        assert!(
            view.rows
                .iter()
                .any(|sent| template_matches(template, &sent.message)),
            "{path} as {reader:?}: the pattern {template:?} is none of the view's messages"
        );
        let level = pattern["level"].as_str().unwrap_or_default();
        assert!(
            levels.get(level).is_some_and(|n| *n > 0),
            "{path}: {pattern}"
        );
        total += pattern["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .map(|sample| sample[1].as_u64().unwrap_or_default())
            .sum::<u64>();
    }
    assert_eq!(
        total,
        view.rows.len() as u64,
        "{path} as {reader:?}: {answer}"
    );
}

/// Live tails opened before the corpus is sent.
async fn open_live(server: &Server, reader: &Reader) -> LiveConnection {
    let path = match reader.header {
        Some(tenants) => format!("/ws/live?tenant={}", url_encoded(tenants)),
        None => "/ws/live".to_string(),
    };
    let (response, connection) = server
        .client
        .ws(server.ws_url(&path))
        .header("Authorization", format!("Bearer {}", reader.key))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("live tail as {reader:?}: {e}"));
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    connection
}

/// Loki's tail of every stream, opened before the corpus is sent.
async fn open_loki_tail(server: &Server, reader: &Reader) -> LiveConnection {
    let mut path = format!(
        "/loki/api/v1/tail?query={}",
        url_encoded(r#"{service_name=~".+"}"#)
    );
    if let Some(tenants) = reader.header {
        path += &format!("&tenant={}", url_encoded(tenants));
    }
    let (response, connection) = server
        .client
        .ws(server.ws_url(&path))
        .header("Authorization", format!("Bearer {}", reader.key))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("Loki tail as {reader:?}: {e}"));
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    connection
}

/// What Loki's tail showed: every line of the view, each stream saying its
/// tenant when the tail reads several.
async fn compare_loki_tail(
    connection: &mut LiveConnection,
    corpus: &[Sent],
    reader: &Reader,
    view: &View<'_>,
) {
    let expected = view.messages();
    let mut lines = BTreeSet::new();
    let mut window = Duration::from_secs(30);
    while let Some(frame) = next_log(connection, window).await {
        for stream in frame["streams"].as_array().cloned().unwrap_or_default() {
            let labels = &stream["stream"];
            for value in stream["values"].as_array().cloned().unwrap_or_default() {
                let line = value[1].as_str().unwrap_or_default();
                let sent =
                    owner(corpus, line).unwrap_or_else(|| panic!("Loki tail: unknown line {line}"));
                assert!(
                    view.tenants.contains(&sent.tenant),
                    "Loki tail as {reader:?}: a line of {} leaked: {line}",
                    sent.tenant
                );
                if view.multi() {
                    assert_eq!(labels["__tenant_id__"], sent.tenant, "{labels}");
                }
                assert!(lines.insert(line.to_string()), "Loki tail: twice {line}");
            }
        }
        if lines.len() >= expected.len() {
            window = Duration::from_millis(500);
        }
    }
    assert_eq!(lines, expected, "Loki tail as {reader:?}");
}

/// What a live tail showed: every log of its view, nothing else.
async fn compare_live(
    connection: &mut LiveConnection,
    corpus: &[Sent],
    reader: &Reader,
    view: &View<'_>,
) {
    let expected = view.messages();
    let mut rows = Vec::new();
    // Until every expected log came (or 30 s), then a short window for a
    // foreign one that would arrive late.
    let mut window = Duration::from_secs(30);
    while let Some(row) = next_log(connection, window).await {
        rows.push(row);
        if rows.len() >= expected.len() {
            window = Duration::from_millis(500);
        }
    }
    let seen = check_rows(corpus, view, &rows, "/ws/live");
    assert_eq!(seen, expected, "/ws/live as {reader:?}");
}

// ---------------------------------------------------------------------------
// The test, on both topologies

fn tenancy(launch: Launch) -> Launch {
    launch
        .env("OGLOGSTREAM_TENANTS__ENABLED", "true")
        .env("OGLOGSTREAM_TENANTS__DEFAULT_TENANT", DEFAULT_TENANT)
        .env("OGLOGSTREAM_SYSLOG__TENANT", SYSLOG_TENANT)
        .env("OGLOGSTREAM_LOKI__STREAM_LABELS", r#"["region", "c_secret"]"#)
        .env(
            "OGLOGSTREAM_SECURITY__INGEST_KEYS",
            &format!(r#"[{{key="{INGEST_A}", tenants=["team-a"]}}, "{INGEST_ANY}"]"#),
        )
        .env(
            "OGLOGSTREAM_SECURITY__ADMIN_KEYS",
            &format!(r#"[{{key="{ADMIN_AB}", tenants=["team-a", "team-b"]}}, "{ADMIN_ANY}"]"#),
        )
        .env(
            "OGLOGSTREAM_SECURITY__READ_KEYS",
            &format!(
                r#"[{{key="{READ_A}", tenants=["team-a"]}}, {{key="{READ_B}", tenants=["team-b"]}}, {{key="{READ_AB}", tenants=["team-a", "team-b"]}}, "{READ_ANY}"]"#
            ),
        )
}

/// Sends the corpus through `doors` and asks `query` every question.
async fn differential(doors: &Doors<'_>, query: &Server) {
    let corpus = corpus();
    let readers = readers();
    let mut live = Vec::new();
    let mut loki_tails = Vec::new();
    for reader in &readers {
        live.push(open_live(query, reader).await);
        loki_tails.push(open_loki_tail(query, reader).await);
    }

    send_through_every_door(doors, &corpus).await;
    let everyone = reader(READ_ANY, Some("team-a|team-b|team-c"), &TENANTS);
    let ids: BTreeMap<String, String> = eventually(
        &format!("the {} logs stored", corpus.len()),
        Duration::from_secs(60),
        || async {
            let rows = ask(query, &everyone, "/api/logs?limit=1000").await.json();
            let rows = rows.as_array()?;
            (rows.len() >= corpus.len()).then(|| {
                rows.iter()
                    .map(|row| {
                        (
                            row["message"].as_str().unwrap_or_default().to_string(),
                            row["id"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
        },
    )
    .await;
    // The rollups and facet blocks may trail the rows: wait for the counts.
    eventually("every count", Duration::from_secs(60), || async {
        let stats = ask(query, &everyone, "/api/stats").await.json();
        (stats["total_logs"] == corpus.len()).then_some(())
    })
    .await;

    compare_tenant_volumes(query, &corpus).await;
    compare_views(query, &readers).await;

    for (reader, connection) in readers.iter().zip(live.iter_mut()) {
        let view = expected_view(&corpus, &reader.tenants);
        compare_live(connection, &corpus, reader, &view).await;
    }
    for (reader, connection) in readers.iter().zip(loki_tails.iter_mut()) {
        let view = expected_view(&corpus, &reader.tenants);
        compare_loki_tail(connection, &corpus, reader, &view).await;
    }

    let mut cursors = Vec::new();
    for reader in &readers {
        let view = expected_view(&corpus, &reader.tenants);
        compare_logs(query, &corpus, reader, &view).await;
        cursors.push(compare_cursor_pages(query, &corpus, reader, &view).await);
        compare_stats(query, reader, &view).await;
        compare_histogram(query, reader, &view).await;
        compare_services(query, reader, &view).await;
        compare_facets(query, reader, &view).await;
        compare_fields(query, reader, &view).await;
        compare_export(query, &corpus, reader, &view).await;
        compare_context(query, &corpus, &ids, reader, &view).await;
        compare_patterns(query, reader, &view).await;
        compare_alert_preview(query, reader, &view).await;
        compare_loki_query_range(query, &corpus, reader, &view).await;
        compare_loki_metric(query, reader, &view).await;
        compare_loki_labels(query, reader, &view).await;
        compare_loki_series(query, reader, &view).await;
        compare_loki_volumes(query, reader, &view).await;
        compare_loki_drilldown(query, reader, &view).await;
    }

    // A cursor made for some tenants is refused for others.
    for (made_for, cursor) in readers.iter().zip(&cursors) {
        for other in readers.iter().filter(|r| r.tenants != made_for.tenants) {
            let path = format!("/api/logs?limit=7&cursor={cursor}");
            let answer = ask(query, other, &path).await;
            assert_eq!(
                answer.status,
                StatusCode::BAD_REQUEST,
                "a cursor of {made_for:?} used by {other:?}: {}",
                answer.text
            );
        }
    }

    // A bound key naming a tenant it is not bound to: 403 on every read.
    for wrong in [
        reader(READ_A, Some(B), &[]),
        reader(READ_B, Some("team-a|team-b"), &[]),
        reader(READ_AB, Some("team-a|team-c"), &[]),
    ] {
        for path in [
            "/api/logs",
            "/api/stats",
            "/api/histogram",
            "/api/services",
            "/api/facets",
            "/api/fields",
            "/api/export",
            "/api/patterns",
            "/loki/api/v1/labels",
        ] {
            let answer = ask(query, &wrong, path).await;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "{path} as {wrong:?}: {}",
                answer.text
            );
        }
    }
}

#[actix_web::test]
async fn every_door_and_every_read_keep_tenants_apart_in_role_all() {
    let (tcp, udp, grpc) = (free_port(), free_udp_port(), free_port());
    let server = Server::launch(with_otlp_grpc(
        with_syslog(
            tenancy(Launch::default().env("FLUSH_TIMEOUT", "50ms")),
            tcp,
            udp,
        ),
        grpc,
    ))
    .await;
    let doors = Doors {
        ingest: &server,
        grpc,
        syslog_tcp: tcp,
    };
    differential(&doors, &server).await;
}

#[actix_web::test]
async fn every_door_and_every_read_keep_tenants_apart_in_split_roles() {
    let nats = Nats::start().await;
    let clickhouse = ClickHouse::start().await;
    let role = |role: &str, store: bool| {
        let mut launch = tenancy(Launch::default())
            .arg("--role")
            .arg(role)
            .env("NATS_URL", &nats.url())
            .env("FLUSH_TIMEOUT", "100ms");
        if store {
            launch = launch.env("CLICKHOUSE_DSN", &clickhouse.dsn("differential"));
        }
        launch
    };
    let (tcp, udp, grpc) = (free_port(), free_udp_port(), free_port());
    let ingest = Server::launch(with_otlp_grpc(
        with_syslog(role("ingest", false), tcp, udp),
        grpc,
    ))
    .await;
    let _process = Server::launch(role("process", true)).await;
    let query = Server::launch(role("query", true)).await;
    let doors = Doors {
        ingest: &ingest,
        grpc,
        syslog_tcp: tcp,
    };
    differential(&doors, &query).await;
}
