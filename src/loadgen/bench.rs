//! The benchmark's state ([`Bench`]: options, the result rows, the machine)
//! and what the phases share: connecting, waiting for the store, timing
//! GETs, sending bulk bodies, latency figures and the final table.

use super::client::{HttpConnection, Response};
use super::machine::{CpuSample, Machine};
use super::options::Options;
use futures_util::future::join_all;
use std::cell::Cell;
use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long a sender waits after a 503 (or gRPC `RESOURCE_EXHAUSTED`)
/// before it sends again: shorter than the server's 1 s retry delay so the
/// store never idles, long enough not to spin. A sender retrying at once
/// makes the server pay for thousands of refusals a second (measured: 25,664
/// in a 10 s gRPC phase), CPU charged to the logs it does store.
pub(super) const OVERLOADED_WAIT: Duration = Duration::from_millis(50);

/// One row of the result table.
pub(super) struct Row {
    pub(super) what: String,
    pub(super) result: String,
    pub(super) latency: String,
    pub(super) target: String,
    /// `Some(true)` met, `Some(false)` missed, `None` no target.
    pub(super) met: Option<bool>,
}

pub(super) struct Bench {
    pub(super) options: Options,
    pub(super) address: String,
    pub(super) rows: Vec<Row>,
    pub(super) notes: Vec<String>,
    pub(super) machine: Machine,
    /// Traces the pre-fill stored (a sample): each id and the time of its
    /// first log, for the trace lookups.
    pub(super) traces: Vec<(String, i64)>,
}

/// Only loopback targets: this tool generates real load.
pub(super) fn loopback_address(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--url must start with http:// (got {url})"))?;
    let host_port = rest.split('/').next().unwrap_or(rest);
    let resolved: Vec<SocketAddr> = host_port
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("cannot resolve {host_port}: {e}"))?
        .collect();
    let first = resolved
        .first()
        .ok_or_else(|| anyhow::anyhow!("{host_port} resolves to nothing"))?;
    anyhow::ensure!(
        resolved.iter().all(|a| a.ip().is_loopback()),
        "{host_port} is not a loopback address: the load generator only targets this machine"
    );
    Ok(first.to_string())
}

/// What [`Bench::timed_gets`] measured.
pub(super) struct TimedGets {
    pub(super) latencies: Latencies,
    pub(super) sent: usize,
    pub(super) first_body: Vec<u8>,
}

/// Latencies in microseconds.
#[derive(Default)]
pub(super) struct Latencies(pub(super) Vec<u32>);

impl Latencies {
    pub(super) fn record(&mut self, since: Instant) {
        self.0
            .push(since.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }

    fn percentile(&self, sorted: &[u32], p: f64) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
    }

    /// (p50, p95, p99, max) in milliseconds.
    pub(super) fn summary(&mut self) -> (f64, f64, f64, f64) {
        self.0.sort_unstable();
        let sorted = &self.0;
        (
            self.percentile(sorted, 50.0),
            self.percentile(sorted, 95.0),
            self.percentile(sorted, 99.0),
            sorted.last().map_or(f64::NAN, |m| *m as f64 / 1000.0),
        )
    }
}

pub(super) fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else {
        format!("{value:.0} ms")
    }
}

/// A [`Latencies::summary`] as the table shows it.
pub(super) fn latency_text((p50, p95, p99, max): (f64, f64, f64, f64)) -> String {
    format!(
        "p50 {} · p95 {} · p99 {} · max {}",
        ms(p50),
        ms(p95),
        ms(p99),
        ms(max)
    )
}

pub(super) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What an accepting answer says: logs taken and logs refused one by one.
pub(super) struct Judged {
    pub(super) accepted: u64,
    pub(super) refused: u64,
}

