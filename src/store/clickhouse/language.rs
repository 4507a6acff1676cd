//! The query language as a ClickHouse condition: [`expr_condition`] turns an
//! [`Expr`] into a WHERE fragment over the columns of `logs` (`level`,
//! `service`, `message`, `id`, and the attribute arrays `attr_keys` /
//! `attr_values` of schema version 5). User text only ever appears as
//! `unhex('…')` literals (see `sql.rs`); numbers come from the language's
//! number syntax (digits, `-`, `.`).
//!
//! The fragment is valid on the tenant-keyed rollups too when the expression tests
//! levels and services only (`LogFilter::countable_by_level_and_service`).
//!
//! How each test reads in ClickHouse, and where it can differ from the
//! in-memory definition:
//! - case-insensitive comparisons lowercase with `lowerUTF8`, which agrees
//!   with Rust's `to_lowercase` except for the few characters whose
//!   lowercase has another length in UTF-8 (`İ`, `ẞ`, …);
//! - wildcards and regexes run on RE2 (`match`), whose syntax is the Rust
//!   `regex` crate's for everything but a few rarities (Unicode-aware
//!   `\d`, `\w`, `\b` in Rust are ASCII in RE2);
//! - every fragment is 0 or 1, never NULL, so `NOT` is a plain complement.

use super::sql::text_literal;
use crate::domain::query::{CompareOp, Expr, Matcher, Pattern, Predicate, TextField};
use std::fmt::Write;

/// `expr` as a condition on `logs`; `1` for the blank query.
pub fn expr_condition(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(expr, &mut out);
    out
}

