//! The query language in SQLite's SQL.
//!
//! Level and service predicates become plain column conditions (valid on
//! `logs` and on the rollups alike, and checked inside the page index, so a
//! table row is read only for a match). Text and attribute predicates call
//! functions of ours that apply the very `Matcher` the in-memory evaluation
//! uses, so SQL and `Expr::matches` cannot disagree. Every user value is a
//! bound parameter; the matcher travels as one (see [`spec`]) and is decoded
//! once per statement through SQLite's auxiliary data.
//!
//! Every fragment is 0 or 1, never NULL (an absent attribute is a plain
//! "no"), so `NOT` is the plain complement the language promises.

use super::TRACE_BUCKET_SHIFT;
use crate::domain::query::{
    CompareOp, Expr, Matcher, Number, Pattern, Predicate, TextField, compile_regex,
    contains_ignore_case,
};
use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt::Write;
use std::sync::Arc;

/// A condition and its parameters, in order.
#[derive(Debug, Default, PartialEq)]
pub struct Fragment {
    pub sql: String,
    pub params: Vec<Value>,
}

/// `expr` as a condition on the columns of `logs` (prefixed, e.g. `l.`).
/// `services` is the service dictionary, (id, name); a service predicate is
/// decided against it here and becomes `service_id IN (...)`.
pub fn condition(expr: &Expr, prefix: &str, services: &[(i64, String)]) -> Fragment {
    let mut out = Fragment::default();
    write_expr(expr, prefix, services, &mut out);
    out
}

fn write_expr(expr: &Expr, prefix: &str, services: &[(i64, String)], out: &mut Fragment) {
    match expr {
        Expr::And(children) | Expr::Or(children) if children.is_empty() => {
            out.sql.push_str(if matches!(expr, Expr::And(_)) {
                "1"
            } else {
                "0"
            });
        }
        Expr::And(children) | Expr::Or(children) => {
            let joiner = if matches!(expr, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            out.sql.push('(');
            for (index, child) in children.iter().enumerate() {
                if index > 0 {
                    out.sql.push_str(joiner);
                }
                write_expr(child, prefix, services, out);
            }
            out.sql.push(')');
        }
        Expr::Not(inner) => {
            out.sql.push_str("NOT ");
            write_expr(inner, prefix, services, out);
        }
        Expr::Is(predicate) => write_predicate(predicate, prefix, services, out),
    }
}

fn in_list(out: &mut Fragment, column: &str, values: impl IntoIterator<Item = i64>) {
    let values: Vec<i64> = values.into_iter().collect();
    if values.is_empty() {
        out.sql.push('0');
        return;
    }
    let _ = write!(out.sql, "{column} IN (");
    for (index, value) in values.into_iter().enumerate() {
        out.sql.push_str(if index == 0 { "?" } else { ",?" });
        out.params.push(Value::Integer(value));
    }
    out.sql.push(')');
}

fn write_predicate(
    predicate: &Predicate,
    prefix: &str,
    services: &[(i64, String)],
    out: &mut Fragment,
) {
    match predicate {
        Predicate::Levels(levels) => in_list(
            out,
            &format!("{prefix}level"),
            levels.iter().map(|level| i64::from(level.code())),
        ),
        Predicate::Text {
            field: TextField::Service,
            matcher,
        } => in_list(
            out,
            &format!("{prefix}service_id"),
            services
                .iter()
                .filter(|(_, name)| matcher.matches(name))
                .map(|(id, _)| *id),
        ),
        Predicate::Text {
            field: TextField::Message,
            matcher: Matcher::Contains(pattern),
        } if pattern.as_literal().is_some() => {
            let _ = write!(out.sql, "oglog_contains({prefix}message, ?)");
            out.params
                .push(Value::Text(pattern.pieces.concat().to_string()));
        }
        Predicate::Text {
            field: TextField::Id,
            matcher: Matcher::Exact(id),
        } => {
            // A plain comparison: at the top level it uses the id index.
            let _ = write!(out.sql, "{prefix}id = ?");
            out.params.push(Value::Text(id.clone()));
        }
        Predicate::Text {
            field: TextField::TraceId,
            matcher: Matcher::Exact(id),
        } => {
            // The trace id index leads with the insert bucket: naming every
            // bucket lets it answer with one seek per bucket.
            let _ = write!(
                out.sql,
                "({prefix}seq >> {TRACE_BUCKET_SHIFT}) IN (WITH RECURSIVE trace_bucket(b) AS
                     (SELECT 0 UNION ALL SELECT b + 1 FROM trace_bucket
                      WHERE b < (SELECT MAX(seq) FROM logs) >> {TRACE_BUCKET_SHIFT})
                 SELECT b FROM trace_bucket) AND {prefix}trace_id = ?"
            );
            out.params.push(Value::Text(id.clone()));
        }
        Predicate::Text {
            field: TextField::SpanId,
            matcher: Matcher::Exact(id),
        } => {
            let _ = write!(out.sql, "{prefix}span_id = ?");
            out.params.push(Value::Text(id.clone()));
        }
        Predicate::Text { field, matcher } => {
            let spec = Value::Text(spec(&Test::Matcher(matcher.clone())));
            match field {
                TextField::TraceId | TextField::SpanId => {
                    let column = id_column(field);
                    let _ = write!(
                        out.sql,
                        "({prefix}{column} IS NOT NULL AND oglog_matches({prefix}{column}, ?))"
                    );
                }
                TextField::Attribute(key) => {
                    let _ = write!(out.sql, "oglog_attr_matches({prefix}attributes, ?, ?)");
                    out.params.push(Value::Text(key.clone()));
                }
                TextField::Id => {
                    let _ = write!(out.sql, "oglog_matches({prefix}id, ?)");
                }
                _ => {
                    let _ = write!(out.sql, "oglog_matches({prefix}message, ?)");
                }
            }
            out.params.push(spec);
        }
        Predicate::Present { key } => {
            let _ = write!(out.sql, "oglog_has_attr({prefix}attributes, ?)");
            out.params.push(Value::Text(key.clone()));
        }
        Predicate::Compare { key, op, number } => {
            let _ = write!(out.sql, "oglog_attr_matches({prefix}attributes, ?, ?)");
            out.params.push(Value::Text(key.clone()));
            out.params
                .push(Value::Text(spec(&Test::Compare(*op, number.clone()))));
        }
    }
}

