//! The seed's filters and the query language as SQL conditions over the
//! page index (`logs_page`) and the rows.

use super::connection::sql_error;
use super::expr;
use crate::domain::query::Expr;
use crate::store::StoreError;
use crate::store::filter::LogFilter;
use rusqlite::Connection;
use rusqlite::types::Value;
use std::collections::HashMap;

/// A WHERE clause and its bound parameters, built only from placeholders.
#[derive(Default)]
pub(super) struct Conditions {
    pub(super) sql: Vec<String>,
    pub(super) params: Vec<Value>,
}

impl Conditions {
    pub(super) fn push(&mut self, sql: impl Into<String>, params: impl IntoIterator<Item = Value>) {
        self.sql.push(sql.into());
        self.params.extend(params);
    }

    pub(super) fn where_clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.sql.join(" AND "))
        }
    }
}

/// Resolves the service filter against the dictionary: `None` when there is no
/// service filter, `Some(empty)` when nothing matches.
pub(super) fn matching_service_ids(
    connection: &Connection,
    filter: &LogFilter,
) -> Result<Option<Vec<i64>>, StoreError> {
    let Some(needle) = &filter.service else {
        return Ok(None);
    };
    let mut statement = connection
        .prepare_cached("SELECT id FROM services WHERE oglog_contains(name, ?1)")
        .map_err(sql_error)?;
    let ids = statement
        .query_map([needle], |row| row.get(0))
        .map_err(sql_error)?
        .collect::<Result<Vec<i64>, _>>()
        .map_err(sql_error)?;
    Ok(Some(ids))
}

/// The service dictionary, (id, name).
pub(super) fn service_list(connection: &Connection) -> Result<Vec<(i64, String)>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT id, name FROM services")
        .map_err(sql_error)?;
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}

/// The `query` expression's conditions, one per top-level term so SQLite
/// can check level and service terms inside the page index. On the
/// rollups, only level and service terms may occur (see
/// `LogFilter::countable_by_level_and_service`).
pub(super) fn expression_conditions(
    connection: &Connection,
    conditions: &mut Conditions,
    expr: &Expr,
    prefix: &str,
) -> Result<(), StoreError> {
    if expr.is_everything() {
        return Ok(());
    }
    let services = service_list(connection)?;
    for term in expr.conjuncts() {
        let fragment = expr::condition(term, prefix, &services);
        conditions.push(fragment.sql, fragment.params);
    }
    Ok(())
}

pub(super) fn placeholders(count: usize) -> String {
    vec!["?"; count].join(",")
}

/// Level and service conditions, valid on `logs` and on the rollups alike.
/// `table` qualifies the columns when the query joins.
pub(super) fn dimension_conditions(
    conditions: &mut Conditions,
    filter: &LogFilter,
    service_ids: &Option<Vec<i64>>,
    table: &str,
) {
    if let Some(levels) = filter.levels {
        let codes: Vec<Value> = levels
            .iter()
            .map(|l| Value::Integer(l.code().into()))
            .collect();
        conditions.push(
            format!("{table}level IN ({})", placeholders(codes.len())),
            codes,
        );
    }
    if let Some(ids) = service_ids {
        conditions.push(
            format!("{table}service_id IN ({})", placeholders(ids.len())),
            ids.iter().map(|id| Value::Integer(*id)),
        );
    }
}

pub(super) fn service_names(connection: &Connection) -> Result<HashMap<i64, String>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT id, name FROM services")
        .map_err(sql_error)?;
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}
