//! Range aggregations: samples per series, then one value per step from the
//! samples in the step's window `(t - offset - range, t - offset]`, as
//! Loki computes them. A series with no sample in a window has no value
//! at that step (`rate_counter` needs two).

use super::super::ast::{Conversion, RangeAggregation, RangeOp};
use super::super::labels::LabelModel;
use super::super::pipeline::{self, Line, label_filter_passes};
use super::super::streams::{EvalError, Labels, MAX_SERIES, labels_text};
use super::super::units::{duration_seconds, parse_bytes, parse_float};
use super::{Grouping, StepGrid, StepVector};
use crate::domain::LogRecord;
use std::collections::BTreeMap;

pub const SAMPLE_ERROR: &str = "SampleExtractionErr";

/// The samples one range aggregation has received.
#[derive(Debug, Default)]
pub(super) struct RangeSamples {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
    /// The first line that still had `__error__` at the end (Loki refuses
    /// the query then).
    pipeline_error: Option<(String, Labels)>,
}

impl RangeSamples {
    /// One row through the residual stages, `unwrap` and its filters.
    pub fn push_row(
        &mut self,
        aggregation: &RangeAggregation,
        residual: &[super::super::ast::Stage],
        grouping: Option<&Grouping>,
        model: &LabelModel,
        record: &LogRecord,
    ) -> Result<(), EvalError> {
        let mut line = Line::of(record, model);
        if !pipeline::run(residual, &mut line) {
            return Ok(());
        }
        let value = match &aggregation.unwrap {
            Some(unwrap) => {
                let raw = line.labels.get(&unwrap.label).unwrap_or("").to_string();
                let converted = match unwrap.conversion {
                    Conversion::Float => parse_float(&raw),
                    Conversion::Duration | Conversion::DurationSeconds => duration_seconds(&raw),
                    Conversion::Bytes => parse_bytes(&raw).map(|bytes| bytes as f64),
                };
                let value = converted.unwrap_or_else(|| {
                    line.labels
                        .set_error(SAMPLE_ERROR, format!("cannot convert {raw:?} to a number"));
                    0.0
                });
                for filter in &unwrap.filters {
                    if !label_filter_passes(filter, &mut line.labels) {
                        return Ok(());
                    }
                }
                line.labels.remove(&unwrap.label);
                value
            }
            None => match aggregation.op {
                RangeOp::BytesOverTime | RangeOp::BytesRate => line.text.len() as f64,
                _ => 1.0,
            },
        };
        let labels = line.labels.merged();
        if line.labels.has_error() {
            if self.pipeline_error.is_none() {
                let error = line.labels.get("__error__").unwrap_or("").to_string();
                self.pipeline_error = Some((error, labels));
            }
            return Ok(());
        }
        let labels = match grouping {
            Some(grouping) => grouping.apply(&labels),
            None => labels,
        };
        if !self.series.contains_key(&labels) && self.series.len() >= MAX_SERIES {
            return Err(EvalError::TooManySeries);
        }
        self.series
            .entry(labels)
            .or_default()
            .push((line.timestamp_nanos, value));
        Ok(())
    }

    /// Counts already summed per bucket of `(start, start + width]`.
    pub fn push_bucket(
        &mut self,
        labels: Labels,
        bucket_start: i64,
        count: f64,
    ) -> Result<(), EvalError> {
        if !self.series.contains_key(&labels) && self.series.len() >= MAX_SERIES {
            return Err(EvalError::TooManySeries);
        }
        self.series
            .entry(labels)
            .or_default()
            .push((bucket_start, count));
        Ok(())
    }

    /// One vector per step of `grid`.
    pub fn evaluate(
        mut self,
        aggregation: &RangeAggregation,
        grid: &StepGrid,
        bucket_width: Option<i64>,
    ) -> Result<Vec<StepVector>, EvalError> {
        if let Some((error, labels)) = self.pipeline_error {
            return Err(EvalError::Pipeline {
                error,
                series: labels_text(&labels),
            });
        }
        let times: Vec<i64> = grid.times().collect();
        let mut steps: Vec<StepVector> = vec![Vec::new(); times.len()];
        let range_seconds = aggregation.range_nanos as f64 / 1e9;
        if aggregation.op == RangeOp::AbsentOverTime {
            for (step, time) in times.iter().enumerate() {
                let (from, to) = window(aggregation, *time);
                let any = self.series.values().any(|samples| {
                    samples
                        .iter()
                        .any(|(ts, _)| in_window(*ts, from, to, bucket_width))
                });
                if !any {
                    steps[step].push((absent_labels(aggregation), 1.0));
                }
            }
            return Ok(steps);
        }
        for (labels, samples) in &mut self.series {
            samples.sort_by_key(|(ts, _)| *ts);
            // A bucket counts toward a window when it lies inside it.
            let key = |ts: i64| match bucket_width {
                Some(width) => ts.saturating_add(width),
                None => ts,
            };
            for (step, time) in times.iter().enumerate() {
                let (from, to) = window(aggregation, *time);
                let start = samples.partition_point(|(ts, _)| key(*ts) <= from);
                let end = samples.partition_point(|(ts, _)| key(*ts) <= to);
                let mut in_range = &samples[start..end];
                if bucket_width.is_some() {
                    // A bucket must also start inside the window.
                    let inside = in_range.partition_point(|(ts, _)| *ts < from);
                    in_range = &in_range[inside..];
                }
                if in_range.is_empty() {
                    continue;
                }
                let values = || in_range.iter().map(|(_, value)| *value);
                let value = match aggregation.op {
                    RangeOp::CountOverTime if bucket_width.is_some() => values().sum(),
                    RangeOp::CountOverTime => in_range.len() as f64,
                    RangeOp::Rate if bucket_width.is_some() || aggregation.unwrap.is_some() => {
                        values().sum::<f64>() / range_seconds
                    }
                    RangeOp::Rate => in_range.len() as f64 / range_seconds,
                    RangeOp::BytesOverTime | RangeOp::SumOverTime => values().sum(),
                    RangeOp::BytesRate => values().sum::<f64>() / range_seconds,
                    RangeOp::AvgOverTime => values().sum::<f64>() / in_range.len() as f64,
                    RangeOp::MinOverTime => {
                        values().fold(f64::NAN, |a, b| if a.is_nan() || b < a { b } else { a })
                    }
                    RangeOp::MaxOverTime => {
                        values().fold(f64::NAN, |a, b| if a.is_nan() || b > a { b } else { a })
                    }
                    RangeOp::FirstOverTime => in_range[0].1,
                    RangeOp::LastOverTime => in_range[in_range.len() - 1].1,
                    RangeOp::StddevOverTime => variance(values()).sqrt(),
                    RangeOp::StdvarOverTime => variance(values()),
                    RangeOp::QuantileOverTime => {
                        quantile(aggregation.parameter.unwrap_or(0.5), values().collect())
                    }
                    RangeOp::RateCounter => {
                        match counter_rate(in_range, from, to, aggregation.range_nanos) {
                            Some(rate) => rate,
                            None => continue,
                        }
                    }
                    RangeOp::AbsentOverTime => continue,
                };
                steps[step].push((labels.clone(), value));
            }
        }
        Ok(steps)
    }
}

