//! `Store::grouped_counts` on ClickHouse (see `store/grouped.rs` for what
//! it answers): one statement, the server counting. Like `counts.rs`, each
//! part of the range comes from the coarsest exact source: the hour and
//! minute rollups for whole buckets when they tile the asked buckets and
//! the query needs only levels and services, the logs (`GROUP BY` the
//! bucket and the dimensions, the attribute read from the attribute
//! arrays) for everything else. The group limit is applied here after.

use super::conditions::{dimension_conditions, logs_table, logs_time_range};
use super::counts::whole_span;
use super::pool::{Pool, ReadBudget};
use super::rows::Cells;
use super::schema::Features;
use super::sql::{HOUR, MINUTE, text_literal, time_range, where_clause};
use crate::domain::Level;
use crate::domain::time::Micros;
use crate::store::StoreError;
use crate::store::grouped::{GroupedCount, GroupedCountQuery};

pub async fn grouped_counts(
    pool: &Pool,
    query: &GroupedCountQuery,
) -> Result<Vec<GroupedCount>, StoreError> {
    let budget = ReadBudget::new(pool.options.read_timeout);
    let rows: Vec<Cells> = pool
        .read(&budget, &statement(pool.database(), pool.features(), query))
        .await?;
    let mut counts = Vec::with_capacity(rows.len());
    for mut row in rows {
        let bucket_start = row.int()?;
        let level = row.count()?;
        let service = row.string()?;
        let attribute = row.string()?;
        let present = row.count()? != 0;
        let count = row.count()?;
        counts.push(GroupedCount {
            bucket_start,
            other: false,
            level: if query.by_level() {
                Level::from_code(u8::try_from(level).unwrap_or(u8::MAX))
            } else {
                None
            },
            service: query.by_service().then_some(service),
            attribute: present.then_some(attribute),
            count,
        });
    }
    Ok(GroupedCount::normalize(counts, query.limit_groups))
}

/// A rollup counts can come from; coarsest first.
const ROLLUPS: [(&str, &str, Micros); 2] = [
    ("tenant_counts_hour", "hour", HOUR),
    ("tenant_counts_minute", "minute", MINUTE),
];

