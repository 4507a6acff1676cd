//! The `bulk` phase: NDJSON bodies on a few connections; accepted logs/s
//! and MB/s, and the sustained rate including the time the store needs to
//! write them all (end to end through a split deployment with
//! `--stored-url`).

use crate::loadgen::bench::{Bench, Outcomes, Row, bulk_answer, loopback_address, thousands};
use crate::loadgen::client::HttpConnection;
use crate::loadgen::corpus::Corpus;
use crate::loadgen::machine::CpuSample;
use crate::loadgen::options::Topology;
use std::time::{Duration, Instant};

impl Bench {
    pub(crate) async fn bulk_ingest(&mut self) -> anyhow::Result<()> {
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
        let (outcome, bytes, sent_for) = self
            .send_for_seconds(connections, &bodies, bulk_answer)
            .await?;
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
            tokio::time::sleep(Duration::from_millis(100)).await;
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
}
