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
use super::schema::Features;
use crate::domain::time::Micros;
use crate::store::filter::{LogFilter, LogKey, LogQuery, Order};
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

/// Conditions on level, service, message and the query language's
/// expression, valid on `logs` (and, without the message, on the rollups:
/// they are read only when the expression tests levels and services alone,
/// `LogFilter::countable_by_level_and_service`).
fn dimension_conditions(filter: &LogFilter, with_text: bool, features: Features) -> Vec<String> {
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
        conditions.push(text_condition(text, features));
    }
    if !filter.expr.is_everything() {
        conditions.push(expr_condition(&filter.expr));
    }
    conditions
}

/// Every condition of `filter` on `logs`, time included (facets and
/// attribute keys, which read every matching log).
pub fn filter_condition(filter: &LogFilter, features: Features) -> String {
    let (from, to) = filter.bounds();
    let mut conditions = vec![time_range("ts_us", from, to)];
    conditions.extend(dimension_conditions(filter, true, features));
    where_clause(&conditions)
}

/// Past the cursor `after` in page order: `(ts_us, id)` beyond it, ids
/// compared as bytes, as pages order them.
fn after_condition(after: &LogKey, order: Order) -> String {
    let beyond = match order {
        Order::Desc => "<",
        Order::Asc => ">",
    };
    format!(
        "(ts_us {beyond} {ts} OR (ts_us = {ts} AND id {beyond} {id}))",
        ts = after.timestamp,
        id = text_literal(&after.id)
    )
}

