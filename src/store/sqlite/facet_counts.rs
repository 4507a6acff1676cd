//! Facets and attribute keys: counted from the facet blocks and the newest
//! rows no block covers yet.

use super::conditions::{Conditions, Dimensions, expression_conditions, service_names};
use super::connection::sql_error;
use super::counts::grouped_counts;
use super::{expr, facet_blocks};
use crate::domain::Level;
use crate::domain::time::Micros;
use crate::domain::query::{FieldName, TextField};
use crate::store::StoreError;
use crate::store::facets::{self, FacetQuery, Facets, KeyCount, Tally};
use crate::store::filter::LogFilter;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use std::collections::HashMap;

/// Calls `each` with (level code, service id, attributes JSON) of every log
/// matching `filter`: all of them through the page index, or (`seq_from`)
/// those from that `seq` on, by rowid (the logs no facet block covers yet).
pub(super) fn for_each_matching(
    connection: &Connection,
    filter: &LogFilter,
    seq_from: Option<i64>,
    mut each: impl FnMut(u8, i64, Option<&str>),
) -> Result<(), StoreError> {
    let Some(dimensions) = Dimensions::resolve(connection, filter)? else {
        return Ok(());
    };
    let mut conditions = Conditions::default();
    let (from, to) = filter.bounds();
    conditions.push(
        "ts >= ? AND ts < ?",
        [Value::Integer(from), Value::Integer(to)],
    );
    let source = match seq_from {
        Some(seq) => {
            conditions.push("seq >= ?", [Value::Integer(seq)]);
            tail_source(connection, seq, from)?
        }
        None => "logs INDEXED BY logs_page",
    };
    dimensions.conditions(&mut conditions, filter, "");
    expression_conditions(connection, &mut conditions, &filter.expr, "")?;
    if let Some(text) = &filter.text {
        conditions.push("oglog_contains(message, ?)", [Value::Text(text.clone())]);
    }
    let sql = format!(
        "SELECT level, service_id, attributes FROM {source} {}",
        conditions.where_clause()
    );
    let mut statement = connection.prepare_cached(&sql).map_err(sql_error)?;
    let mut rows = statement
        .query(params_from_iter(conditions.params.iter()))
        .map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let level: u8 = row.get(0).map_err(sql_error)?;
        let service_id: i64 = row.get(1).map_err(sql_error)?;
        let attributes = row
            .get_ref(2)
            .map_err(sql_error)?
            .as_str_or_null()
            .ok()
            .flatten();
        each(level, service_id, attributes);
    }
    Ok(())
}

/// How to read the rows from `seq_from` on (the logs no facet block holds
/// yet) for a range starting at `from`. Usually the tail is a few thousand
/// logs and reading it in `seq` order is cheapest. But when the block
/// builder has fallen behind (it runs at low priority: on a busy machine a
/// soak run left it millions of logs back), a query over the last minutes
/// would read the whole tail to keep the few rows in its range; the page
/// index reads only the range. Logs arrive mostly in time order, so a range
/// starting at or after the tail's first log lies mostly within the tail.
/// Either way the conditions are the same: only the speed differs.
fn tail_source(
    connection: &Connection,
    seq_from: i64,
    from: Micros,
) -> Result<&'static str, StoreError> {
    let tail_starts: Option<Micros> = connection
        .query_row(
            "SELECT ts FROM logs WHERE seq >= ?1 ORDER BY seq LIMIT 1",
            [seq_from],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql_error)?;
    Ok(match tail_starts {
        Some(first) if from > first => "logs INDEXED BY logs_page",
        _ => "logs NOT INDEXED",
    })
}

/// Counts over the matching logs from the facet blocks and the rows after
/// them; `None` when the filter needs what blocks do not hold (the message
/// or the id). Sampled (and scaled) past `EXACT_BELOW` matching logs: the
/// bool says so.
pub(super) fn block_counts(
    connection: &Connection,
    filter: &LogFilter,
    wanted: &facet_blocks::Wanted,
) -> Result<Option<(facet_blocks::Counts, bool)>, StoreError> {
    // The blocks are read through a memory map while scanning: copying
    // tens of megabytes of blobs through read() was a quarter of a facet's
    // time. Mapped pages count in the RSS only while mapped: unmapped after.
    connection
        .execute_batch(&format!("PRAGMA mmap_size = {SCAN_MMAP_BYTES};"))
        .map_err(sql_error)?;
    let outcome = block_counts_mapped(connection, filter, wanted);
    connection
        .execute_batch("PRAGMA mmap_size = 0;")
        .map_err(sql_error)?;
    outcome
}

/// Address space a facet scan maps (the file beyond it is read as usual).
pub(super) const SCAN_MMAP_BYTES: u64 = 4 << 30;

