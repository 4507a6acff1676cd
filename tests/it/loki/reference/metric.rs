//! Metric queries, naively: every range aggregation evaluated at every
//! step from all its samples, then vector aggregations and binary
//! operations per step, Prometheus' rules throughout.

use super::ast::*;
use super::parse::{bytes, go_duration_seconds};
use super::pipeline::{self, Line};
use super::{Labels, Model, Record, selector_matches};
use std::collections::BTreeMap;

/// A range query's answer, or the fact that it fails (a line left with
/// `__error__`, many-to-many matching).
#[derive(Debug, PartialEq)]
pub enum MetricAnswer {
    Matrix(BTreeMap<Labels, Vec<(i64, f64)>>),
    Fails,
}

enum Value {
    Scalar(f64),
    Vector(Vec<(Labels, f64)>),
}

struct Failed;

/// One sample of a range aggregation: its series, time and value.
struct Sample {
    labels: Labels,
    ts_ns: i64,
    value: f64,
}

pub fn metric_range(
    records: &[Record],
    model: &Model,
    query: &Query,
    start: i64,
    end: i64,
    step: i64,
) -> MetricAnswer {
    let Query::Metric(metric) = query else {
        panic!("not a metric query")
    };
    let times: Vec<i64> = (0..)
        .map(|k| start + k * step)
        .take_while(|t| *t <= end)
        .collect();
    let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for time in times {
        let value = match evaluate(metric, records, model, time, start, end) {
            Ok(value) => value,
            Err(Failed) => return MetricAnswer::Fails,
        };
        let samples = match value {
            Value::Scalar(v) => vec![(Vec::new(), v)],
            Value::Vector(vector) => vector,
        };
        for (labels, v) in samples {
            series
                .entry(super::sorted(labels))
                .or_default()
                .push((time / 1_000_000, v));
        }
    }
    MetricAnswer::Matrix(series)
}

fn evaluate(
    metric: &Metric,
    records: &[Record],
    model: &Model,
    time: i64,
    start: i64,
    end: i64,
) -> Result<Value, Failed> {
    Ok(match metric {
        Metric::Number(n) => Value::Scalar(*n),
        Metric::VectorLit(n) => Value::Vector(vec![(Vec::new(), *n)]),
        Metric::Range {
            op,
            parameter,
            log,
            range,
            offset,
            unwrap,
            grouping,
        } => {
            // Samples of the whole query's reach: a line left with an error
            // anywhere in it fails the query, as in Loki.
            let reach = (start - offset - range, end - offset);
            let samples = samples(records, model, log, unwrap.as_ref(), *op, reach)?;
            let (from, to) = (time - offset - range, time - offset);
            let mut by_series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
            for sample in samples.iter().filter(|s| s.ts_ns > from && s.ts_ns <= to) {
                let labels = match grouping {
                    Some(grouping) => grouping.apply(&sample.labels),
                    None => sample.labels.clone(),
                };
                by_series
                    .entry(super::sorted(labels))
                    .or_default()
                    .push((sample.ts_ns, sample.value));
            }
            if *op == RangeOp::Absent {
                if by_series.is_empty() {
                    let mut labels: Labels = log
                        .matchers
                        .iter()
                        .filter(|m| m.op == MatchOp::Eq)
                        .filter(|m| log.matchers.iter().filter(|o| o.name == m.name).count() == 1)
                        .map(|m| (m.name.clone(), m.value.clone()))
                        .collect();
                    labels.sort();
                    return Ok(Value::Vector(vec![(labels, 1.0)]));
                }
                return Ok(Value::Vector(Vec::new()));
            }
            let range_seconds = *range as f64 / 1e9;
            let mut out = Vec::new();
            for (labels, mut points) in by_series {
                points.sort_by_key(|(ts, _)| *ts);
                let values: Vec<f64> = points.iter().map(|(_, v)| *v).collect();
                let n = values.len() as f64;
                let sum: f64 = values.iter().sum();
                let value = match op {
                    RangeOp::Count => n,
                    RangeOp::Rate if unwrap.is_some() => sum / range_seconds,
                    RangeOp::Rate => n / range_seconds,
                    RangeOp::Bytes | RangeOp::Sum => sum,
                    RangeOp::BytesRate => sum / range_seconds,
                    RangeOp::Avg => sum / n,
                    RangeOp::Min => values.iter().cloned().fold(f64::INFINITY, f64::min),
                    RangeOp::Max => values.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                    RangeOp::First => values[0],
                    RangeOp::Last => values[values.len() - 1],
                    RangeOp::Stdvar => variance(&values),
                    RangeOp::Stddev => variance(&values).sqrt(),
                    RangeOp::Quantile => quantile(parameter.unwrap_or(0.5), values.clone()),
                    RangeOp::RateCounter => match counter_rate(&points, from, to, *range) {
                        Some(rate) => rate,
                        None => continue,
                    },
                    RangeOp::Absent => continue,
                };
                out.push((labels, value));
            }
            Value::Vector(out)
        }
        Metric::Vector {
            op,
            parameter,
            inner,
            grouping,
        } => {
            let Value::Vector(input) = evaluate(inner, records, model, time, start, end)? else {
                return Ok(Value::Vector(Vec::new()));
            };
            let mut groups: BTreeMap<Labels, Vec<(Labels, f64)>> = BTreeMap::new();
            for (labels, value) in input {
                let key = match grouping {
                    Some(grouping) => grouping.apply(&labels),
                    None => Vec::new(),
                };
                groups.entry(key).or_default().push((labels, value));
            }
            let mut out = Vec::new();
            for (key, mut members) in groups {
                let values: Vec<f64> = members.iter().map(|(_, v)| *v).collect();
                let n = values.len() as f64;
                let value = match op {
                    VecOp::Sum => values.iter().sum(),
                    VecOp::Avg => values.iter().sum::<f64>() / n,
                    VecOp::Count => n,
                    VecOp::Min => values.iter().cloned().fold(f64::INFINITY, f64::min),
                    VecOp::Max => values.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                    VecOp::Stdvar => variance(&values),
                    VecOp::Stddev => variance(&values).sqrt(),
                    VecOp::Topk | VecOp::Bottomk => {
                        // Ties go to the smaller label set (Prometheus leaves
                        // them unordered; the engine makes them stable so).
                        members.sort_by(|a, b| {
                            let order = if *op == VecOp::Topk {
                                b.1.total_cmp(&a.1)
                            } else {
                                a.1.total_cmp(&b.1)
                            };
                            order.then_with(|| a.0.cmp(&b.0))
                        });
                        members.truncate(parameter.unwrap_or(0.0) as usize);
                        out.extend(members);
                        continue;
                    }
                };
                out.push((key, value));
            }
            Value::Vector(out)
        }
        Metric::Binary {
            op,
            left,
            right,
            return_bool,
            matching,
        } => {
            let left = evaluate(left, records, model, time, start, end)?;
            let right = evaluate(right, records, model, time, start, end)?;
            binary(*op, left, right, *return_bool, matching.as_ref())?
        }
    })
}