/// `SELECT b, l, s, a, p, n`: bucket start, level code, service, attribute
/// value, whether the log had the attribute, count.
pub fn statement(database: &str, features: Features, query: &GroupedCountQuery) -> String {
    let filter = &query.filter;
    let (from, to) = filter.bounds();
    let columns = |column: &str, raw: bool| {
        let bucket = match query.interval {
            Some(width) if width > 0 => {
                let origin = query.origin.rem_euclid(width);
                // Floored modulo (`%` keeps the dividend's sign), all in
                // Int64: 18.16 types `Int64 % 3600000000` by the literal's
                // UInt32 and wraps.
                let (t, o, w) = (
                    format!("toInt64({column})"),
                    format!("toInt64({origin})"),
                    format!("toInt64({width})"),
                );
                format!("{t} - ((({t} - {o}) % {w}) + {w}) % {w}")
            }
            _ => format!("materialize(toInt64({from}))"),
        };
        // `materialize`: constants through `Distributed` on 18.16, see
        // `counts::statement`.
        let level = if query.by_level() {
            "toUInt8(level)".to_string()
        } else {
            "materialize(toUInt8(0))".to_string()
        };
        let service = if query.by_service() {
            "toString(service)".to_string()
        } else {
            "materialize('')".to_string()
        };
        let (attribute, present) = match query.attribute_keys() {
            Some(keys) if raw && !keys.is_empty() => (first_value(keys), any_present(keys)),
            _ => (
                "materialize('')".to_string(),
                "materialize(toUInt8(0))".to_string(),
            ),
        };
        format!("{bucket} AS b, {level} AS l, {service} AS s, {attribute} AS a, {present} AS p")
    };
    let mut left = vec![(from, to)];
    let mut parts = Vec::new();
    if query.countable_from_rollups() {
        for (table, column, width) in ROLLUPS {
            if !query.tiled_by(width) {
                continue;
            }
            let mut covered = Vec::new();
            let mut rest = Vec::new();
            for (a, b) in left {
                match whole_span(a, b, width) {
                    Some((start, end)) => {
                        covered.push(time_range(column, start, end));
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
                "SELECT {}, sum(n) AS c FROM {database}.{table} WHERE {} GROUP BY b, l, s, a, p",
                columns(column, false),
                where_clause(&conditions)
            ));
        }
    }
    if !left.is_empty() {
        let ranges: Vec<String> = left.iter().map(|(a, b)| logs_time_range(*a, *b)).collect();
        let mut conditions = vec![format!("({})", ranges.join(" OR "))];
        conditions.extend(dimension_conditions(filter, true, features));
        parts.push(format!(
            "SELECT {}, count() AS c FROM {database}.{} WHERE {} GROUP BY b, l, s, a, p",
            columns("ts_us", true),
            logs_table(filter),
            where_clause(&conditions)
        ));
    }
    format!(
        "SELECT b, l, s, a, p, toUInt64(sum(c)) FROM ({}) GROUP BY b, l, s, a, p",
        parts.join(" UNION ALL ")
    )
}

/// The value of the first of `keys` a log has, `''` for none.
fn first_value(keys: &[String]) -> String {
    keys.iter().rev().fold("''".to_string(), |otherwise, key| {
        let key = text_literal(key);
        format!("if(has(attr_keys, {key}), attr_values[indexOf(attr_keys, {key})], {otherwise})")
    })
}

fn any_present(keys: &[String]) -> String {
    let tests: Vec<String> = keys
        .iter()
        .map(|key| format!("has(attr_keys, {})", text_literal(key)))
        .collect();
    format!("toUInt8({})", tests.join(" OR "))
}

#[cfg(test)]
mod tests {
    use super::super::schema::OLD_SERVER as OLD;
    use super::*;
    use crate::store::filter::LogFilter;
    use crate::store::grouped::Dimension;

    fn query(interval: Micros, origin: Micros, group_by: Vec<Dimension>) -> GroupedCountQuery {
        GroupedCountQuery {
            filter: LogFilter {
                from: Some(HOUR - MINUTE + 5),
                to: Some(3 * HOUR + 2 * MINUTE),
                ..LogFilter::default()
            },
            interval: Some(interval),
            origin,
            group_by,
            limit_groups: None,
        }
    }

    #[test]
    fn rollups_serve_only_buckets_they_tile_and_never_attributes() {
        let sql = statement("db", OLD, &query(HOUR, 0, vec![Dimension::Service]));
        assert!(sql.contains("FROM db.tenant_counts_hour"), "{sql}");
        assert!(sql.contains("FROM db.tenant_counts_minute"), "{sql}");
        assert!(sql.contains("FROM db.logs"), "ragged edges: {sql}");
        let sql = statement("db", OLD, &query(HOUR, 30 * MINUTE, vec![Dimension::Level]));
        assert!(
            !sql.contains("counts_hour") && sql.contains("counts_minute"),
            "{sql}"
        );
        let sql = statement("db", OLD, &query(MINUTE, 7, vec![Dimension::Level]));
        assert!(!sql.contains("counts_"), "origin off the minute: {sql}");
        let sql = statement(
            "db",
            OLD,
            &query(
                HOUR,
                0,
                vec![Dimension::Attribute(vec!["a.b".into(), "a_b".into()])],
            ),
        );
        assert!(!sql.contains("counts_"), "{sql}");
        assert!(
            sql.contains(&format!(
                "if(has(attr_keys, {a}), attr_values[indexOf(attr_keys, {a})], if(has(attr_keys, {b})",
                a = text_literal("a.b"),
                b = text_literal("a_b")
            )),
            "{sql}"
        );
    }
}
