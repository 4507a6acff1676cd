//! The `ingest` phase: single-log `POST /log`, closed loop on keep-alive
//! connections (64 by default, like `wrk -t1 -c64`), latency of every
//! request; then, with `--floor-url`, the same load on a bare actix-web
//! server, to show the machine's ceiling.

use crate::loadgen::bench::{
    Bench, Latencies, Outcomes, Row, latency_text, loopback_address, thousands,
};
use crate::loadgen::client::{HttpConnection, Response};
use crate::loadgen::corpus::Corpus;
use crate::loadgen::machine::Machine;
use crate::loadgen::options::Topology;
use futures_util::future::join_all;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What the seed's Go ingestion service reached with `wrk -t1 -c64` on a
/// machine like ours (see the benchmarks issue); it stored nothing.
const SEED_REQUESTS_PER_SECOND: f64 = 37_700.0;

impl Bench {
    pub(crate) async fn single_ingest(&mut self) -> anyhow::Result<()> {
        let connections = self.options.connections;
        let seconds = self.options.seconds;
        eprintln!("ingest: POST /log on {connections} connections for {seconds} s");
        let sample = self.machine.sample();
        let (elapsed, mut latencies, outcomes) = self.post_singles(&self.address).await?;
        let drained = self.drain().await?;
        self.note_machine("ingest", &sample);
        let rate = outcomes.accepted as f64 / elapsed.as_secs_f64();
        let stored_rate = outcomes.accepted as f64 / (elapsed + drained).as_secs_f64();
        let summary = latencies.summary();
        let (_, _, p99, _) = summary;
        let latency = latency_text(summary);
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
        let summary = latencies.summary();
        self.rows.push(Row {
            what: "the same load on a bare actix-web handler (202, no parsing, no storage: `benches/floor_server.rs`)".into(),
            result: format!(
                "{} requests/s ({} errors): this machine's ceiling for any actix-web server",
                thousands(rate),
                outcomes.failed
            ),
            latency: latency_text(summary),
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
}