/// `/log/bulk`'s 202: `{"accepted": N, "rejected": M, ...}`.
pub(super) fn bulk_answer(response: &Response) -> Option<Judged> {
    if response.status != 202 {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    Some(Judged {
        accepted: answer["accepted"].as_u64().unwrap_or(0),
        refused: answer["rejected"].as_u64().unwrap_or(0),
    })
}

#[derive(Default)]
pub(super) struct Outcomes {
    pub(super) accepted: u64,
    pub(super) overloaded: u64,
    pub(super) failed: u64,
}

impl Bench {
    pub(super) async fn connect(&self) -> anyhow::Result<HttpConnection> {
        HttpConnection::connect(&self.address)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", self.address))
    }

    async fn health_queue_depth(&self) -> anyhow::Result<u64> {
        let mut connection = self.connect().await?;
        let response = connection.get("/health").await?;
        let health: serde_json::Value = serde_json::from_slice(&response.body)?;
        Ok(health["queue_depth"].as_u64().unwrap_or(0))
    }

    /// Waits until every accepted log is stored; returns how long that took.
    pub(super) async fn drain(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(600);
        while self.health_queue_depth().await? > 0 {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the queue did not drain within 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(started.elapsed())
    }

    pub(super) async fn stored_total(&self) -> anyhow::Result<u64> {
        Self::stored_total_at(&self.address).await
    }

    pub(super) async fn stored_total_at(address: &str) -> anyhow::Result<u64> {
        let mut connection = HttpConnection::connect(address)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {address}: {e}"))?;
        let response = connection.get("/api/stats").await?;
        let stats: serde_json::Value = serde_json::from_slice(&response.body)?;
        Ok(stats["total_logs"].as_u64().unwrap_or(0))
    }

    pub(super) fn note_machine(&mut self, phase: &str, sample: &CpuSample) {
        if let Some(usage) = self.machine.usage_since(sample) {
            self.notes.push(format!(
                "{phase}: server used {:.0}% and the generator {:.0}% of one core; other processes {:.0}%",
                usage.server, usage.generator, usage.other
            ));
        }
    }

    /// Times `GET path(i)` for `query_count` requests or `query_seconds`,
    /// whichever ends first (at least 3); any answer but `200` fails the run.
    pub(super) async fn timed_gets(
        &self,
        connection: &mut HttpConnection,
        path: impl Fn(usize) -> String,
    ) -> anyhow::Result<TimedGets> {
        let mut latencies = Latencies::default();
        let started = Instant::now();
        let budget = Duration::from_secs(self.options.query_seconds);
        let mut sent = 0;
        let mut first_body = Vec::new();
        while sent < self.options.query_count && (sent < 3 || started.elapsed() < budget) {
            let path = path(sent);
            let asked = Instant::now();
            let response = connection.get(&path).await?;
            latencies.record(asked);
            anyhow::ensure!(
                response.status == 200,
                "{path} answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
            if sent == 0 {
                first_body = response.body;
            }
            sent += 1;
        }
        Ok(TimedGets {
            latencies,
            sent,
            first_body,
        })
    }

    /// Posts `bodies` round robin on `connections` connections for
    /// `--seconds` (see [`Bench::send_bulk`]). Returns the outcomes, the body
    /// bytes accepted and how long sending took.
    pub(super) async fn send_for_seconds(
        &self,
        connections: usize,
        bodies: &[Vec<u8>],
        judge: impl Fn(&Response) -> Option<Judged>,
    ) -> anyhow::Result<(Outcomes, u64, Duration)> {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.options.seconds);
        let (outcome, bytes) = self
            .send_bulk(
                connections,
                Some(deadline),
                |k| (Instant::now() < deadline).then(|| bodies[k as usize % bodies.len()].clone()),
                judge,
            )
            .await?;
        Ok((outcome, bytes, started.elapsed()))
    }

    /// Posts the bodies `body(k)` yields (k = 0, 1, ...) until it yields
    /// `None`, on `connections` connections; a 503 waits 50 ms and retries
    /// until `give_up_at` (a split ingest whose stream is full answers 503
    /// until a process instance drains it). Returns the outcomes and the body
    /// bytes accepted.
    pub(super) async fn send_bulk(
        &self,
        connections: usize,
        give_up_at: Option<Instant>,
        body: impl Fn(u64) -> Option<Vec<u8>>,
        judge: impl Fn(&Response) -> Option<Judged>,
    ) -> anyhow::Result<(Outcomes, u64)> {
        let next = Cell::new(0u64);
        let mut pool = Vec::with_capacity(connections);
        for _ in 0..connections {
            pool.push(self.connect().await?);
        }
        let body = &body;
        let judge = &judge;
        let next = &next;
        let workers = pool.into_iter().map(|mut connection| async move {
            let mut outcomes = Outcomes::default();
            let mut bytes = 0u64;
            loop {
                let k = next.get();
                next.set(k + 1);
                let Some(request) = body(k) else { break };
                loop {
                    match connection.send(&request).await {
                        Ok(response) if response.status == 503 => {
                            outcomes.overloaded += 1;
                            if give_up_at.is_some_and(|at| Instant::now() >= at) {
                                break;
                            }
                            tokio::time::sleep(OVERLOADED_WAIT).await;
                        }
                        Ok(response) => match judge(&response) {
                            Some(judged) => {
                                outcomes.accepted += judged.accepted;
                                outcomes.failed += judged.refused;
                                bytes += request.len() as u64;
                                break;
                            }
                            None => {
                                return Err(anyhow::anyhow!(
                                    "bulk request answered {}: {}",
                                    response.status,
                                    String::from_utf8_lossy(&response.body)
                                ));
                            }
                        },
                        Err(error) => return Err(error.into()),
                    }
                }
            }
            Ok((outcomes, bytes))
        });
        let mut total = Outcomes::default();
        let mut bytes = 0;
        for result in join_all(workers).await {
            let (outcomes, b) = result?;
            total.accepted += outcomes.accepted;
            total.overloaded += outcomes.overloaded;
            total.failed += outcomes.failed;
            bytes += b;
        }
        Ok((total, bytes))
    }

    pub(super) fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nOgLogStream benchmark — {} cores, {} GiB, server `{}`\n",
            self.machine.cores, self.machine.memory_gib, self.options.url
        );
        let _ = writeln!(out, "| what | result | latency | target | |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for row in &self.rows {
            let verdict = match row.met {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                row.what, row.result, row.latency, row.target, verdict
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nCPU during each phase (100% = one core):");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}
