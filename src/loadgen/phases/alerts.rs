//! The `alerts` phase: what a rule costs on the benchmark store.
//!
//! 1. Fills the last five minutes with `--alert-recent-logs` logs (stamped
//!    evenly over `[now - 5 min, now)`, as a steady stream would leave them),
//!    so a rule's window holds real data beside the pre-filled week.
//! 2. Measures one evaluation of several rule shapes through
//!    `GET /api/alerts/preview`, which counts exactly as the evaluator does.
//! 3. Measures the server's CPU with no rules, then with 100 rules (a mix of
//!    those shapes, 5-minute windows) evaluated every `evaluation_interval`
//!    (`scripts/bench.sh` sets 10 s), each for `--alert-seconds`; then
//!    deletes the rules.

use crate::domain::time::{format_rfc3339, now_micros};
use crate::loadgen::api::create_alert_rule;
use crate::loadgen::bench::{Bench, Row, bulk_answer, ms, thousands};
use crate::loadgen::client::HttpConnection;
use crate::loadgen::corpus::{Corpus, SERVICES};
use serde_json::Value;
use std::time::Duration;

const FIVE_MINUTES: i64 = 300_000_000;
const RULES: usize = 100;

/// A rule shape: a name, its target p95 (ms), the query and its group_by.
const SHAPES: &[(&str, Option<f64>, &str, &str)] = &[
    (
        "`service:checkout level:>=error` (rollups)",
        Some(20.0),
        "service:checkout level:>=error",
        "",
    ),
    (
        "`level:>=error` by service (rollups)",
        Some(20.0),
        "level:>=error",
        "service",
    ),
    (
        "`service:pay* level:error` by level (rollups)",
        Some(20.0),
        "service:pay* level:error",
        "level",
    ),
    (
        "`level:>=warn` by `region` (an attribute)",
        None,
        "level:>=warn",
        "region",
    ),
    ("`timeout` (message text)", None, "timeout", ""),
];

fn preview_path(query: &str, group_by: &str) -> String {
    let params =
        serde_urlencoded::to_string([("query", query), ("window", "5m"), ("group_by", group_by)])
            .unwrap_or_default();
    format!("/api/alerts/preview?{params}")
}

impl Bench {
    pub(crate) async fn alerts(&mut self) -> anyhow::Result<()> {
        self.fill_recent().await?;
        let stored = self.stored_total().await?;
        let label = format!("{} logs", thousands(stored as f64));
        eprintln!("alerts: rule evaluation latency on {label}");
        let mut connection = self.connect().await?;
        let mut reading_p50: Option<f64> = None;
        for (name, target, query, group_by) in SHAPES {
            let path = preview_path(query, group_by);
            let mut timed = self.timed_gets(&mut connection, |_| path.clone()).await?;
            let answer: Value = serde_json::from_slice(&timed.first_body).unwrap_or_default();
            let (i, count) = (timed.sent, answer["count"].as_u64().unwrap_or(0));
            let (p50, p95, p99, _) = timed.latencies.summary();
            if target.is_none() {
                reading_p50 = Some(reading_p50.map_or(p50, |m: f64| m.max(p50)));
            }
            self.rows.push(Row {
                what: format!("alert rule {name}, last 5 min, on {label}"),
                result: format!("{i} evaluations, {} logs counted", thousands(count as f64)),
                latency: format!("p50 {} · p95 {} · p99 {}", ms(p50), ms(p95), ms(p99)),
                target: target.map_or(String::new(), |t| format!("p95 < {t:.0} ms")),
                met: target.filter(|_| stored >= 10_000_000).map(|t| p95 < t),
            });
        }
        self.rule_cpu(reading_p50).await
    }

    /// Bulk-loads logs stamped evenly over the last five minutes.
    async fn fill_recent(&mut self) -> anyhow::Result<()> {
        let total = self.options.alert_recent_logs;
        if total == 0 {
            return Ok(());
        }
        eprintln!(
            "alerts: {} logs into the last 5 minutes",
            thousands(total as f64)
        );
        let batch = self.options.bulk_size.max(1) as u64;
        let requests = total.div_ceil(batch);
        let start = now_micros() - FIVE_MINUTES;
        let mut corpus = Corpus::new(7 + total);
        let address = self.address.clone();
        let bodies: Vec<Vec<u8>> = (0..requests)
            .map(|k| {
                let mut body = Vec::new();
                for i in 0..batch.min(total - k * batch) {
                    let ordinal = k * batch + i;
                    let stamp =
                        start + (FIVE_MINUTES as i128 * ordinal as i128 / total as i128) as i64;
                    corpus.log_json(Some(format_rfc3339(stamp)), &mut body);
                    body.push(b'\n');
                }
                HttpConnection::post_bytes(&address, "/log/bulk", "application/x-ndjson", &body)
            })
            .collect();
        let connections = self.options.bulk_connections.max(1);
        self.send_bulk(
            connections,
            None,
            |k| bodies.get(k as usize).cloned(),
            bulk_answer,
        )
        .await?;
        self.drain().await?;
        Ok(())
    }

