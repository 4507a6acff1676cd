//! SQL text for the ClickHouse store, built from the shared query model.
//!
//! User text never reaches the SQL as written: [`text_literal`] turns it into
//! `unhex('…')`, whose argument holds only hexadecimal digits, so no quote,
//! backslash, NUL or multi-byte sequence can end the literal or change the
//! statement. Numbers are written from integers. Nothing else varies.
//!
//! Counts combine two sources (mirroring the SQLite store): the per-minute
//! rollup for the whole minutes inside `[from, to)` and the raw rows for the
//! ragged edges, summed in one statement with `UNION ALL`.

use super::query_sql::expr_condition;
use crate::domain::time::Micros;
use crate::store::filter::{LogFilter, LogQuery, Order};
use std::fmt::Write;

pub const MINUTE: Micros = 60_000_000;

/// The statement's text with `text` as a string value: `unhex('48690A')`.
pub fn text_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2 + 9);
    out.push_str("unhex('");
    for byte in text.bytes() {
        let _ = write!(out, "{byte:02X}");
    }
    out.push_str("')");
    out
}

/// Conditions on level, service and message, valid on `logs` (and, without
/// the message, on the rollup).
fn dimension_conditions(filter: &LogFilter, with_text: bool) -> Vec<String> {
    let mut conditions = Vec::new();
    if let Some(levels) = filter.levels {
        let codes: Vec<String> = levels.iter().map(|l| l.code().to_string()).collect();
        conditions.push(format!("level IN ({})", codes.join(", ")));
    }
    if let Some(service) = &filter.service {
        conditions.push(format!(
            "positionCaseInsensitiveUTF8(service, {}) > 0",
            text_literal(service)
        ));
    }
    if with_text && let Some(text) = &filter.text {
        conditions.push(format!(
            "positionCaseInsensitiveUTF8(message, {}) > 0",
            text_literal(text)
        ));
    }
    // On the rollup only when it tests levels and services alone (the
    // rollup is used only then: see `counts`).
    if !filter.expr.is_everything() {
        conditions.push(expr_condition(&filter.expr));
    }
    conditions
}

/// Every condition of `filter` on `logs`, time included.
pub fn filter_condition(filter: &LogFilter) -> String {
    let mut conditions = Vec::new();
    if let Some(from) = filter.from {
        conditions.push(format!("ts_us >= {from}"));
    }
    if let Some(to) = filter.to {
        conditions.push(format!("ts_us < {to}"));
    }
    conditions.extend(dimension_conditions(filter, true));
    where_clause(&conditions)
}

fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        "1".to_string()
    } else {
        conditions.join(" AND ")
    }
}

fn time_range(column: &str, from: Micros, to: Micros) -> String {
    format!("({column} >= {from} AND {column} < {to})")
}

pub fn logs(database: &str, query: &LogQuery) -> String {
    let mut condition = filter_condition(&query.filter);
    // Ties on the timestamp fall back to the id (compared as bytes), which
    // ingest makes time-ordered, so pages are stable and follow arrival.
    let (direction, before) = match query.order {
        Order::Desc => ("DESC", "<"),
        Order::Asc => ("ASC", ">"),
    };
    if let Some(after) = &query.after {
        let _ = write!(
            condition,
            " AND (ts_us {before} {ts} OR (ts_us = {ts} AND id {before} {id}))",
            ts = after.timestamp,
            id = text_literal(&after.id)
        );
    }
    format!(
        "SELECT ts_us, id, level, service, message, attributes FROM {database}.logs \
         WHERE {condition} ORDER BY ts_us {direction}, id {direction} LIMIT {}, {}",
        query.offset, query.limit
    )
}

/// The whole minutes inside `[from, to)`, if any.
pub fn rollup_span(from: Micros, to: Micros) -> Option<(Micros, Micros)> {
    let start = from.div_euclid(MINUTE) * MINUTE
        + if from.rem_euclid(MINUTE) == 0 {
            0
        } else {
            MINUTE
        };
    let end = to.div_euclid(MINUTE) * MINUTE;
    (start < end).then_some((start, end))
}

