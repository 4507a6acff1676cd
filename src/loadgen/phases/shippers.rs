//! The `shippers` phase: the same corpus sent as each shipper protocol —
//! OTLP protobuf, Loki snappy protobuf and Elasticsearch bulk (1000 logs a
//! request, like `/log/bulk`), OTLP over gRPC (the same messages, with
//! `--otlp-grpc`), and syslog over one TCP connection — after a
//! `/log/bulk` NDJSON run under the same conditions, so each protocol's
//! rate and server CPU per log stand beside NDJSON's.

use crate::domain::time::now_micros;
use crate::loadgen::bench::{Bench, Judged, OVERLOADED_WAIT, Row, bulk_answer, thousands};
use crate::loadgen::client::{HttpConnection, Response};
use crate::loadgen::corpus::{Corpus, GeneratedLog};
use crate::loadgen::grpc::{GrpcConnection, frame};
use crate::loadgen::machine::CpuSample;
use crate::loadgen::shippers::{elasticsearch_body, loki_body, otlp_body, syslog_frames};
use bytes::Bytes;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// OTLP over gRPC's one method.
const GRPC_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

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
    pub(crate) async fn shippers(&mut self) -> anyhow::Result<()> {
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
        if let Some(grpc) = self.options.otlp_grpc.clone() {
            eprintln!("shippers: OTLP over gRPC to {grpc} for {seconds} s");
            let messages: Vec<Bytes> = batches
                .iter()
                .map(|logs| frame(&otlp_body(logs, now), false))
                .collect();
            let measured = self
                .measure_grpc(&grpc, connections, &messages, logs)
                .await?;
            self.push_compared(
                format!("OTLP/gRPC `LogsService/Export` protobuf, {size} logs/request, {connections} connections, {seconds} s"),
                &measured,
                &baseline,
                HTTP_TARGET,
            );
        } else {
            self.notes
                .push("shippers: no --otlp-grpc given, OTLP over gRPC not measured".into());
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
        let (outcome, _, sent_for) = self.send_for_seconds(connections, bodies, judge).await?;
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

    /// Calls `Export` with the prepared messages on `connections` HTTP/2
    /// connections (one call in flight on each, as an exporter's batch
    /// processor sends) for `--seconds`; `RESOURCE_EXHAUSTED` is counted as
    /// overloaded and the message sent again after the wait a 503 gets over
    /// HTTP (`OVERLOADED_WAIT`).
    async fn measure_grpc(
        &mut self,
        address: &str,
        connections: usize,
        messages: &[Bytes],
        per_message: u64,
    ) -> anyhow::Result<Measured> {
        let mut pool = Vec::with_capacity(connections);
        for _ in 0..connections {
            pool.push(
                GrpcConnection::connect(address)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot connect to gRPC at {address}: {e}"))?,
            );
        }
        let sample = self.machine.sample();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.options.seconds);
        let next = std::cell::Cell::new(0usize);
        let next = &next;
        let workers = pool.into_iter().map(|mut connection| async move {
            let (mut accepted, mut overloaded) = (0u64, 0u64);
            while Instant::now() < deadline {
                let k = next.get();
                next.set(k + 1);
                let message = &messages[k % messages.len()];
                // The same message again after a refusal, as over HTTP.
                loop {
                    let answer = connection.call(GRPC_EXPORT, &[], message.clone()).await?;
                    match answer.code {
                        0 => accepted += per_message,
                        8 => {
                            overloaded += 1;
                            if Instant::now() < deadline {
                                tokio::time::sleep(OVERLOADED_WAIT).await;
                                continue;
                            }
                        }
                        code => anyhow::bail!("Export answered {code}: {}", answer.message),
                    }
                    break;
                }
            }
            Ok::<_, anyhow::Error>((accepted, overloaded))
        });
        let mut accepted = 0;
        let mut overloaded = 0;
        for result in futures_util::future::join_all(workers).await {
            let (worker_accepted, worker_overloaded) = result?;
            accepted += worker_accepted;
            overloaded += worker_overloaded;
        }
        let sent_for = started.elapsed();
        let drained = self.drain().await?;
        self.note_phase("shippers: OTLP/gRPC", &sample);
        Ok(self.measured(accepted, overloaded, sent_for, sent_for + drained, &sample))
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