/// The window of the step at `time`: `(from, to]` in nanoseconds.
pub(super) fn window(aggregation: &RangeAggregation, time: i64) -> (i64, i64) {
    let to = time.saturating_sub(aggregation.offset_nanos);
    (to.saturating_sub(aggregation.range_nanos), to)
}

fn in_window(ts: i64, from: i64, to: i64, bucket_width: Option<i64>) -> bool {
    match bucket_width {
        Some(width) => ts >= from && ts.saturating_add(width) <= to,
        None => ts > from && ts <= to,
    }
}

/// `absent_over_time`'s labels: the selector's equality matchers (a name
/// given twice is left out), as Loki builds them.
fn absent_labels(aggregation: &RangeAggregation) -> Labels {
    use super::super::ast::MatchOp;
    let matchers = &aggregation.log.selector.matchers;
    let mut labels: Labels = matchers
        .iter()
        .filter(|m| m.op == MatchOp::Equal)
        .filter(|m| matchers.iter().filter(|other| other.name == m.name).count() == 1)
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect();
    labels.sort();
    labels
}

/// Population variance, as Prometheus' `stdvar_over_time`.
fn variance(values: impl Iterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut squares) = (0.0, 0.0, 0.0);
    for value in values {
        count += 1.0;
        let delta = value - mean;
        mean += delta / count;
        squares += delta * (value - mean);
    }
    squares / count
}

/// Prometheus' φ-quantile with linear interpolation between ranks.
pub(super) fn quantile(phi: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || phi.is_nan() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    let rank = phi * (values.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let upper = (lower + 1).min(values.len() - 1);
    let weight = rank - rank.floor();
    values[lower] * (1.0 - weight) + values[upper] * weight
}

/// Prometheus' extrapolated rate of a counter (resets add the value before
/// them), per second of the range.
fn counter_rate(samples: &[(i64, f64)], from: i64, to: i64, range_nanos: i64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (first_ts, first) = samples[0];
    let (last_ts, last) = samples[samples.len() - 1];
    let mut result = last - first;
    for pair in samples.windows(2) {
        if pair[1].1 < pair[0].1 {
            result += pair[0].1;
        }
    }
    let seconds = |nanos: i64| nanos as f64 / 1e9;
    let mut to_start = seconds(first_ts - from);
    let to_end = seconds(to - last_ts);
    let sampled = seconds(last_ts - first_ts);
    if sampled <= 0.0 {
        return None;
    }
    let average = sampled / (samples.len() - 1) as f64;
    if result > 0.0 && first >= 0.0 {
        let to_zero = sampled * (first / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut extrapolated = sampled;
    extrapolated += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    extrapolated += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    Some(result * (extrapolated / sampled) / seconds(range_nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        assert_eq!(quantile(0.5, vec![1.0, 3.0, 2.0]), 2.0);
        assert_eq!(quantile(0.75, vec![1.0, 2.0, 3.0, 4.0]), 3.25);
        assert_eq!(quantile(1.5, vec![1.0]), f64::INFINITY);
        assert!(
            (variance([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0].into_iter()) - 4.0).abs() < 1e-12
        );
        let second = 1_000_000_000;
        // A counter from 10 to 40 over 30 s of a 60 s window, one sample
        // every 10 s: 10 s to the start is within 1.1 intervals and is
        // extrapolated in full, 20 s to the end is not and adds half an
        // interval: 30 * 45/30 per 60 s.
        let samples = [
            (10 * second, 10.0),
            (20 * second, 20.0),
            (30 * second, 30.0),
            (40 * second, 40.0),
        ];
        let rate = counter_rate(&samples, 0, 60 * second, 60 * second).unwrap();
        assert!((rate - 0.75).abs() < 1e-9, "{rate}");
        assert_eq!(
            counter_rate(&samples[..1], 0, 60 * second, 60 * second),
            None
        );
    }
}