/// The column of a trace or span id.
fn id_column(field: &TextField) -> &'static str {
    match field {
        TextField::SpanId => "span_id",
        _ => "trace_id",
    }
}

/// What `oglog_matches` and `oglog_attr_matches` apply to a value.
#[derive(Clone, Debug, PartialEq)]
enum Test {
    Matcher(Matcher),
    Compare(CompareOp, Number),
}

impl Test {
    fn holds(&self, value: &str) -> bool {
        match self {
            Test::Matcher(matcher) => matcher.matches(value),
            Test::Compare(op, number) => {
                Number::parse(value).is_some_and(|value| op.holds(value.value, number.value))
            }
        }
    }
}

/// A [`Test`] as text: one letter for the kind, then its argument (pieces
/// as a JSON array, a regex's source, a number).
fn spec(test: &Test) -> String {
    let pieces = |pattern: &Pattern| serde_json::to_string(&pattern.pieces).unwrap_or_default();
    match test {
        Test::Matcher(Matcher::Contains(pattern)) => format!("c{}", pieces(pattern)),
        Test::Matcher(Matcher::Equals(pattern)) => format!("e{}", pieces(pattern)),
        Test::Matcher(Matcher::Exact(text)) => format!("x{text}"),
        Test::Matcher(Matcher::Regex(regex)) => format!("r{}", regex.source),
        Test::Compare(op, number) => {
            let kind = match op {
                CompareOp::Greater => 'g',
                CompareOp::GreaterOrEqual => 'G',
                CompareOp::Less => 'l',
                CompareOp::LessOrEqual => 'L',
            };
            format!("{kind}{}", number.text)
        }
    }
}

fn parse_spec(text: &str) -> Result<Test, String> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or("empty matcher")?;
    let rest = chars.as_str();
    let pieces = |json: &str| -> Result<Pattern, String> {
        let pieces: Vec<String> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok(Pattern { pieces })
    };
    let number = || Number::parse(rest).ok_or_else(|| format!("not a number: {rest}"));
    Ok(match kind {
        'c' => Test::Matcher(Matcher::Contains(pieces(rest)?)),
        'e' => Test::Matcher(Matcher::Equals(pieces(rest)?)),
        'x' => Test::Matcher(Matcher::Exact(rest.to_string())),
        'r' => Test::Matcher(Matcher::Regex(compile_regex(rest)?)),
        'g' => Test::Compare(CompareOp::Greater, number()?),
        'G' => Test::Compare(CompareOp::GreaterOrEqual, number()?),
        'l' => Test::Compare(CompareOp::Less, number()?),
        'L' => Test::Compare(CompareOp::LessOrEqual, number()?),
        other => return Err(format!("unknown matcher kind {other:?}")),
    })
}

/// The test in argument `arg`, decoded once per statement.
fn test_of(ctx: &Context, arg: i32) -> rusqlite::Result<Arc<Test>> {
    ctx.get_or_create_aux(arg, |value: ValueRef| -> Result<Test, String> {
        parse_spec(value.as_str().map_err(|e| e.to_string())?)
    })
}

