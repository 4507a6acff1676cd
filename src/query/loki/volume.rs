//! `index/volume`, `index/volume_range` and `index/stats`: how many logs
//! each label value set holds, from `Store::grouped_counts` (the rollups,
//! for service and level). Loki measures volume in bytes; the store counts
//! logs, so volumes here are log counts (they rank the same way in
//! Drilldown's service list).

use super::answer;
use super::error::LokiError;
use super::execute::micros_from_start_end;
use super::params::{DEFAULT_SINCE, LokiParams};
use super::request::{bounded, now_nanos};
use super::selection::{dimension_of, group_value, parse_selection, selection_filter};
use crate::domain::logql::json::MetricData;
use crate::domain::logql::{Labels, MetricResult, Sample, Series, sanitize_label_name};
use crate::query::QueryState;
use crate::store::Store;
use crate::store::{Dimension, GroupedCount, GroupedCountQuery};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Loki's default number of series a volume answers.
const DEFAULT_LIMIT: usize = 100;

/// What a volume request asks.
struct VolumeRequest {
    range: (i64, i64),
    labels: Vec<String>,
    by_labels: bool,
    limit: usize,
}

impl VolumeRequest {
    fn of(
        params: &LokiParams,
        selection: &crate::domain::logql::LogExpr,
    ) -> Result<Self, LokiError> {
        let range = params.range(now_nanos(), DEFAULT_SINCE)?;
        let mut labels: Vec<String> = match params.one("targetLabels") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            None => selection
                .selector
                .matchers
                .iter()
                .map(|m| m.name.clone())
                .collect(),
        };
        let mut seen = Vec::new();
        labels.retain(|label| {
            let new = !seen.contains(label);
            seen.push(label.clone());
            new
        });
        let by_labels = match params.one("aggregateBy") {
            None | Some("series") => false,
            Some("labels") => true,
            Some(other) => {
                return Err(LokiError::bad_parameter(
                    "aggregateBy",
                    format!("expected series or labels, got {other:?}"),
                ));
            }
        };
        Ok(VolumeRequest {
            range,
            labels,
            by_labels,
            limit: params.limit(DEFAULT_LIMIT)?.max(1),
        })
    }
}

/// The counts of a volume request, bucketed by `step` when given.
async fn volume_counts(
    state: &QueryState,
    store: &dyn Store,
    request: &VolumeRequest,
    selection: &crate::domain::logql::LogExpr,
    step: Option<i64>,
) -> Result<(Vec<(String, Dimension)>, Vec<GroupedCount>), LokiError> {
    let (from, to) = micros_from_start_end(request.range.0, request.range.1);
    let (filter, resolver) = selection_filter(store, selection, &request.labels, from, to).await?;
    let stream_keys: HashMap<String, String> = state
        .loki
        .stream_labels
        .iter()
        .map(|key| (sanitize_label_name(key), key.clone()))
        .collect();
    let dimensions: Vec<(String, Dimension)> = request
        .labels
        .iter()
        .map(|label| {
            let dimension = match stream_keys.get(label) {
                Some(key) => Dimension::Attribute(vec![key.clone()]),
                None => dimension_of(label, &resolver),
            };
            (label.clone(), dimension)
        })
        .collect();
    let attributes = dimensions
        .iter()
        .filter(|(_, d)| matches!(d, Dimension::Attribute(_)))
        .count();
    if attributes > 1 {
        return Err(LokiError::bad_request(
            "volumes group by service_name, detected_level and at most one other label: narrow targetLabels",
        ));
    }
    // The request's scoped store, never `state.store`: the scope (its
    // tenants, the audit log, the tenant's longest range) is what the
    // scoped store adds to every filter.
    let rows = store
        .grouped_counts(&GroupedCountQuery {
            filter,
            interval: step.map(|nanos| (nanos / 1000).max(1)),
            origin: from,
            group_by: dimensions.iter().map(|(_, d)| d.clone()).collect(),
            limit_groups: None,
        })
        .await?;
    Ok((dimensions, rows))
}