fn arithmetic(op: Bin, l: f64, r: f64) -> f64 {
    match op {
        Bin::Add => l + r,
        Bin::Sub => l - r,
        Bin::Mul => l * r,
        Bin::Div => l / r,
        Bin::Mod => l % r,
        Bin::Pow => l.powf(r),
        _ => unreachable!("not arithmetic"),
    }
}

fn binary(
    op: Bin,
    left: Value,
    right: Value,
    return_bool: bool,
    matching: Option<&Matching>,
) -> Result<Value, Failed> {
    let compare = op.comparison();
    let apply = |l: f64, r: f64, kept: f64| -> Option<f64> {
        match compare {
            Some(cmp) if return_bool => Some(if cmp.holds(l, r) { 1.0 } else { 0.0 }),
            Some(cmp) => cmp.holds(l, r).then_some(kept),
            None => Some(arithmetic(op, l, r)),
        }
    };
    Ok(match (left, right) {
        (Value::Scalar(l), Value::Scalar(r)) => Value::Scalar(match compare {
            Some(cmp) => {
                if cmp.holds(l, r) {
                    1.0
                } else {
                    0.0
                }
            }
            None => arithmetic(op, l, r),
        }),
        (Value::Vector(vector), Value::Scalar(r)) => Value::Vector(
            vector
                .into_iter()
                .filter_map(|(labels, l)| apply(l, r, l).map(|v| (labels, v)))
                .collect(),
        ),
        (Value::Scalar(l), Value::Vector(vector)) => Value::Vector(
            vector
                .into_iter()
                .filter_map(|(labels, r)| apply(l, r, r).map(|v| (labels, v)))
                .collect(),
        ),
        (Value::Vector(left), Value::Vector(right)) => {
            let signature = |labels: &Labels| -> Labels {
                match matching {
                    None => labels.clone(),
                    Some(m) => labels
                        .iter()
                        .filter(|(name, _)| m.labels.contains(name) == m.on)
                        .cloned()
                        .collect(),
                }
            };
            match op {
                Bin::And | Bin::Unless => {
                    let keys: Vec<Labels> = right.iter().map(|(l, _)| signature(l)).collect();
                    Value::Vector(
                        left.into_iter()
                            .filter(|(l, _)| keys.contains(&signature(l)) == (op == Bin::And))
                            .collect(),
                    )
                }
                Bin::Or => {
                    let keys: Vec<Labels> = left.iter().map(|(l, _)| signature(l)).collect();
                    let mut out = left;
                    out.extend(
                        right
                            .into_iter()
                            .filter(|(l, _)| !keys.contains(&signature(l))),
                    );
                    Value::Vector(out)
                }
                _ => {
                    let mut ones: BTreeMap<Labels, (Labels, f64)> = BTreeMap::new();
                    for (labels, value) in right {
                        if ones.insert(signature(&labels), (labels, value)).is_some() {
                            return Err(Failed);
                        }
                    }
                    let grouped = matching.and_then(|m| m.group_left.as_ref());
                    let mut seen: Vec<Labels> = Vec::new();
                    let mut out = Vec::new();
                    for (labels, l) in left {
                        let key = signature(&labels);
                        let Some((one_labels, r)) = ones.get(&key) else {
                            continue;
                        };
                        if grouped.is_none() {
                            if seen.contains(&key) {
                                return Err(Failed);
                            }
                            seen.push(key.clone());
                        }
                        let Some(value) = apply(l, *r, l) else {
                            continue;
                        };
                        let result = match (matching, grouped) {
                            (None, _) => labels.clone(),
                            (Some(_), None) => key.clone(),
                            (Some(_), Some(include)) => {
                                let mut out: Labels = labels
                                    .iter()
                                    .filter(|(n, _)| !include.contains(n))
                                    .cloned()
                                    .collect();
                                for name in include {
                                    if let Some((_, v)) = one_labels.iter().find(|(n, _)| n == name)
                                    {
                                        out.push((name.clone(), v.clone()));
                                    }
                                }
                                out
                            }
                        };
                        out.push((result, value));
                    }
                    Value::Vector(out)
                }
            }
        }
    })
}