fn write_expr(expr: &Expr, out: &mut String) {
    match expr {
        Expr::And(children) if children.is_empty() => out.push('1'),
        Expr::Or(children) if children.is_empty() => out.push('0'),
        Expr::And(children) | Expr::Or(children) => {
            let joiner = if matches!(expr, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            out.push('(');
            for (index, child) in children.iter().enumerate() {
                if index > 0 {
                    out.push_str(joiner);
                }
                write_expr(child, out);
            }
            out.push(')');
        }
        Expr::Not(inner) => {
            out.push_str("NOT ");
            write_expr(inner, out);
        }
        Expr::Is(predicate) => {
            out.push('(');
            write_predicate(predicate, out);
            out.push(')');
        }
    }
}

/// The expression reading attribute `key`'s value ('' when absent: always
/// guard with [`has_key`]).
fn attribute_value(key: &str) -> String {
    format!("attr_values[indexOf(attr_keys, {})]", text_literal(key))
}

fn has_key(key: &str) -> String {
    format!("has(attr_keys, {})", text_literal(key))
}

fn write_predicate(predicate: &Predicate, out: &mut String) {
    match predicate {
        Predicate::Levels(levels) => {
            let codes: Vec<String> = levels.iter().map(|l| l.code().to_string()).collect();
            if codes.is_empty() {
                out.push('0');
            } else {
                let _ = write!(out, "level IN ({})", codes.join(", "));
            }
        }
        Predicate::Text { field, matcher } => {
            let column = match field {
                TextField::Message => "message".to_string(),
                TextField::Service => "toString(service)".to_string(),
                TextField::Id => "id".to_string(),
                // Empty for a log without one, which no id equals.
                TextField::TraceId => {
                    out.push_str("trace_id != '' AND ");
                    "trace_id".to_string()
                }
                TextField::SpanId => {
                    out.push_str("span_id != '' AND ");
                    "span_id".to_string()
                }
                TextField::Attribute(key) => {
                    let _ = write!(out, "{} AND ", has_key(key));
                    attribute_value(key)
                }
            };
            out.push_str(&matcher_condition(&column, matcher));
        }
        Predicate::Present { key } => out.push_str(&has_key(key)),
        Predicate::Compare { key, op, number } => {
            let value = attribute_value(key);
            let op = match op {
                CompareOp::Greater => ">",
                CompareOp::GreaterOrEqual => ">=",
                CompareOp::Less => "<",
                CompareOp::LessOrEqual => "<=",
            };
            // `number.text` is `-?[0-9]+(.[0-9]+)?`: safe as written.
            let _ = write!(
                out,
                "{} AND match({value}, '^-?[0-9]+(\\\\.[0-9]+)?$') AND toFloat64OrZero({value}) {op} {}",
                has_key(key),
                number.text
            );
        }
    }
}

fn matcher_condition(column: &str, matcher: &Matcher) -> String {
    match matcher {
        Matcher::Contains(pattern) => match pattern.as_literal() {
            Some(literal) => format!(
                "positionCaseInsensitiveUTF8({column}, {}) > 0",
                text_literal(literal)
            ),
            None => format!(
                "match(lowerUTF8({column}), {})",
                text_literal(&wildcard_regex(pattern, false))
            ),
        },
        Matcher::Equals(pattern) => match pattern.as_literal() {
            Some(literal) => format!("lowerUTF8({column}) = {}", text_literal(literal)),
            None => format!(
                "match(lowerUTF8({column}), {})",
                text_literal(&wildcard_regex(pattern, true))
            ),
        },
        Matcher::Exact(text) => format!("{column} = {}", text_literal(text)),
        Matcher::Regex(regex) => {
            format!("match({column}, {})", text_literal(&for_re2(&regex.source)))
        }
    }
}

/// The regex as RE2 on ClickHouse should get it. RE2 there folds case for
/// ASCII only (`(?i)é` misses `É` on 18.16), so a case-insensitive regex is
/// written out without the flag: the `regex` crate's parser expands it
/// into explicit classes (`[Éé]`), printed back in the shared syntax.
fn for_re2(source: &str) -> String {
    if !has_case_insensitive_flag(source) {
        return source.to_string();
    }
    match regex_syntax::Parser::new().parse(source) {
        Ok(hir) => hir.to_string(),
        Err(_) => source.to_string(),
    }
}

/// `(?i)`, `(?ims)`, `(?i:…)`: a flag group that turns case folding on.
fn has_case_insensitive_flag(source: &str) -> bool {
    source.match_indices("(?").any(|(at, _)| {
        source[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .any(|c| c == 'i')
    })
}

/// An RE2 regex for a wildcard pattern: the pieces escaped, `.*` between
/// them, anchored at both ends when the whole value must match. `(?s)` lets
/// `*` span newlines, as it does in memory.
fn wildcard_regex(pattern: &Pattern, anchored: bool) -> String {
    let pieces: Vec<String> = pattern
        .pieces
        .iter()
        .map(|piece| regex::escape(piece))
        .collect();
    let body = pieces.join(".*");
    if anchored {
        format!("(?s)^{body}$")
    } else {
        format!("(?s){body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::query::parse;

    fn sql(query: &str) -> String {
        expr_condition(&parse(query).unwrap())
    }

    #[test]
    fn user_text_reaches_the_sql_only_as_hex() {
        let condition = sql("service:pay* region:\"x'y\" -~\"a'\\\\b\" id:'; DROP");
        for hostile in ["x'y", "a'", "DROP"] {
            assert!(!condition.contains(hostile), "{condition}");
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(sql(""), "1");
        assert_eq!(sql("level:>=error"), "(level IN (3, 4))");
        assert_eq!(
            sql("service:api"),
            format!("(lowerUTF8(toString(service)) = {})", text_literal("api"))
        );
        assert_eq!(sql("-region:*"), format!("NOT ({})", has_key("region")));
        assert!(sql("http.status:>=500").ends_with("toFloat64OrZero(attr_values[indexOf(attr_keys, unhex('687474702E737461747573'))]) >= 500)"));
        assert_eq!(
            wildcard_regex(&Pattern::wildcard("a.b*c"), true),
            "(?s)^a\\.b.*c$"
        );
        assert_eq!(
            wildcard_regex(&Pattern::wildcard("*x*"), false),
            "(?s).*x.*"
        );
    }

    #[test]
    fn case_insensitive_regexes_are_spelled_out() {
        assert_eq!(for_re2("^pay\\d+"), "^pay\\d+", "left alone");
        assert!(has_case_insensitive_flag("(?i)x") && has_case_insensitive_flag("a(?mi:b)"));
        assert!(!has_case_insensitive_flag("(?-i)x") && !has_case_insensitive_flag("(?m)x"));
        let spelled = for_re2("(?i)échec");
        assert!(!spelled.contains("(?i"), "{spelled}");
        let regex = regex::Regex::new(&spelled).unwrap();
        assert!(regex.is_match("ÉCHEC") && regex.is_match("échec") && !regex.is_match("echec"));
    }
}
