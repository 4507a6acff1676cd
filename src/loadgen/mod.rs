//! The load generator behind `oglogstream-bench` (and `make bench`): drives a
//! running server over HTTP and WebSocket on the loopback interface and
//! prints one markdown table.
//!
//! Phases, each bounded in time or count (default order: query first, so the
//! store holds exactly the pre-filled sizes when it is queried, then the
//! throughput phases on the full store):
//! - `ingest`: single-log `POST /log`, closed loop on keep-alive connections
//!   (64 by default, like `wrk -t1 -c64`), latency of every request.
//! - `live`: a `/ws/live` subscriber while single logs are posted at a fixed
//!   rate; latency from each `202` to the frame carrying that id.
//! - `bulk`: NDJSON bodies on a few connections; accepted logs/s and MB/s, and
//!   the sustained rate including the time the store needs to write them all.
//! - `shippers`: `/log/bulk` NDJSON, then the same logs as OTLP protobuf,
//!   Loki snappy protobuf and Elasticsearch bulk, and syslog over one TCP
//!   connection (with `--syslog-tcp`): logs/s sustained and server CPU per
//!   log beside NDJSON's (`shippers.rs`).
//! - `query`: pre-fills the store (bulk, timestamps spread over a week) to
//!   each size asked for, then measures `/api/logs`, `/api/stats` and
//!   `/api/histogram` latencies one request at a time.
//! - `alerts`: one alert rule evaluation per shape on that store (with the
//!   last five minutes filled), and the CPU of 100 rules (`alerts.rs`).
//!
//! Everything runs on one thread, like wrk's single thread, so the generator
//! takes at most one of the machine's cores from the server.

mod alerts;
pub mod client;
pub mod corpus;
pub mod shippers;
mod soak;

use client::{HttpConnection, Response};
use corpus::{ABSENT_TERM, COMMON_TERM, Corpus, RARE_TERM, SERVICES};
use futures_util::future::join_all;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::domain::time::{format_rfc3339, now_micros};

/// What to run and how hard; see `oglogstream-bench --help`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "oglogstream-bench",
    about = "Load generator for OgLogStream: drives a running server on the loopback interface and prints a table of throughput, latency and memory",
    after_help = "Example: oglogstream-bench --url http://127.0.0.1:8080 --pid $(pgrep -n oglogstream). \
`make bench` builds the release binary, starts a server on a temporary data directory, runs every phase and stops it."
)]
pub struct Options {
    /// The server, http://HOST:PORT on a loopback address
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The server's process id, to report its peak memory (VmHWM)
    #[arg(long)]
    pub pid: Option<u32>,
    /// Phases to run, comma separated, in order: query (pre-fills to each
    /// size first), alerts, ingest, live, bulk, shippers
    #[arg(
        long,
        default_value = "query,alerts,ingest,live,bulk,shippers",
        value_delimiter = ','
    )]
    pub phases: Vec<String>,
    /// Seconds each throughput phase (ingest, live, bulk) lasts
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Keep-alive connections for single-log ingest
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Connections for bulk ingest and pre-filling
    #[arg(long, default_value_t = 4)]
    pub bulk_connections: usize,
    /// Logs per bulk (NDJSON) request
    #[arg(long, default_value_t = 1000)]
    pub bulk_size: usize,
    /// Logs per second posted during the live-tail phase
    #[arg(long, default_value_t = 10_000)]
    pub live_rate: u64,
    /// Store sizes (logs) to pre-fill to and query at, comma separated
    #[arg(long, default_value = "1000000,10000000", value_delimiter = ',')]
    pub sizes: Vec<u64>,
    /// Most requests per query kind and size
    #[arg(long, default_value_t = 200)]
    pub query_count: usize,
    /// Most seconds per query kind and size (at least 3 requests are made)
    #[arg(long, default_value_t = 8)]
    pub query_seconds: u64,
    /// What `--url` is: `all` (one `--role all` process, every log stored
    /// before the phase ends) or `split` (a `--role ingest` instance on NATS:
    /// a 202 means JetStream holds the log; nothing is stored here)
    #[arg(long, value_enum, default_value_t = Topology::All)]
    pub topology: Topology,
    /// A bare actix-web server answering 202 to `POST /log` without parsing
    /// or storing anything (`benches/floor_server.rs`); the `ingest` phase
    /// puts the same load on it, to show this machine's ceiling
    #[arg(long)]
    pub floor_url: Option<String>,
    /// The floor server's process id, for its CPU use
    #[arg(long)]
    pub floor_pid: Option<u32>,
    /// Logs the alerts phase stamps over the last five minutes first
    #[arg(long, default_value_t = 300_000)]
    pub alert_recent_logs: u64,
    /// Seconds the alerts phase measures CPU without rules, and again with
    /// 100 rules (0: skip)
    #[arg(long, default_value_t = 60)]
    pub alert_seconds: u64,
    /// The server's syslog TCP listener (HOST:PORT, loopback), for the
    /// syslog part of the `shippers` phase
    #[arg(long)]
    pub syslog_tcp: Option<String>,
    /// With `--topology split`: a `--role query` instance reading the store
    /// the process instances write; the bulk phase then waits until every
    /// accepted log is stored there and reports the end-to-end stored rate
    /// (ingest → JetStream → process → store)
    #[arg(long, value_name = "URL")]
    pub stored_url: Option<String>,
    /// Describes the setup in the result rows (e.g. "3-node R3 cluster")
    #[arg(long, default_value = "")]
    pub label: String,
    /// Appends `<label><TAB><stored logs/s>` here after an end-to-end bulk
    /// phase, for scripts that compare setups
    #[arg(long, value_name = "FILE")]
    pub result_file: Option<std::path::PathBuf>,
    /// Instead of the phases: a soak run of this many minutes (mixed ingest
    /// over every protocol, queries, live tails, exports, alert rules),
    /// sampling the server's RSS, descriptors and p99s every 10 s
    #[arg(long, value_name = "MINUTES")]
    pub soak_minutes: Option<u64>,
    /// With --soak-minutes: the samples as CSV
    #[arg(long, value_name = "FILE")]
    pub soak_csv: Option<std::path::PathBuf>,
    /// With --soak-minutes: an SVG plot of the samples
    #[arg(long, value_name = "FILE")]
    pub soak_plot: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Topology {
    All,
    Split,
}