/// Every sample the aggregation's lines give within `(from, to]`.
fn samples(
    records: &[Record],
    model: &Model,
    log: &LogQuery,
    unwrap: Option<&Unwrap>,
    op: RangeOp,
    (from, to): (i64, i64),
) -> Result<Vec<Sample>, Failed> {
    let mut out = Vec::new();
    for record in records.iter().filter(|r| r.ts_ns > from && r.ts_ns <= to) {
        let mut line = Line::of(record, model);
        if !selector_matches(log, &line) || !pipeline::run(&log.stages, &mut line) {
            continue;
        }
        let value = match unwrap {
            Some(unwrap) => {
                let raw = line.get(&unwrap.label).unwrap_or("").to_string();
                let converted = match unwrap.conversion {
                    Conversion::Float => raw.parse::<f64>().ok().filter(|_| !raw.is_empty()),
                    Conversion::Duration => go_duration_seconds(&raw),
                    Conversion::Bytes => bytes(&raw),
                };
                if converted.is_none() && line.error.is_none() {
                    line.error = Some("SampleExtractionErr".into());
                    line.details = Some(String::new());
                }
                let mut kept = true;
                for filter in &unwrap.filters {
                    kept &= pipeline::run(
                        std::slice::from_ref(&Stage::Filter(clone_filter(filter))),
                        &mut line,
                    );
                    if !kept {
                        break;
                    }
                }
                if !kept {
                    continue;
                }
                line.stream.retain(|(n, _)| *n != unwrap.label);
                line.metadata.retain(|(n, _)| *n != unwrap.label);
                line.parsed.retain(|(n, _)| *n != unwrap.label);
                converted.unwrap_or(0.0)
            }
            None => match op {
                RangeOp::Bytes | RangeOp::BytesRate => line.text.len() as f64,
                _ => 1.0,
            },
        };
        if line.error.is_some() {
            return Err(Failed);
        }
        out.push(Sample {
            labels: line.merged(),
            ts_ns: record.ts_ns,
            value,
        });
    }
    Ok(out)
}

fn clone_filter(filter: &Filter) -> Filter {
    match filter {
        Filter::And(l, r) => Filter::And(Box::new(clone_filter(l)), Box::new(clone_filter(r))),
        Filter::Or(l, r) => Filter::Or(Box::new(clone_filter(l)), Box::new(clone_filter(r))),
        Filter::Text(m) => Filter::Text(Matcher {
            name: m.name.clone(),
            op: m.op,
            value: m.value.clone(),
            regex: m.regex.clone(),
        }),
        Filter::Number(n, c, v) => Filter::Number(n.clone(), *c, *v),
        Filter::Duration(n, c, v) => Filter::Duration(n.clone(), *c, *v),
        Filter::Bytes(n, c, v) => Filter::Bytes(n.clone(), *c, *v),
    }
}

/// Population variance, in two passes.
fn variance(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n
}

fn quantile(phi: f64, mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = phi * (values.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = (low + 1).min(values.len() - 1);
    let weight = rank - rank.floor();
    values[low] * (1.0 - weight) + values[high] * weight
}

/// Prometheus' `extrapolatedRate` for a counter, per second.
fn counter_rate(points: &[(i64, f64)], from: i64, to: i64, range: i64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let mut delta = points[points.len() - 1].1 - points[0].1;
    for pair in points.windows(2) {
        if pair[1].1 < pair[0].1 {
            delta += pair[0].1;
        }
    }
    let seconds = |nanos: i64| nanos as f64 / 1e9;
    let sampled = seconds(points[points.len() - 1].0 - points[0].0);
    let mut to_start = seconds(points[0].0 - from);
    let to_end = seconds(to - points[points.len() - 1].0);
    let average = sampled / (points.len() - 1) as f64;
    if delta > 0.0 && points[0].1 >= 0.0 {
        let to_zero = sampled * (points[0].1 / delta);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    Some(delta * (interval / sampled) / seconds(range))
}
