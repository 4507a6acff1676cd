//! Pages of logs in page order (keyset), and lookups by id.

use super::conditions::{Conditions, Dimensions, expression_conditions, tenant_ids};
use super::connection::sql_error;
use super::facet_blocks;
use crate::domain::log::attributes_from_json;
use crate::domain::query::{Expr, Matcher, Predicate, TextField};
use crate::domain::time::Micros;
use crate::domain::{Level, LogRecord, TenantId};
use crate::store::filter::{LogQuery, Order};
use crate::store::search_blocks::{self};
use crate::store::{RawLog, StoreError};
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};
use std::collections::HashSet;

/// A page of `query`, each row made by `map` from the columns `ts, id,
/// level, service name, message, attributes` starting at the given column.
pub(super) fn query_logs<T>(
    connection: &Connection,
    query: &LogQuery,
    map: fn(&rusqlite::Row, usize) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let filter = &query.filter;
    let Some(dimensions) = Dimensions::resolve(connection, filter)? else {
        return Ok(Vec::new());
    };
    let mut conditions = Conditions::default();
    if let Some(from) = filter.from {
        conditions.push("l.ts >= ?", [Value::Integer(from)]);
    }
    if let Some(to) = filter.to {
        conditions.push("l.ts < ?", [Value::Integer(to)]);
    }
    dimensions.conditions(&mut conditions, filter, "l.");
    expression_conditions(connection, &mut conditions, &filter.expr, "l.")?;
    if let Some(after) = &query.after {
        // Strictly after the key in page order; the first term bounds the
        // index range, the second settles ties on the timestamp by id.
        let (towards, strictly) = match query.order {
            Order::Desc => ("<=", "<"),
            Order::Asc => (">=", ">"),
        };
        conditions.push(
            format!("l.ts {towards} ? AND (l.ts {strictly} ? OR l.id {strictly} ?)"),
            [
                Value::Integer(after.timestamp),
                Value::Integer(after.timestamp),
                Value::Text(after.id.clone()),
            ],
        );
    }
    let direction = match query.order {
        Order::Desc => "DESC",
        Order::Asc => "ASC",
    };
    if let Some(found) = by_id(connection, query, &conditions, direction, map)? {
        return Ok(found);
    }
    // A trace's logs, whatever the range: the trace id index holds them all
    // (a few rows, sorted here).
    if filter.pinned_trace_id().is_some() {
        return page_rows(
            connection,
            "INDEXED BY logs_trace",
            conditions,
            query,
            direction,
            map,
        );
    }
    if let Some(text) = &filter.text {
        conditions.push("oglog_contains(l.message, ?)", [Value::Text(text.clone())]);
    }
    // Attribute terms that name a value (or only a key) can skip the blocks
    // whose attribute filter says they cannot match: worth it when most
    // blocks are skipped (a trace id), not for a value in every block.
    let probe = facet_blocks::AttributeProbe::of(connection, &filter.expr)?
        .filter(|probe| filter.text.is_some() || probe.selective(connection).unwrap_or(false));
    if filter.text.is_some() || probe.is_some() {
        let also = |block: i64| match &probe {
            Some(probe) => probe
                .may_hold(connection, block)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e))),
            None => Ok(true),
        };
        let found = search_blocks::search(
            connection,
            query,
            filter.text.as_deref(),
            &also,
            "SELECT l.seq, l.ts, l.id, l.level, s.name, l.message, l.attributes,
                    t.name, l.trace_id, l.span_id
             FROM logs l NOT INDEXED CROSS JOIN services s ON s.id = l.service_id
                  CROSS JOIN tenants t ON t.id = l.tenant_id",
            &conditions.sql,
            &conditions.params,
            |row| map(row, 1),
        )
        .map_err(sql_error)?;
        if let Some(found) = found {
            return Ok(found);
        }
    }
    // The page index walks rows in page order and checks level and service
    // (and a cursor's id) in the index; CROSS JOIN keeps `logs` the outer
    // loop, so the walk stops after `offset + limit` matches instead of
    // sorting every match.
    page_rows(
        connection,
        "INDEXED BY logs_page",
        conditions,
        query,
        direction,
        map,
    )
}

/// One page of rows matching `conditions`, in page order, read the way
/// `access` says (an `INDEXED BY`/`NOT INDEXED` clause on `logs`).
pub(super) fn page_rows<T>(
    connection: &Connection,
    access: &str,
    conditions: Conditions,
    query: &LogQuery,
    direction: &str,
    map: fn(&rusqlite::Row, usize) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let sql = format!(
        "SELECT l.ts, l.id, l.level, s.name, l.message, l.attributes,
                t.name, l.trace_id, l.span_id
         FROM logs l {access} CROSS JOIN services s ON s.id = l.service_id
              CROSS JOIN tenants t ON t.id = l.tenant_id
         {}
         ORDER BY l.ts {direction}, l.id {direction}
         LIMIT ? OFFSET ?",
        conditions.where_clause()
    );
    let mut params = conditions.params;
    params.push(Value::Integer(query.limit as i64));
    params.push(Value::Integer(query.offset as i64));
    let mut statement = connection.prepare_cached(&sql).map_err(sql_error)?;
    let rows = statement
        .query_map(params_from_iter(params.iter()), |row| map(row, 0))
        .map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}