/// `SELECT bucket, level, service, n` grouped counts: the bucket is the start
/// of the `interval` holding the log, or 0 without an interval.
pub fn counts(database: &str, filter: &LogFilter, interval: Option<Micros>) -> String {
    let (from, to) = filter.bounds();
    let bucket = |column: &str| match interval {
        Some(interval) => format!("toInt64(intDiv({column}, {interval}) * {interval})"),
        None => "toInt64(0)".to_string(),
    };
    // Text search needs the messages; a histogram interval that is not whole
    // minutes cannot be built from minutes.
    let rollup_usable = filter.countable_by_level_and_service()
        && interval.is_none_or(|interval| interval % MINUTE == 0);
    let span = if rollup_usable {
        rollup_span(from, to)
    } else {
        None
    };
    let mut parts = Vec::new();
    let raw_ranges = match span {
        Some((start, end)) => {
            let mut conditions = vec![time_range("minute", start, end)];
            conditions.extend(dimension_conditions(filter, false));
            parts.push(format!(
                "SELECT {} AS b, level, toString(service) AS s, sum(n) AS c FROM {database}.counts_minute \
                 WHERE {} GROUP BY b, level, s",
                bucket("minute"),
                where_clause(&conditions)
            ));
            [(from, start), (end, to)]
                .into_iter()
                .filter(|(a, b)| a < b)
                .map(|(a, b)| time_range("ts_us", a, b))
                .collect::<Vec<_>>()
        }
        None => vec![time_range("ts_us", from, to)],
    };
    if !raw_ranges.is_empty() {
        let mut conditions = vec![format!("({})", raw_ranges.join(" OR "))];
        conditions.extend(dimension_conditions(filter, true));
        parts.push(format!(
            "SELECT {} AS b, level, toString(service) AS s, count() AS c FROM {database}.logs \
             WHERE {} GROUP BY b, level, s",
            bucket("ts_us"),
            where_clause(&conditions)
        ));
    }
    format!(
        "SELECT b, level, s, toUInt64(sum(c)) FROM ({}) GROUP BY b, level, s",
        parts.join(" UNION ALL ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Level, LevelSet};

    #[test]
    fn literals_hold_only_hex_digits() {
        assert_eq!(text_literal(""), "unhex('')");
        assert_eq!(text_literal("a'\\\0é"), "unhex('61275C00C3A9')");
        let literal = text_literal("'); DROP TABLE logs; --");
        let inner = &literal["unhex('".len()..literal.len() - 2];
        assert!(inner.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn rollup_span_keeps_whole_minutes_only() {
        assert_eq!(rollup_span(0, 3 * MINUTE), Some((0, 3 * MINUTE)));
        assert_eq!(rollup_span(1, 3 * MINUTE - 1), Some((MINUTE, 2 * MINUTE)));
        assert_eq!(rollup_span(1, 2 * MINUTE - 1), None);
        assert_eq!(rollup_span(10, 20), None);
    }

    #[test]
    fn counts_use_the_rollup_only_when_it_is_exact() {
        let mut filter = LogFilter {
            from: Some(MINUTE + 5),
            to: Some(10 * MINUTE),
            ..LogFilter::default()
        };
        let sql = counts("db", &filter, Some(MINUTE));
        assert!(sql.contains("counts_minute"), "{sql}");
        assert!(
            sql.contains("(ts_us >= 60000005 AND ts_us < 120000000)"),
            "{sql}"
        );
        assert!(!sql.contains("ts_us < 600000000)"), "no raw tail: {sql}");
        assert!(!counts("db", &filter, Some(1_000_000)).contains("counts_minute"));
        filter.text = Some("x".into());
        assert!(!counts("db", &filter, None).contains("counts_minute"));
    }

    #[test]
    fn logs_query_orders_and_pages() {
        let mut levels = LevelSet::default();
        levels.insert(Level::Warn);
        levels.insert(Level::Error);
        let sql = logs(
            "db",
            &LogQuery {
                filter: LogFilter {
                    levels: Some(levels),
                    service: Some("api".into()),
                    ..LogFilter::default()
                },
                limit: 10,
                offset: 20,
                order: Order::Asc,
                after: None,
            },
        );
        assert!(sql.contains("level IN (2, 3)"), "{sql}");
        assert!(sql.contains("positionCaseInsensitiveUTF8(service, unhex('617069')) > 0"));
        assert!(
            sql.ends_with("ORDER BY ts_us ASC, id ASC LIMIT 20, 10"),
            "{sql}"
        );
    }
}
