//! Facets and attribute keys, counted exactly by the server: level and
//! service from the counts (`counts.rs`, the rollups when the filter
//! allows), attributes by `ARRAY JOIN` over the attribute arrays (through
//! `Distributed` on a cluster, which merges the shards' groups). A filter
//! pinning a trace id reads `logs_by_trace` instead of `logs`
//! (`conditions::logs_table`).

use super::conditions::{filter_condition, logs_table};
use super::counts::level_service_counts;
use super::pool::{Pool, ReadBudget};
use super::rows::Cells;
use super::schema::Features;
use super::sql::text_literal;
use crate::domain::query::{FieldName, TextField};
use crate::store::StoreError;
use crate::store::facets::{self, FacetQuery, Facets, KeyCount, Tally};
use crate::store::filter::LogFilter;

/// The facets of `query`'s fields (or of every field) among its logs.
pub async fn facets(pool: &Pool, query: &FacetQuery) -> Result<Facets, StoreError> {
    let keys = match &query.fields {
        None => attribute_keys(pool, &query.filter).await?,
        Some(_) => Vec::new(),
    };
    let fields = facets::chosen_fields(query, &keys);
    let mut tallies: Vec<Tally> = fields.iter().map(|_| Tally::default()).collect();
    let mut total = 0;
    for group in level_service_counts(pool, &query.filter).await? {
        total += group.count;
        for (field, tally) in fields.iter().zip(tallies.iter_mut()) {
            match field {
                FieldName::Level => tally.add(group.level.as_str(), group.count),
                FieldName::Text(TextField::Service) => tally.add(&group.service, group.count),
                _ => {}
            }
        }
    }
    let mut finished: Vec<facets::FieldFacet> = fields
        .iter()
        .cloned()
        .zip(tallies)
        .map(|(field, tally)| tally.finish(field, query.limit))
        .collect();
    let attribute_keys: Vec<&str> = fields
        .iter()
        .filter_map(|field| match field {
            FieldName::Text(TextField::Attribute(key)) => Some(key.as_str()),
            _ => None,
        })
        .collect();
    if !attribute_keys.is_empty() && total > 0 {
        let (database, features) = (pool.database(), pool.features());
        let budget = ReadBudget::new(pool.options.read_timeout);
        let top: Vec<Cells> = pool
            .read(
                &budget,
                &attribute_top_values(
                    database,
                    features,
                    &query.filter,
                    &attribute_keys,
                    query.limit,
                ),
            )
            .await?;
        let totals: Vec<Cells> = pool
            .read(
                &budget,
                &attribute_value_totals(database, features, &query.filter, &attribute_keys),
            )
            .await?;
        let positions: std::collections::HashMap<String, usize> = finished
            .iter()
            .enumerate()
            .filter_map(|(at, facet)| match &facet.field {
                FieldName::Text(TextField::Attribute(key)) => Some((key.clone(), at)),
                _ => None,
            })
            .collect();
        let mut having: Vec<u64> = vec![0; finished.len()];
        for mut row in totals {
            let (key, logs, distinct) = (row.string()?, row.count()?, row.count()?);
            if let Some(&at) = positions.get(&key) {
                having[at] = logs;
                finished[at].distinct = distinct;
            }
        }
        for mut row in top {
            let (key, value, count) = (row.string()?, row.string()?, row.count()?);
            if let Some(&at) = positions.get(&key) {
                finished[at].values.push((value, count));
            }
        }
        for (facet, having) in finished.iter_mut().zip(having) {
            if matches!(facet.field, FieldName::Text(TextField::Attribute(_))) {
                let listed: u64 = facet.values.iter().map(|(_, n)| n).sum();
                facet.other = having.saturating_sub(listed);
            }
        }
    }
    Ok(Facets {
        total,
        approximate: false,
        fields: finished,
    })
}

/// Every attribute key of the matching logs, most frequent first.
pub async fn attribute_keys(pool: &Pool, filter: &LogFilter) -> Result<Vec<KeyCount>, StoreError> {
    let budget = ReadBudget::new(pool.options.read_timeout);
    let statement = attribute_key_counts(pool.database(), pool.features(), filter);
    let rows: Vec<Cells> = pool.read(&budget, &statement).await?;
    let mut keys = rows
        .into_iter()
        .map(|mut row| {
            Ok(KeyCount {
                key: row.string()?,
                count: row.count()?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    facets::sort_key_counts(&mut keys);
    Ok(keys)
}

/// `SELECT key, logs` for every attribute key of the matching logs.
pub fn attribute_key_counts(database: &str, features: Features, filter: &LogFilter) -> String {
    format!(
        "SELECT k, toUInt64(count()) FROM {database}.{} ARRAY JOIN attr_keys AS k \
         WHERE {} GROUP BY k",
        logs_table(filter),
        filter_condition(filter, features)
    )
}

fn key_list(keys: &[&str]) -> String {
    keys.iter()
        .map(|key| text_literal(key))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `SELECT key, value, logs`: the `limit` most frequent values of each of
/// `keys`, ties by value in byte order.
pub fn attribute_top_values(
    database: &str,
    features: Features,
    filter: &LogFilter,
    keys: &[&str],
    limit: usize,
) -> String {
    format!(
        "SELECT k, v, c FROM (SELECT k, v, toUInt64(count()) AS c FROM {database}.{} \
         ARRAY JOIN attr_keys AS k, attr_values AS v WHERE {} AND k IN ({}) GROUP BY k, v) \
         ORDER BY k, c DESC, v LIMIT {limit} BY k",
        logs_table(filter),
        filter_condition(filter, features),
        key_list(keys)
    )
}

/// `SELECT key, logs having it, distinct values` for each of `keys`.
pub fn attribute_value_totals(
    database: &str,
    features: Features,
    filter: &LogFilter,
    keys: &[&str],
) -> String {
    format!(
        "SELECT k, toUInt64(count()), toUInt64(uniqExact(v)) FROM {database}.{} \
         ARRAY JOIN attr_keys AS k, attr_values AS v WHERE {} AND k IN ({}) GROUP BY k",
        logs_table(filter),
        filter_condition(filter, features),
        key_list(keys)
    )
}
