//! A rule's count per group over `[from, to)`, through the store's own
//! counting wherever it fits, so a rule costs what a stats query costs:
//! - grouped by nothing, `level` and/or `service`: the level-by-service
//!   counts (`Store::level_service_counts`), which read the rollups for whole
//!   minutes when the query tests only levels and services, and evaluate the
//!   query in the store otherwise;
//! - grouped by one attribute: the store's facet count of that attribute
//!   (`Store::facets`), plus the logs lacking it as the group with the empty
//!   value;
//! - grouped by an attribute and another key: the matching logs themselves,
//!   page by page, grouped here (bounded: [`MAX_SCANNED`]).

use super::rule::{GroupKey, MAX_GROUPS, Rule};
use super::state::Labels;
use crate::domain::LogRecord;
use crate::domain::audit::names_audit_log;
use crate::domain::query::{FieldName, TextField};
use crate::domain::time::Micros;
use crate::store::facets::FacetQuery;
use crate::store::filter::Scope;
use crate::store::{LogFilter, LogKey, LogQuery, Order, Store, StoreError};
use std::collections::HashMap;

const PAGE: usize = 1000;
/// Matching logs a rule grouped by several keys (one an attribute) may read
/// per evaluation; more is an evaluation error that says so.
pub const MAX_SCANNED: usize = 200_000;

/// The group a log belongs to under `group_by`: its level, service or
/// attribute values (an absent attribute is the empty value).
pub fn labels_of(record: &LogRecord, group_by: &[GroupKey]) -> Labels {
    group_by
        .iter()
        .map(|key| {
            let value = match key {
                GroupKey::Level => record.level.as_str().to_string(),
                GroupKey::Service => record.service.clone(),
                GroupKey::Attribute(name) => {
                    record.attributes.get(name).cloned().unwrap_or_default()
                }
            };
            (key.label().to_string(), value)
        })
        .collect()
}

/// Why a rule could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum CountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the rule matches more than {MAX_SCANNED} logs in its window: group by fewer keys (one attribute, or level and service) or narrow the query"
    )]
    TooManyLogs,
    #[error("counting took longer than {0:?} (query.timeout) and was cancelled")]
    TimedOut(std::time::Duration),
}

/// Counts the logs matching the rule's query in `[from, to)`, per group,
/// within `timeout`. Groups with no matching log may be left out (they
/// count 0).
pub async fn count_groups(
    store: &dyn Store,
    rule: &Rule,
    from: Micros,
    to: Micros,
    timeout: std::time::Duration,
) -> Result<Vec<(Labels, u64)>, CountError> {
    tokio::time::timeout(timeout, count(store, rule, from, to))
        .await
        .map_err(|_| CountError::TimedOut(timeout))?
}

async fn count(
    store: &dyn Store,
    rule: &Rule,
    from: Micros,
    to: Micros,
) -> Result<Vec<(Labels, u64)>, CountError> {
    // The audit log counts only for a rule that names it (which only an
    // admin may make: see `api.rs`), so no other rule counts, or groups by,
    // what its author may not read.
    let filter = LogFilter {
        from: Some(from),
        to: Some(to),
        expr: rule.expr.clone(),
        scope: Scope::tenant(rule.tenant.clone()).with_audit(names_audit_log(&rule.expr)),
        ..LogFilter::default()
    };
    let attributes: Vec<&String> = rule
        .group_by
        .iter()
        .filter_map(|key| match key {
            GroupKey::Attribute(name) => Some(name),
            _ => None,
        })
        .collect();
    Ok(match (attributes.as_slice(), rule.group_by.len()) {
        ([], _) => by_level_and_service(store, &filter, &rule.group_by).await?,
        ([name], 1) => by_attribute(store, filter, name).await?,
        _ => by_reading_logs(store, filter, &rule.group_by).await?,
    })
}

async fn by_level_and_service(
    store: &dyn Store,
    filter: &LogFilter,
    group_by: &[GroupKey],
) -> Result<Vec<(Labels, u64)>, StoreError> {
    let mut counts: HashMap<Labels, u64> = HashMap::new();
    for cell in store.level_service_counts(filter).await? {
        let labels = group_by
            .iter()
            .map(|key| {
                let value = match key {
                    GroupKey::Level => cell.level.as_str().to_string(),
                    _ => cell.service.clone(),
                };
                (key.label().to_string(), value)
            })
            .collect();
        *counts.entry(labels).or_default() += cell.count;
    }
    if group_by.is_empty() && counts.is_empty() {
        counts.insert(Labels::new(), 0);
    }
    Ok(counts.into_iter().collect())
}

async fn by_attribute(
    store: &dyn Store,
    filter: LogFilter,
    name: &str,
) -> Result<Vec<(Labels, u64)>, StoreError> {
    let facets = store
        .facets(&FacetQuery {
            filter,
            fields: Some(vec![FieldName::Text(TextField::Attribute(
                name.to_string(),
            ))]),
            limit: MAX_GROUPS,
        })
        .await?;
    let group = |value: String| Labels::from([(name.to_string(), value)]);
    let mut groups = Vec::new();
    let mut having = 0;
    if let Some(field) = facets.fields.into_iter().next() {
        having = field.values.iter().map(|(_, n)| n).sum::<u64>() + field.other;
        groups.extend(field.values.into_iter().map(|(value, n)| (group(value), n)));
    }
    let lacking = facets.total.saturating_sub(having);
    if lacking > 0 {
        groups.push((group(String::new()), lacking));
    }
    Ok(groups)
}

async fn by_reading_logs(
    store: &dyn Store,
    filter: LogFilter,
    group_by: &[GroupKey],
) -> Result<Vec<(Labels, u64)>, CountError> {
    let mut counts: HashMap<Labels, u64> = HashMap::new();
    let mut query = LogQuery {
        filter,
        limit: PAGE,
        offset: 0,
        order: Order::Asc,
        after: None,
    };
    let mut scanned = 0;
    loop {
        let page = store.logs(&query).await?;
        for record in &page {
            *counts.entry(labels_of(record, group_by)).or_default() += 1;
        }
        scanned += page.len();
        match page.last() {
            Some(last) if page.len() == PAGE => query.after = Some(LogKey::of(last)),
            _ => break,
        }
        if scanned >= MAX_SCANNED {
            return Err(CountError::TooManyLogs);
        }
    }
    Ok(counts.into_iter().collect())
}