/// Registers `oglog_contains(text, needle)`, `oglog_matches(text, spec)`,
/// `oglog_attr_matches(attributes, key, spec)` and `oglog_has_attr
/// (attributes, key)`: each 0 or 1, NULL text counting as no match.
pub fn register_functions(connection: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    connection.create_scalar_function("oglog_contains", 2, flags, |ctx| {
        let haystack = ctx.get_raw(0).as_str().unwrap_or("");
        let needle = ctx.get_raw(1).as_str().unwrap_or("");
        Ok(contains_ignore_case(haystack, needle))
    })?;
    connection.create_scalar_function("oglog_matches", 2, flags, |ctx| {
        let test = test_of(ctx, 1)?;
        Ok(match ctx.get_raw(0) {
            ValueRef::Text(bytes) => std::str::from_utf8(bytes).is_ok_and(|text| test.holds(text)),
            _ => false,
        })
    })?;
    connection.create_scalar_function("oglog_attr_matches", 3, flags, |ctx| {
        let test = test_of(ctx, 2)?;
        let key = ctx.get_raw(1).as_str().unwrap_or("");
        Ok(match ctx.get_raw(0) {
            ValueRef::Text(json) => std::str::from_utf8(json)
                .ok()
                .and_then(|json| attribute_value(json, key))
                .is_some_and(|value| test.holds(&value)),
            _ => false,
        })
    })?;
    connection.create_scalar_function("oglog_has_attr", 2, flags, |ctx| {
        let key = ctx.get_raw(1).as_str().unwrap_or("");
        Ok(match ctx.get_raw(0) {
            ValueRef::Text(json) => std::str::from_utf8(json)
                .ok()
                .and_then(|json| attribute_value(json, key))
                .is_some(),
            _ => false,
        })
    })?;
    Ok(())
}

/// The value of `key` in a stored attributes object (`{"k":"v",...}`), read
/// without building a map and without copying unless it holds escapes.
pub fn attribute_value<'a>(json: &'a str, key: &str) -> Option<Cow<'a, str>> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    FindKey(key).deserialize(&mut deserializer).ok().flatten()
}

/// Calls `each` with every (key, value) of a stored attributes object; a
/// damaged object yields what was read before the damage.
pub fn for_each_attribute<'a>(json: &'a str, each: impl FnMut(Cow<'a, str>, Cow<'a, str>)) {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let _ = EachEntry(each).deserialize(&mut deserializer);
}

struct EachEntry<F>(F);

impl<'de, F: FnMut(Cow<'de, str>, Cow<'de, str>)> DeserializeSeed<'de> for EachEntry<F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Cow<'de, str>, Cow<'de, str>)> Visitor<'de> for EachEntry<F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of strings")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some((Text(key), Text(value))) = map.next_entry::<Text<'de>, Text<'de>>()? {
            (self.0)(key, value);
        }
        Ok(())
    }
}

struct FindKey<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for FindKey<'_> {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FindKey<'_> {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            if found.is_none() && key == self.0 {
                found = Some(map.next_value::<Text<'de>>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A JSON string, borrowed from the input when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(value)))
            }

            fn visit_str<E>(self, value: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(value.to_string())))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::query::parse;

    #[test]
    fn specs_round_trip() {
        for query in [
            "conn*refused",
            "service:pay*",
            "id:abc",
            "~\"(?i)x\\d\"",
            "region:\"a\\\"b\"",
        ] {
            let mut matchers = Vec::new();
            parse(query).unwrap().for_each_predicate(&mut |p| {
                if let Predicate::Text { matcher, .. } = p {
                    matchers.push(matcher.clone());
                }
            });
            for matcher in matchers {
                let test = Test::Matcher(matcher);
                assert_eq!(parse_spec(&spec(&test)).unwrap(), test, "{query}");
            }
        }
        let compare = Test::Compare(CompareOp::LessOrEqual, Number::parse("-2.5").unwrap());
        assert_eq!(parse_spec(&spec(&compare)).unwrap(), compare);
        assert!(parse_spec("q").is_err() && parse_spec("").is_err());
    }

    #[test]
    fn attribute_values_are_found_with_escapes() {
        let json = r#"{"a":"1","k\"ey":"v\\al\u0000ue","region":"日本","z":"last"}"#;
        assert_eq!(attribute_value(json, "a").as_deref(), Some("1"));
        assert_eq!(attribute_value(json, "k\"ey").as_deref(), Some("v\\al\0ue"));
        assert_eq!(attribute_value(json, "region").as_deref(), Some("日本"));
        assert_eq!(attribute_value(json, "z").as_deref(), Some("last"));
        assert_eq!(attribute_value(json, "missing"), None);
        assert_eq!(attribute_value("not json", "a"), None);
        assert!(matches!(attribute_value(json, "a"), Some(Cow::Borrowed(_))));
        let mut entries = Vec::new();
        for_each_attribute(json, |k, v| entries.push(format!("{k}={v}")));
        assert_eq!(entries, ["a=1", "k\"ey=v\\al\0ue", "region=日本", "z=last"]);
    }

    #[test]
    fn conditions_bind_every_value() {
        let services = vec![(1, "checkout".to_string()), (2, "payments".to_string())];
        let expr = parse("service:pay* level:>=error -region:\"x'y\" http.status:>=500").unwrap();
        let fragment = condition(&expr, "l.", &services);
        assert_eq!(
            fragment.sql,
            "(l.service_id IN (?) AND l.level IN (?,?) AND NOT oglog_attr_matches(l.attributes, ?, ?) AND oglog_attr_matches(l.attributes, ?, ?))"
        );
        assert!(!fragment.sql.contains("x'y"));
        assert_eq!(fragment.params.len(), 7);
        assert_eq!(
            condition(&parse("service:nope").unwrap(), "", &services).sql,
            "0"
        );
        assert_eq!(condition(&Expr::everything(), "", &services).sql, "1");
    }
}