pub(super) fn block_counts_mapped(
    connection: &Connection,
    filter: &LogFilter,
    wanted: &facet_blocks::Wanted,
) -> Result<Option<(facet_blocks::Counts, bool)>, StoreError> {
    // One snapshot for the dictionaries, the blocks and the rows after
    // them, while the builder adds blocks and keys.
    let snapshot = connection.unchecked_transaction().map_err(sql_error)?;
    let connection: &Connection = &snapshot;
    let dictionaries = facet_blocks::dictionaries(connection)?;
    let Some(scan) = facet_blocks::scan(
        connection,
        filter,
        &dictionaries,
        wanted,
        facets::EXACT_BELOW,
    )?
    else {
        return Ok(None);
    };
    let mut counts = scan.counts;
    let approximate = scan.fraction < 1.0;
    counts.scale(scan.fraction);
    // The newest logs, not in a block yet, are read as rows.
    for_each_matching(
        connection,
        filter,
        Some(scan.tail_from),
        |level, service, json| counts.add_row(level, service, json, wanted),
    )?;
    if approximate && filter.countable_by_level_and_service() {
        // Levels and services are exact from the rollups anyway.
        counts.total = 0;
        counts.levels = [0; 5];
        counts.services.clear();
        grouped_counts(connection, filter, None, |_, level, service_id, n| {
            counts.total += n;
            if let Some(slot) = counts.levels.get_mut(level as usize) {
                *slot += n;
            }
            *counts.services.entry(service_id).or_default() += n;
        })?;
    }
    Ok(Some((counts, approximate)))
}

/// Attribute keys of the matching logs with how many logs have each.
pub(super) fn count_attribute_keys(
    connection: &Connection,
    filter: &LogFilter,
) -> Result<Vec<KeyCount>, StoreError> {
    if let Some((counts, _)) = block_counts(connection, filter, &facet_blocks::Wanted::Nothing)? {
        return Ok(facet_blocks::keys_from(&counts));
    }
    let mut counts: HashMap<String, u64> = HashMap::new();
    for_each_matching(connection, filter, None, |_, _, attributes| {
        if let Some(json) = attributes {
            expr::for_each_attribute(json, |key, _| match counts.get_mut(key.as_ref()) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(key.into_owned(), 1);
                }
            });
        }
    })?;
    let mut keys: Vec<KeyCount> = counts
        .into_iter()
        .map(|(key, count)| KeyCount { key, count })
        .collect();
    facets::sort_key_counts(&mut keys);
    Ok(keys)
}

/// Facets by reading the matching rows (level and service from the rollups
/// when the filter allows).
pub(super) fn count_facets(
    connection: &Connection,
    query: &FacetQuery,
) -> Result<Facets, StoreError> {
    let filter = &query.filter;
    let only_dimensions = query.fields.as_ref().is_some_and(|fields| {
        fields
            .iter()
            .all(|f| matches!(f, FieldName::Level | FieldName::Text(TextField::Service)))
    });
    // Levels and services alone come from the rollups when they can.
    if !(only_dimensions && filter.countable_by_level_and_service()) {
        let wanted = match &query.fields {
            None => facet_blocks::Wanted::Every,
            Some(fields) => facet_blocks::Wanted::These(
                fields
                    .iter()
                    .filter_map(|field| match field {
                        FieldName::Text(TextField::Attribute(key)) => Some(key.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
        };
        if let Some((counts, approximate)) = block_counts(connection, filter, &wanted)? {
            let names = service_names(connection)?;
            return Ok(facet_blocks::facets_from(
                query,
                counts,
                approximate,
                &names,
            ));
        }
    }
    let keys = match &query.fields {
        None => count_attribute_keys(connection, filter)?,
        Some(_) => Vec::new(),
    };
    let fields = facets::chosen_fields(query, &keys);
    let wanted_keys: HashMap<&str, usize> = fields
        .iter()
        .enumerate()
        .filter_map(|(index, field)| match field {
            FieldName::Text(TextField::Attribute(key)) => Some((key.as_str(), index)),
            _ => None,
        })
        .collect();
    let mut tallies: Vec<Tally> = fields.iter().map(|_| Tally::default()).collect();
    let level_at = fields.iter().position(|f| *f == FieldName::Level);
    let service_at = fields
        .iter()
        .position(|f| *f == FieldName::Text(TextField::Service));
    let names = service_names(connection)?;
    let mut total = 0u64;
    let add_dimensions = |tallies: &mut Vec<Tally>, level: u8, service_id: i64, n: u64| {
        if let (Some(at), Some(level)) = (level_at, Level::from_code(level)) {
            tallies[at].add(level.as_str(), n);
        }
        if let (Some(at), Some(service)) = (service_at, names.get(&service_id)) {
            tallies[at].add(service, n);
        }
    };
    let rollups_count = filter.countable_by_level_and_service();
    if rollups_count {
        grouped_counts(connection, filter, None, |_, level, service_id, n| {
            total += n;
            add_dimensions(&mut tallies, level, service_id, n);
        })?;
    }
    let needs_rows = !rollups_count || !wanted_keys.is_empty();
    if needs_rows && (total > 0 || !rollups_count) {
        for_each_matching(connection, filter, None, |level, service_id, attributes| {
            if !rollups_count {
                total += 1;
                add_dimensions(&mut tallies, level, service_id, 1);
            }
            if let Some(json) = attributes.filter(|_| !wanted_keys.is_empty()) {
                expr::for_each_attribute(json, |key, value| {
                    if let Some(at) = wanted_keys.get(key.as_ref()) {
                        tallies[*at].add(&value, 1);
                    }
                });
            }
        })?;
    }
    Ok(Facets {
        total,
        approximate: false,
        fields: fields
            .into_iter()
            .zip(tallies)
            .map(|(field, tally)| tally.finish(field, query.limit))
            .collect(),
    })
}
