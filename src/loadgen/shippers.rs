//! The `shippers` phase: the same corpus sent as each shipper protocol —
//! OTLP protobuf, Loki snappy protobuf and Elasticsearch bulk (1000 logs a
//! request, like `/log/bulk`), and syslog over one TCP connection — after a
//! `/log/bulk` NDJSON run under the same conditions, so each protocol's
//! rate and server CPU per log stand beside NDJSON's. The encoders are
//! public for the decoders' micro-benchmarks (`benches/hot_paths.rs`).

use super::client::{HttpConnection, Response};
use super::corpus::{Corpus, GeneratedLog};
use super::{Bench, CpuSample, Judged, Row, bulk_answer, thousands};
use crate::domain::shippers::protobuf::{put_bytes_field, put_varint_field};
use crate::domain::time::{format_rfc3339, now_micros};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Distinct request bodies per protocol (sent round robin).
const BODIES: usize = 32;

/// The HTTP ingest rate target and how much more CPU per log than NDJSON a
/// protocol may take.
const HTTP_TARGET: f64 = 250_000.0;
const SYSLOG_TARGET: f64 = 150_000.0;
const MAX_CPU_RATIO: f64 = 1.25;

/// A protocol's figures: logs/s sustained to disk and server CPU per log.
struct Measured {
    accepted: u64,
    accepted_rate: f64,
    sustained: f64,
    cpu_us_per_log: Option<f64>,
    overloaded: u64,
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

/// `ExportLogsServiceRequest`: one resource per service, as SDKs send.
pub fn otlp_body(logs: &[GeneratedLog<'_>], time_us: i64) -> Vec<u8> {
    let mut by_service: BTreeMap<&str, Vec<&GeneratedLog<'_>>> = BTreeMap::new();
    for log in logs {
        by_service.entry(log.service).or_default().push(log);
    }
    let key_value = |key: &str, value: &str| {
        let mut any = Vec::new();
        put_bytes_field(&mut any, 1, value.as_bytes());
        let mut pair = Vec::new();
        put_bytes_field(&mut pair, 1, key.as_bytes());
        put_bytes_field(&mut pair, 2, &any);
        pair
    };
    let mut request = Vec::new();
    for (service, logs) in by_service {
        let mut resource = Vec::new();
        put_bytes_field(&mut resource, 1, &key_value("service.name", service));
        let mut scope_logs = Vec::new();
        for log in logs {
            let mut record = Vec::new();
            record.push((1 << 3) | 1);
            record.extend_from_slice(&((time_us as u64) * 1000).to_le_bytes());
            put_varint_field(&mut record, 2, severity_number(log.level));
            let mut body = Vec::new();
            put_bytes_field(&mut body, 1, log.message.as_bytes());
            put_bytes_field(&mut record, 5, &body);
            for (key, value) in &log.attributes {
                put_bytes_field(&mut record, 6, &key_value(key, value));
            }
            put_bytes_field(&mut scope_logs, 2, &record);
        }
        let mut resource_logs = Vec::new();
        put_bytes_field(&mut resource_logs, 1, &resource);
        put_bytes_field(&mut resource_logs, 2, &scope_logs);
        put_bytes_field(&mut request, 1, &resource_logs);
    }
    request
}

/// A snappy-compressed `PushRequest`: one stream per service and level, the
/// attributes as structured metadata, as Promtail and Alloy send.
pub fn loki_body(logs: &[GeneratedLog<'_>], time_us: i64) -> Vec<u8> {
    let mut streams: BTreeMap<(&str, &str), Vec<&GeneratedLog<'_>>> = BTreeMap::new();
    for log in logs {
        streams
            .entry((log.service, log.level))
            .or_default()
            .push(log);
    }
    let mut push = Vec::new();
    for ((service, level), logs) in streams {
        let mut stream = Vec::new();
        let labels = format!("{{service_name=\"{service}\", level=\"{level}\"}}");
        put_bytes_field(&mut stream, 1, labels.as_bytes());
        for log in logs {
            let mut timestamp = Vec::new();
            put_varint_field(&mut timestamp, 1, (time_us / 1_000_000) as u64);
            put_varint_field(&mut timestamp, 2, ((time_us % 1_000_000) * 1000) as u64);
            let mut entry = Vec::new();
            put_bytes_field(&mut entry, 1, &timestamp);
            put_bytes_field(&mut entry, 2, log.message.as_bytes());
            for (key, value) in &log.attributes {
                let mut pair = Vec::new();
                put_bytes_field(&mut pair, 1, key.as_bytes());
                put_bytes_field(&mut pair, 2, value.as_bytes());
                put_bytes_field(&mut entry, 3, &pair);
            }
            put_bytes_field(&mut stream, 2, &entry);
        }
        put_bytes_field(&mut push, 1, &stream);
    }
    snap::raw::Encoder::new()
        .compress_vec(&push)
        .unwrap_or_default()
}

/// Bulk NDJSON as ECS-minded clients write it.
pub fn elasticsearch_body(logs: &[GeneratedLog<'_>], time_us: i64) -> Vec<u8> {
    let timestamp = format_rfc3339(time_us);
    let mut body = Vec::new();
    for log in logs {
        body.extend_from_slice(b"{\"index\":{\"_index\":\"bench-logs\"}}\n");
        let mut document = serde_json::json!({
            "@timestamp": timestamp,
            "message": log.message,
            "log": {"level": log.level},
            "service": {"name": log.service},
        });
        if let Some(document) = document.as_object_mut() {
            for (key, value) in &log.attributes {
                document.insert(key.to_string(), value.clone().into());
            }
        }
        let _ = serde_json::to_writer(&mut body, &document);
        body.push(b'\n');
    }
    body
}

/// RFC 5424, octet-counted (messages may hold newlines), attributes as
/// structured data.
pub fn syslog_frames(logs: &[GeneratedLog<'_>], time_us: i64) -> Vec<u8> {
    let timestamp = format_rfc3339(time_us);
    let mut out = Vec::new();
    let mut message = String::new();
    for log in logs {
        let severity = match log.level {
            "debug" => 7,
            "info" => 6,
            "warn" => 4,
            "error" => 3,
            _ => 2,
        };
        message.clear();
        let _ = write!(
            message,
            "<{}>1 {timestamp} bench-host {} - - ",
            16 * 8 + severity,
            log.service
        );
        if log.attributes.is_empty() {
            message.push('-');
        } else {
            message.push_str("[attrs@32473");
            for (key, value) in &log.attributes {
                let _ = write!(message, " {key}=\"{value}\"");
            }
            message.push(']');
        }
        let _ = write!(message, " {}", log.message);
        out.extend_from_slice(format!("{} ", message.len()).as_bytes());
        out.extend_from_slice(message.as_bytes());
    }
    out
}

/// Reads an accepting answer; `None` for any other.
type Judge = dyn Fn(&Response) -> Option<Judged>;

/// A protocol's row name, request bodies and answer reader.
type Protocol<'a> = (&'static str, &'a [Vec<u8>], Box<Judge>);

/// Accepting answers of each protocol: all of the body's logs, or (ES) all
/// but the items with an error.
fn judge_status(status: u16, logs: u64) -> impl Fn(&Response) -> Option<Judged> {
    move |response| {
        (response.status == status).then_some(Judged {
            accepted: logs,
            refused: 0,
        })
    }
}

/// An answer without errors says so at its head (`{"took":N,"errors":false,`):
/// that is all a shipper reads then. Parsing the whole ~90 KB answer took
/// the load generator 44% of a core, which it took from the server on two
/// cores; an answer with errors is still read item by item.
fn judge_bulk_items(logs: u64) -> impl Fn(&Response) -> Option<Judged> {
    move |response| {
        if response.status != 200 {
            return None;
        }
        let head = &response.body[..response.body.len().min(64)];
        if memchr::memmem::find(head, br#""errors":false,"#).is_some() {
            return Some(Judged {
                accepted: logs,
                refused: 0,
            });
        }
        let answer: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
        let refused = answer["items"]
            .as_array()?
            .iter()
            .filter(|item| item["index"]["error"].is_object())
            .count() as u64;
        Some(Judged {
            accepted: logs - refused,
            refused,
        })
    }
}

impl Bench {
    pub(super) async fn shippers(&mut self) -> anyhow::Result<()> {
        let size = self.options.bulk_size.max(1);
        let connections = self.options.bulk_connections.max(1);
        let seconds = self.options.seconds;
        let mut corpus = Corpus::new(11);
        let now = now_micros();
        let batches: Vec<Vec<GeneratedLog<'static>>> = (0..BODIES)
            .map(|_| (0..size).map(|_| corpus.log(None)).collect())
            .collect();
        let address = self.address.clone();
        let requests =
            |path: &str, content_type: &str, encode: fn(&[GeneratedLog<'_>], i64) -> Vec<u8>| {
                batches
                    .iter()
                    .map(|logs| {
                        HttpConnection::post_bytes(&address, path, content_type, &encode(logs, now))
                    })
                    .collect::<Vec<_>>()
            };
        let ndjson = requests("/log/bulk", "application/x-ndjson", |logs, _| {
            let mut body = Vec::new();
            for log in logs {
                let _ = serde_json::to_writer(&mut body, log);
                body.push(b'\n');
            }
            body
        });
        let otlp = requests("/v1/logs", "application/x-protobuf", otlp_body);
        let loki = requests("/loki/api/v1/push", "application/x-protobuf", loki_body);
        let elastic = requests("/_bulk", "application/x-ndjson", elasticsearch_body);
        let logs = size as u64;

        eprintln!("shippers: /log/bulk NDJSON, the baseline, for {seconds} s");
        let baseline = self
            .measure_http("shippers: NDJSON", connections, &ndjson, bulk_answer)
            .await?;
        self.rows.push(Row {
            what: format!("`POST /log/bulk` NDJSON, {size} logs/request, {connections} connections, {seconds} s (the shippers' baseline)"),
            result: describe(&baseline, None),
            latency: String::new(),
            target: String::new(),
            met: None,
        });
        let protocols: [Protocol<'_>; 3] = [
            (
                "`POST /v1/logs` OTLP protobuf",
                &otlp,
                Box::new(judge_status(200, logs)),
            ),
            (
                "`POST /loki/api/v1/push` Loki snappy protobuf",
                &loki,
                Box::new(judge_status(204, logs)),
            ),
            (
                "`POST /_bulk` Elasticsearch NDJSON",
                &elastic,
                Box::new(judge_bulk_items(logs)),
            ),
        ];
        for (what, bodies, judge) in protocols {
            eprintln!("shippers: {what} for {seconds} s");
            let measured = self
                .measure_http(&format!("shippers: {what}"), connections, bodies, judge)
                .await?;
            self.push_compared(
                format!("{what}, {size} logs/request, {connections} connections, {seconds} s"),
                &measured,
                &baseline,
                HTTP_TARGET,
            );
        }
        if let Some(syslog) = self.options.syslog_tcp.clone() {
            eprintln!("shippers: syslog over one TCP connection to {syslog} for {seconds} s");
            let frames: Vec<Vec<u8>> = batches
                .iter()
                .map(|logs| syslog_frames(logs, now))
                .collect();
            let measured = self.measure_syslog(&syslog, &frames, logs).await?;
            self.push_compared(
                format!("syslog RFC 5424 octet-counted, one TCP connection, {seconds} s"),
                &measured,
                &baseline,
                SYSLOG_TARGET,
            );
        } else {
            self.notes
                .push("shippers: no --syslog-tcp given, syslog not measured".into());
        }
        Ok(())
    }

    fn push_compared(
        &mut self,
        what: String,
        measured: &Measured,
        baseline: &Measured,
        target: f64,
    ) {
        let ratio = match (measured.cpu_us_per_log, baseline.cpu_us_per_log) {
            (Some(cpu), Some(base)) if base > 0.0 => Some(cpu / base),
            _ => None,
        };
        self.rows.push(Row {
            what,
            result: describe(measured, ratio),
            latency: String::new(),
            target: format!(
                "≥ {} logs/s sustained, CPU/log ≤ NDJSON + 25%",
                thousands(target)
            ),
            met: Some(measured.sustained >= target && ratio.is_none_or(|r| r <= MAX_CPU_RATIO)),
        });
    }

    /// The machine's CPU split and the server's memory after a protocol's run.
    fn note_phase(&mut self, phase: &str, sample: &CpuSample) {
        self.note_machine(phase, sample);
        if let Some(memory) = self.machine.memory() {
            self.notes.push(format!(
                "{phase}: server RSS {:.0} MB after the run",
                memory.current_kib as f64 / 1024.0
            ));
        }
    }

    /// Server CPU seconds since `sample`, when the server's pid is known.
    fn server_cpu_seconds(&self, sample: &CpuSample) -> Option<f64> {
        self.options.pid?;
        let now = self.machine.sample();
        Some(now.server.saturating_sub(sample.server) as f64 / 100.0)
    }

    async fn measure_http(
        &mut self,
        phase: &str,
        connections: usize,
        bodies: &[Vec<u8>],
        judge: impl Fn(&Response) -> Option<Judged>,
    ) -> anyhow::Result<Measured> {
        let sample = self.machine.sample();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.options.seconds);
        let (outcome, _) = self
            .send_bulk(
                connections,
                Some(deadline),
                |k| (Instant::now() < deadline).then(|| bodies[k as usize % bodies.len()].clone()),
                judge,
            )
            .await?;
        let sent_for = started.elapsed();
        let drained = self.drain().await?;
        self.note_phase(phase, &sample);
        anyhow::ensure!(
            outcome.failed == 0,
            "{} logs refused one by one",
            outcome.failed
        );
        Ok(self.measured(
            outcome.accepted,
            outcome.overloaded,
            sent_for,
            sent_for + drained,
            &sample,
        ))
    }

    fn measured(
        &self,
        accepted: u64,
        overloaded: u64,
        sent_for: Duration,
        stored_after: Duration,
        sample: &CpuSample,
    ) -> Measured {
        Measured {
            accepted,
            accepted_rate: accepted as f64 / sent_for.as_secs_f64(),
            sustained: accepted as f64 / stored_after.as_secs_f64(),
            cpu_us_per_log: self
                .server_cpu_seconds(sample)
                .filter(|_| accepted > 0)
                .map(|seconds| seconds * 1e6 / accepted as f64),
            overloaded,
        }
    }

    /// Writes octet-counted frames on one connection for `--seconds`, as
    /// fast as the server reads them (its back-pressure is the pace), then
    /// waits until it has published and stored every line.
    async fn measure_syslog(
        &mut self,
        address: &str,
        frames: &[Vec<u8>],
        per_chunk: u64,
    ) -> anyhow::Result<Measured> {
        let accepted_before = self.accepted_syslog().await?;
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to syslog at {address}: {e}"))?;
        let sample = self.machine.sample();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.options.seconds);
        let mut sent = 0u64;
        let mut k = 0usize;
        while Instant::now() < deadline {
            stream.write_all(&frames[k % frames.len()]).await?;
            sent += per_chunk;
            k += 1;
        }
        stream.shutdown().await?;
        let wrote_for = started.elapsed();
        let wait_until = Instant::now() + Duration::from_secs(600);
        while self.accepted_syslog().await? < accepted_before + sent {
            anyhow::ensure!(Instant::now() < wait_until, "syslog lines were lost");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let published_for = started.elapsed();
        let drained = self.drain().await?;
        self.note_phase("shippers: syslog", &sample);
        let _ = wrote_for;
        Ok(self.measured(sent, 0, published_for, published_for + drained, &sample))
    }

    async fn accepted_syslog(&self) -> anyhow::Result<u64> {
        let mut connection = self.connect().await?;
        let response = connection.get("/metrics").await?;
        let text = String::from_utf8_lossy(&response.body);
        Ok(text
            .lines()
            .find(|line| line.starts_with("oglogstream_logs_accepted_total{protocol=\"syslog\"}"))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0))
    }
}

fn describe(measured: &Measured, cpu_ratio: Option<f64>) -> String {
    let cpu = match (measured.cpu_us_per_log, cpu_ratio) {
        (Some(cpu), Some(ratio)) => format!(
            "; server CPU {cpu:.2} µs/log ({:+.0}% vs NDJSON)",
            (ratio - 1.0) * 100.0
        ),
        (Some(cpu), None) => format!("; server CPU {cpu:.2} µs/log"),
        (None, _) => String::new(),
    };
    format!(
        "{} logs/s accepted, **{} logs/s sustained** to disk ({} logs; {} × 503){cpu}",
        thousands(measured.accepted_rate),
        thousands(measured.sustained),
        thousands(measured.accepted as f64),
        measured.overloaded
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse::LogLimits;
    use crate::domain::shippers::{compression, framing};
    use crate::ingest::{elasticsearch, loki, otlp, syslog};

    /// What the benchmark sends decodes to the same logs on the server.
    #[test]
    fn every_encoding_carries_the_corpus() {
        let mut corpus = Corpus::new(5);
        let logs: Vec<GeneratedLog<'static>> = (0..200).map(|_| corpus.log(None)).collect();
        let limits = LogLimits::default();
        let time = 1_735_732_800_000_000;
        let messages = |decoded: &[crate::domain::parse::NewLog]| {
            let mut messages: Vec<String> = decoded.iter().map(|log| log.message.clone()).collect();
            messages.sort();
            messages
        };
        let mut expected: Vec<String> = logs.iter().map(|log| log.message.clone()).collect();
        expected.sort();

        let decoded =
            otlp::decode(&otlp_body(&logs, time), otlp::Encoding::Protobuf, &limits).unwrap();
        assert!(
            messages(&decoded.logs) == expected,
            "OTLP carries every message"
        );
        let inflated = compression::unsnappy(&loki_body(&logs, time), 1 << 24).unwrap();
        let decoded = loki::decode(&inflated, loki::Format::Protobuf, &limits).unwrap();
        assert!(
            messages(&decoded.logs) == expected,
            "Loki carries every message"
        );
        assert!(decoded.logs.iter().all(|log| log.timestamp == Some(time)));
        let bulk_body = elasticsearch_body(&logs, time);
        let bulk = elasticsearch::decode_bulk(&bulk_body, None, &limits).unwrap();
        assert_eq!(
            (messages(&bulk.logs), bulk.refused()),
            (expected.clone(), 0)
        );
        let mut framer = framing::Framer::new(1 << 16);
        framer.extend(&syslog_frames(&logs, time));
        let mut decoded = Vec::new();
        while let Some(framing::Frame::Message(frame)) = framer.next_frame() {
            decoded.push(syslog::decode(frame, time, &limits).unwrap());
        }
        // Syslog drops a message's trailing line end.
        let trimmed: Vec<String> = expected.iter().map(|m| m.trim_end().to_string()).collect();
        assert!(
            messages(&decoded) == trimmed,
            "syslog carries every message"
        );
        let first = logs
            .iter()
            .position(|log| !log.attributes.is_empty())
            .unwrap();
        let attributes = &otlp::decode(
            &otlp_body(&logs[first..=first], time),
            otlp::Encoding::Protobuf,
            &limits,
        )
        .unwrap()
        .logs[0]
            .attributes;
        assert_eq!(attributes.len(), logs[first].attributes.len());
    }
}
