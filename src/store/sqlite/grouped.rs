//! `Store::grouped_counts` on the embedded store (see `store/grouped.rs`
//! for what it answers).
//!
//! The range is cut like the other counts (`decompose`): whole rollup
//! buckets from the coarsest rollup that tiles the asked buckets, raw rows
//! for the ragged edges, or raw rows throughout when the rollups cannot
//! answer (a message or attribute test, an attribute dimension, buckets the
//! rollups do not tile). Raw rows are read through the page index, which
//! holds (ts, level, service) itself, so only a message or attribute test,
//! or an attribute dimension, fetches table rows. Counting happens in a
//! hash map here, as `grouped_counts` does: SQLite's `GROUP BY` sorter was
//! slower than streaming the rows.

use super::conditions::{Conditions, Dimensions, expression_conditions, service_names};
use super::connection::sql_error;
use super::counts::{Source, decompose, widen_raw_edge};
use super::expr::attribute_value;
use super::{MINUTE, ROLLUPS};
use crate::domain::Level;
use crate::domain::time::Micros;
use crate::store::StoreError;
use crate::store::grouped::{GroupedCount, GroupedCountQuery};
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};
use std::collections::HashMap;

/// No level (not grouped by level) in a cell key.
const NO_LEVEL: u8 = u8::MAX;
/// No service (not grouped by service) in a cell key.
const NO_SERVICE: i64 = i64::MIN;

/// (bucket start, level code, service id, attribute value).
type Cell = (Micros, u8, i64, Option<String>);

pub(super) fn count(
    connection: &Connection,
    query: &GroupedCountQuery,
) -> Result<Vec<GroupedCount>, StoreError> {
    let filter = &query.filter;
    let Some(dimensions) = Dimensions::resolve(connection, filter)? else {
        return Ok(Vec::new());
    };
    let (from, to) = filter.bounds();
    let grains: Vec<(Micros, &'static str)> = if query.countable_from_rollups() {
        ROLLUPS
            .into_iter()
            .rev()
            .filter(|(grain, _)| query.tiled_by(*grain))
            .collect()
    } else {
        Vec::new()
    };
    let mut slices = Vec::new();
    decompose(from, to, &grains, &mut slices);
    if grains.iter().any(|(grain, _)| *grain == MINUTE) {
        for slice in &mut slices {
            widen_raw_edge(connection, slice, filter, &dimensions)?;
        }
    }
    let by_level = query.by_level();
    let by_service = query.by_service();
    let attribute_keys = query.attribute_keys();
    let mut cells: HashMap<Cell, u64> = HashMap::new();
    let mut add =
        |instant: Micros, level: u8, service_id: i64, attribute: Option<String>, n: u64| {
            let cell = (
                query.bucket_of(instant),
                if by_level { level } else { NO_LEVEL },
                if by_service { service_id } else { NO_SERVICE },
                attribute,
            );
            *cells.entry(cell).or_default() += n;
        };
    for (source, start, end) in slices {
        let mut conditions = Conditions::default();
        let (table, time_column, columns) = match source {
            Source::Raw if attribute_keys.is_some() => (
                "logs INDEXED BY logs_page",
                "ts",
                "ts, level, service_id, 1, attributes",
            ),
            Source::Raw => (
                "logs INDEXED BY logs_page",
                "ts",
                "ts, level, service_id, 1",
            ),
            Source::Rollup(table) => (table, "bucket", "bucket, level, service_id, n"),
        };
        conditions.push(
            format!("{time_column} >= ? AND {time_column} < ?"),
            [Value::Integer(start), Value::Integer(end)],
        );
        dimensions.conditions(&mut conditions, filter, "");
        expression_conditions(connection, &mut conditions, &filter.expr, "")?;
        if let (Source::Raw, Some(text)) = (&source, &filter.text) {
            conditions.push("oglog_contains(message, ?)", [Value::Text(text.clone())]);
        }
        let sql = format!(
            "SELECT {columns} FROM {table} {}",
            conditions.where_clause()
        );
        let mut statement = connection.prepare_cached(&sql).map_err(sql_error)?;
        let mut rows = statement
            .query(params_from_iter(conditions.params.iter()))
            .map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            let instant: i64 = row.get(0).map_err(sql_error)?;
            let level: u8 = row.get(1).map_err(sql_error)?;
            let service_id: i64 = row.get(2).map_err(sql_error)?;
            let n: i64 = row.get(3).map_err(sql_error)?;
            let attribute = match attribute_keys {
                Some(keys) => {
                    let json = row
                        .get_ref(4)
                        .map_err(sql_error)?
                        .as_str_or_null()
                        .ok()
                        .flatten();
                    json.and_then(|json| {
                        keys.iter()
                            .find_map(|key| attribute_value(json, key))
                            .map(|value| value.into_owned())
                    })
                }
                None => None,
            };
            add(instant, level, service_id, attribute, n.max(0) as u64);
        }
    }
    let names = if by_service {
        service_names(connection)?
    } else {
        HashMap::new()
    };
    let rows = cells
        .into_iter()
        .map(|((bucket_start, level, service_id, attribute), count)| {
            let service = if by_service {
                Some(names.get(&service_id).cloned().ok_or_else(|| {
                    StoreError::Internal(format!("service id {service_id} has no name"))
                })?)
            } else {
                None
            };
            Ok(GroupedCount {
                bucket_start,
                other: false,
                level: Level::from_code(level),
                service,
                attribute,
                count,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(GroupedCount::normalize(rows, query.limit_groups))
}