/// Ids to look up per statement: far below SQLite's bound-parameter limit.
pub(super) const IDS_PER_LOOKUP: usize = 500;

/// Which of `ids` are stored with a timestamp in `[from, to]`. The time range
/// keeps the lookup on the page index's leading `ts` column, so it reads the
/// batch's stretch of the index rather than the table.
pub(super) fn stored_ids(
    connection: &Connection,
    tenant: &TenantId,
    ids: &[String],
    from: Micros,
    to: Micros,
) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::new();
    let Some(&tenant_id) = tenant_ids(connection, std::slice::from_ref(tenant))?.first() else {
        // A tenant the store has never seen holds none of them.
        return Ok(found);
    };
    for chunk in ids.chunks(IDS_PER_LOOKUP) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT id FROM logs WHERE tenant_id = ? AND ts >= ? AND ts <= ? AND id IN ({placeholders})"
        );
        let mut params = vec![
            Value::Integer(tenant_id),
            Value::Integer(from),
            Value::Integer(to),
        ];
        params.extend(chunk.iter().map(|id| Value::Text(id.clone())));
        let mut statement = connection.prepare_cached(&sql).map_err(sql_error)?;
        let rows = statement
            .query_map(params_from_iter(params.iter()), |row| {
                row.get::<_, String>(0)
            })
            .map_err(sql_error)?;
        for id in rows {
            found.insert(id.map_err(sql_error)?);
        }
    }
    Ok(found)
}

/// A query with `id:X` among its top-level terms reads only the blocks
/// whose id range holds X (there is no index on ids alone: see schema 4).
/// `None`: no such term, or the ranges would not narrow the search.
pub(super) fn by_id<T>(
    connection: &Connection,
    query: &LogQuery,
    conditions: &Conditions,
    direction: &str,
    map: fn(&rusqlite::Row, usize) -> rusqlite::Result<T>,
) -> Result<Option<Vec<T>>, StoreError> {
    let Some(id) = query
        .filter
        .expr
        .conjuncts()
        .iter()
        .find_map(|term| match term {
            Expr::Is(Predicate::Text {
                field: TextField::Id,
                matcher: Matcher::Exact(id),
            }) => Some(id),
            _ => None,
        })
    else {
        return Ok(None);
    };
    let Some(ranges) = search_blocks::seq_ranges_for_id(connection, id).map_err(sql_error)? else {
        return Ok(None);
    };
    let mut conditions = Conditions {
        sql: conditions.sql.clone(),
        params: conditions.params.clone(),
    };
    conditions.push(
        format!(
            "({})",
            vec!["l.seq BETWEEN ? AND ?"; ranges.len()].join(" OR ")
        ),
        ranges
            .iter()
            .flat_map(|(first, last)| [Value::Integer(*first), Value::Integer(*last)]),
    );
    page_rows(connection, "NOT INDEXED", conditions, query, direction, map).map(Some)
}

/// The same columns as `log_record`, the attributes left as stored.
pub(super) fn raw_log(row: &rusqlite::Row, ts_column: usize) -> rusqlite::Result<RawLog> {
    let at = |offset: usize| ts_column + offset;
    let level: u8 = row.get(at(2))?;
    Ok(RawLog {
        timestamp: row.get(at(0))?,
        id: row.get(at(1))?,
        level: Level::from_code(level).unwrap_or(Level::Info),
        service: row.get(at(3))?,
        message: row.get(at(4))?,
        attributes_json: row.get(at(5))?,
        tenant: tenant(row, at(6))?,
        trace_id: row.get(at(7))?,
        span_id: row.get(at(8))?,
    })
}

/// A log from the columns `ts, id, level, service name, message,
/// attributes, tenant name, trace id, span id`, from `ts_column` on (the
/// block search reads `seq` first).
pub(super) fn log_record(row: &rusqlite::Row, ts_column: usize) -> rusqlite::Result<LogRecord> {
    let at = |offset: usize| ts_column + offset;
    let level: u8 = row.get(at(2))?;
    let attributes: Option<String> = row.get(at(5))?;
    Ok(LogRecord {
        timestamp: row.get(at(0))?,
        id: row.get(at(1))?,
        level: Level::from_code(level).unwrap_or(Level::Info),
        service: row.get(at(3))?,
        message: row.get(at(4))?,
        attributes: attributes_from_json(attributes.as_deref()),
        tenant: tenant(row, at(6))?,
        trace_id: row.get(at(7))?,
        span_id: row.get(at(8))?,
    })
}

/// A stored tenant name (valid when it was written).
fn tenant(row: &rusqlite::Row, column: usize) -> rusqlite::Result<TenantId> {
    let name = row.get_ref(column)?.as_str()?;
    TenantId::parse(name).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}