/// The message contains `needle` (lowercase), ignoring case. Servers with
/// the message's n-gram skip index get the form that index answers:
/// `lowerUTF8(message) LIKE '%needle%'` with `%`, `_` and `\` escaped, so it
/// still means a plain substring; older ones scan with
/// `positionCaseInsensitiveUTF8`.
fn text_condition(needle: &str, features: Features) -> String {
    if features.text_index {
        let mut pattern = String::with_capacity(needle.len() + 2);
        pattern.push('%');
        for c in needle.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        format!("lowerUTF8(message) LIKE {}", text_literal(&pattern))
    } else {
        format!(
            "positionCaseInsensitiveUTF8(message, {}) > 0",
            text_literal(needle)
        )
    }
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
fn prewhere(filter: &LogFilter, features: Features) -> String {
    let conditions = dimension_conditions(filter, true, features);
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
/// the filter's range) matching `query` after skipping `offset`, in the
/// query's order, past its cursor (`after`) when it has one. Ties on the
/// timestamp fall back to the id, which ingest makes time-ordered, so pages
/// are stable and follow arrival per instance.
///
/// With a filter, the page's keys are found first reading only the key and
/// filter columns, and only the granules holding those keys are then read
/// whole (`(ts_us, id) IN (…)` is answered from the primary index): a
/// window of a million rows with a hundred matches reads the messages of a
/// hundred logs, not of every match. Without one, the window is about the
/// page and is read directly.
pub fn window_page(
    database: &str,
    features: Features,
    query: &LogQuery,
    (start, end): (Micros, Micros),
    (offset, limit): (u64, u64),
    distributed: bool,
) -> String {
    let (filter, order) = (&query.filter, query.order);
    // Over a Distributed table the keys are found once, on this server, and
    // the set sent to every shard.
    let in_keys = if distributed { "GLOBAL IN" } else { "IN" };
    let direction = direction(order);
    let range = window_range((start, end), query);
    let order_limit = format!("ORDER BY ts_us {direction}, id {direction} LIMIT {offset}, {limit}");
    let prewhere = prewhere(filter, features);
    if prewhere.is_empty() {
        return format!("SELECT {LOG_COLUMNS} FROM {database}.logs WHERE {range} {order_limit}");
    }
    format!(
        "SELECT {LOG_COLUMNS} FROM {database}.logs WHERE {range} AND (ts_us, id) {in_keys} \
         (SELECT ts_us, id FROM {database}.logs{prewhere} WHERE {range} {order_limit}) \
         ORDER BY ts_us {direction}, id {direction}"
    )
}

/// The columns of a log, in the order the store reads them.
pub const LOG_COLUMNS: &str = "ts_us, id, level, service, message, attributes";

/// The columns an insert writes: [`LOG_COLUMNS`], then the attributes as
/// the parallel arrays filters and facets read (schema version 5).
pub const INSERT_COLUMNS: &str =
    "ts_us, id, level, service, message, attributes, attr_keys, attr_values";

/// How many logs of one window match the query (past its cursor).
pub fn window_count(
    database: &str,
    features: Features,
    query: &LogQuery,
    window: (Micros, Micros),
) -> String {
    format!(
        "SELECT count() FROM {database}.logs{} WHERE {}",
        prewhere(&query.filter, features),
        window_range(window, query),
    )
}

/// The window's time range, and the rows past the query's cursor in it.
fn window_range((start, end): (Micros, Micros), query: &LogQuery) -> String {
    let range = time_range("ts_us", start, end);
    match &query.after {
        Some(after) => format!("{range} AND {}", after_condition(after, query.order)),
        None => range,
    }
}

/// Each part of `logs` with its rows and the first and last second it
/// holds: metadata, answered without reading any data.
/// On a cluster, the parts of every host's local table.
pub fn extent(database: &str, cluster: Option<&str>) -> String {
    let (parts, table) = match cluster {
        Some(cluster) => (format!("cluster('{cluster}', system, parts)"), "logs_local"),
        None => ("system.parts".to_string(), "logs"),
    };
    format!(
        "SELECT toUInt64(rows), toUInt64(toUInt32(min_time)), toUInt64(toUInt32(max_time)) \
         FROM {parts} WHERE database = '{database}' AND table = '{table}' AND active"
    )
}

/// Which of `ids` are stored; they are known to lie in `[from, to]`, which
/// the time-first key turns into a read of those granules only.
pub fn stored_ids(database: &str, ids: &[&str], (from, to): (Micros, Micros)) -> String {
    let list: Vec<String> = ids.iter().map(|id| text_literal(id)).collect();
    format!(
        "SELECT DISTINCT id FROM {database}.logs \
         WHERE ts_us >= {from} AND ts_us <= {to} AND id IN ({})",
        list.join(", ")
    )
}

/// The hosts of `cluster` (`shard_num`, address, native port).
pub fn cluster_hosts(cluster: &str) -> String {
    format!(
        "SELECT toUInt32(shard_num), host_address, toUInt16(port) FROM system.clusters \
         WHERE cluster = '{cluster}' ORDER BY shard_num, replica_num"
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

pub const HOUR: Micros = 60 * MINUTE;

/// The whole `width`s inside `[from, to)`, if any.
pub fn whole_span(from: Micros, to: Micros, width: Micros) -> Option<(Micros, Micros)> {
    let start = from.div_euclid(width) * width
        + if from.rem_euclid(width) == 0 {
            0
        } else {
            width
        };
    let end = to.div_euclid(width) * width;
    (start < end).then_some((start, end))
}

/// What counts are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// Level and service, over the whole range (stats, services, facets).
    LevelService,
    /// The start of the `interval` holding the log, and level (histograms).
    BucketLevel(Micros),
}

/// A rollup table counts can come from.
struct Source {
    table: &'static str,
    column: &'static str,
    width: Micros,
}

/// Coarsest first.
const SOURCES: [Source; 2] = [
    Source {
        table: "counts_hour",
        column: "hour",
        width: HOUR,
    },
    Source {
        table: "counts_minute",
        column: "minute",
        width: MINUTE,
    },
];

/// `SELECT bucket, level, service, n` counts. Each part of `[from, to)` is
/// read from the coarsest source that is exact for it: the hour rollup for
/// the whole hours, the minute rollup for the whole minutes around them, the
/// raw logs for the ragged edges. Rollups are summed (`sum(n)`), so parts
/// the server has not merged yet count right. A text filter needs the
/// messages (so does an expression testing more than levels and services),
/// and a histogram interval that is not whole hours (minutes)
/// cannot be built from hours (minutes).
pub fn counts(
    database: &str,
    features: Features,
    filter: &LogFilter,
    grouping: Grouping,
) -> String {
    let (from, to) = filter.bounds();
    // `materialize`: a constant column (`''`, `0`) read through a
    // `Distributed` table makes 18.16 refuse the query ("Cannot convert
    // column s because it is non constant in source stream but must be
    // constant in result", code 171): the remote shards send it as a full
    // column while the initiator expects a constant.
    let columns = |column: &str| match grouping {
        Grouping::LevelService => {
            "materialize(toInt64(0)) AS b, level, toString(service) AS s".to_string()
        }
        Grouping::BucketLevel(interval) => format!(
            "toInt64(intDiv({column}, {interval}) * {interval}) AS b, level, materialize('') AS s"
        ),
    };
    // The ranges still to count, narrowed source by source.
    let mut left = vec![(from, to)];
    let mut parts = Vec::new();
    for source in &SOURCES {
        let usable = filter.countable_by_level_and_service()
            && match grouping {
                Grouping::LevelService => true,
                Grouping::BucketLevel(interval) => interval % source.width == 0,
            };
        if !usable {
            continue;
        }
        let mut covered = Vec::new();
        let mut rest = Vec::new();
        for (a, b) in left {
            match whole_span(a, b, source.width) {
                Some((start, end)) => {
                    covered.push(time_range(source.column, start, end));
                    rest.extend([(a, start), (end, b)].into_iter().filter(|(x, y)| x < y));
                }
                None => rest.push((a, b)),
            }
        }
        left = rest;
        if covered.is_empty() {
            continue;
        }
        let mut conditions = vec![format!("({})", covered.join(" OR "))];
        conditions.extend(dimension_conditions(filter, false, features));
        parts.push(format!(
            "SELECT {}, sum(n) AS c FROM {database}.{} WHERE {} GROUP BY b, level, s",
            columns(source.column),
            source.table,
            where_clause(&conditions)
        ));
    }
    if !left.is_empty() {
        let ranges: Vec<String> = left
            .iter()
            .map(|(a, b)| time_range("ts_us", *a, *b))
            .collect();
        let mut conditions = vec![format!("({})", ranges.join(" OR "))];
        conditions.extend(dimension_conditions(filter, true, features));
        parts.push(format!(
            "SELECT {}, count() AS c FROM {database}.logs WHERE {} GROUP BY b, level, s",
            columns("ts_us"),
            where_clause(&conditions)
        ));
    }
    format!(
        "SELECT b, level, s, toUInt64(sum(c)) FROM ({}) GROUP BY b, level, s",
        parts.join(" UNION ALL ")
    )
}

/// A statement with its values elided, for logs: quoted strings become
/// `'?'`, numbers `?`, white space one space.
pub fn shape(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len().min(4096));
    let mut chars = statement.chars().peekable();
    let mut previous_is_word = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (c, escaped) {
                        ('\\', false) => escaped = true,
                        ('\'', false) => break,
                        _ => escaped = false,
                    }
                }
                out.push_str("'?'");
                previous_is_word = false;
            }
            c if c.is_ascii_digit() && !previous_is_word => {
                while chars
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.')
                {
                    chars.next();
                }
                out.push('?');
                previous_is_word = false;
            }
            c if c.is_whitespace() => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                out.push(' ');
                previous_is_word = false;
            }
            c => {
                out.push(c);
                previous_is_word = c.is_alphanumeric() || c == '_';
            }
        }
        if out.len() > 4000 {
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_shape_keeps_the_sql_and_drops_the_values() {
        assert_eq!(
            super::shape(
                "SELECT count() FROM db.logs\n   WHERE ts_us >= 1700000000 AND positionCaseInsensitive(message, unhex('74696d65')) > 0 AND id = 'a\\'b' AND toInt64(x1) = 3.5"
            ),
            "SELECT count() FROM db.logs WHERE ts_us >= ? AND positionCaseInsensitive(message, unhex('?')) > ? AND id = '?' AND toInt64(x1) = ?"
        );
    }

    use super::*;
    use crate::domain::{Level, LevelSet};

    const OLD: Features = Features {
        low_cardinality: false,
        codecs: false,
        text_index: false,
    };

    #[test]
    fn text_is_searched_the_way_the_server_can_index() {
        let modern = Features {
            low_cardinality: true,
            codecs: true,
            text_index: true,
        };
        assert_eq!(
            text_condition("a%b_c\\d", modern),
            format!(
                "lowerUTF8(message) LIKE {}",
                text_literal("%a\\%b\\_c\\\\d%")
            )
        );
        assert_eq!(
            text_condition("abc", OLD),
            format!(
                "positionCaseInsensitiveUTF8(message, {}) > 0",
                text_literal("abc")
            )
        );
    }

    #[test]
    fn literals_hold_only_hex_digits() {
        assert_eq!(text_literal(""), "unhex('')");
        assert_eq!(text_literal("a'\\\0é"), "unhex('61275C00C3A9')");
        let literal = text_literal("'); DROP TABLE logs; --");
        let inner = &literal["unhex('".len()..literal.len() - 2];
        assert!(inner.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn whole_spans_keep_whole_widths_only() {
        let span = |a, b| whole_span(a, b, MINUTE);
        assert_eq!(span(0, 3 * MINUTE), Some((0, 3 * MINUTE)));
        assert_eq!(span(1, 3 * MINUTE - 1), Some((MINUTE, 2 * MINUTE)));
        assert_eq!(span(1, 2 * MINUTE - 1), None);
        assert_eq!(span(10, 20), None);
    }

    #[test]
    fn counts_use_the_coarsest_exact_source_for_each_part_of_the_range() {
        let mut filter = LogFilter {
            from: Some(HOUR - MINUTE + 5),
            to: Some(3 * HOUR + 2 * MINUTE),
            ..LogFilter::default()
        };
        let sql = counts("db", OLD, &filter, Grouping::BucketLevel(MINUTE));
        assert!(
            sql.contains(
                "FROM db.counts_minute WHERE ((minute >= 3600000000 AND minute < 10920000000))"
            ),
            "no hours for minute buckets: {sql}"
        );
        assert!(!sql.contains("counts_hour"), "{sql}");
        let sql = counts("db", OLD, &filter, Grouping::LevelService);
        assert!(
            sql.contains("FROM db.counts_hour WHERE ((hour >= 3600000000 AND hour < 10800000000))"),
            "{sql}"
        );
        assert!(
            sql.contains(
                "FROM db.counts_minute WHERE ((minute >= 10800000000 AND minute < 10920000000))"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("(ts_us >= 3540000005 AND ts_us < 3600000000)"),
            "the ragged edge from the logs: {sql}"
        );
        assert!(sql.contains("toString(service) AS s"), "{sql}");
        let sql = counts("db", OLD, &filter, Grouping::BucketLevel(HOUR));
        assert!(
            sql.contains("materialize('') AS s") && !sql.contains("toString(service)"),
            "{sql}"
        );
        assert!(!counts("db", OLD, &filter, Grouping::BucketLevel(1_000_000)).contains("counts_"));
        filter.text = Some("x".into());
        assert!(!counts("db", OLD, &filter, Grouping::LevelService).contains("counts_"));
    }

    #[test]
    fn window_pages_filter_early_and_order_stably() {
        let mut levels = LevelSet::default();
        levels.insert(Level::Warn);
        levels.insert(Level::Error);
        let query = |filter, order| LogQuery {
            filter,
            limit: 0,
            offset: 0,
            order,
            after: None,
        };
        let filter = LogFilter {
            levels: Some(levels),
            service: Some("api".into()),
            ..LogFilter::default()
        };
        let sql = window_page(
            "db",
            OLD,
            &query(filter, Order::Asc),
            (5, 9),
            (20, 10),
            false,
        );
        assert!(
            sql.contains("(SELECT ts_us, id FROM db.logs PREWHERE level IN (2, 3) AND positionCaseInsensitiveUTF8(service, unhex('617069')) > 0 WHERE (ts_us >= 5 AND ts_us < 9) ORDER BY ts_us ASC, id ASC LIMIT 20, 10)"),
            "{sql}"
        );
        assert!(sql.ends_with(") ORDER BY ts_us ASC, id ASC"), "{sql}");
        let sql = window_page(
            "db",
            OLD,
            &query(LogFilter::default(), Order::Desc),
            (5, 9),
            (0, 10),
            true,
        );
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

    #[test]
    fn cursors_and_the_language_narrow_window_pages_and_counts() {
        let filter = LogFilter {
            expr: crate::domain::query::parse("region:eu*").unwrap(),
            ..LogFilter::default()
        };
        let after = LogKey {
            timestamp: 7,
            id: "b".into(),
        };
        let mut query = LogQuery {
            filter: filter.clone(),
            limit: 10,
            offset: 0,
            order: Order::Desc,
            after: Some(after),
        };
        let sql = window_page("db", OLD, &query, (5, 9), (0, 10), false);
        assert!(
            sql.contains("PREWHERE (has(attr_keys, unhex('726567696F6E'))"),
            "the expression decides which rows qualify: {sql}"
        );
        assert!(
            sql.contains("(ts_us < 7 OR (ts_us = 7 AND id < unhex('62')))"),
            "{sql}"
        );
        query.order = Order::Asc;
        let sql = window_count("db", OLD, &query, (5, 9));
        assert!(
            sql.contains("(ts_us > 7 OR (ts_us = 7 AND id > unhex('62')))"),
            "{sql}"
        );
        let span = LogFilter {
            from: Some(0),
            to: Some(2 * HOUR),
            ..filter
        };
        assert!(
            !counts("db", OLD, &span, Grouping::LevelService).contains("counts_"),
            "attributes are not in the rollups"
        );
        let by_level = LogFilter {
            expr: crate::domain::query::parse("level:error service:api").unwrap(),
            ..span
        };
        let sql = counts("db", OLD, &by_level, Grouping::LevelService);
        assert!(sql.contains("FROM db.counts_hour WHERE"), "{sql}");
        assert!(sql.contains("(level IN (3))"), "{sql}");
    }
}
