//! Metrics shared by the roles of one process, rendered in the Prometheus
//! text format at `/metrics`. Hand-rolled on atomics: the hot path does an
//! increment or two, and the label sets are fixed or bounded by the route
//! table, so cardinality cannot grow with traffic. Alerting's own metrics
//! are in `alerts.rs`. This module knows no component: the parts that own a
//! value hand it over as a [`Gauges`] at scrape time.

mod alerts;
mod tenants;
mod text;

pub use alerts::{AlertMetrics, EvaluationOutcome, NotificationOutcome};
pub use tenants::{NAMED_TENANTS, TenantLimit, TenantMetrics};
pub use text::Histogram;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use text::{SECONDS_BUCKETS, escape_label};

/// Why a request's logs were not accepted: the `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    Invalid,
    TooLarge,
    MediaType,
    Overloaded,
    RateLimited,
    Unauthorized,
}

impl Rejection {
    const ALL: [Rejection; 6] = [
        Rejection::Invalid,
        Rejection::TooLarge,
        Rejection::MediaType,
        Rejection::Overloaded,
        Rejection::RateLimited,
        Rejection::Unauthorized,
    ];

    fn label(self) -> &'static str {
        match self {
            Rejection::Invalid => "invalid",
            Rejection::TooLarge => "too_large",
            Rejection::MediaType => "unsupported_media_type",
            Rejection::Overloaded => "overloaded",
            Rejection::RateLimited => "rate_limited",
            Rejection::Unauthorized => "unauthorized",
        }
    }
}

/// How logs came in: the `protocol` label of the ingest counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Our own `/log` and `/log/bulk`.
    Json,
    Otlp,
    Loki,
    Elasticsearch,
    Syslog,
}

impl Protocol {
    pub const ALL: [Protocol; 5] = [
        Protocol::Json,
        Protocol::Otlp,
        Protocol::Loki,
        Protocol::Elasticsearch,
        Protocol::Syslog,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Protocol::Json => "json",
            Protocol::Otlp => "otlp",
            Protocol::Loki => "loki",
            Protocol::Elasticsearch => "elasticsearch",
            Protocol::Syslog => "syslog",
        }
    }

    /// The HTTP ingest protocol a path belongs to, if any (syslog has no path).
    pub fn of_path(path: &str) -> Option<Protocol> {
        if path == "/log" || path.starts_with("/log/") {
            Some(Protocol::Json)
        } else if path == "/v1/logs" {
            Some(Protocol::Otlp)
        } else if path == "/loki/api/v1/push" {
            Some(Protocol::Loki)
        } else if is_bulk_path(path) {
            Some(Protocol::Elasticsearch)
        } else {
            None
        }
    }
}

/// `/_bulk` and `/{index}/_bulk`.
fn is_bulk_path(path: &str) -> bool {
    match path.strip_suffix("/_bulk") {
        Some("") => true,
        Some(index) => index.len() > 1 && !index[1..].contains('/'),
        None => false,
    }
}

const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 10.0, 100.0, 500.0, 1000.0, 5000.0, 10_000.0, 50_000.0, 100_000.0,
];

/// Requests by route pattern (never the raw path), method and status.
type RequestKey = (String, String, u16);

