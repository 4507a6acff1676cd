//! The seed's filters and the query language as SQL conditions over the
//! page index (`logs_page`) and the rows.

use super::connection::sql_error;
use super::expr;
use crate::domain::TenantId;
use crate::domain::log::AUDIT_SERVICE;
use crate::domain::query::Expr;
use crate::store::StoreError;
use crate::store::filter::LogFilter;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};
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

/// The filter's dictionary-valued conditions resolved to ids once per
/// read: the request's tenants, the audit service when it must stay out of
/// sight, and the services the `service` parameter names.
pub(super) struct Dimensions {
    /// Sorted, never empty (a scope naming only unknown tenants resolves to
    /// no `Dimensions` at all: nothing can match).
    tenants: Vec<i64>,
    /// The audit log's service id, when the reader may not see it.
    hidden_service: Option<i64>,
    /// `None` without a service filter.
    services: Option<Vec<i64>>,
}

impl Dimensions {
    /// `None` when nothing can match (no tenant of the scope has a log, or
    /// no service matches the filter).
    pub(super) fn resolve(
        connection: &Connection,
        filter: &LogFilter,
    ) -> Result<Option<Dimensions>, StoreError> {
        let tenants = tenant_ids(connection, filter.scope.tenants())?;
        if tenants.is_empty() {
            return Ok(None);
        }
        let hidden_service = if filter.scope.audit {
            None
        } else {
            connection
                .query_row(
                    "SELECT id FROM services WHERE name = ?1",
                    [AUDIT_SERVICE],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql_error)?
        };
        let services = matching_service_ids(connection, filter)?;
        if services.as_ref().is_some_and(Vec::is_empty) {
            return Ok(None);
        }
        Ok(Some(Dimensions {
            tenants,
            hidden_service,
            services,
        }))
    }

    /// Tenant, level and service conditions, valid on `logs` and on the
    /// rollups alike (both lead with the tenant). `table` qualifies the
    /// columns when the query joins.
    pub(super) fn conditions(&self, conditions: &mut Conditions, filter: &LogFilter, table: &str) {
        match self.tenants.as_slice() {
            [tenant] => conditions.push(format!("{table}tenant_id = ?"), [Value::Integer(*tenant)]),
            tenants => conditions.push(
                format!("{table}tenant_id IN ({})", placeholders(tenants.len())),
                tenants.iter().map(|id| Value::Integer(*id)),
            ),
        }
        if let Some(hidden) = self.hidden_service {
            conditions.push(format!("{table}service_id != ?"), [Value::Integer(hidden)]);
        }
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
        if let Some(ids) = &self.services {
            conditions.push(
                format!("{table}service_id IN ({})", placeholders(ids.len())),
                ids.iter().map(|id| Value::Integer(*id)),
            );
        }
    }
}

/// The ids of the named tenants that the store knows, sorted.
pub(super) fn tenant_ids(
    connection: &Connection,
    tenants: &[TenantId],
) -> Result<Vec<i64>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT id FROM tenants WHERE name = ?1")
        .map_err(sql_error)?;
    let mut ids = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        if let Some(id) = statement
            .query_row([tenant.as_str()], |row| row.get::<_, i64>(0))
            .optional()
            .map_err(sql_error)?
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Resolves the service filter against the dictionary: `None` when there is no
/// service filter, `Some(empty)` when nothing matches.
fn matching_service_ids(
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

pub(super) fn service_names(connection: &Connection) -> Result<HashMap<i64, String>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT id, name FROM services")
        .map_err(sql_error)?;
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}
