//! `GET /api/histogram?by=<field>` (issue 25, "chart any field"): the
//! histogram's buckets split by level, service or any attribute, the ten
//! values with the most logs apart and the rest summed as `other`; logs
//! without the attribute count as `missing`. Counted by the store
//! (`Store::grouped_counts`: the rollups for level and service).

use super::client_gone::ClientSocket;
use super::params::{ceil_div, format_interval};
use super::state::QueryState;
use crate::domain::query::{FieldName, TextField};
use crate::domain::time::{Micros, format_rfc3339};
use crate::http::error::ApiError;
use crate::store::Store;
use crate::store::{Dimension, GroupedCount, GroupedCountQuery, HistogramQuery};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Values listed apart; the rest are `other`.
pub const TOP_VALUES: usize = 10;

#[derive(Serialize)]
struct SplitHistogram {
    from: String,
    to: String,
    interval: String,
    interval_ms: i64,
    by: String,
    /// The values listed apart, most logs first.
    values: Vec<String>,
    buckets: Vec<SplitBucket>,
}

#[derive(Serialize, Default)]
struct SplitBucket {
    start: String,
    start_ms: i64,
    total: u64,
    counts: BTreeMap<String, u64>,
    other: u64,
    missing: u64,
}

fn dimension(field: &FieldName) -> Result<Dimension, ApiError> {
    match field {
        FieldName::Level => Ok(Dimension::Level),
        FieldName::Text(TextField::Service) => Ok(Dimension::Service),
        FieldName::Text(TextField::Attribute(key)) => Ok(Dimension::Attribute(vec![key.clone()])),
        other => Err(ApiError::bad_parameter(
            "by",
            format!("cannot split by {}", other.display()),
        )),
    }
}

fn value_of(row: &GroupedCount) -> Option<String> {
    row.level
        .map(|level| level.as_str().to_string())
        .or_else(|| row.service.clone())
        .or_else(|| row.attribute.clone())
}

pub async fn split_histogram(
    request: &HttpRequest,
    state: &QueryState,
    query: HistogramQuery,
    field: FieldName,
) -> Result<HttpResponse, ApiError> {
    let rows = state
        .read(
            ClientSocket::of(request),
            state.scoped(request).grouped_counts(&GroupedCountQuery {
                filter: query.filter.clone(),
                interval: Some(query.interval),
                origin: 0,
                group_by: vec![dimension(&field)?],
                // One more: logs without the attribute are a group of their
                // own, which is not one of the values listed.
                limit_groups: Some(TOP_VALUES + 1),
            }),
        )
        .await?;
    let (from, to) = query.filter.bounds();
    let interval = query.interval;
    let first = from - from.rem_euclid(interval);
    let slots = ceil_div(to - first, interval) as usize;
    let mut buckets: Vec<SplitBucket> = (0..slots)
        .map(|slot| {
            let start: Micros = first + slot as i64 * interval;
            SplitBucket {
                start: format_rfc3339(start),
                start_ms: start / 1000,
                ..SplitBucket::default()
            }
        })
        .collect();
    let mut totals: HashMap<String, u64> = HashMap::new();
    for row in rows.iter().filter(|row| !row.other) {
        if let Some(value) = value_of(row) {
            *totals.entry(value).or_default() += row.count;
        }
    }
    let mut values: Vec<(String, u64)> = totals.into_iter().collect();
    values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    values.truncate(TOP_VALUES);
    let listed: std::collections::HashSet<&str> = values.iter().map(|(v, _)| v.as_str()).collect();
    for row in &rows {
        let slot = (row.bucket_start - first).div_euclid(interval);
        let Some(bucket) = usize::try_from(slot).ok().and_then(|s| buckets.get_mut(s)) else {
            continue;
        };
        bucket.total += row.count;
        match (row.other, value_of(row)) {
            (true, _) => bucket.other += row.count,
            (false, None) => bucket.missing += row.count,
            (false, Some(value)) if listed.contains(value.as_str()) => {
                *bucket.counts.entry(value).or_default() += row.count;
            }
            (false, Some(_)) => bucket.other += row.count,
        }
    }
    Ok(HttpResponse::Ok().json(SplitHistogram {
        from: format_rfc3339(from),
        to: format_rfc3339(to),
        interval: format_interval(interval),
        interval_ms: interval / 1000,
        by: field.reference(),
        values: values.into_iter().map(|(value, _)| value).collect(),
        buckets,
    }))
}
