//! `labels`, `label/{name}/values`, `series` and `detected_labels`: the
//! stream labels (`service_name` and `loki.stream_labels`) and any
//! label's values, counted by the store over the asked range.

use super::answer;
use super::error::LokiError;
use super::execute::{KeyResolver, for_each_row, micros_from_start_end};
use super::params::{DEFAULT_LABELS_SINCE, LokiParams};
use super::request::{bounded, now_nanos};
use super::selection::{dimension_of, group_value, parse_selection, selection_filter};
use crate::domain::logql::{LogExpr, sanitize_label_name};
use crate::query::QueryState;
use crate::store::{Dimension, GroupedCountQuery, LogFilter, Order, Store};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Rows `series` reads at most to list stream label sets when there are
/// several configured stream labels (counts group by one attribute).
const SERIES_SCAN_ROWS: usize = 200_000;

/// The stream label names: `service_name`, then the configured ones.
fn stream_label_names(state: &QueryState) -> Vec<(String, Option<String>)> {
    let mut names = vec![("service_name".to_string(), None)];
    names.extend(
        state
            .loki
            .stream_labels
            .iter()
            .map(|key| (sanitize_label_name(key), Some(key.clone()))),
    );
    names
}

/// The distinct values of `label` among the logs of `filter`, with counts.
async fn label_values(
    store: &dyn Store,
    filter: &LogFilter,
    dimension: Dimension,
) -> Result<BTreeMap<String, u64>, LokiError> {
    let rows = store
        .grouped_counts(&GroupedCountQuery {
            filter: filter.clone(),
            interval: None,
            origin: 0,
            group_by: vec![dimension.clone()],
            limit_groups: None,
        })
        .await?;
    let mut values = BTreeMap::new();
    for row in &rows {
        if let Some(value) = group_value(row, &dimension) {
            *values.entry(value).or_default() += row.count;
        }
    }
    Ok(values)
}

/// The dimension of a stream label: its configured key itself (not every
/// key that sanitizes alike, which would be structured metadata).
fn stream_dimension(key: &Option<String>) -> Dimension {
    match key {
        None => Dimension::Service,
        Some(key) => Dimension::Attribute(vec![key.clone()]),
    }
}

struct Selected {
    filter: LogFilter,
    resolver: KeyResolver,
}

async fn select(
    store: &dyn Store,
    selection: &LogExpr,
    extra_names: &[String],
    range: (i64, i64),
) -> Result<Selected, LokiError> {
    let (from, to) = micros_from_start_end(range.0, range.1);
    let (filter, resolver) = selection_filter(store, selection, extra_names, from, to).await?;
    Ok(Selected { filter, resolver })
}

