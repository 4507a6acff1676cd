//! The `loki` phase: what Grafana and Logs Drilldown ask through the Loki
//! query API (docs/grafana.md), one request at a time on the pre-filled
//! store (pre-filling it to the largest size first when the `query` phase
//! did not): Explore's log query and its logs volume, Drilldown's service
//! list, errors per service over the week, `detected_fields` and
//! `patterns` over the last hour. Targets differ by store (`/health` says
//! which).

use crate::domain::time::now_micros;
use crate::loadgen::bench::{Bench, Row, ms};
use crate::loadgen::client::HttpConnection;

const HOUR: i64 = 3_600_000_000;
const WEEK: i64 = 7 * 24 * HOUR;

/// A request of the phase: its name, its path (times in nanoseconds) and
/// the p95 targets on the embedded store and on ClickHouse.
struct Ask {
    name: &'static str,
    path: String,
    targets: (f64, f64),
}

fn loki_path(endpoint: &str, params: &[(&str, String)]) -> String {
    format!(
        "/loki/api/v1/{endpoint}?{}",
        serde_urlencoded::to_string(params).unwrap_or_default()
    )
}

fn nanos(micros: i64) -> String {
    (micros as i128 * 1000).to_string()
}

impl Bench {
    pub(crate) async fn loki(&mut self) -> anyhow::Result<()> {
        let mut sizes = self.options.sizes.clone();
        sizes.sort_unstable();
        let Some(&largest) = sizes.last() else {
            return Ok(());
        };
        // As the query phase lays the pre-filled logs out: over the week
        // before now, the last hour left empty.
        let span_start = now_micros() - WEEK;
        if self.stored_total().await? < largest {
            self.prefill(largest, span_start, WEEK - HOUR, largest)
                .await?;
        }
        let mut probe = self.connect().await?;
        let health = probe.get("/health").await?;
        let clickhouse = String::from_utf8_lossy(&health.body).contains("\"clickhouse\"");
        let stored = self.stored_total().await?;
        let label = format!("{} logs", crate::loadgen::bench::thousands(stored as f64));
        eprintln!("loki: Grafana's requests on {label}");
        // Grafana aligns ranges to the step: whole hours here.
        let span_end = (span_start + WEEK - HOUR).div_euclid(HOUR) * HOUR;
        let day = (nanos(span_end - 24 * HOUR), nanos(span_end));
        let hour = (nanos(span_end - HOUR), nanos(span_end));
        let week = (nanos(span_end - WEEK + HOUR), nanos(span_end));
        let explore = r#"{service_name="checkout"} |= "timeout""#;
        let asks = vec![
            Ask {
                name: "Explore: `{service_name=\"checkout\"} |= \"timeout\"`, 1000 lines, last 24 h",
                path: loki_path(
                    "query_range",
                    &[
                        ("query", explore.into()),
                        ("limit", "1000".into()),
                        ("direction", "backward".into()),
                        ("start", day.0.clone()),
                        ("end", day.1.clone()),
                    ],
                ),
                targets: (50.0, 100.0),
            },
            Ask {
                name: "logs volume of `{service_name=\"checkout\"}`, 24 h at step=1m",
                path: loki_path(
                    "query_range",
                    &[
                        (
                            "query",
                            r#"sum by (level, detected_level) (count_over_time({service_name="checkout"} | drop __error__[1m]))"#.into(),
                        ),
                        ("step", "60000ms".into()),
                        ("start", day.0.clone()),
                        ("end", day.1.clone()),
                    ],
                ),
                targets: (100.0, 200.0),
            },
            Ask {
                name: "logs volume of Explore's query (`|= \"timeout\"`), 24 h at step=1m",
                path: loki_path(
                    "query_range",
                    &[
                        (
                            "query",
                            r#"sum by (level, detected_level) (count_over_time({service_name="checkout"} |= "timeout" | drop __error__[1m]))"#.into(),
                        ),
                        ("step", "60000ms".into()),
                        ("start", day.0.clone()),
                        ("end", day.1.clone()),
                    ],
                ),
                targets: (100.0, 200.0),
            },
            Ask {
                name: "Drilldown service list (`index/volume`), 24 h",
                path: loki_path(
                    "index/volume",
                    &[
                        ("query", r#"{service_name=~".+"}"#.into()),
                        ("limit", "5000".into()),
                        ("start", day.0.clone()),
                        ("end", day.1.clone()),
                    ],
                ),
                targets: (100.0, 100.0),
            },
            Ask {
                name: "errors per service: `sum by (service_name) (rate(… | detected_level=\"error\" [5m]))`, 7 days at step=1h",
                path: loki_path(
                    "query_range",
                    &[
                        (
                            "query",
                            r#"sum by (service_name) (rate({service_name=~".+"} | detected_level="error" [5m]))"#.into(),
                        ),
                        ("step", "3600s".into()),
                        ("start", week.0.clone()),
                        ("end", week.1.clone()),
                    ],
                ),
                targets: (200.0, 200.0),
            },
            Ask {
                name: "Drilldown fields tab (`detected_fields`), last hour",
                path: loki_path(
                    "detected_fields",
                    &[
                        ("query", r#"{service_name="checkout"}"#.into()),
                        ("start", hour.0.clone()),
                        ("end", hour.1.clone()),
                    ],
                ),
                targets: (500.0, 500.0),
            },
            Ask {
                name: "Drilldown patterns tab (`patterns`), last hour",
                path: loki_path(
                    "patterns",
                    &[
                        ("query", r#"{service_name="checkout"}"#.into()),
                        ("step", "60s".into()),
                        ("start", hour.0.clone()),
                        ("end", hour.1.clone()),
                    ],
                ),
                targets: (500.0, 500.0),
            },
        ];
        let mut connection: HttpConnection = self.connect().await?;
        for ask in asks {
            let path = ask.path.clone();
            let mut timed = self.timed_gets(&mut connection, |_| path.clone()).await?;
            let (p50, p95, p99, _) = timed.latencies.summary();
            let target = if clickhouse {
                ask.targets.1
            } else {
                ask.targets.0
            };
            self.rows.push(Row {
                what: format!("{} on {label}", ask.name),
                result: format!("{} requests, {}", timed.sent, describe(&timed.first_body)),
                latency: format!("p50 {} · p95 {} · p99 {}", ms(p50), ms(p95), ms(p99)),
                target: format!("p95 < {target:.0} ms"),
                met: (stored >= 10_000_000).then_some(p95 < target),
            });
        }
        Ok(())
    }
}

/// What an answer held: lines, series, fields or patterns.
fn describe(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return "an answer that is not JSON".into();
    };
    if let Some(fields) = value["fields"].as_array() {
        return format!("{} fields", fields.len());
    }
    let data = &value["data"];
    if let Some(items) = data.as_array() {
        return format!("{} patterns by level", items.len());
    }
    let result = data["result"].as_array().map_or(0, Vec::len);
    match data["resultType"].as_str() {
        Some("streams") => {
            let lines: usize = data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s["values"].as_array().map_or(0, Vec::len))
                .sum();
            format!("{lines} lines in {result} streams")
        }
        Some(kind) => format!("{result} series ({kind})"),
        None => "no result".into(),
    }
}
