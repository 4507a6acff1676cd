//! Counts by bucket, level and service: from the rollups for whole minutes,
//! hours and days of a range, from the rows at its ragged edges.

use super::conditions::{Conditions, Dimensions, expression_conditions, service_names};
use super::connection::sql_error;
use super::{MINUTE, ROLLUPS};
use crate::domain::Level;
use crate::domain::time::Micros;
use crate::store::filter::{HistogramQuery, LogFilter};
use crate::store::{BucketCount, LevelServiceCount, StoreError};
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};
use std::collections::HashMap;

/// Where the counts of one time slice come from.
#[derive(Debug, PartialEq)]
pub(super) enum Source {
    Raw,
    Rollup(&'static str),
}

/// Splits `[from, to)` into slices served by the coarsest rollup whose buckets
/// fit entirely inside, with raw rows only for the ragged edges. `grains` is
/// ordered coarse to fine.
pub(super) fn decompose(
    from: Micros,
    to: Micros,
    grains: &[(Micros, &'static str)],
    out: &mut Vec<(Source, Micros, Micros)>,
) {
    if from >= to {
        return;
    }
    let Some(((grain, table), finer)) = grains.split_first() else {
        out.push((Source::Raw, from, to));
        return;
    };
    let start = from.div_euclid(*grain) * grain
        + if from.rem_euclid(*grain) == 0 {
            0
        } else {
            *grain
        };
    let end = to.div_euclid(*grain) * grain;
    if start >= end {
        decompose(from, to, finer, out);
        return;
    }
    decompose(from, start, finer, out);
    out.push((Source::Rollup(table), start, end));
    decompose(end, to, finer, out);
}

/// A raw slice lies inside one minute. When the rest of that minute holds no
/// log at all, the minute's rollup row counts exactly the slice, so it is
/// read instead of the logs. This matters at the end of "the last N hours",
/// which is the current minute: under heavy ingest it held up to a million
/// rows (a 24 h histogram took 450 ms right after a bulk load), while logs
/// stamped later than now, which would keep it raw, are rare.
pub(super) fn widen_raw_edge(
    connection: &Connection,
    slice: &mut (Source, Micros, Micros),
    filter: &LogFilter,
    dimensions: &Dimensions,
) -> Result<(), StoreError> {
    let (Source::Raw, start, end) = *slice else {
        return Ok(());
    };
    let minute = start - start.rem_euclid(MINUTE);
    let minute_end = minute + MINUTE;
    if end > minute_end {
        return Ok(());
    }
    // Only logs the counts would include matter: the same tenant, level and
    // service conditions (the rollups answer exactly those).
    let mut conditions = Conditions::default();
    dimensions.conditions(&mut conditions, filter, "");
    let scope = conditions.sql.join(" AND ");
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM logs INDEXED BY logs_page WHERE {scope} AND ts >= ? AND ts < ?)
             OR EXISTS (SELECT 1 FROM logs INDEXED BY logs_page WHERE {scope} AND ts >= ? AND ts < ?)"
    );
    let mut params = conditions.params.clone();
    params.extend([Value::Integer(minute), Value::Integer(start)]);
    params.extend(conditions.params);
    params.extend([Value::Integer(end), Value::Integer(minute_end)]);
    let mut any = connection.prepare_cached(&sql).map_err(sql_error)?;
    let outside: bool = any
        .query_row(params_from_iter(params.iter()), |row| row.get(0))
        .map_err(sql_error)?;
    if !outside {
        *slice = (Source::Rollup("counts_minute"), minute, minute_end);
    }
    Ok(())
}

/// Rollups usable for counts grouped by `interval` (no grouping: any rollup).
pub(super) fn usable_grains(
    filter: &LogFilter,
    interval: Option<Micros>,
) -> Vec<(Micros, &'static str)> {
    if !filter.countable_by_level_and_service() {
        return Vec::new(); // message and attribute tests need the rows themselves
    }
    ROLLUPS
        .into_iter()
        .rev()
        .filter(|(grain, _)| interval.is_none_or(|i| i % grain == 0))
        .collect()
}

/// Reads the counts of every slice and hands each row to `add`: (bucket
/// start, level code, service id, count). Grouped by `interval`, the service
/// id is 0 (histograms do not split by service); without, the bucket is 0. Rows are aggregated by the
/// caller in a hash map rather than by SQL `GROUP BY`, whose sorter cost
/// ~40 ms over a week of hourly rollups (50k rows); streaming them is a few ms.
pub(super) fn grouped_counts(
    connection: &Connection,
    filter: &LogFilter,
    interval: Option<Micros>,
    mut add: impl FnMut(Micros, u8, i64, u64),
) -> Result<(), StoreError> {
    let Some(dimensions) = Dimensions::resolve(connection, filter)? else {
        return Ok(());
    };
    let (from, to) = filter.bounds();
    let grains = usable_grains(filter, interval);
    let mut slices = Vec::new();
    decompose(from, to, &grains, &mut slices);
    if grains.iter().any(|(grain, _)| *grain == MINUTE) {
        for slice in &mut slices {
            widen_raw_edge(connection, slice, filter, &dimensions)?;
        }
    }
    for (source, start, end) in slices {
        let mut conditions = Conditions::default();
        let (table, time_column, count) = match source {
            // One row per log; without a text filter only the index is read.
            Source::Raw => ("logs INDEXED BY logs_page", "ts", "1"),
            Source::Rollup(table) => (table, "bucket", "n"),
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
        let sql = match (interval, &source) {
            // Summed in key order, no sort; buckets are widened below.
            (Some(_), Source::Rollup(_)) => format!(
                "SELECT bucket, level, 0, SUM(n) FROM {table} {} GROUP BY bucket, level",
                conditions.where_clause()
            ),
            (Some(_), Source::Raw) => format!(
                "SELECT ts, level, 0, 1 FROM {table} {}",
                conditions.where_clause()
            ),
            (None, _) => format!(
                "SELECT 0, level, service_id, {count} FROM {table} {}",
                conditions.where_clause()
            ),
        };
        let mut statement = connection.prepare_cached(&sql).map_err(sql_error)?;
        let mut rows = statement
            .query(params_from_iter(conditions.params.iter()))
            .map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            let instant: i64 = row.get(0).map_err(sql_error)?;
            let bucket = interval.map_or(0, |interval| instant - instant.rem_euclid(interval));
            let level: u8 = row.get(1).map_err(sql_error)?;
            let service_id: i64 = row.get(2).map_err(sql_error)?;
            let n: i64 = row.get(3).map_err(sql_error)?;
            add(bucket, level, service_id, n.max(0) as u64);
        }
    }
    Ok(())
}

/// Counts grouped by level and service: the source of stats and services.
pub(super) fn level_service_counts(
    connection: &Connection,
    filter: &LogFilter,
) -> Result<Vec<LevelServiceCount>, StoreError> {
    let mut totals: HashMap<(u8, i64), u64> = HashMap::new();
    grouped_counts(connection, filter, None, |_, level, service_id, n| {
        *totals.entry((level, service_id)).or_default() += n;
    })?;
    if totals.is_empty() {
        return Ok(Vec::new());
    }
    let names = service_names(connection)?;
    Ok(totals
        .into_iter()
        .filter_map(|((level, service_id), count)| {
            Some(LevelServiceCount {
                level: Level::from_code(level)?,
                service: names.get(&service_id)?.clone(),
                count,
            })
        })
        .collect())
}

/// Counts per bucket and level (a histogram's cells).
pub(super) fn bucket_counts(
    connection: &Connection,
    query: &HistogramQuery,
) -> Result<Vec<BucketCount>, StoreError> {
    let mut cells = Vec::new();
    grouped_counts(
        connection,
        &query.filter,
        Some(query.interval),
        |bucket, level, _, n| {
            if let Some(level) = Level::from_code(level) {
                cells.push((bucket, level, n));
            }
        },
    )?;
    Ok(BucketCount::summed(cells))
}