pub async fn labels(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, LokiError> {
    let params = LokiParams::read(&request, payload).await?;
    let store: &dyn Store = &state.scoped(&request);
    let range = params.range(now_nanos(), DEFAULT_LABELS_SINCE)?;
    let selection = parse_selection(params.one("query"))?;
    let names = bounded(&state, &request, async {
        let selected = select(store, &selection, &[], range).await?;
        let mut present = Vec::new();
        for (label, key) in stream_label_names(&state) {
            let values = label_values(store, &selected.filter, stream_dimension(&key)).await?;
            if !values.is_empty() {
                present.push(label);
            }
        }
        Ok(present)
    })
    .await?;
    let names: BTreeSet<String> = names.into_iter().collect();
    answer::success(&names)
}

pub async fn label_values_of(
    request: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, LokiError> {
    let label = path.into_inner();
    let params = LokiParams::read(&request, payload).await?;
    let store: &dyn Store = &state.scoped(&request);
    let range = params.range(now_nanos(), DEFAULT_LABELS_SINCE)?;
    let selection = parse_selection(params.one("query"))?;
    let values = bounded(&state, &request, async {
        let selected = select(store, &selection, std::slice::from_ref(&label), range).await?;
        let stream_key = stream_label_names(&state)
            .into_iter()
            .find(|(name, key)| *name == label && key.is_some())
            .and_then(|(_, key)| key);
        let dimension = match stream_key {
            Some(key) => Dimension::Attribute(vec![key]),
            None => dimension_of(&label, &selected.resolver),
        };
        label_values(store, &selected.filter, dimension).await
    })
    .await?;
    let values: Vec<&String> = values.keys().collect();
    answer::success(&values)
}

pub async fn series(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, LokiError> {
    let params = LokiParams::read(&request, payload).await?;
    let store: &dyn Store = &state.scoped(&request);
    let range = params.range(now_nanos(), DEFAULT_LABELS_SINCE)?;
    let matches = params.all("match[]");
    if matches.is_empty() {
        return Err(LokiError::bad_request(
            "at least one match[] argument must be provided",
        ));
    }
    let selections = matches
        .iter()
        .map(|text| parse_selection(Some(text)))
        .collect::<Result<Vec<_>, _>>()?;
    let model = state.loki.label_model();
    let sets = bounded(&state, &request, async {
        let mut sets: BTreeSet<Vec<(String, String)>> = BTreeSet::new();
        let names = stream_label_names(&state);
        for selection in &selections {
            let selected = select(store, selection, &[], range).await?;
            match names.as_slice() {
                [_service] | [_service, _] => {
                    let mut group_by = vec![Dimension::Service];
                    let attribute = names
                        .get(1)
                        .map(|(label, key)| (label.clone(), key.clone()));
                    if let Some((_, key)) = &attribute {
                        group_by.push(stream_dimension(key));
                    }
                    let rows = state
                        .store
                        .grouped_counts(&GroupedCountQuery {
                            filter: selected.filter.clone(),
                            interval: None,
                            origin: 0,
                            group_by,
                            limit_groups: None,
                        })
                        .await?;
                    for row in rows {
                        let mut set = vec![(
                            "service_name".to_string(),
                            row.service.clone().unwrap_or_default(),
                        )];
                        if let (Some((label, _)), Some(value)) = (&attribute, &row.attribute) {
                            set.push((label.clone(), value.clone()));
                        }
                        set.sort();
                        sets.insert(set);
                    }
                }
                _ => {
                    // Several stream labels: the sets of the newest rows.
                    let mut read = 0usize;
                    for_each_row(store, &selected.filter, Order::Desc, 5000, |row| {
                        sets.insert(model.stream_labels(row));
                        read += 1;
                        read < SERIES_SCAN_ROWS
                    })
                    .await?;
                }
            }
        }
        Ok(sets)
    })
    .await?;
    let list: Vec<BTreeMap<&str, &str>> = sets
        .iter()
        .map(|set| {
            set.iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect()
        })
        .collect();
    answer::success(&list)
}

#[derive(Serialize)]
struct DetectedLabel {
    label: String,
    cardinality: usize,
}

#[derive(Serialize)]
struct DetectedLabels {
    #[serde(rename = "detectedLabels")]
    detected_labels: Vec<DetectedLabel>,
}

pub async fn detected_labels(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, LokiError> {
    let params = LokiParams::read(&request, payload).await?;
    let store: &dyn Store = &state.scoped(&request);
    let range = params.range(now_nanos(), super::params::DEFAULT_SINCE)?;
    let selection = parse_selection(params.one("query"))?;
    let detected = bounded(&state, &request, async {
        let selected = select(store, &selection, &[], range).await?;
        let mut detected = Vec::new();
        for (label, key) in stream_label_names(&state) {
            let values = label_values(store, &selected.filter, stream_dimension(&key)).await?;
            if !values.is_empty() {
                detected.push(DetectedLabel {
                    label,
                    cardinality: values.len(),
                });
            }
        }
        Ok(detected)
    })
    .await?;
    answer::bare(&DetectedLabels {
        detected_labels: detected,
    })
}