#[derive(Debug)]
pub struct Metrics {
    accepted: [AtomicU64; 5],
    rejected: [[AtomicU64; 6]; 5],
    pub syslog_connections: AtomicU64,
    pub syslog_connections_refused: AtomicU64,
    pub syslog_tls_handshake_failures: AtomicU64,
    pub logs_stored: AtomicU64,
    pub batches_stored: AtomicU64,
    pub store_write_failures: AtomicU64,
    pub dead_letter_logs: AtomicU64,
    /// Acknowledged logs a stop wrote to the spill file, not the store.
    pub spilled_logs: AtomicU64,
    /// Logs deleted by retention for their age (`storage.retention_days`).
    pub retention_deleted_by_age: AtomicU64,
    /// Logs deleted by retention to keep the store under `storage.max_bytes`.
    pub retention_deleted_by_size: AtomicU64,
    pub retention_deleted_by_tenant: AtomicU64,
    /// Logs deleted by a retention rule (`[[retention.rules]]`, a tenant's
    /// `retention_rules`).
    pub retention_deleted_by_rule: AtomicU64,
    /// Logs of redelivered batches found already stored and not written again.
    pub redelivered_logs_skipped: AtomicU64,
    /// Publishes retried because the broker could not take them yet.
    pub bus_publish_retries: AtomicU64,
    /// Retried publishes the broker recognised (by message id) and stored once.
    pub bus_duplicate_publishes: AtomicU64,
    /// Acknowledged messages found left in the stream and purged.
    pub bus_stale_messages_purged: AtomicU64,
    pub live_clients: AtomicU64,
    pub live_clients_cut_off: AtomicU64,
    /// Store reads cancelled for running past `query.timeout`.
    pub queries_timed_out: AtomicU64,
    /// Store reads cancelled because their client went away.
    pub queries_abandoned: AtomicU64,
    /// Audit events published to the bus.
    pub audit_events: AtomicU64,
    /// Audit events lost: refusals dropped from a full queue, or a batch
    /// the bus would not take.
    pub audit_events_dropped: AtomicU64,
    pub batch_sizes: Histogram,
    pub store_write_seconds: Histogram,
    /// Alert evaluations and notifications.
    pub alerts: AlertMetrics,
    /// Per-tenant series (tenancy on: `tenants.enable()`).
    pub tenants: TenantMetrics,
    requests: RwLock<BTreeMap<RequestKey, Arc<Histogram>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            accepted: Default::default(),
            rejected: Default::default(),
            syslog_connections: AtomicU64::new(0),
            syslog_connections_refused: AtomicU64::new(0),
            syslog_tls_handshake_failures: AtomicU64::new(0),
            logs_stored: AtomicU64::new(0),
            batches_stored: AtomicU64::new(0),
            store_write_failures: AtomicU64::new(0),
            dead_letter_logs: AtomicU64::new(0),
            spilled_logs: AtomicU64::new(0),
            retention_deleted_by_age: AtomicU64::new(0),
            retention_deleted_by_size: AtomicU64::new(0),
            retention_deleted_by_tenant: AtomicU64::new(0),
            retention_deleted_by_rule: AtomicU64::new(0),
            redelivered_logs_skipped: AtomicU64::new(0),
            bus_publish_retries: AtomicU64::new(0),
            bus_duplicate_publishes: AtomicU64::new(0),
            bus_stale_messages_purged: AtomicU64::new(0),
            live_clients: AtomicU64::new(0),
            live_clients_cut_off: AtomicU64::new(0),
            queries_timed_out: AtomicU64::new(0),
            queries_abandoned: AtomicU64::new(0),
            audit_events: AtomicU64::new(0),
            audit_events_dropped: AtomicU64::new(0),
            batch_sizes: Histogram::new(BATCH_SIZE_BUCKETS),
            store_write_seconds: Histogram::new(SECONDS_BUCKETS),
            alerts: AlertMetrics::default(),
            tenants: TenantMetrics::default(),
            requests: RwLock::new(BTreeMap::new()),
        }
    }
}

/// Bytes held by a durable bus's stream, and its limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamFill {
    pub bytes: u64,
    pub max_bytes: u64,
}

/// The free space of the disk under the embedded store, as it watches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskStatus {
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub min_free_bytes: u64,
    /// Writes are refused: too little space, or the last write failed for
    /// want of it.
    pub full: bool,
}

