//! The query model shared by the query role and both stores.

use crate::domain::time::{MAX_MICROS, Micros};
use crate::domain::{LevelSet, LogRecord};

/// What a set of logs must match. Every condition is optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogFilter {
    pub levels: Option<LevelSet>,
    /// Case-insensitive substring of the service name, stored lowercase.
    pub service: Option<String>,
    /// Case-insensitive substring of the message, stored lowercase.
    pub text: Option<String>,
    /// Inclusive.
    pub from: Option<Micros>,
    /// Exclusive.
    pub to: Option<Micros>,
}

impl LogFilter {
    /// Evaluates the filter on one record in memory (live tail does this).
    pub fn matches(&self, record: &LogRecord) -> bool {
        self.levels
            .is_none_or(|levels| levels.contains(record.level))
            && self.from.is_none_or(|from| record.timestamp >= from)
            && self.to.is_none_or(|to| record.timestamp < to)
            && self
                .service
                .as_deref()
                .is_none_or(|needle| contains_ignore_case(&record.service, needle))
            && self
                .text
                .as_deref()
                .is_none_or(|needle| contains_ignore_case(&record.message, needle))
    }

    /// The time range with open ends closed at the representable limits.
    pub fn bounds(&self) -> (Micros, Micros) {
        (self.from.unwrap_or(0), self.to.unwrap_or(MAX_MICROS))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Desc,
    Asc,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LogQuery {
    pub filter: LogFilter,
    pub limit: usize,
    pub offset: usize,
    pub order: Order,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HistogramQuery {
    /// `from` and `to` are always set for a histogram.
    pub filter: LogFilter,
    pub interval: Micros,
}

/// Kept here for the stores' use; defined beside the query language.
pub use crate::domain::query::contains_ignore_case;
