//! `detected_fields` and `detected_field/{name}/values`: Drilldown's fields
//! tab. Like Loki, from a sample of the newest lines of the query
//! (`line_limit`, 1000 by default): every structured-metadata label (our
//! attributes and `detected_level`) with `parsers: null`, and what `json`
//! (else `logfmt`) finds in each line with its parser and, for JSON, its
//! path; each with its distinct values in the sample and a type. Stream
//! labels stay out (they are labels, not fields), and so do id-like fields
//! whose every value differs (trace and request ids): a breakdown by them
//! shows nothing, as loki-vl-proxy found.

use super::answer;
use super::error::LokiError;
use super::execute::{KeyResolver, LogRun, ReadStats, micros_from_start_end};
use super::params::{DEFAULT_SINCE, LokiParams};
use super::request::{bounded, now_nanos};
use super::selection::{dimension_of, group_value, parse_selection};
use crate::domain::logql::{
    Entry, LabelModel, LogExpr, LogQueryEvaluator, LogQueryOptions, LogfmtStage, Query, Stage,
    parse_bytes, parse_duration,
};
use crate::domain::{Level, LogRecord};
use crate::query::QueryState;
use crate::store::Store;
use crate::store::{Dimension, GroupedCountQuery, Order};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

const DEFAULT_LINE_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 1000;
/// A field seen this often whose values are nearly all different and
/// look like ids is left out.
const ID_MIN_OCCURRENCES: usize = 20;

/// One line of the sample: its text and structured metadata.
struct SampleLine {
    line: String,
    metadata: Vec<(String, String)>,
}

/// The newest `line_limit` lines of `selection` over `range`.
async fn sample(
    store: &dyn Store,
    selection: &LogExpr,
    range: (i64, i64),
    line_limit: usize,
    model: &LabelModel,
) -> Result<(Vec<SampleLine>, KeyResolver), LokiError> {
    let (from, to) = micros_from_start_end(range.0, range.1);
    let names = super::execute::names_to_resolve(&Query::Log(selection.clone()));
    let resolver = KeyResolver::for_names(store, &names, from, to).await?;
    let options = LogQueryOptions {
        limit: line_limit.min(crate::domain::logql::MAX_ENTRIES),
        categorize_labels: true,
    };
    let streams = LogRun {
        store,
        model,
        resolver: &resolver,
    }
    .streams(
        selection,
        options,
        range,
        Order::Desc,
        &mut ReadStats::default(),
    )
    .await?;
    let lines = streams
        .into_iter()
        .flat_map(|stream| stream.entries)
        .map(|entry: Entry| SampleLine {
            line: entry.line,
            metadata: entry.structured_metadata,
        })
        .collect();
    Ok((lines, resolver))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Parser {
    Json,
    Logfmt,
}

impl Parser {
    fn name(self) -> &'static str {
        match self {
            Parser::Json => "json",
            Parser::Logfmt => "logfmt",
        }
    }
}

/// What the sample says about one field.
#[derive(Default)]
struct FieldSeen {
    metadata: bool,
    parsers: BTreeSet<Parser>,
    json_path: Option<Vec<String>>,
    occurrences: usize,
    values: BTreeSet<String>,
}

/// The fields a line's text holds: `json` when it parses as an object,
/// else `logfmt`, as Loki's `detected_fields` tries them.
fn parsed_fields(line: &str, model: &LabelModel) -> Vec<(String, String, Parser)> {
    let record = LogRecord {
        id: String::new(),
        timestamp: 0,
        level: Level::Info,
        service: String::new(),
        message: line.to_string(),
        attributes: Default::default(),
        tenant: Default::default(),
        trace_id: None,
        span_id: None,
    };
    for (parser, stage) in [
        (Parser::Json, Stage::Json(Vec::new())),
        (Parser::Logfmt, Stage::Logfmt(LogfmtStage::default())),
    ] {
        if parser == Parser::Json && !line.trim_start().starts_with('{') {
            continue;
        }
        let stages = [stage];
        let options = LogQueryOptions {
            limit: 1,
            categorize_labels: true,
        };
        let Ok(mut evaluator) = LogQueryEvaluator::new(&stages, model, options) else {
            continue;
        };
        evaluator.push(&record);
        let parsed: Vec<(String, String)> = evaluator
            .finish()
            .into_iter()
            .flat_map(|stream| stream.entries)
            .flat_map(|entry| entry.parsed)
            .collect();
        if parsed.iter().any(|(name, _)| name == "__error__") || parsed.is_empty() {
            continue;
        }
        return parsed
            .into_iter()
            .filter(|(name, _)| !name.starts_with("__"))
            .map(|(name, value)| (name, value, parser))
            .collect();
    }
    Vec::new()
}

