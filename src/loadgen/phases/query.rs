//! The `query` phase: pre-fills the store (bulk, timestamps spread over a
//! week, 60% of logs in traces of a few logs) to each size asked for, then
//! measures `/api/logs`, `/api/stats`, `/api/histogram` and more, one
//! request at a time; trace lookups by id; a page deep by cursor; and a
//! whole export.

use crate::domain::time::{format_rfc3339, now_micros};
use crate::loadgen::bench::{Bench, Row, bulk_answer, ms, thousands};
use crate::loadgen::client::HttpConnection;
use crate::loadgen::corpus::{ABSENT_TERM, COMMON_TERM, Corpus, RARE_TERM, Rng, SERVICES};
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// One pre-fill request in this many gives the trace lookups a trace.
const TRACE_SAMPLE_EVERY: u64 = 8;

impl Bench {
    /// Bulk-loads logs with timestamps spread evenly over the week before
    /// the run, in time order (as logs arrive), until the store holds `size`.
    pub(super) async fn prefill(
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
        // which costs far less than generating every log. The trace ids'
        // positions are remembered too: each request writes its own first
        // eight hex digits into them, so its traces are its own (a template
        // reused would otherwise make one trace of logs all over the week).
        let placeholder = format_rfc3339(0);
        let mut corpus = Corpus::new(4 + size);
        let find = |body: &[u8], from: usize, needle: &[u8]| {
            body[from..]
                .windows(needle.len())
                .position(|w| w == needle)
                .map(|at| from + at + needle.len())
        };
        let timestamp_needle = format!("\"timestamp\":\"{placeholder}\"");
        let templates: Vec<Template> = (0..32)
            .map(|_| {
                let mut template = Template::default();
                for i in 0..batch as usize {
                    let start = template.body.len();
                    corpus.log_json(Some(placeholder.clone()), &mut template.body);
                    if let Some(at) = find(&template.body, start, timestamp_needle.as_bytes()) {
                        template.timestamps.push(at - placeholder.len() - 1);
                    }
                    if let Some(at) = find(&template.body, start, b"\"trace_id\":\"") {
                        template.traces.push((i, at));
                    }
                    template.body.push(b'\n');
                }
                template
            })
            .collect();
        let sampled = RefCell::new(Vec::new());
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
                    let template = &templates[k as usize % templates.len()];
                    let mut body = template.body.clone();
                    // Position of a log among all pre-filled logs, and its time.
                    let ordinal = |i: usize| have + k * batch + i as u64;
                    let timestamp = |i: usize| {
                        span_start + (span as i128 * ordinal(i) as i128 / largest as i128) as i64
                    };
                    for (i, offset) in template.timestamps.iter().enumerate() {
                        let text = format_rfc3339(timestamp(i));
                        body[*offset..*offset + text.len()].copy_from_slice(text.as_bytes());
                    }
                    let request = ordinal(0) / batch;
                    let prefix = format!("{:08x}", Rng::new(request).next_u64() as u32);
                    for (_, offset) in &template.traces {
                        body[*offset..*offset + prefix.len()].copy_from_slice(prefix.as_bytes());
                    }
                    if k % TRACE_SAMPLE_EVERY == 0
                        && let Some(&(i, offset)) = template.traces.get(k as usize % 7)
                    {
                        let id = String::from_utf8_lossy(&body[offset..offset + 32]).into_owned();
                        sampled.borrow_mut().push((id, timestamp(i)));
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
        self.traces.extend(sampled.into_inner());
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

    pub(crate) async fn queries(&mut self) -> anyhow::Result<()> {
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
        // Traces the pre-fills stored (a placeholder id when there are none:
        // a lookup that finds nothing).
        let traces = if self.traces.is_empty() {
            vec![("0".repeat(32), span_start)]
        } else {
            self.traces.clone()
        };
        let traces = &traces;
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
                // Issue 25's "chart any field": the target is the embedded
                // store's (ClickHouse's is 500 ms).
                "`/api/histogram?by=region` (an attribute), last 24 h",
                Some(300.0),
                Box::new(|_| "/api/histogram?by=region".to_string()),
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
                "`/api/logs?query=trace_id:…`, a trace's logs (no time range)",
                Some(20.0),
                Box::new(move |i| {
                    let (id, _) = &traces[(i * 7919) % traces.len()];
                    with_query("/api/logs?", &format!("trace_id:{id}"))
                }),
            ),
            (
                "`/api/logs?query=trace_id:…&from=…&to=…`, a trace's logs within one hour",
                Some(20.0),
                Box::new(move |i| {
                    let (id, at) = &traces[(i * 7919) % traces.len()];
                    with_query(
                        &format!(
                            "/api/logs?from={}&to={}&",
                            (at - HOUR / 2) / 1000,
                            (at + HOUR / 2) / 1000
                        ),
                        &format!("trace_id:{id}"),
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
        let chosen = self.options.queries.clone();
        for (name, target, path) in kinds {
            if chosen.as_deref().is_some_and(|text| !name.contains(text)) {
                continue;
            }
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
        if chosen.is_none() {
            self.deep_cursor_page(&mut connection, &label, size).await?;
            self.export(&label, size).await?;
        }
        Ok(())
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
}

const HOUR: i64 = 3_600_000_000;

/// A pre-fill body made once and sent many times, with where each log's
/// timestamp and trace id are written in.
#[derive(Default)]
struct Template {
    body: Vec<u8>,
    /// Where each log's timestamp starts, by log.
    timestamps: Vec<usize>,
    /// `(log, where its trace id starts)` for the logs in a trace.
    traces: Vec<(usize, usize)>,
}

/// `prefix` (ending in `?` or `&`) with `query=` and the URL-encoded text.
fn with_query(prefix: &str, query: &str) -> String {
    format!(
        "{prefix}{}",
        serde_urlencoded::to_string([("query", query)]).unwrap_or_default()
    )
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
