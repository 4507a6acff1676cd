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
//! - `query`: pre-fills the store (bulk, timestamps spread over a week,
//!   60% of logs in traces of a few logs) to each size asked for, then
//!   measures `/api/logs` (trace lookups among them), `/api/stats` and
//!   `/api/histogram` latencies one request at a time.
//! - `loki`: Grafana's and Logs Drilldown's requests through the Loki query
//!   API on that store (`loki.rs`).
//! - `alerts`: one alert rule evaluation per shape on that store (with the
//!   last five minutes filled), and the CPU of 100 rules (`alerts.rs`).
//! - `tenants` (not by default): a small tenant's reads among 100 tenants
//!   against a second server holding only its logs (`tenants.rs`).
//!
//! Everything runs on one thread, like wrk's single thread, so the generator
//! takes at most one of the machine's cores from the server.
//!
//! Layout: one file per phase in `phases/`; `bench.rs` holds what they
//! share (the result rows, timed requests, bulk sending), `machine.rs` the
//! CPU and memory accounting, `client.rs` the HTTP/1.1 and WebSocket client,
//! `corpus.rs` the generated logs, `shippers.rs` the shippers' encodings,
//! `soak.rs` the long mixed-load run (`--soak-minutes`) instead of phases.

mod api;
mod bench;
pub mod client;
pub mod corpus;
pub mod grpc;
mod machine;
mod options;
mod phases;
pub mod shippers;
mod soak;

pub use options::{Options, Topology};

use bench::{Bench, Row, loopback_address};
use client::HttpConnection;
use machine::Machine;

pub async fn run(options: Options) -> anyhow::Result<()> {
    if let Some(directory) = &options.write_bodies {
        return shippers::write_bodies(directory, options.bulk_size.max(1));
    }
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
        traces: Vec::new(),
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
            "loki" => bench.loki().await?,
            "alerts" => bench.alerts().await?,
            "shippers" => bench.shippers().await?,
            "tenants" => bench.tenants().await?,
            other => {
                anyhow::bail!(
                    "unknown phase {other:?}: use query, loki, alerts, ingest, live, bulk, shippers, tenants"
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