    /// Server CPU with no rules, then with 100 rules.
    async fn rule_cpu(&mut self, reading_p50: Option<f64>) -> anyhow::Result<()> {
        let seconds = self.options.alert_seconds;
        if seconds == 0 || self.options.pid.is_none() {
            return Ok(());
        }
        let mut connection = self.connect().await?;
        let overview: Value = serde_json::from_slice(&connection.get("/api/alerts").await?.body)?;
        let interval = overview["evaluation_interval"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        eprintln!(
            "alerts: server CPU for {seconds} s idle, then {seconds} s with {RULES} rules every {interval}"
        );
        let idle = self.cpu_over(Duration::from_secs(seconds)).await;

        // Idle connections are closed by the server's keep-alive timeout.
        let mut connection = self.connect().await?;
        let mut ids = Vec::new();
        for n in 0..RULES {
            // Rules shaped like docs/alerts.md's example (levels and services,
            // counted from the rollups), on every service and level.
            let service = SERVICES[n % SERVICES.len()];
            let (query, group_by) = match n % 4 {
                0 => (format!("service:{service} level:>=error"), vec![]),
                1 => (format!("service:{service} level:>=warn"), vec!["level"]),
                2 => (
                    format!("service:{}* level:fatal", &service[..3]),
                    vec!["service"],
                ),
                _ => (format!("level:>=error -service:{service}"), vec!["service"]),
            };
            let id = create_alert_rule(
                &mut connection,
                &format!("bench rule {n}"),
                &query,
                &group_by,
            )
            .await?;
            ids.push(id);
        }
        let evaluations = |body: &[u8]| -> f64 {
            String::from_utf8_lossy(body)
                .lines()
                .find_map(|l| {
                    l.strip_prefix("oglogstream_alert_evaluations_total{outcome=\"ok\"} ")?
                        .parse()
                        .ok()
                })
                .unwrap_or(0.0)
        };
        let before = evaluations(&connection.get("/metrics").await?.body);
        let busy = self.cpu_over(Duration::from_secs(seconds)).await;
        let mut connection = self.connect().await?;
        let after = evaluations(&connection.get("/metrics").await?.body);
        for id in &ids {
            let request = format!(
                "DELETE /api/alerts/rules/{id} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
                connection.host()
            );
            connection.send(request.as_bytes()).await?;
        }
        let (Some(idle), Some(busy)) = (idle, busy) else {
            return Ok(());
        };
        let cost = (busy - idle).max(0.0);
        if let Some(ms) = reading_p50 {
            let interval_secs = overview_interval_secs(&interval);
            self.notes.push(format!(
                "alerts: rules that read their window's logs (message text, attributes) cost about {ms:.0} ms per evaluation here; {RULES} of them every {interval} would take about {:.0}% of a core",
                RULES as f64 * ms / 1000.0 / interval_secs * 100.0
            ));
        }
        self.rows.push(Row {
            what: format!("{RULES} alert rules like docs/alerts.md's example (levels and services, 5-min windows) every {interval}"),
            result: format!(
                "**{cost:.1}% of one core** ({busy:.1}% with the rules, {idle:.1}% idle; {} evaluations in {seconds} s)",
                thousands(after - before)
            ),
            latency: String::new(),
            target: "< 5% of one core".into(),
            met: Some(cost < 5.0),
        });
        Ok(())
    }

    /// The server's CPU (100% = one core) over `period`, with no load from us.
    async fn cpu_over(&self, period: Duration) -> Option<f64> {
        let sample = self.machine.sample();
        tokio::time::sleep(period).await;
        self.machine.usage_since(&sample).map(|usage| usage.server)
    }
}

/// `10s`, `1m`, `1h` (as `/api/alerts` writes the interval) in seconds.
fn overview_interval_secs(text: &str) -> f64 {
    crate::domain::settings::parse_duration(text).map_or(10.0, |d| d.as_secs_f64().max(1.0))
}