/// Values read at scrape time from the parts that own them.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Each part this process needs (`bus`, `storage`) and whether it passed
    /// the readiness check `/health` runs.
    pub dependencies_up: Vec<(&'static str, bool)>,
    pub queue_depth: Option<u64>,
    /// The depth at which ingest refuses publishes, where the bus counts in logs.
    pub queue_capacity: Option<u64>,
    pub dead_letters_total: u64,
    pub store_size_bytes: Option<u64>,
    /// What the stored logs take inside the store (what `storage.max_bytes`
    /// bounds), where the store can tell.
    pub store_used_bytes: Option<u64>,
    /// The free space of the embedded store's disk, where it watches one.
    pub disk: Option<DiskStatus>,
    /// Stored logs the store's background indexes do not cover yet.
    pub store_index_backlog: Option<u64>,
    /// The durable bus's stream: bytes held and its `max_bytes`, where known.
    pub stream_fill: Option<StreamFill>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Logs the bus took (answered 2xx; for syslog, published).
    pub fn accept(&self, protocol: Protocol, logs: u64) {
        self.accepted[protocol as usize].fetch_add(logs, Ordering::Relaxed);
    }

    pub fn accepted(&self, protocol: Protocol) -> u64 {
        self.accepted[protocol as usize].load(Ordering::Relaxed)
    }

    pub fn reject(&self, protocol: Protocol, reason: Rejection, logs: u64) {
        self.rejected[protocol as usize][reason as usize].fetch_add(logs, Ordering::Relaxed);
    }

    pub fn rejected(&self, protocol: Protocol, reason: Rejection) -> u64 {
        self.rejected[protocol as usize][reason as usize].load(Ordering::Relaxed)
    }

    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let key = (route.to_string(), method.to_string(), status);
        let existing = self
            .requests
            .read()
            .ok()
            .and_then(|map| map.get(&key).cloned());
        let histogram = match existing {
            Some(histogram) => histogram,
            None => match self.requests.write() {
                Ok(mut map) => Arc::clone(
                    map.entry(key)
                        .or_insert_with(|| Arc::new(Histogram::new(SECONDS_BUCKETS))),
                ),
                Err(_) => return,
            },
        };
        histogram.observe_duration(elapsed);
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        let _ = writeln!(
            out,
            "# HELP oglogstream_logs_accepted_total Logs accepted (taken by the bus), by protocol.\n# TYPE oglogstream_logs_accepted_total counter"
        );
        for protocol in Protocol::ALL {
            let _ = writeln!(
                out,
                "oglogstream_logs_accepted_total{{protocol=\"{}\"}} {}",
                protocol.label(),
                self.accepted(protocol)
            );
        }
        let _ = writeln!(
            out,
            "# HELP oglogstream_logs_rejected_total Logs (or requests, for whole-request refusals) not accepted, by protocol and reason.\n# TYPE oglogstream_logs_rejected_total counter"
        );
        for protocol in Protocol::ALL {
            for reason in Rejection::ALL {
                let _ = writeln!(
                    out,
                    "oglogstream_logs_rejected_total{{protocol=\"{}\",reason=\"{}\"}} {}",
                    protocol.label(),
                    reason.label(),
                    self.rejected(protocol, reason)
                );
            }
        }
        self.tenants.render(&mut out);
        gauge(
            &mut out,
            "oglogstream_syslog_connections",
            "Open syslog TCP connections.",
            Metrics::get(&self.syslog_connections),
        );
        counter(
            &mut out,
            "oglogstream_syslog_connections_refused_total",
            "Syslog TCP connections closed at once: syslog.max_connections were open.",
            Metrics::get(&self.syslog_connections_refused),
        );
        counter(
            &mut out,
            "oglogstream_syslog_tls_handshake_failures_total",
            "Syslog-over-TLS connections closed because the TLS handshake failed (a client that does not trust our certificate, or has none syslog.tls_client_ca accepts).",
            Metrics::get(&self.syslog_tls_handshake_failures),
        );
        counter(
            &mut out,
            "oglogstream_logs_stored_total",
            "Logs written to the store.",
            Metrics::get(&self.logs_stored),
        );
        counter(
            &mut out,
            "oglogstream_batches_stored_total",
            "Batches written to the store.",
            Metrics::get(&self.batches_stored),
        );
        counter(
            &mut out,
            "oglogstream_store_write_failures_total",
            "Failed store writes (each retry counts).",
            Metrics::get(&self.store_write_failures),
        );
        counter(
            &mut out,
            "oglogstream_spilled_logs_total",
            "Acknowledged logs a stop could not store and wrote to the spill file, stored at the next start.",
            Metrics::get(&self.spilled_logs),
        );
        let _ = writeln!(
            out,
            "# HELP oglogstream_retention_deleted_logs_total Logs deleted by retention, by reason: age (storage.retention_days), size (storage.max_bytes), tenant (a tenant's own retention) or rule (a retention rule).\n# TYPE oglogstream_retention_deleted_logs_total counter"
        );
        for (reason, counter) in [
            ("age", &self.retention_deleted_by_age),
            ("size", &self.retention_deleted_by_size),
            ("tenant", &self.retention_deleted_by_tenant),
            ("rule", &self.retention_deleted_by_rule),
        ] {
            let _ = writeln!(
                out,
                "oglogstream_retention_deleted_logs_total{{reason=\"{reason}\"}} {}",
                Metrics::get(counter)
            );
        }
        if let Some(disk) = &gauges.disk {
            gauge(
                &mut out,
                "oglogstream_disk_free_bytes",
                "Free space on the embedded store's filesystem.",
                disk.free_bytes,
            );
            gauge(
                &mut out,
                "oglogstream_disk_min_free_bytes",
                "Free space below which ingest answers 503 (storage.min_free_bytes).",
                disk.min_free_bytes,
            );
            gauge(
                &mut out,
                "oglogstream_disk_full",
                "Whether ingest is refused because the embedded store's disk is full (1) or not (0).",
                u64::from(disk.full),
            );
        }
        counter(
            &mut out,
            "oglogstream_redelivered_logs_skipped_total",
            "Logs of batches the bus delivered again that were already stored, so not written twice.",
            Metrics::get(&self.redelivered_logs_skipped),
        );
        counter(
            &mut out,
            "oglogstream_bus_publish_retries_total",
            "Publishes retried because the broker could not take them yet (no stream leader, lost ack).",
            Metrics::get(&self.bus_publish_retries),
        );
        counter(
            &mut out,
            "oglogstream_bus_duplicate_publishes_total",
            "Retried publishes the broker had already stored, recognised by their message id and kept once.",
            Metrics::get(&self.bus_duplicate_publishes),
        );
        counter(
            &mut out,
            "oglogstream_bus_stale_messages_purged_total",
            "Acknowledged messages left in the stream (below the consumer's ack floor, a NATS 2.9 failover bug) and purged.",
            Metrics::get(&self.bus_stale_messages_purged),
        );
        counter(
            &mut out,
            "oglogstream_live_clients_cut_off_total",
            "Live-tail clients closed for being too slow.",
            Metrics::get(&self.live_clients_cut_off),
        );
        counter(
            &mut out,
            "oglogstream_queries_timed_out_total",
            "Store reads cancelled for running past query.timeout.",
            Metrics::get(&self.queries_timed_out),
        );
        counter(
            &mut out,
            "oglogstream_queries_abandoned_total",
            "Store reads cancelled because their client went away.",
            Metrics::get(&self.queries_abandoned),
        );
        counter(
            &mut out,
            "oglogstream_audit_events_total",
            "Audit events (sign-ins, refusals, changes) published to the bus.",
            Metrics::get(&self.audit_events),
        );
        counter(
            &mut out,
            "oglogstream_audit_events_dropped_total",
            "Audit events lost: refusals dropped from a full queue, or batches the bus would not take.",
            Metrics::get(&self.audit_events_dropped),
        );
        gauge(
            &mut out,
            "oglogstream_live_clients",
            "Open live-tail WebSocket connections.",
            Metrics::get(&self.live_clients),
        );
        gauge(
            &mut out,
            "oglogstream_dead_letter_logs",
            "Logs in the dead-letter file.",
            gauges.dead_letters_total,
        );
        if let Some(depth) = gauges.queue_depth {
            gauge(
                &mut out,
                "oglogstream_queue_depth",
                "Logs published to the bus and not yet stored (bus lag).",
                depth,
            );
        }
        if let Some(fill) = &gauges.stream_fill {
            gauge(
                &mut out,
                "oglogstream_bus_stream_bytes",
                "Bytes in the JetStream stream: batches waiting for a process instance.",
                fill.bytes,
            );
            gauge(
                &mut out,
                "oglogstream_bus_stream_max_bytes",
                "The stream's max_bytes: at this fill ingest answers 503.",
                fill.max_bytes,
            );
        }
        if let Some(capacity) = gauges.queue_capacity {
            gauge(
                &mut out,
                "oglogstream_queue_capacity",
                "Queue depth at which ingest answers 503.",
                capacity,
            );
        }
        let _ = writeln!(
            out,
            "# HELP oglogstream_dependency_up Whether a part this process needs passes the readiness check of /health (1) or not (0).\n# TYPE oglogstream_dependency_up gauge"
        );
        for (dependency, up) in &gauges.dependencies_up {
            let _ = writeln!(
                out,
                "oglogstream_dependency_up{{dependency=\"{dependency}\"}} {}",
                u8::from(*up)
            );
        }
        if let Some(used) = gauges.store_used_bytes {
            gauge(
                &mut out,
                "oglogstream_store_used_bytes",
                "Bytes the stored logs take inside the store (what storage.max_bytes bounds; the file keeps freed pages for reuse).",
                used,
            );
        }
        if let Some(size) = gauges.store_size_bytes {
            gauge(
                &mut out,
                "oglogstream_store_size_bytes",
                "Size of the store on disk.",
                size,
            );
        }
        if let Some(backlog) = gauges.store_index_backlog {
            gauge(
                &mut out,
                "oglogstream_store_index_backlog_logs",
                "Stored logs not yet in the store's background indexes (facet blocks); reads cover them from rows.",
                backlog,
            );
        }
        let _ = writeln!(
            out,
            "# HELP oglogstream_batch_size_logs Logs per store write.\n# TYPE oglogstream_batch_size_logs histogram"
        );
        self.batch_sizes
            .render(&mut out, "oglogstream_batch_size_logs", "");
        let _ = writeln!(
            out,
            "# HELP oglogstream_store_write_seconds Duration of store writes.\n# TYPE oglogstream_store_write_seconds histogram"
        );
        self.store_write_seconds
            .render(&mut out, "oglogstream_store_write_seconds", "");
        let _ = writeln!(
            out,
            "# HELP oglogstream_http_request_duration_seconds HTTP requests by route, method and status.\n# TYPE oglogstream_http_request_duration_seconds histogram"
        );
        if let Ok(requests) = self.requests.read() {
            for ((route, method, status), histogram) in requests.iter() {
                let labels = format!(
                    "route=\"{}\",method=\"{}\",status=\"{status}\"",
                    escape_label(route),
                    escape_label(method)
                );
                histogram.render(
                    &mut out,
                    "oglogstream_http_request_duration_seconds",
                    &labels,
                );
            }
        }
        self.alerts.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_paths_by_protocol() {
        for (path, protocol) in [
            ("/log", Some(Protocol::Json)),
            ("/log/bulk", Some(Protocol::Json)),
            ("/v1/logs", Some(Protocol::Otlp)),
            ("/loki/api/v1/push", Some(Protocol::Loki)),
            ("/_bulk", Some(Protocol::Elasticsearch)),
            ("/app-logs/_bulk", Some(Protocol::Elasticsearch)),
            ("/a/b/_bulk", None),
            ("//_bulk", None),
            ("/_bulky", None),
            ("/api/logs", None),
            ("/", None),
        ] {
            assert_eq!(Protocol::of_path(path), protocol, "{path}");
        }
    }

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let metrics = Metrics::default();
        metrics.reject(Protocol::Loki, Rejection::Invalid, 3);
        metrics.accept(Protocol::Otlp, 2);
        metrics.observe_request("/log", "POST", 202, Duration::from_micros(700));
        metrics.observe_request("/log", "POST", 202, Duration::from_millis(20));
        let text = metrics.render(&Gauges {
            dependencies_up: vec![("bus", true), ("storage", false)],
            queue_depth: Some(7),
            queue_capacity: Some(50),
            ..Gauges::default()
        });
        assert!(
            text.contains(
                "oglogstream_logs_rejected_total{protocol=\"loki\",reason=\"invalid\"} 3"
            )
        );
        assert!(text.contains("oglogstream_logs_accepted_total{protocol=\"otlp\"} 2"));
        assert!(text.contains("oglogstream_logs_accepted_total{protocol=\"json\"} 0"));
        assert!(text.contains("oglogstream_dependency_up{dependency=\"bus\"} 1"));
        assert!(text.contains("oglogstream_dependency_up{dependency=\"storage\"} 0"));
        assert!(text.contains("oglogstream_queue_capacity 50"));
        assert!(text.contains("oglogstream_queue_depth 7"));
        assert!(text.contains(
            "oglogstream_http_request_duration_seconds_bucket{route=\"/log\",method=\"POST\",status=\"202\",le=\"0.001\"} 1"
        ));
        assert!(text.contains(
            "oglogstream_http_request_duration_seconds_bucket{route=\"/log\",method=\"POST\",status=\"202\",le=\"+Inf\"} 2"
        ));
    }
}