/// The JSON path of each flattened name of a line (`a_b` → `["a", "b"]`).
fn json_paths(line: &str) -> BTreeMap<String, Vec<String>> {
    fn walk(
        value: &serde_json::Value,
        prefix: &str,
        path: &mut Vec<String>,
        out: &mut BTreeMap<String, Vec<String>>,
    ) {
        let serde_json::Value::Object(members) = value else {
            return;
        };
        for (key, inner) in members {
            let part = crate::domain::logql::sanitize_label_name(key.trim());
            let part = if part.starts_with(|c: char| c.is_ascii_digit()) {
                format!("_{part}")
            } else {
                part
            };
            let name = if prefix.is_empty() {
                part
            } else {
                format!("{prefix}_{part}")
            };
            path.push(key.clone());
            match inner {
                serde_json::Value::Object(_) => walk(inner, &name, path, out),
                serde_json::Value::Array(_) => {}
                _ => {
                    out.entry(name).or_insert_with(|| path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
        walk(&value, "", &mut Vec::new(), &mut out);
    }
    out
}

/// Every field of the sample, stream labels left out.
fn fields_of(lines: &[SampleLine], model: &LabelModel) -> BTreeMap<String, FieldSeen> {
    let mut fields: BTreeMap<String, FieldSeen> = BTreeMap::new();
    for line in lines {
        for (name, value) in &line.metadata {
            let seen = fields.entry(name.clone()).or_default();
            seen.metadata = true;
            seen.occurrences += 1;
            seen.values.insert(value.clone());
        }
        let parsed = parsed_fields(&line.line, model);
        let paths = if parsed.iter().any(|(_, _, p)| *p == Parser::Json) {
            json_paths(&line.line)
        } else {
            BTreeMap::new()
        };
        for (name, value, parser) in parsed {
            let seen = fields.entry(name.clone()).or_default();
            seen.parsers.insert(parser);
            if parser == Parser::Json && seen.json_path.is_none() {
                seen.json_path = Some(paths.get(&name).cloned().unwrap_or_else(|| vec![name]));
            }
            seen.occurrences += 1;
            seen.values.insert(value);
        }
    }
    fields.retain(|name, _| !model.is_stream_label(name));
    fields
}

/// A value's type, as Drilldown names them.
fn value_type(value: &str) -> &'static str {
    let has_unit = value.bytes().any(|b| b.is_ascii_alphabetic());
    if value.parse::<i64>().is_ok() {
        "int"
    } else if !has_unit && value.parse::<f64>().is_ok_and(f64::is_finite) {
        "float"
    } else if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
        "boolean"
    } else if has_unit && parse_duration(value).is_some() {
        "duration"
    } else if has_unit && parse_bytes(value).is_some() {
        "bytes"
    } else {
        "string"
    }
}

/// The type all values share (`int` and `float` together are `float`),
/// else `string`.
fn field_type(values: &BTreeSet<String>) -> &'static str {
    let mut kinds = values
        .iter()
        .map(|v| value_type(v))
        .collect::<BTreeSet<_>>();
    if kinds.len() == 2 && kinds.contains("int") && kinds.contains("float") {
        kinds.remove("int");
    }
    match kinds.len() {
        1 => kinds.into_iter().next().unwrap_or("string"),
        _ => "string",
    }
}

/// Nearly every occurrence a different value that looks like an id
/// (hex, digits and dashes, no spaces, at least 8 characters).
fn is_id_like(seen: &FieldSeen) -> bool {
    if seen.occurrences < ID_MIN_OCCURRENCES || seen.values.len() * 10 < seen.occurrences * 8 {
        return false;
    }
    let id_shaped = |value: &&String| {
        value.len() >= 8
            && value.bytes().any(|b| b.is_ascii_digit())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
            && value.parse::<f64>().is_err()
    };
    seen.values.iter().filter(id_shaped).count() * 10 >= seen.values.len() * 9
}

#[derive(Serialize)]
struct DetectedField {
    label: String,
    #[serde(rename = "type")]
    kind: &'static str,
    cardinality: usize,
    parsers: Option<Vec<&'static str>>,
    #[serde(rename = "jsonPath", skip_serializing_if = "Option::is_none")]
    json_path: Option<Vec<String>>,
}

#[derive(Serialize)]
struct DetectedFields {
    fields: Vec<DetectedField>,
    limit: usize,
}

pub async fn detected_fields(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, LokiError> {
    let params = LokiParams::read(&request, payload).await?;
    let store: &dyn Store = &state.scoped(&request);
    let selection = parse_selection(Some(params.query()?))?;
    let range = params.range(now_nanos(), DEFAULT_SINCE)?;
    let line_limit = params
        .one("line_limit")
        .map(|text| {
            text.parse::<usize>().map_err(|_| {
                LokiError::bad_parameter("line_limit", format!("expected a number, got {text:?}"))
            })
        })
        .transpose()?
        .unwrap_or(DEFAULT_LINE_LIMIT);
    let limit = params.limit(DEFAULT_LIMIT)?;
    let model = state.loki.label_model();
    let (lines, _) = bounded(&state, &request, async {
        sample(store, &selection, range, line_limit, &model).await
    })
    .await?;
    let fields: Vec<DetectedField> = fields_of(&lines, &model)
        .into_iter()
        .filter(|(_, seen)| !is_id_like(seen))
        .take(limit)
        .map(|(label, seen)| DetectedField {
            kind: field_type(&seen.values),
            cardinality: seen.values.len(),
            parsers: (!seen.metadata).then(|| seen.parsers.iter().map(|p| p.name()).collect()),
            json_path: if seen.metadata { None } else { seen.json_path },
            label,
        })
        .collect();
    answer::bare(&DetectedFields { fields, limit })
}

#[derive(Serialize)]
struct FieldValues {
    values: Vec<String>,
    limit: usize,
}

pub async fn detected_field_values(
    request: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, LokiError> {
    let name = path.into_inner();
    let params = LokiParams::read(&request, payload).await?;
    let store: &dyn Store = &state.scoped(&request);
    let selection = parse_selection(Some(params.query()?))?;
    let range = params.range(now_nanos(), DEFAULT_SINCE)?;
    let limit = params.limit(DEFAULT_LIMIT)?;
    let line_limit = DEFAULT_LINE_LIMIT;
    let model = state.loki.label_model();
    let values = bounded(&state, &request, async {
        let (lines, resolver) = sample(store, &selection, range, line_limit, &model).await?;
        let fields = fields_of(&lines, &model);
        let stored = name == "detected_level"
            || name == "level"
            || fields.get(&name).is_some_and(|seen| seen.metadata)
            || !resolver.index().keys_for(&name).is_empty();
        if !stored {
            return Ok(fields
                .get(&name)
                .map(|seen| seen.values.iter().cloned().collect::<Vec<_>>())
                .unwrap_or_default());
        }
        // A stored label: every value of the range, counted by the store.
        let (from, to) = micros_from_start_end(range.0, range.1);
        let (filter, resolver) = super::selection::selection_filter(
            store,
            &selection,
            std::slice::from_ref(&name),
            from,
            to,
        )
        .await?;
        let dimension = dimension_of(&name, &resolver);
        let rows = state
            .store
            .grouped_counts(&GroupedCountQuery {
                filter,
                interval: None,
                origin: 0,
                group_by: vec![dimension.clone()],
                limit_groups: Some(limit),
            })
            .await?;
        let mut values: Vec<String> = rows
            .iter()
            .filter(|row| !row.other)
            .filter_map(|row| group_value(row, &dimension))
            .collect();
        values.sort();
        values.dedup();
        if matches!(dimension, Dimension::Level) {
            values.sort_by_key(|v| Level::parse(v).map(Level::code));
        }
        Ok(values)
    })
    .await?;
    let mut values = values;
    values.truncate(limit);
    answer::bare(&FieldValues { values, limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(values: &[&str]) -> BTreeSet<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn types_of_values() {
        assert_eq!(field_type(&set(&["200", "503"])), "int");
        assert_eq!(field_type(&set(&["1", "2.5"])), "float");
        assert_eq!(field_type(&set(&["true", "FALSE"])), "boolean");
        assert_eq!(field_type(&set(&["10ms", "1.5s"])), "duration");
        assert_eq!(field_type(&set(&["10KB", "3MiB"])), "bytes");
        assert_eq!(field_type(&set(&["GET", "10ms"])), "string");
    }

    #[test]
    fn json_and_logfmt_lines() {
        let model = LabelModel::default();
        let json = parsed_fields(
            r#"{"user":{"id":7,"name":"ann"},"took":"15ms","tags":[1]}"#,
            &model,
        );
        let names: Vec<&str> = json.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["took", "user_id", "user_name"]);
        assert!(json.iter().all(|(_, _, p)| *p == Parser::Json));
        let paths = json_paths(r#"{"user":{"id":7}}"#);
        assert_eq!(paths["user_id"], ["user", "id"]);
        let logfmt = parsed_fields("method=GET status=200 took=3ms", &model);
        assert_eq!(logfmt.len(), 3);
        assert!(logfmt.iter().all(|(_, _, p)| *p == Parser::Logfmt));
        assert!(parsed_fields("connection reset by peer", &model).is_empty());
    }

    #[test]
    fn id_like_fields_are_recognised() {
        let mut ids = FieldSeen::default();
        for n in 0..30 {
            ids.occurrences += 1;
            ids.values
                .insert(format!("4bf92f3577b34da6a3ce929d0e0e{n:04}"));
        }
        assert!(is_id_like(&ids));
        let mut durations = FieldSeen::default();
        for n in 0..30 {
            durations.occurrences += 1;
            durations.values.insert(format!("{n}ms"));
        }
        assert!(
            !is_id_like(&durations),
            "values with a unit are measurements"
        );
        let mut statuses = FieldSeen {
            occurrences: 30,
            values: set(&["200", "500"]),
            ..Default::default()
        };
        statuses.metadata = true;
        assert!(!is_id_like(&statuses));
    }
}
