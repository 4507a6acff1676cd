//! LogQL tests, one file per concern: parsing (`parse.rs`), refusals and
//! their columns (`errors.rs`), never panicking (`fuzz.rs`), pushdown
//! (`pushdown.rs`), log queries on rows (`streams.rs`) and metric queries
//! (`metric.rs`). Every query a test parses goes through [`listed`], which
//! insists it is in [`EXAMPLE_QUERIES`](super::examples::EXAMPLE_QUERIES).

mod errors;
mod fuzz;
mod metric;
mod parse;
mod pushdown;
mod streams;

use super::examples::{BEYOND_GRAFANA_GRAMMAR, EXAMPLE_QUERIES};
use super::{LogExpr, MetricExpr, Query, parse};
use crate::domain::{Level, LogRecord};

/// `query`, after checking that the shared list holds it.
pub fn listed(query: &str) -> &str {
    assert!(
        EXAMPLE_QUERIES.contains(&query) || BEYOND_GRAFANA_GRAMMAR.contains(&query),
        "add {query:?} to logql::examples::EXAMPLE_QUERIES"
    );
    query
}

pub fn log_query(query: &str) -> LogExpr {
    match parse(listed(query)).unwrap_or_else(|e| panic!("{query}: {e}")) {
        Query::Log(log) => log,
        Query::Metric(_) => panic!("{query} is a metric query"),
    }
}

pub fn metric_query(query: &str) -> MetricExpr {
    match parse(listed(query)).unwrap_or_else(|e| panic!("{query}: {e}")) {
        Query::Metric(metric) => metric,
        Query::Log(_) => panic!("{query} is a log query"),
    }
}

/// 2025-01-01T00:00:00Z in microseconds.
pub const T0: i64 = 1_735_689_600_000_000;

pub fn record(
    id: &str,
    seconds: i64,
    level: Level,
    service: &str,
    message: &str,
    attributes: &[(&str, &str)],
) -> LogRecord {
    LogRecord {
        id: id.into(),
        timestamp: T0 + seconds * 1_000_000,
        level,
        service: service.into(),
        message: message.into(),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// The attribute keys of `records`, as a store would resolve them.
pub fn keys_of(records: &[LogRecord]) -> impl Fn(&str) -> Vec<String> + use<> {
    let mut keys: Vec<String> = records
        .iter()
        .flat_map(|r| r.attributes.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    move |label: &str| {
        keys.iter()
            .filter(|key| super::sanitize_label_name(key) == label)
            .cloned()
            .collect()
    }
}
