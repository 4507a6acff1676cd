//! The `tenants` phase (`make bench-tenants`): does a small tenant pay for
//! sharing the store? Fills `--url` (tenancy on) with the largest of
//! `--sizes` logs from `--tenants` tenants, `t-000` holding half and the
//! rest sharing the other half, and `--solo-url` (a second server, tenancy
//! on, empty) with exactly the logs of one small tenant; then times that
//! tenant's newest page, level filter and stats on both. The target:
//! within 1.2× of the store holding only that tenant's logs.

use crate::domain::time::{format_rfc3339, now_micros};
use crate::loadgen::bench::{Bench, Row, bulk_answer, latency_text, thousands};
use crate::loadgen::client::HttpConnection;
use crate::loadgen::corpus::Corpus;
use std::time::Duration;

/// The small tenant whose queries are compared.
const SMALL_TENANT: &str = "t-007";
const HOUR: i64 = 3_600_000_000;

impl Bench {
    pub(crate) async fn tenants(&mut self) -> anyhow::Result<()> {
        let solo_url = self
            .options
            .solo_url
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the tenants phase needs --solo-url"))?;
        let solo = crate::loadgen::bench::loopback_address(&solo_url)?;
        let size = self
            .options
            .sizes
            .iter()
            .copied()
            .max()
            .unwrap_or(1_000_000);
        let tenants = self.options.tenants.max(2);
        let batch = self.options.bulk_size.max(1) as u64;
        let requests = size.div_ceil(batch);
        let week = 7 * 24 * HOUR;
        let span_start = now_micros() - week;
        let span = week - HOUR;
        // Request k: even ones are the big tenant's, odd ones go round the
        // small tenants. Each body is generated from its own seed, so the
        // solo store gets byte for byte the small tenant's requests.
        let tenant_of = |k: u64| match k % 2 {
            0 => "t-000".to_string(),
            _ => format!("t-{:03}", 1 + (k / 2) % (tenants - 1)),
        };
        let body_of = |k: u64| {
            let mut corpus = Corpus::new(0x7e0a_0000 + k);
            let mut body = Vec::with_capacity(batch as usize * 400);
            for i in 0..batch {
                let ordinal = k * batch + i;
                let at = span_start + (span as i128 * ordinal as i128 / size as i128) as i64;
                corpus.log_json(Some(format_rfc3339(at)), &mut body);
                body.push(b'\n');
            }
            body
        };
        let request = |host: &str, tenant: &str, body: &[u8]| {
            HttpConnection::post_bytes_with(
                host,
                "/log/bulk",
                "application/x-ndjson",
                &[("X-Scope-OrgID", tenant)],
                body,
            )
        };
        eprintln!(
            "tenants: filling {} logs from {tenants} tenants, and {SMALL_TENANT}'s alone into --solo-url",
            thousands(size as f64)
        );
        let address = self.address.clone();
        let (shared, _) = self
            .send_bulk(
                self.options.bulk_connections.max(1),
                None,
                |k| (k < requests).then(|| request(&address, &tenant_of(k), &body_of(k))),
                bulk_answer,
            )
            .await?;
        let small: Vec<u64> = (0..requests)
            .filter(|k| tenant_of(*k) == SMALL_TENANT)
            .collect();
        // The solo server is driven by the same code: the address swapped.
        let shared_address = std::mem::replace(&mut self.address, solo.clone());
        let alone = self
            .send_bulk(
                self.options.bulk_connections.max(1),
                None,
                |i| {
                    small
                        .get(i as usize)
                        .map(|k| request(&solo, SMALL_TENANT, &body_of(*k)))
                },
                bulk_answer,
            )
            .await
            .map(|(alone, _)| alone);
        let solo_drained = match alone {
            Ok(_) => self.drain().await.map(|_| ()),
            Err(_) => Ok(()),
        };
        self.address = shared_address;
        let alone = alone?;
        solo_drained?;
        self.drain().await?;
        // The facet and search blocks are built in the background; the
        // pages asked here do not read them, but give both stores a moment.
        tokio::time::sleep(Duration::from_secs(2)).await;
        eprintln!(
            "tenants: stored {} shared, {} of {SMALL_TENANT} alone",
            thousands(shared.accepted as f64),
            thousands(alone.accepted as f64)
        );
        let kinds: [(&str, &str); 4] = [
            ("newest page", "/api/logs?limit=50"),
            ("level filter", "/api/logs?level=error&limit=50"),
            ("stats", "/api/stats"),
            ("histogram, the week", "/api/histogram"),
        ];
        for (name, path) in kinds {
            let mut on_shared = self.connect().await?;
            let mut on_solo = HttpConnection::connect(&solo).await?;
            // Interleaved rounds, so a slow moment of the machine lands on both.
            let mut shared_times = crate::loadgen::bench::Latencies::default();
            let mut solo_times = crate::loadgen::bench::Latencies::default();
            for _ in 0..self.options.query_count.clamp(3, 100) {
                for (connection, times) in [
                    (&mut on_shared, &mut shared_times),
                    (&mut on_solo, &mut solo_times),
                ] {
                    let asked = std::time::Instant::now();
                    let response = connection
                        .get_with(path, &[("X-Scope-OrgID", SMALL_TENANT)])
                        .await?;
                    times.record(asked);
                    anyhow::ensure!(
                        response.status == 200,
                        "{path} answered {}: {}",
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    );
                }
            }
            let shared_summary = shared_times.summary();
            let solo_summary = solo_times.summary();
            let median = shared_summary.0 / solo_summary.0.max(0.001);
            let ratio = shared_summary.1 / solo_summary.1.max(0.001);
            self.rows.push(Row {
                what: format!(
                    "{SMALL_TENANT} `{path}` ({name}) among {tenants} tenants, {} logs",
                    thousands(shared.accepted as f64)
                ),
                result: format!(
                    "p50 {median:.2}×, p95 {ratio:.2}× of a store of its {} logs alone",
                    thousands(alone.accepted as f64)
                ),
                latency: format!(
                    "shared {} · alone {}",
                    latency_text(shared_summary),
                    latency_text(solo_summary)
                ),
                target: "≤ 1.2×".into(),
                met: Some(median <= 1.2 && ratio <= 1.2),
            });
        }
        Ok(())
    }
}