/// What the seed's Go ingestion service reached with `wrk -t1 -c64` on a
/// machine like ours (see the benchmarks issue); it stored nothing.
const SEED_REQUESTS_PER_SECOND: f64 = 37_700.0;

/// One row of the result table.
struct Row {
    what: String,
    result: String,
    latency: String,
    target: String,
    /// `Some(true)` met, `Some(false)` missed, `None` no target.
    met: Option<bool>,
}

struct Bench {
    options: Options,
    address: String,
    rows: Vec<Row>,
    notes: Vec<String>,
    machine: Machine,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let address = loopback_address(&options.url)?;
    let mut probe = HttpConnection::connect(&address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", options.url))?;
    let health = probe.get("/health").await?;
    anyhow::ensure!(
        health.status == 200,
        "{} /health answered {}: {}",
        options.url,
        health.status,
        String::from_utf8_lossy(&health.body)
    );
    if let Some(minutes) = options.soak_minutes {
        return soak::run(soak::SoakSettings {
            address,
            pid: options.pid,
            syslog_tcp: options.syslog_tcp.clone(),
            minutes,
            csv: options.soak_csv.clone(),
            plot: options.soak_plot.clone(),
        })
        .await;
    }
    let mut bench = Bench {
        machine: Machine::new(options.pid),
        options,
        address,
        rows: Vec::new(),
        notes: Vec::new(),
    };
    eprintln!(
        "oglogstream-bench: {} on {} cores, {} GiB; server pid {}",
        bench.options.url,
        bench.machine.cores,
        bench.machine.memory_gib,
        bench
            .options
            .pid
            .map_or("unknown (no --pid)".to_string(), |p| p.to_string())
    );
    let phases = bench.options.phases.clone();
    for phase in &phases {
        match phase.trim() {
            "ingest" => bench.single_ingest().await?,
            "live" => bench.live_tail().await?,
            "bulk" => bench.bulk_ingest().await?,
            "query" => bench.queries().await?,
            "alerts" => bench.alerts().await?,
            "shippers" => bench.shippers().await?,
            other => {
                anyhow::bail!(
                    "unknown phase {other:?}: use query, alerts, ingest, live, bulk, shippers"
                )
            }
        }
    }
    if let Some(memory) = bench.machine.memory() {
        bench.rows.push(Row {
            what: "server peak RSS (VmHWM), whole run".into(),
            result: format!("{:.0} MB", memory.peak_kib as f64 / 1024.0),
            latency: format!("now {:.0} MB", memory.current_kib as f64 / 1024.0),
            target: "< 150 MB".into(),
            met: Some(memory.peak_kib < 150 * 1024),
        });
    }
    println!("{}", bench.table());
    Ok(())
}

/// Only loopback targets: this tool generates real load.
fn loopback_address(url: &str) -> anyhow::Result<String> {
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
struct TimedGets {
    latencies: Latencies,
    sent: usize,
    first_body: Vec<u8>,
}

/// Latencies in microseconds.
#[derive(Default)]
struct Latencies(Vec<u32>);

impl Latencies {
    fn record(&mut self, since: Instant) {
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
    fn summary(&mut self) -> (f64, f64, f64, f64) {
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

fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else {
        format!("{value:.0} ms")
    }
}

fn thousands(value: f64) -> String {
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
struct Judged {
    accepted: u64,
    refused: u64,
}

/// `/log/bulk`'s 202: `{"accepted": N, "rejected": M, ...}`.
fn bulk_answer(response: &Response) -> Option<Judged> {
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
struct Outcomes {
    accepted: u64,
    overloaded: u64,
    failed: u64,
}

impl Bench {
    async fn connect(&self) -> anyhow::Result<HttpConnection> {
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
    async fn drain(&self) -> anyhow::Result<Duration> {
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

    async fn stored_total(&self) -> anyhow::Result<u64> {
        Self::stored_total_at(&self.address).await
    }

    async fn stored_total_at(address: &str) -> anyhow::Result<u64> {
        let mut connection = HttpConnection::connect(address)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {address}: {e}"))?;
        let response = connection.get("/api/stats").await?;
        let stats: serde_json::Value = serde_json::from_slice(&response.body)?;
        Ok(stats["total_logs"].as_u64().unwrap_or(0))
    }

    fn note_machine(&mut self, phase: &str, sample: &CpuSample) {
        if let Some(usage) = self.machine.usage_since(sample) {
            self.notes.push(format!(
                "{phase}: server used {:.0}% and the generator {:.0}% of one core; other processes {:.0}%",
                usage.server, usage.generator, usage.other
            ));
        }
    }

    async fn single_ingest(&mut self) -> anyhow::Result<()> {
        let connections = self.options.connections;
        let seconds = self.options.seconds;
        eprintln!("ingest: POST /log on {connections} connections for {seconds} s");
        let sample = self.machine.sample();
        let (elapsed, mut latencies, outcomes) = self.post_singles(&self.address).await?;
        let drained = self.drain().await?;
        self.note_machine("ingest", &sample);
        let rate = outcomes.accepted as f64 / elapsed.as_secs_f64();
        let stored_rate = outcomes.accepted as f64 / (elapsed + drained).as_secs_f64();
        let (p50, p95, p99, max) = latencies.summary();
        let latency = format!(
            "p50 {} · p95 {} · p99 {} · max {}",
            ms(p50),
            ms(p95),
            ms(p99),
            ms(max)
        );
        let counts = format!(
            "{} accepted, {} × 503, {} errors",
            thousands(outcomes.accepted as f64),
            outcomes.overloaded,
            outcomes.failed
        );
        self.rows.push(match self.options.topology {
            Topology::All => Row {
                what: format!("`POST /log`, {connections} keep-alive connections, {seconds} s"),
                result: format!(
                    "{} logs/s ({counts}; all stored {:.1} s after the last: {} logs/s stored)",
                    thousands(rate),
                    drained.as_secs_f64(),
                    thousands(stored_rate)
                ),
                latency,
                target: "≥ 75,000 logs/s, p99 < 10 ms".into(),
                met: Some(rate >= 75_000.0 && p99 < 10.0 && outcomes.failed == 0),
            },
            Topology::Split => Row {
                what: format!(
                    "`POST /log` to `--role ingest`, 202 after the JetStream ack, {connections} keep-alive connections, {seconds} s"
                ),
                result: format!("{} requests/s ({counts})", thousands(rate)),
                latency,
                target: format!("≥ {} requests/s", thousands(SEED_REQUESTS_PER_SECOND)),
                met: Some(
                    rate >= SEED_REQUESTS_PER_SECOND && outcomes.failed == 0,
                ),
            },
        });
        if let Some(floor_url) = self.options.floor_url.clone() {
            self.floor(&floor_url).await?;
        }
        Ok(())
    }

    /// The same load on a server that only answers 202: what this machine,
    /// actix-web and the generator allow before any work of ours.
    async fn floor(&mut self, url: &str) -> anyhow::Result<()> {
        let address = loopback_address(url)?;
        eprintln!("floor: POST /log to the bare actix-web server at {url}");
        let floor_machine = Machine::new(self.options.floor_pid);
        let sample = floor_machine.sample();
        let (elapsed, mut latencies, outcomes) = self.post_singles(&address).await?;
        let rate = outcomes.accepted as f64 / elapsed.as_secs_f64();
        if let Some(usage) = floor_machine.usage_since(&sample) {
            self.notes.push(format!(
                "floor: the bare server used {:.0}% and the generator {:.0}% of one core; other processes {:.0}%",
                usage.server, usage.generator, usage.other
            ));
        }
        let (p50, p95, p99, max) = latencies.summary();
        self.rows.push(Row {
            what: "the same load on a bare actix-web handler (202, no parsing, no storage: `benches/floor_server.rs`)".into(),
            result: format!(
                "{} requests/s ({} errors): this machine's ceiling for any actix-web server",
                thousands(rate),
                outcomes.failed
            ),
            latency: format!(
                "p50 {} · p95 {} · p99 {} · max {}",
                ms(p50),
                ms(p95),
                ms(p99),
                ms(max)
            ),
            target: String::new(),
            met: None,
        });
        Ok(())
    }

    /// Closed-loop single-log posts on `--connections` keep-alive
    /// connections for `--seconds`; returns requests/s and every outcome.
    async fn post_singles(&self, address: &str) -> anyhow::Result<(Duration, Latencies, Outcomes)> {
        let connections = self.options.connections;
        let seconds = self.options.seconds;
        let mut corpus = Corpus::new(1);
        let requests: Vec<Vec<u8>> = (0..4096)
            .map(|_| {
                let mut body = Vec::new();
                corpus.log_json(None, &mut body);
                HttpConnection::post_bytes(address, "/log", "application/json", &body)
            })
            .collect();
        let requests = Rc::new(requests);
        let next = Rc::new(Cell::new(0usize));
        let mut pool = Vec::with_capacity(connections);
        for _ in 0..connections {
            pool.push(
                HttpConnection::connect(address)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot connect to {address}: {e}"))?,
            );
        }
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let workers = pool.into_iter().map(|mut connection| {
            let requests = Rc::clone(&requests);
            let next = Rc::clone(&next);
            async move {
                let mut latencies = Latencies::default();
                let mut outcomes = Outcomes::default();
                while Instant::now() < deadline {
                    let index = next.get();
                    next.set(index.wrapping_add(1));
                    let request = &requests[index % requests.len()];
                    let sent = Instant::now();
                    match connection.send(request).await {
                        Ok(Response { status: 202, .. }) => outcomes.accepted += 1,
                        Ok(Response { status: 503, .. }) => outcomes.overloaded += 1,
                        Ok(_) => outcomes.failed += 1,
                        Err(_) => {
                            // The server closed the connection: count it and
                            // carry on with a new one, as a client would.
                            outcomes.failed += 1;
                            match HttpConnection::connect(address).await {
                                Ok(fresh) => connection = fresh,
                                Err(_) => break,
                            }
                        }
                    }
                    latencies.record(sent);
                }
                (latencies, outcomes)
            }
        });
        let results = join_all(workers).await;
        let elapsed = started.elapsed();
        let mut latencies = Latencies::default();
        let mut outcomes = Outcomes::default();
        for (l, o) in results {
            latencies.0.extend(l.0);
            outcomes.accepted += o.accepted;
            outcomes.overloaded += o.overloaded;
            outcomes.failed += o.failed;
        }
        Ok((elapsed, latencies, outcomes))
    }

    async fn live_tail(&mut self) -> anyhow::Result<()> {
        let rate = self.options.live_rate.max(1);
        let seconds = self.options.seconds;
        eprintln!("live: /ws/live while posting {rate} logs/s for {seconds} s");
        let socket = self.connect().await?.websocket("/ws/live").await?;
        let mut corpus = Corpus::new(2);
        let requests: Vec<Vec<u8>> = (0..4096)
            .map(|_| {
                let mut body = Vec::new();
                corpus.log_json(None, &mut body);
                HttpConnection::post_bytes(&self.address, "/log", "application/json", &body)
            })
            .collect();
        // id -> when its 202 arrived, and id -> when its frame arrived.
        let accepted: Rc<RefCell<HashMap<String, Instant>>> = Rc::default();
        let streamed: Rc<RefCell<HashMap<String, Instant>>> = Rc::default();
        let connections = 16;
        let mut pool = Vec::with_capacity(connections);
        for _ in 0..connections {
            pool.push(self.connect().await?);
        }
        let sample = self.machine.sample();
        let started = tokio::time::Instant::now();
        let total = rate * seconds;
        let next = Rc::new(Cell::new(0u64));
        let senders = pool.into_iter().map(|mut connection| {
            let accepted = Rc::clone(&accepted);
            let next = Rc::clone(&next);
            let requests = &requests;
            async move {
                let mut failures = 0u64;
                loop {
                    let k = next.get();
                    if k >= total {
                        break;
                    }
                    next.set(k + 1);
                    let due = started + Duration::from_secs_f64(k as f64 / rate as f64);
                    tokio::time::sleep_until(due).await;
                    match connection
                        .send(&requests[k as usize % requests.len()])
                        .await
                    {
                        Ok(response) if response.status == 202 => {
                            let now = Instant::now();
                            if let Some(id) = accepted_id(&response.body) {
                                accepted.borrow_mut().insert(id, now);
                            }
                        }
                        Ok(_) => failures += 1,
                        Err(_) => {
                            failures += 1;
                            break;
                        }
                    }
                }
                failures
            }
        });
        let sending_ended: Rc<Cell<Option<Instant>>> = Rc::default();
        let receiver = {
            let streamed = Rc::clone(&streamed);
            let accepted = Rc::clone(&accepted);
            let sending_ended = Rc::clone(&sending_ended);
            async move {
                let mut socket = socket;
                loop {
                    if let Some(ended) = sending_ended.get() {
                        // Every frame is in, or stragglers had 2 s to arrive.
                        if streamed.borrow().len() >= accepted.borrow().len()
                            || ended.elapsed() > Duration::from_secs(2)
                        {
                            break;
                        }
                    }
                    // Reading a frame is cancel-safe: bytes stay buffered.
                    match tokio::time::timeout(Duration::from_millis(50), socket.next_text()).await
                    {
                        Ok(Ok(Some((frame, at)))) => {
                            if let Some(id) = frame_id(&frame) {
                                streamed.borrow_mut().insert(id, at);
                            }
                        }
                        Ok(Ok(None)) | Ok(Err(_)) => break,
                        Err(_) => {}
                    }
                }
                socket.close().await;
            }
        };
        let senders = async {
            let failures: u64 = join_all(senders).await.into_iter().sum();
            sending_ended.set(Some(Instant::now()));
            failures
        };
        let (failures, ()) = tokio::join!(senders, receiver);
        let elapsed = started.elapsed();
        self.note_machine("live", &sample);
        let accepted = accepted.borrow();
        let streamed = streamed.borrow();
        let mut latencies = Latencies::default();
        let mut early = 0u64;
        for (id, accepted_at) in accepted.iter() {
            if let Some(streamed_at) = streamed.get(id) {
                if streamed_at < accepted_at {
                    early += 1;
                }
                latencies.0.push(
                    streamed_at
                        .saturating_duration_since(*accepted_at)
                        .as_micros()
                        .min(u32::MAX as u128) as u32,
                );
            }
        }
        let missing = accepted.len() - latencies.0.len();
        let (p50, p95, p99, max) = latencies.summary();
        let achieved = accepted.len() as f64 / elapsed.as_secs_f64();
        self.rows.push(Row {
            what: format!("live tail: `/ws/live` while posting {} logs/s, {seconds} s", thousands(rate as f64)),
            result: format!(
                "{} logs/s posted, {} frames received, {} missing, {} failed posts ({} frames arrived before their 202)",
                thousands(achieved),
                thousands(latencies.0.len() as f64),
                missing,
                failures,
                early
            ),
            latency: format!(
                "202 → frame: p50 {} · p95 {} · p99 {} · max {}",
                ms(p50),
                ms(p95),
                ms(p99),
                ms(max)
            ),
            target: "p99 < 20 ms".into(),
            met: Some(p99 < 20.0 && missing == 0),
        });
        Ok(())
    }

    async fn bulk_ingest(&mut self) -> anyhow::Result<()> {
        let seconds = self.options.seconds;
        let size = self.options.bulk_size.max(1);
        let connections = self.options.bulk_connections.max(1);
        eprintln!(
            "bulk: NDJSON bodies of {size} logs on {connections} connections for {seconds} s"
        );
        let mut corpus = Corpus::new(3);
        let bodies: Vec<Vec<u8>> = (0..64)
            .map(|_| {
                let mut body = Vec::new();
                for _ in 0..size {
                    corpus.log_json(None, &mut body);
                    body.push(b'\n');
                }
                HttpConnection::post_bytes(
                    &self.address,
                    "/log/bulk",
                    "application/x-ndjson",
                    &body,
                )
            })
            .collect();
        let stored_at = match &self.options.stored_url {
            Some(url) if self.options.topology == Topology::Split => Some(loopback_address(url)?),
            _ => None,
        };
        let stored_before = match &stored_at {
            Some(address) => Self::stored_total_at(address).await?,
            None => 0,
        };
        let sample = self.machine.sample();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let (outcome, bytes) = self
            .send_bulk(
                connections,
                Some(deadline),
                |k| (Instant::now() < deadline).then(|| bodies[k as usize % bodies.len()].clone()),
                bulk_answer,
            )
            .await?;
        let sent_for = started.elapsed();
        if let Some(address) = &stored_at {
            return self
                .report_stored_end_to_end(address, stored_before, outcome, bytes, sent_for, &sample)
                .await;
        }
        let drained = self.drain().await?;
        self.note_machine("bulk", &sample);
        let accepted = outcome.accepted as f64;
        let rate = accepted / sent_for.as_secs_f64();
        let sustained = accepted / (sent_for + drained).as_secs_f64();
        if self.options.topology == Topology::Split {
            self.rows.push(Row {
                what: format!(
                    "`POST /log/bulk` NDJSON to `--role ingest`, {size} logs/request, {connections} connections, {seconds} s"
                ),
                result: format!(
                    "{} logs/s accepted into JetStream ({:.0} MB/s; {} logs, {} × 503)",
                    thousands(rate),
                    bytes as f64 / 1e6 / sent_for.as_secs_f64(),
                    thousands(accepted),
                    outcome.overloaded
                ),
                latency: String::new(),
                target: String::new(),
                met: None,
            });
            return Ok(());
        }
        self.rows.push(Row {
            what: format!(
                "`POST /log/bulk` NDJSON, {size} logs/request, {connections} connections, {seconds} s"
            ),
            result: format!(
                "{} logs/s accepted ({:.0} MB/s); **{} logs/s sustained** to disk ({} logs, stored {:.1} s after the last 202; {} × 503)",
                thousands(rate),
                bytes as f64 / 1e6 / sent_for.as_secs_f64(),
                thousands(sustained),
                thousands(accepted),
                drained.as_secs_f64(),
                outcome.overloaded
            ),
            latency: String::new(),
            target: "≥ 250,000 logs/s sustained".into(),
            met: Some(sustained >= 250_000.0 && outcome.failed == 0),
        });
        Ok(())
    }

    /// The split bulk row end to end: waits until the query role counts
    /// every accepted log as stored, then reports accepted / (sending time +
    /// the time the store took to catch up).
    async fn report_stored_end_to_end(
        &mut self,
        stored_at: &str,
        stored_before: u64,
        outcome: Outcomes,
        bytes: u64,
        sent_for: Duration,
        sample: &CpuSample,
    ) -> anyhow::Result<()> {
        let size = self.options.bulk_size.max(1);
        let connections = self.options.bulk_connections.max(1);
        let seconds = self.options.seconds;
        let wanted = stored_before + outcome.accepted;
        let waiting_since = Instant::now();
        loop {
            let stored = Self::stored_total_at(stored_at).await?;
            if stored >= wanted {
                break;
            }
            anyhow::ensure!(
                waiting_since.elapsed() < Duration::from_secs(600),
                "only {stored} of {wanted} logs stored 10 minutes after the last 202"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let drained = waiting_since.elapsed();
        self.note_machine("bulk (end to end)", sample);
        let accepted = outcome.accepted as f64;
        let stored_rate = accepted / (sent_for + drained).as_secs_f64();
        let label = if self.options.label.is_empty() {
            String::new()
        } else {
            format!(", {}", self.options.label)
        };
        self.rows.push(Row {
            what: format!(
                "`POST /log/bulk` NDJSON, {size} logs/request, {connections} connections, {seconds} s: `--role ingest` → JetStream → `--role process` → store{label}"
            ),
            result: format!(
                "**{} logs/s stored** end to end ({} logs/s accepted, {:.0} MB/s; all {} stored {:.1} s after the last 202; {} × 503)",
                thousands(stored_rate),
                thousands(accepted / sent_for.as_secs_f64()),
                bytes as f64 / 1e6 / sent_for.as_secs_f64(),
                thousands(accepted),
                drained.as_secs_f64(),
                outcome.overloaded
            ),
            latency: String::new(),
            target: "≥ 150,000 logs/s stored".into(),
            met: Some(stored_rate >= 150_000.0 && outcome.failed == 0),
        });
        if let Some(path) = &self.options.result_file {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(file, "{}\t{stored_rate:.0}", self.options.label)?;
        }
        Ok(())
    }

    /// Posts the bodies `body(k)` yields (k = 0, 1, ...) until it yields
    /// `None`, on `connections` connections; a 503 waits 50 ms and retries
    /// until `give_up_at` (a split ingest whose stream is full answers 503
    /// until a process instance drains it). Returns the outcomes and the body
    /// bytes accepted.
    async fn send_bulk(
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
                            // Shorter than the server's 1 s Retry-After so
                            // the store never idles, long enough not to spin.
                            outcomes.overloaded += 1;
                            if give_up_at.is_some_and(|at| Instant::now() >= at) {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
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

    /// Bulk-loads logs with timestamps spread evenly over the week before
    /// the run, in time order (as logs arrive), until the store holds `size`.
    async fn prefill(
        &mut self,
        size: u64,
        span_start: i64,
        span: i64,
        largest: u64,
    ) -> anyhow::Result<()> {
        let have = self.stored_total().await?;
        if have >= size {
            return Ok(());
        }
        let missing = size - have;
        let batch = self.options.bulk_size.max(1) as u64;
        let connections = self.options.bulk_connections.max(1);
        eprintln!(
            "query: pre-filling {} logs (store has {})",
            thousands(missing as f64),
            thousands(have as f64)
        );
        // Bodies are made once with a placeholder timestamp whose position is
        // remembered; each request copies one and writes its timestamps in,
        // which costs far less than generating every log.
        let placeholder = format_rfc3339(0);
        let mut corpus = Corpus::new(4 + size);
        let templates: Vec<(Vec<u8>, Vec<usize>)> = (0..32)
            .map(|_| {
                let mut body = Vec::new();
                let mut offsets = Vec::new();
                for _ in 0..batch {
                    let start = body.len();
                    corpus.log_json(Some(placeholder.clone()), &mut body);
                    let needle = format!("\"timestamp\":\"{placeholder}\"");
                    if let Some(at) = body[start..]
                        .windows(needle.len())
                        .position(|w| w == needle.as_bytes())
                    {
                        offsets.push(start + at + "\"timestamp\":\"".len());
                    }
                    body.push(b'\n');
                }
                (body, offsets)
            })
            .collect();
        let requests = missing.div_ceil(batch);
        let sample = self.machine.sample();
        let started = Instant::now();
        let address = self.address.clone();
        let (outcome, _) = self
            .send_bulk(
                connections,
                None,
                |k| {
                    if k >= requests {
                        return None;
                    }
                    let (template, offsets) = &templates[k as usize % templates.len()];
                    let mut body = template.clone();
                    for (i, offset) in offsets.iter().enumerate() {
                        // Position of this log among all pre-filled logs.
                        let ordinal = have + k * batch + i as u64;
                        let timestamp =
                            span_start + (span as i128 * ordinal as i128 / largest as i128) as i64;
                        let text = format_rfc3339(timestamp);
                        body[*offset..*offset + text.len()].copy_from_slice(text.as_bytes());
                    }
                    Some(HttpConnection::post_bytes(
                        &address,
                        "/log/bulk",
                        "application/x-ndjson",
                        &body,
                    ))
                },
                bulk_answer,
            )
            .await?;
        let sent_for = started.elapsed();
        let drained = self.drain().await?;
        self.note_machine(&format!("pre-fill to {}", thousands(size as f64)), &sample);
        self.await_indexes(size).await?;
        let sustained = outcome.accepted as f64 / (sent_for + drained).as_secs_f64();
        self.rows.push(Row {
            what: format!(
                "pre-fill {} → {} logs (bulk, {batch}/request)",
                thousands(have as f64),
                thousands(size as f64)
            ),
            result: format!(
                "**{} logs/s sustained** to disk ({:.1} s, {} × 503)",
                thousands(sustained),
                (sent_for + drained).as_secs_f64(),
                outcome.overloaded
            ),
            latency: String::new(),
            target: "≥ 250,000 logs/s sustained".into(),
            met: Some(sustained >= 250_000.0),
        });
        Ok(())
    }

    /// Waits (at most 10 minutes) until the store's background indexes
    /// cover the pre-filled logs, so queries measure the indexed store, and
    /// reports how long that took. Stores without such indexes answer at
    /// once (the gauge is absent).
    async fn await_indexes(&mut self, size: u64) -> anyhow::Result<()> {
        const GAUGE: &str = "oglogstream_store_index_backlog_logs";
        let started = Instant::now();
        let mut connection = self.connect().await?;
        loop {
            let response = connection.get("/metrics").await?;
            let text = String::from_utf8_lossy(&response.body);
            let backlog: Option<u64> = text
                .lines()
                .find_map(|line| line.strip_prefix(GAUGE)?.trim().parse().ok());
            match backlog {
                None => return Ok(()),
                Some(left) if left < 2048 => break,
                Some(_) if started.elapsed() > Duration::from_secs(600) => {
                    eprintln!("query: indexes still behind after 10 minutes; measuring anyway");
                    break;
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        self.rows.push(Row {
            what: format!(
                "facet blocks built for the pre-filled logs ({} logs)",
                thousands(size as f64)
            ),
            result: format!(
                "{:.1} s after the last was stored (a background thread at low priority)",
                started.elapsed().as_secs_f64()
            ),
            latency: String::new(),
            target: String::new(),
            met: None,
        });
        Ok(())
    }

    async fn queries(&mut self) -> anyhow::Result<()> {
        let mut sizes = self.options.sizes.clone();
        sizes.sort_unstable();
        let Some(&largest) = sizes.last() else {
            return Ok(());
        };
        let week = 7 * 86_400_000_000i64;
        // Spread over the week before now, leaving the last hour for the
        // logs other phases stamp with their receipt time.
        let span_start = now_micros() - week;
        let span = week - 3_600_000_000;
        for size in sizes {
            self.prefill(size, span_start, span, largest).await?;
            self.query_set(size, span_start).await?;
        }
        Ok(())
    }

    async fn query_set(&mut self, size: u64, span_start: i64) -> anyhow::Result<()> {
        let stored = self.stored_total().await?;
        let label = format!("{} logs", thousands(stored as f64));
        eprintln!("query: latencies on {label}");
        let from = format_rfc3339(span_start);
        let to = format_rfc3339(now_micros() + 60_000_000);
        // The pre-filled logs end an hour before the week does.
        let span_end = span_start + 7 * 24 * HOUR - HOUR;
        let service = |i: usize| SERVICES[i % 12];
        // Each kind: a name, a target p95 in ms, and the i-th request's path.
        type PathFor<'a> = Box<dyn Fn(usize) -> String + 'a>;
        let kinds: Vec<(&str, Option<f64>, PathFor)> = vec![
            (
                "`/api/logs` newest page, no filter",
                Some(50.0),
                Box::new(|_| "/api/logs".to_string()),
            ),
            (
                "`/api/logs?level=error`",
                Some(50.0),
                Box::new(|_| "/api/logs?level=error".to_string()),
            ),
            (
                "`/api/logs?level=error,fatal&service=…`",
                Some(50.0),
                Box::new(move |i| format!("/api/logs?level=error,fatal&service={}", service(i))),
            ),
            (
                "`/api/logs?level=warn&service=…&from=…&to=…` (one hour)",
                Some(50.0),
                Box::new(move |i| {
                    let start = span_start + (i as i64 % 150) * 3_600_000_000;
                    format!(
                        "/api/logs?level=warn&service={}&from={}&to={}",
                        service(i),
                        start / 1000,
                        (start + 3_600_000_000) / 1000
                    )
                }),
            ),
            (
                "`/api/logs?q=` common word (2% of logs)",
                Some(200.0),
                Box::new(|_| format!("/api/logs?q={COMMON_TERM}")),
            ),
            (
                "`/api/logs?q=` rare word (0.01% of logs)",
                Some(200.0),
                Box::new(|_| format!("/api/logs?q={RARE_TERM}")),
            ),
            (
                "`/api/logs?q=` word in no log",
                Some(200.0),
                Box::new(|_| format!("/api/logs?q={ABSENT_TERM}")),
            ),
            (
                "`/api/stats` full range",
                Some(100.0),
                Box::new(|_| "/api/stats".to_string()),
            ),
            (
                "`/api/stats?level=error,fatal`",
                Some(100.0),
                Box::new(|_| "/api/stats?level=error,fatal".to_string()),
            ),
            (
                "`/api/histogram` full range (auto interval)",
                Some(100.0),
                Box::new(move |_| format!("/api/histogram?from={from}&to={to}")),
            ),
            (
                "`/api/histogram` last 24 h (default)",
                Some(100.0),
                Box::new(|_| "/api/histogram".to_string()),
            ),
            (
                "`/api/logs?query=level:>=error service:checkout region:eu-west-1`",
                Some(50.0),
                Box::new(|_| {
                    with_query(
                        "/api/logs?",
                        "level:>=error service:checkout region:eu-west-1",
                    )
                }),
            ),
            (
                "`/api/logs?query=http.status:>=500`",
                Some(200.0),
                Box::new(|_| with_query("/api/logs?", "http.status:>=500")),
            ),
            (
                "`/api/logs?query=~\"…\"`, a regex over the last hour",
                Some(500.0),
                Box::new(move |_| {
                    with_query(
                        &format!(
                            "/api/logs?from={}&to={}&",
                            (span_end - HOUR) / 1000,
                            span_end / 1000
                        ),
                        "~\"timeout after [0-9]{4}ms\"",
                    )
                }),
            ),
            (
                "`/api/facets` over the last 24 h",
                Some(300.0),
                Box::new(move |_| {
                    format!(
                        "/api/facets?from={}&to={}",
                        (span_end - 24 * HOUR) / 1000,
                        span_end / 1000
                    )
                }),
            ),
            (
                "`/api/facets` over every log",
                Some(1000.0),
                Box::new(|_| "/api/facets".to_string()),
            ),
        ];
        let mut connection = self.connect().await?;
        for (name, target, path) in kinds {
            let mut timed = self.timed_gets(&mut connection, path).await?;
            let (i, results) = (timed.sent, count_results(&timed.first_body));
            let (p50, p95, p99, _) = timed.latencies.summary();
            self.rows.push(Row {
                what: format!("{name} on {label}"),
                result: format!("{i} requests, {results} rows/groups"),
                latency: format!("p50 {} · p95 {} · p99 {}", ms(p50), ms(p95), ms(p99)),
                target: target.map_or(String::new(), |t| format!("p95 < {t:.0} ms")),
                met: target.filter(|_| size >= 10_000_000).map(|t| p95 < t),
            });
        }
        self.deep_cursor_page(&mut connection, &label, size).await?;
        self.export(&label, size).await?;
        Ok(())
    }

    /// Times `GET path(i)` for `query_count` requests or `query_seconds`,
    /// whichever ends first (at least 3); any answer but `200` fails the run.
    async fn timed_gets(
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

    /// Walks 999,900 rows by cursor once, then times page 10,000 (of 100
    /// rows) from its cursor: a keyset page costs the same however deep.
    async fn deep_cursor_page(
        &mut self,
        connection: &mut HttpConnection,
        label: &str,
        size: u64,
    ) -> anyhow::Result<()> {
        const PAGE: u64 = 100;
        const WANTED_PAGE: u64 = 10_000;
        let mut skipped = 0u64;
        let mut cursor: Option<String> = None;
        let depth = PAGE * (WANTED_PAGE - 1);
        while skipped < depth {
            let limit = (depth - skipped).min(1000);
            let path = match &cursor {
                Some(cursor) => format!("/api/logs?limit={limit}&cursor={cursor}"),
                None => format!("/api/logs?limit={limit}"),
            };
            let response = connection.get(&path).await?;
            anyhow::ensure!(
                response.status == 200,
                "{path} answered {}",
                response.status
            );
            let Some(next) = response.header("x-next-cursor") else {
                eprintln!("query: fewer than {depth} logs, no page {WANTED_PAGE}");
                return Ok(());
            };
            cursor = Some(next.to_string());
            skipped += limit;
        }
        let path = format!(
            "/api/logs?limit={PAGE}&cursor={}",
            cursor.unwrap_or_default()
        );
        let mut timed = self.timed_gets(connection, |_| path.clone()).await?;
        let (i, rows) = (timed.sent, count_results(&timed.first_body));
        let (p50, p95, p99, _) = timed.latencies.summary();
        self.rows.push(Row {
            what: format!(
                "`/api/logs` page {WANTED_PAGE} by cursor (rows 999,901–1,000,000) on {label}"
            ),
            result: format!("{i} requests, {rows} rows"),
            latency: format!("p50 {} · p95 {} · p99 {}", ms(p50), ms(p95), ms(p99)),
            target: "p95 < 50 ms".into(),
            met: (size >= 10_000_000).then_some(p95 < 50.0),
        });
        Ok(())
    }

    /// Streams `/api/export` of every log once, counting rows as they
    /// arrive, and samples the server's resident memory meanwhile.
    async fn export(&mut self, label: &str, size: u64) -> anyhow::Result<()> {
        let mut connection = self.connect().await?;
        let mut rows = 0u64;
        let mut bytes = 0u64;
        let mut peak_kib = 0u64;
        let mut since_sample = 0u64;
        let machine = &self.machine;
        let started = Instant::now();
        let response = connection
            .get_streamed("/api/export", &mut |piece: &[u8]| {
                rows += memchr::memchr_iter(b'\n', piece).count() as u64;
                bytes += piece.len() as u64;
                since_sample += piece.len() as u64;
                if since_sample > 16 << 20 {
                    since_sample = 0;
                    if let Some(memory) = machine.memory() {
                        peak_kib = peak_kib.max(memory.current_kib);
                    }
                }
            })
            .await?;
        let elapsed = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            response.status == 200,
            "/api/export answered {}",
            response.status
        );
        let per_second = rows as f64 / elapsed;
        self.rows.push(Row {
            what: format!("`/api/export` (NDJSON) of every log on {label}"),
            result: format!(
                "{} rows/s ({} rows, {:.0} MB in {elapsed:.1} s), server RSS at most {} MB",
                thousands(per_second),
                thousands(rows as f64),
                bytes as f64 / 1e6,
                peak_kib / 1024
            ),
            latency: String::new(),
            target: "≥ 300,000 rows/s, RSS < 150 MB".into(),
            met: (size >= 10_000_000).then_some(per_second >= 300_000.0 && peak_kib < 150 * 1024),
        });
        Ok(())
    }

    fn table(&self) -> String {
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

const HOUR: i64 = 3_600_000_000;

/// `prefix` (ending in `?` or `&`) with `query=` and the URL-encoded text.
fn with_query(prefix: &str, query: &str) -> String {
    format!(
        "{prefix}{}",
        serde_urlencoded::to_string([("query", query)]).unwrap_or_default()
    )
}

fn accepted_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Accepted {
        id: String,
    }
    serde_json::from_slice::<Accepted>(body).ok().map(|a| a.id)
}

fn frame_id(frame: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Frame<'a> {
        #[serde(borrow)]
        id: &'a str,
    }
    serde_json::from_slice::<Frame>(frame)
        .ok()
        .map(|f| f.id.to_string())
}

/// Rows of an array answer, or groups of a stats/histogram answer.
fn count_results(body: &[u8]) -> usize {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(rows)) => rows.len(),
        Ok(value) => value["buckets"]
            .as_array()
            .map(|b| b.len())
            .or_else(|| value["logs_by_service"].as_object().map(|s| s.len()))
            .unwrap_or(0),
        Err(_) => 0,
    }
}

/// CPU accounting from /proc, to tell how much of the machine the server,
/// the generator and everything else used during a phase: on a shared
/// 2-core machine a busy neighbour changes the figures.
struct Machine {
    cores: usize,
    memory_gib: u64,
    pid: Option<u32>,
}

struct CpuSample {
    total_busy: u64,
    server: u64,
    generator: u64,
    at: Instant,
}

struct CpuUsage {
    server: f64,
    generator: f64,
    other: f64,
}

struct Memory {
    peak_kib: u64,
    current_kib: u64,
}

impl Machine {
    fn new(pid: Option<u32>) -> Machine {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .map_or(0, |kib| (kib + (1 << 19)) >> 20);
        Machine {
            cores,
            memory_gib,
            pid,
        }
    }

    /// Ticks (1/100 s) of user+system time of a process.
    fn process_ticks(pid: &str) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }

    fn total_busy() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().next()?;
        let values: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal: busy is all but idle+iowait.
        Some(values.iter().take(8).sum::<u64>() - values.get(3)? - values.get(4)?)
    }

    fn sample(&self) -> CpuSample {
        CpuSample {
            total_busy: Machine::total_busy().unwrap_or(0),
            server: self
                .pid
                .and_then(|p| Machine::process_ticks(&p.to_string()))
                .unwrap_or(0),
            generator: Machine::process_ticks("self").unwrap_or(0),
            at: Instant::now(),
        }
    }

    fn usage_since(&self, before: &CpuSample) -> Option<CpuUsage> {
        self.pid?;
        let now = self.sample();
        let seconds = now.at.duration_since(before.at).as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        let percent = |ticks: u64| ticks as f64 / seconds; // 100 ticks/s = 100%
        let server = percent(now.server.saturating_sub(before.server));
        let generator = percent(now.generator.saturating_sub(before.generator));
        let total = percent(now.total_busy.saturating_sub(before.total_busy));
        Some(CpuUsage {
            server,
            generator,
            other: (total - server - generator).max(0.0),
        })
    }

    fn memory(&self) -> Option<Memory> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let field = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        };
        Some(Memory {
            peak_kib: field("VmHWM:")?,
            current_kib: field("VmRSS:")?,
        })
    }
}
