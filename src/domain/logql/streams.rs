//! A log query's answer: rows in, Loki streams out.
//!
//! The caller feeds the rows the store returned for the pushed-down `Expr`
//! in the query's direction (newest first for `backward`); each goes
//! through the residual stages, and the survivors are grouped into
//! streams until `limit` entries are held. With `categorize-labels`, a
//! stream is keyed by its stream labels and each entry carries its
//! structured metadata and parsed labels; without it, by all labels
//! merged, as Loki answers older clients. Streams come out ordered by
//! their labels, entries in the order they were fed.

use super::ast::Stage;
use super::labels::LabelModel;
use super::pipeline::{self, Line};
use crate::domain::LogRecord;
use std::collections::HashMap;

/// Loki's `max_entries_limit_per_query`.
pub const MAX_ENTRIES: usize = 5000;
/// Loki's `max_query_series`.
pub const MAX_SERIES: usize = 500;

pub type Labels = Vec<(String, String)>;

/// What a query cannot get, in Loki's words; the HTTP layer answers 400.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error(
        "max entries limit per query exceeded, limit > max_entries_limit ({requested} > {MAX_ENTRIES})"
    )]
    TooManyEntries { requested: usize },
    #[error(
        "maximum of series ({MAX_SERIES}) reached for a single query; narrow the selector or aggregate with sum by (…)"
    )]
    TooManySeries,
    #[error(
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    )]
    TooManyPoints,
    #[error("invalid time range or step: {0}")]
    InvalidGrid(String),
    #[error(
        "pipeline error: '{error}' for series: '{series}'. Use a label filter to intentionally skip this error. (e.g | __error__!=\"{error}\"). To skip all potential errors you can match empty errors.(e.g __error__=\"\") The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )"
    )]
    Pipeline { error: String, series: String },
    /// Vector matching that Prometheus' rules refuse (many-to-many).
    #[error("{0}")]
    Matching(String),
    /// Counts that do not fit the bucket grid the plan asked for.
    #[error("counts do not fit the plan's buckets: {0}")]
    Counts(String),
}

/// `{a="b", c="d"}`, as Loki names a series in messages.
pub fn labels_text(labels: &[(String, String)]) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}={}", super::quote(value)))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub timestamp_nanos: i64,
    pub line: String,
    /// Sorted; empty without `categorize-labels` (it is in the stream).
    pub structured_metadata: Labels,
    /// Sorted, `__error__` included; empty without `categorize-labels`.
    pub parsed: Labels,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    /// Sorted by name.
    pub labels: Labels,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogQueryOptions {
    /// Entries to return at most (Loki's `limit`), up to [`MAX_ENTRIES`].
    pub limit: usize,
    /// `X-Loki-Response-Encoding-Flags: categorize-labels`.
    pub categorize_labels: bool,
}

/// Whether to keep feeding rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    More,
    /// `limit` entries are held: stop reading.
    Full,
}

/// Turns rows into streams; see the module documentation.
pub struct LogQueryEvaluator<'a> {
    stages: &'a [Stage],
    model: &'a LabelModel,
    options: LogQueryOptions,
    entries: usize,
    index: HashMap<Labels, usize>,
    streams: Vec<Stream>,
}

impl<'a> LogQueryEvaluator<'a> {
    /// `stages`: the residual of [`super::LogExpr::push_down`] (or a whole
    /// pipeline, if the rows were not filtered by its `Expr`).
    pub fn new(
        stages: &'a [Stage],
        model: &'a LabelModel,
        options: LogQueryOptions,
    ) -> Result<LogQueryEvaluator<'a>, EvalError> {
        if options.limit > MAX_ENTRIES {
            return Err(EvalError::TooManyEntries {
                requested: options.limit,
            });
        }
        Ok(LogQueryEvaluator {
            stages,
            model,
            options,
            entries: 0,
            index: HashMap::new(),
            streams: Vec::new(),
        })
    }

    /// Entries held so far.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Runs one row through the stages and keeps it if it passes.
    pub fn push(&mut self, record: &LogRecord) -> Progress {
        if self.entries >= self.options.limit {
            return Progress::Full;
        }
        let mut line = Line::of(record, self.model);
        if !pipeline::run(self.stages, &mut line) {
            return Progress::More;
        }
        let (key, entry) = if self.options.categorize_labels {
            (
                line.labels.stream().to_vec(),
                Entry {
                    timestamp_nanos: line.timestamp_nanos,
                    line: line.text,
                    structured_metadata: line.labels.metadata().to_vec(),
                    parsed: line.labels.parsed_sorted(),
                },
            )
        } else {
            (
                line.labels.merged(),
                Entry {
                    timestamp_nanos: line.timestamp_nanos,
                    line: line.text,
                    structured_metadata: Vec::new(),
                    parsed: Vec::new(),
                },
            )
        };
        let at = *self.index.entry(key.clone()).or_insert_with(|| {
            self.streams.push(Stream {
                labels: key,
                entries: Vec::new(),
            });
            self.streams.len() - 1
        });
        self.streams[at].entries.push(entry);
        self.entries += 1;
        if self.entries >= self.options.limit {
            Progress::Full
        } else {
            Progress::More
        }
    }

    /// The streams, ordered by labels.
    pub fn finish(mut self) -> Vec<Stream> {
        self.streams.sort_by(|a, b| a.labels.cmp(&b.labels));
        self.streams
    }
}
