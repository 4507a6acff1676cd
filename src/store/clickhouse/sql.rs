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

use crate::domain::time::Micros;
use crate::store::filter::{LogFilter, Order};
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
    conditions
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

/// `PREWHERE …` for the conditions that decide which rows qualify, so the
/// server reads the wide columns only for granules with a match; empty when
/// there are none.
fn prewhere(filter: &LogFilter) -> String {
    let conditions = dimension_conditions(filter, true);
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" PREWHERE {}", conditions.join(" AND "))
    }
}

fn direction(order: Order) -> &'static str {
    match order {
        Order::Desc => "DESC",
        Order::Asc => "ASC",
    }
}

/// Up to `limit` logs of one time window (`[start, end)`, already inside
/// the filter's range) after skipping `offset`, in page order. Ties on the
/// timestamp fall back to the id, which ingest makes time-ordered, so pages
/// are stable and follow arrival per instance.
pub fn window_page(
    database: &str,
    filter: &LogFilter,
    (start, end): (Micros, Micros),
    order: Order,
    offset: u64,
    limit: u64,
) -> String {
    let direction = direction(order);
    format!(
        "SELECT ts_us, id, level, service, message, attributes FROM {database}.logs{} \
         WHERE {} ORDER BY ts_us {direction}, id {direction} LIMIT {offset}, {limit}",
        prewhere(filter),
        time_range("ts_us", start, end),
    )
}

/// How many logs of one window match the filter.
pub fn window_count(database: &str, filter: &LogFilter, (start, end): (Micros, Micros)) -> String {
    format!(
        "SELECT count() FROM {database}.logs{} WHERE {}",
        prewhere(filter),
        time_range("ts_us", start, end),
    )
}

/// The days (partitions) holding logs and the rows in each: part metadata,
/// answered without reading any data.
pub fn extent(database: &str) -> String {
    format!(
        "SELECT partition_id, toUInt64(sum(rows)) FROM system.parts \
         WHERE database = '{database}' AND table = 'logs' AND active GROUP BY partition_id"
    )
}

/// Bounds a read statement on the server: ClickHouse stops it (error 159)
/// rather than letting it run on after we gave up. 18.16 takes whole seconds.
pub fn with_time_limit(statement: &str, seconds: u64) -> String {
    format!(
        "{statement} SETTINGS max_execution_time = {}",
        seconds.max(1)
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
    let rollup_usable =
        filter.text.is_none() && interval.is_none_or(|interval| interval % MINUTE == 0);
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
    fn window_pages_filter_early_and_order_stably() {
        let mut levels = LevelSet::default();
        levels.insert(Level::Warn);
        levels.insert(Level::Error);
        let filter = LogFilter {
            levels: Some(levels),
            service: Some("api".into()),
            ..LogFilter::default()
        };
        let sql = window_page("db", &filter, (5, 9), Order::Asc, 20, 10);
        assert!(
            sql.contains("PREWHERE level IN (2, 3) AND positionCaseInsensitiveUTF8(service, unhex('617069')) > 0 WHERE (ts_us >= 5 AND ts_us < 9)"),
            "{sql}"
        );
        assert!(
            sql.ends_with("ORDER BY ts_us ASC, id ASC LIMIT 20, 10"),
            "{sql}"
        );
        let sql = window_page("db", &LogFilter::default(), (5, 9), Order::Desc, 0, 10);
        assert!(!sql.contains("PREWHERE"), "{sql}");
        assert!(
            sql.contains("ORDER BY ts_us DESC, id DESC LIMIT 0, 10"),
            "{sql}"
        );
        assert_eq!(
            with_time_limit("SELECT 1", 0),
            "SELECT 1 SETTINGS max_execution_time = 1"
        );
    }
}