/// The series labels of a row: each label with its value (`aggregateBy=
/// labels`: with `""`), `None` when the row lacks one of them.
fn row_labels(
    row: &GroupedCount,
    dimensions: &[(String, Dimension)],
    by_labels: bool,
) -> Option<Labels> {
    let mut labels = Vec::new();
    for (label, dimension) in dimensions {
        let value = group_value(row, dimension)?;
        labels.push((label.clone(), if by_labels { String::new() } else { value }));
    }
    labels.sort();
    Some(labels)
}

pub async fn volume(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, LokiError> {
    let params = LokiParams::read(&request, payload).await?;
    let store: &dyn Store = &state.scoped(&request);
    let selection = parse_selection(Some(params.query()?))?;
    let volume_request = VolumeRequest::of(&params, &selection)?;
    let (dimensions, rows) = bounded(&state, &request, async {
        volume_counts(&state, store, &volume_request, &selection, None).await
    })
    .await?;
    let mut totals: BTreeMap<Labels, u64> = BTreeMap::new();
    for row in &rows {
        if let Some(labels) = row_labels(row, &dimensions, volume_request.by_labels) {
            *totals.entry(labels).or_default() += row.count;
        }
    }
    let mut ranked: Vec<(Labels, u64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(volume_request.limit);
    let timestamp_ms = volume_request.range.1.div_euclid(1_000_000);
    let samples = ranked
        .into_iter()
        .map(|(labels, count)| Sample {
            labels,
            timestamp_ms,
            value: count as f64,
        })
        .collect();
    answer::success(&MetricData(&MetricResult::Vector(samples)))
}

pub async fn volume_range(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, LokiError> {
    let params = LokiParams::read(&request, payload).await?;
    let store: &dyn Store = &state.scoped(&request);
    let selection = parse_selection(Some(params.query()?))?;
    let volume_request = VolumeRequest::of(&params, &selection)?;
    let (start, end) = volume_request.range;
    let step = params.step(start, end)?;
    if step % 1000 != 0 || (end - start) / step > 11_000 {
        return Err(LokiError::bad_request(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let (dimensions, rows) = bounded(&state, &request, async {
        volume_counts(&state, store, &volume_request, &selection, Some(step)).await
    })
    .await?;
    let mut series: BTreeMap<Labels, BTreeMap<i64, u64>> = BTreeMap::new();
    for row in &rows {
        if let Some(labels) = row_labels(row, &dimensions, volume_request.by_labels) {
            *series
                .entry(labels)
                .or_default()
                .entry(row.bucket_start.div_euclid(1000))
                .or_default() += row.count;
        }
    }
    let mut ranked: Vec<(Labels, BTreeMap<i64, u64>)> = series.into_iter().collect();
    ranked.sort_by(|a, b| {
        let total = |points: &BTreeMap<i64, u64>| points.values().sum::<u64>();
        total(&b.1).cmp(&total(&a.1)).then_with(|| a.0.cmp(&b.0))
    });
    ranked.truncate(volume_request.limit);
    ranked.sort_by(|a, b| a.0.cmp(&b.0));
    let matrix = ranked
        .into_iter()
        .map(|(labels, points)| Series {
            labels,
            points: points
                .into_iter()
                .map(|(ms, count)| (ms, count as f64))
                .collect(),
        })
        .collect();
    answer::success(&MetricData(&MetricResult::Matrix(matrix)))
}

#[derive(Serialize)]
struct IndexStats {
    streams: u64,
    chunks: u64,
    entries: u64,
    bytes: u64,
}

pub async fn index_stats(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, LokiError> {
    let params = LokiParams::read(&request, payload).await?;
    let store: &dyn Store = &state.scoped(&request);
    let selection = parse_selection(params.one("query"))?;
    let range = params.range(now_nanos(), DEFAULT_SINCE)?;
    let volume_request = VolumeRequest {
        range,
        labels: vec!["service_name".to_string()],
        by_labels: false,
        limit: usize::MAX,
    };
    let (_, rows) = bounded(&state, &request, async {
        volume_counts(&state, store, &volume_request, &selection, None).await
    })
    .await?;
    let entries: u64 = rows.iter().map(|row| row.count).sum();
    let streams = rows.len() as u64;
    // Loki counts chunks and bytes of its chunk store; we have neither.
    answer::bare(&IndexStats {
        streams,
        chunks: streams,
        entries,
        bytes: 0,
    })
}
