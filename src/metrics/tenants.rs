//! Per-tenant series, while tenancy is on: logs accepted, and refusals by
//! the tenant limit that refused them. Tenants are named by what they send,
//! so the first [`NAMED_TENANTS`] seen by this process get series of their
//! own and every later one is summed under `tenant="other"`: a deployment
//! of thousands of tenants (or a client inventing ids) cannot grow the
//! scrape past a bound.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// How many tenants get series of their own.
pub const NAMED_TENANTS: usize = 100;

/// The series of every tenant past the first [`NAMED_TENANTS`] (and of a
/// tenant named `other`, which would otherwise be two series of one name).
pub const OTHER: &str = "other";

/// Which of a tenant's limits refused something: the `limit` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantLimit {
    /// `ingest_rate`.
    Rate,
    /// `ingest_bytes_per_day`.
    Quota,
    /// `max_live_connections`.
    LiveConnections,
    /// `max_query_range`.
    QueryRange,
}

impl TenantLimit {
    const ALL: [TenantLimit; 4] = [
        TenantLimit::Rate,
        TenantLimit::Quota,
        TenantLimit::LiveConnections,
        TenantLimit::QueryRange,
    ];

    fn label(self) -> &'static str {
        match self {
            TenantLimit::Rate => "rate",
            TenantLimit::Quota => "quota",
            TenantLimit::LiveConnections => "live_connections",
            TenantLimit::QueryRange => "query_range",
        }
    }

    /// The limit of a `tenants.<setting>` name, as refusals name it.
    fn of_setting(setting: &str) -> Option<TenantLimit> {
        match setting {
            "ingest_rate" => Some(TenantLimit::Rate),
            "ingest_bytes_per_day" => Some(TenantLimit::Quota),
            "max_live_connections" => Some(TenantLimit::LiveConnections),
            "max_query_range" => Some(TenantLimit::QueryRange),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    limited: [AtomicU64; 4],
}

#[derive(Debug, Default)]
pub struct TenantMetrics {
    enabled: AtomicBool,
    named: RwLock<HashMap<Box<str>, Arc<Counters>>>,
    other: Arc<Counters>,
}

impl TenantMetrics {
    /// Tenancy is on: count and render the series (off, nothing is).
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The tenant's counters: its own while there is room, else `other`'s.
    fn counters(&self, tenant: &str) -> Option<Arc<Counters>> {
        if !self.is_enabled() {
            return None;
        }
        if tenant == OTHER {
            return Some(Arc::clone(&self.other));
        }
        if let Ok(named) = self.named.read()
            && let Some(counters) = named.get(tenant)
        {
            return Some(Arc::clone(counters));
        }
        let mut named = self.named.write().ok()?;
        if let Some(counters) = named.get(tenant) {
            return Some(Arc::clone(counters));
        }
        if named.len() >= NAMED_TENANTS {
            return Some(Arc::clone(&self.other));
        }
        let counters = Arc::new(Counters::default());
        named.insert(tenant.into(), Arc::clone(&counters));
        Some(counters)
    }

    /// Logs of `tenant` the bus took.
    pub fn accept(&self, tenant: &str, logs: u64) {
        if let Some(counters) = self.counters(tenant) {
            counters.accepted.fetch_add(logs, Ordering::Relaxed);
        }
    }

    /// A request (or an OTLP resource's records, a live tail, a read)
    /// refused for one of `tenant`'s limits.
    pub fn limited(&self, tenant: &str, limit: TenantLimit) {
        if let Some(counters) = self.counters(tenant) {
            counters.limited[limit as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// [`TenantMetrics::limited`] for a refusal that names its limit by
    /// setting (`ingest_rate`, `max_live_connections`, ...).
    pub fn limited_by(&self, tenant: &str, setting: &str) {
        if let Some(limit) = TenantLimit::of_setting(setting) {
            self.limited(tenant, limit);
        }
    }

    pub(super) fn render(&self, out: &mut String) {
        if !self.is_enabled() {
            return;
        }
        let mut series: Vec<(String, Arc<Counters>)> = match self.named.read() {
            Ok(named) => named
                .iter()
                .map(|(tenant, counters)| (tenant.to_string(), Arc::clone(counters)))
                .collect(),
            Err(_) => Vec::new(),
        };
        series.sort_by(|a, b| a.0.cmp(&b.0));
        series.push((OTHER.to_string(), Arc::clone(&self.other)));
        // Tenant ids are letters, digits, '_', '-' and '.': no escaping.
        let _ = writeln!(
            out,
            "# HELP oglogstream_tenant_logs_accepted_total Logs accepted (taken by the bus), by tenant: the first {NAMED_TENANTS} tenants named, the rest as other.\n# TYPE oglogstream_tenant_logs_accepted_total counter"
        );
        for (tenant, counters) in &series {
            let _ = writeln!(
                out,
                "oglogstream_tenant_logs_accepted_total{{tenant=\"{tenant}\"}} {}",
                counters.accepted.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP oglogstream_tenant_limited_total Refusals (requests, OTLP resources, live tails, reads) for a tenant's limit: rate (ingest_rate), quota (ingest_bytes_per_day), live_connections, query_range; the first {NAMED_TENANTS} tenants named, the rest as other.\n# TYPE oglogstream_tenant_limited_total counter"
        );
        for (tenant, counters) in &series {
            for limit in TenantLimit::ALL {
                let _ = writeln!(
                    out,
                    "oglogstream_tenant_limited_total{{tenant=\"{tenant}\",limit=\"{}\"}} {}",
                    limit.label(),
                    counters.limited[limit as usize].load(Ordering::Relaxed)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_counts_and_renders_nothing() {
        let metrics = TenantMetrics::default();
        metrics.accept("team-a", 3);
        let mut out = String::new();
        metrics.render(&mut out);
        assert_eq!(out, "");
    }

    #[test]
    fn the_first_hundred_are_named_and_the_rest_are_other() {
        let metrics = TenantMetrics::default();
        metrics.enable();
        for n in 0..105 {
            metrics.accept(&format!("t{n:03}"), 1);
        }
        metrics.accept("t000", 1);
        metrics.accept(OTHER, 10);
        metrics.limited("t104", TenantLimit::Quota);
        metrics.limited("t001", TenantLimit::Rate);
        let mut out = String::new();
        metrics.render(&mut out);
        let accepted: Vec<&str> = out
            .lines()
            .filter(|line| line.starts_with("oglogstream_tenant_logs_accepted_total{"))
            .collect();
        assert_eq!(accepted.len(), 101, "{out}");
        assert!(out.contains("oglogstream_tenant_logs_accepted_total{tenant=\"t000\"} 2"));
        assert!(out.contains("oglogstream_tenant_logs_accepted_total{tenant=\"t099\"} 1"));
        assert!(!out.contains("tenant=\"t100\""), "{out}");
        // Five past the hundred, and the tenant named "other".
        assert!(out.contains("oglogstream_tenant_logs_accepted_total{tenant=\"other\"} 15"));
        assert!(
            out.contains("oglogstream_tenant_limited_total{tenant=\"other\",limit=\"quota\"} 1")
        );
        assert!(out.contains("oglogstream_tenant_limited_total{tenant=\"t001\",limit=\"rate\"} 1"));
    }
}
