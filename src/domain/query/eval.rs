//! The meaning of a query, as code: whether one log matches. Live tail and
//! alert rules run this; the stores translate the same tree into SQL, and
//! the both-stores test suite checks they agree with it.

use super::ast::{Expr, Matcher, Predicate, TextField};
use super::ast::{Number, Pattern};
use crate::domain::LogRecord;
use std::borrow::Cow;

impl Expr {
    pub fn matches(&self, record: &LogRecord) -> bool {
        match self {
            Expr::And(children) => children.iter().all(|c| c.matches(record)),
            Expr::Or(children) => children.iter().any(|c| c.matches(record)),
            Expr::Not(inner) => !inner.matches(record),
            Expr::Is(predicate) => predicate.matches(record),
        }
    }
}

impl Predicate {
    pub fn matches(&self, record: &LogRecord) -> bool {
        match self {
            Predicate::Levels(levels) => levels.contains(record.level),
            Predicate::Text { field, matcher } => {
                let value = match field {
                    TextField::Message => record.message.as_str(),
                    TextField::Service => record.service.as_str(),
                    TextField::Id => record.id.as_str(),
                    TextField::TraceId => match &record.trace_id {
                        Some(id) => id.as_str(),
                        None => return false,
                    },
                    TextField::SpanId => match &record.span_id {
                        Some(id) => id.as_str(),
                        None => return false,
                    },
                    TextField::Attribute(key) => match record.attributes.get(key) {
                        Some(value) => value.as_str(),
                        None => return false,
                    },
                };
                matcher.matches(value)
            }
            Predicate::Present { key } => record.attributes.contains_key(key),
            Predicate::Compare { key, op, number } => record
                .attributes
                .get(key)
                .and_then(|value| Number::parse(value))
                .is_some_and(|value| op.holds(value.value, number.value)),
        }
    }
}

impl Matcher {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Contains(pattern) => match pattern.as_literal() {
                Some(needle) => contains_ignore_case(value, needle),
                None => pattern.matches_within(&lowercase(value)),
            },
            Matcher::Equals(pattern) => equals_ignore_case(pattern, value),
            Matcher::Exact(text) => value == text,
            Matcher::Regex(regex) => regex.regex.is_match(value),
        }
    }
}

fn equals_ignore_case(pattern: &Pattern, value: &str) -> bool {
    match pattern.as_literal() {
        Some(literal) if value.is_ascii() && literal.is_ascii() => {
            value.eq_ignore_ascii_case(literal)
        }
        _ => pattern.matches_whole(&lowercase(value)),
    }
}

/// `text` lowercased the way patterns are, borrowing when it already is.
pub fn lowercase(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// Case-insensitive substring test, used wherever filters are evaluated in
/// our code (SQLite's custom function, live tail). `needle` must already be
/// lowercase. ASCII text, by far the common case, is compared without
/// allocating.
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

    #[test]
    fn lowercase_borrows_when_it_can() {
        assert!(matches!(lowercase("abc"), Cow::Borrowed(_)));
        assert_eq!(lowercase("AbC"), "abc");
        assert_eq!(lowercase("ÉCHEC"), "échec");
    }
}
