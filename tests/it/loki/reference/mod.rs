//! A reference evaluator of LogQL, written for the differential test from
//! Loki's documented semantics: naive (every record, every step, in
//! memory), sharing no code with `oglogstream::domain::logql`. `parse.rs`
//! reads the queries, `pipeline.rs` runs stages on a line, `metric.rs`
//! computes samples.

mod ast;
mod metric;
mod parse;
mod pipeline;

pub use metric::{MetricAnswer, metric_range};
pub use parse::parse;
pub use pipeline::Line;

use ast::{LogQuery, Query};
use std::collections::BTreeMap;

pub type Labels = Vec<(String, String)>;

/// A stored log as the test sent it.
#[derive(Clone, Debug)]
pub struct Record {
    pub ts_ns: i64,
    pub level: &'static str,
    pub service: String,
    pub message: String,
    pub attributes: BTreeMap<String, String>,
}

/// What the reference was told about the label model.
pub struct Model {
    /// Attribute keys that are stream labels.
    pub stream_keys: Vec<String>,
}

/// An entry of a log query's answer with categorized labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub ts_ns: i64,
    pub line: String,
    pub metadata: Labels,
    pub parsed: Labels,
}

/// Streams keyed by their stream labels (categorized), or by every label.
pub type Streams = BTreeMap<Labels, Vec<Entry>>;

fn selector_matches(query: &LogQuery, line: &Line) -> bool {
    query
        .matchers
        .iter()
        .all(|m| m.matches(line.get(&m.name).unwrap_or("")))
}

/// A log query over `[start, end)`: the first `limit` lines in the
/// direction, grouped into streams.
pub fn log_query(
    records: &[Record],
    model: &Model,
    query: &Query,
    range: (i64, i64),
    limit: usize,
    backward: bool,
    categorize: bool,
) -> Streams {
    let Query::Log(log) = query else {
        panic!("not a log query")
    };
    let mut ordered: Vec<&Record> = records
        .iter()
        .filter(|r| r.ts_ns >= range.0 && r.ts_ns < range.1)
        .collect();
    ordered.sort_by_key(|r| r.ts_ns);
    if backward {
        ordered.reverse();
    }
    let mut streams: Streams = BTreeMap::new();
    let mut taken = 0;
    for record in ordered {
        if taken == limit {
            break;
        }
        let mut line = Line::of(record, model);
        if !selector_matches(log, &line) || !pipeline::run(&log.stages, &mut line) {
            continue;
        }
        taken += 1;
        let (key, entry) = if categorize {
            (
                line.stream.clone(),
                Entry {
                    ts_ns: record.ts_ns,
                    line: line.text.clone(),
                    metadata: sorted(line.metadata.clone()),
                    parsed: line.parsed_with_errors(),
                },
            )
        } else {
            (
                line.merged(),
                Entry {
                    ts_ns: record.ts_ns,
                    line: line.text.clone(),
                    metadata: Vec::new(),
                    parsed: Vec::new(),
                },
            )
        };
        streams.entry(key).or_default().push(entry);
    }
    streams
}

pub fn sorted(mut labels: Labels) -> Labels {
    labels.sort();
    labels
}
