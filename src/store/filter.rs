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

/// Case-insensitive substring test used wherever a store evaluates filters in
/// our code (SQLite's custom function, live-tail filtering). `needle` must
/// already be lowercase. ASCII text, by far the common case, is compared
/// without allocating.
pub fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if haystack.is_ascii() && needle.is_ascii() {
        // memchr finds candidates for the first byte (either case) many bytes
        // at a time; comparing every window was the top symbol (19%) of a
        // search that scans the store.
        let (needle, haystack) = (needle.as_bytes(), haystack.as_bytes());
        let Some(last_start) = haystack.len().checked_sub(needle.len()) else {
            return false;
        };
        let (first, rest) = (needle[0], &needle[1..]);
        return memchr::memchr2_iter(
            first.to_ascii_lowercase(),
            first.to_ascii_uppercase(),
            &haystack[..=last_start],
        )
        .any(|start| haystack[start + 1..start + needle.len()].eq_ignore_ascii_case(rest));
    }
    haystack.to_lowercase().contains(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_ignores_case_in_any_script() {
        assert!(contains_ignore_case("Payment TIMEOUT after 3s", "timeout"));
        assert!(!contains_ignore_case("payment ok", "timeout"));
        assert!(contains_ignore_case("Ошибка БАЗЫ", "базы"));
        assert!(contains_ignore_case("anything", ""));
        assert!(contains_ignore_case("100% done_now", "% done_"));
        assert!(contains_ignore_case("xTiMeOuT", "timeout"));
        assert!(contains_ignore_case("timeout", "timeout"));
        assert!(!contains_ignore_case("timeou", "timeout"));
        assert!(!contains_ignore_case("tttimeou", "timeout"));
        assert!(contains_ignore_case("a", "a") && !contains_ignore_case("", "a"));
    }
}
