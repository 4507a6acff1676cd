//! A pattern's template as a filter: `connection reset by peer (pool <_>)`
//! matches a message when the message is the template with each `<_>`
//! replaced by any run of characters (none included), the rest compared
//! byte for byte. The query language's `pattern:"…"` and LogQL's `|>` and
//! `!>` both use it, and [`Template::to_expr`] is its store-neutral form.
//!
//! Loki's own `|>` matcher takes each `<_>` up to the first occurrence of
//! the next literal and wants it non-empty; this one backtracks like a
//! regex and allows an empty run, so it matches every line Loki's does and
//! a few more (`a <_> b` matches `a  b`).

use crate::domain::query::{Expr, Matcher, Pattern, Predicate, TextField, compile_regex};
use std::fmt;

/// The placeholder for a varying part.
pub const PLACEHOLDER: &str = "<_>";

#[derive(Clone, Debug)]
pub struct Template {
    source: String,
    /// The literal text around the placeholders: one more piece than there
    /// are placeholders, the first and last possibly empty.
    pieces: Vec<String>,
}

impl PartialEq for Template {
    fn eq(&self, other: &Template) -> bool {
        self.source == other.source
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Template {
    /// `<_>` is the only placeholder; the rest is literal.
    pub fn parse(source: &str) -> Result<Template, String> {
        Template::build(source, false)
    }

    /// As LogQL's `|>` reads a pattern: `<name>` placeholders (letters,
    /// digits, `_`) stand for any run too.
    pub fn parse_logql(source: &str) -> Result<Template, String> {
        Template::build(source, true)
    }

    fn build(source: &str, named_placeholders: bool) -> Result<Template, String> {
        if source.is_empty() {
            return Err("a pattern cannot be empty".into());
        }
        let mut pieces = vec![String::new()];
        let mut rest = source;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let name_end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..name_end];
            let is_placeholder = after[name_end..].starts_with('>')
                && (name == "_" || (named_placeholders && !name.is_empty()));
            let last = pieces.len() - 1;
            if is_placeholder {
                pieces[last].push_str(&rest[..open]);
                pieces.push(String::new());
                rest = &after[name_end + 1..];
            } else {
                pieces[last].push_str(&rest[..=open]);
                rest = after;
            }
        }
        let last = pieces.len() - 1;
        pieces[last].push_str(rest);
        Ok(Template {
            source: source.to_string(),
            pieces,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The literal pieces around the placeholders.
    pub fn pieces(&self) -> &[String] {
        &self.pieces
    }

    /// Whether `message` is this template with each placeholder replaced by
    /// some run of characters.
    pub fn matches(&self, message: &str) -> bool {
        let Some((first, rest)) = self.pieces.split_first() else {
            return message.is_empty();
        };
        let Some(mut remaining) = message.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return remaining.is_empty();
        };
        // Taking each middle piece at its first occurrence leaves the most
        // room for the rest, so this greedy walk finds a match whenever one
        // exists.
        for piece in middle {
            match remaining.find(piece.as_str()) {
                Some(at) => remaining = &remaining[at + piece.len()..],
                None => return false,
            }
        }
        remaining.len() >= last.len() && remaining.ends_with(last.as_str())
    }

    /// The same test as a regular expression (Rust and RE2 syntax alike).
    pub fn regex_source(&self) -> String {
        let escaped: Vec<String> = self.pieces.iter().map(|p| regex::escape(p)).collect();
        format!("^{}$", escaped.join("(?s:.*)"))
    }

    /// The store-neutral condition: the regex, preceded by a
    /// case-insensitive substring test of the longest ASCII piece. That
    /// test is implied by the regex (an ASCII piece found byte for byte is
    /// found ignoring case) and lets the stores use their substring indexes
    /// and skip filters first.
    pub fn to_expr(&self) -> Result<Expr, String> {
        let regex = compile_regex(&self.regex_source())?;
        let matches = Expr::Is(Predicate::Text {
            field: TextField::Message,
            matcher: Matcher::Regex(regex),
        });
        let longest = self
            .pieces
            .iter()
            .filter(|piece| !piece.is_empty() && piece.is_ascii())
            .max_by_key(|piece| piece.len());
        Ok(match longest {
            Some(piece) => Expr::And(vec![
                Expr::Is(Predicate::Text {
                    field: TextField::Message,
                    matcher: Matcher::Contains(Pattern::literal(piece)),
                }),
                matches,
            ]),
            None => matches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Level, LogRecord};

    fn record(message: &str) -> LogRecord {
        LogRecord {
            id: "x".into(),
            timestamp: 0,
            level: Level::Info,
            service: "s".into(),
            message: message.into(),
            attributes: Default::default(),
            ..Default::default()
        }
    }

    #[test]
    fn placeholders_match_any_run_and_the_rest_is_literal() {
        let template = Template::parse("connection reset by peer (pool <_>)").unwrap();
        assert_eq!(template.pieces(), ["connection reset by peer (pool ", ")"]);
        for (message, expected) in [
            ("connection reset by peer (pool 7)", true),
            ("connection reset by peer (pool )", true),
            ("connection reset by peer (pool a (b))", true),
            ("Connection reset by peer (pool 7)", false),
            ("connection reset by peer (pool 7) again", false),
            ("x connection reset by peer (pool 7)", false),
        ] {
            assert_eq!(template.matches(message), expected, "{message}");
            let expr = template.to_expr().unwrap();
            assert_eq!(expr.matches(&record(message)), expected, "expr: {message}");
        }
        let edges = Template::parse("<_> took <_>").unwrap();
        assert!(edges.matches("GET /a took 12ms") && edges.matches(" took "));
        assert!(!edges.matches("took 12ms"));
        let overlap = Template::parse("ab<_>ba").unwrap();
        assert!(overlap.matches("abba") && overlap.matches("ab-ba") && !overlap.matches("aba"));
        let newline = Template::parse("panic: <_>").unwrap();
        assert!(newline.matches("panic: boom\n  at main.rs:3"));
        assert!(
            newline
                .to_expr()
                .unwrap()
                .matches(&record("panic: boom\n  at x"))
        );
    }

    #[test]
    fn names_and_stray_brackets() {
        let plain = Template::parse("<ip> <_> a<b").unwrap();
        assert_eq!(plain.pieces(), ["<ip> ", " a<b"]);
        let logql = Template::parse_logql("<ip> - <_> <status>").unwrap();
        assert_eq!(logql.pieces(), ["", " - ", " ", ""]);
        assert!(logql.matches("1.2.3.4 - x 200"));
        assert!(Template::parse("").is_err());
        let special = Template::parse("a.b*c (<_>) [x]").unwrap();
        assert!(special.matches("a.b*c (1) [x]") && !special.matches("aXb*c (1) [x]"));
        assert!(special.to_expr().unwrap().matches(&record("a.b*c (1) [x]")));
    }
}
