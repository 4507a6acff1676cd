//! Metric queries: a plan of the range aggregations (the leaves, each with
//! its pushed-down `Expr` and residual), an evaluator the caller feeds with
//! rows or with pre-aggregated counts per leaf, and the result as Loki
//! returns it (a matrix for `query_range`, a vector or scalar for `query`).
//!
//! Series are ordered by their labels (Prometheus' label order); an
//! instant vector whose outermost operation is `topk`, `bottomk`, `sort`
//! or `sort_desc` keeps that operation's order. `sum by (…)` over an
//! additive range aggregation (`count_over_time`, `rate`, `bytes_*`,
//! `sum_over_time`) groups while it aggregates, as Loki does, so a line's
//! many structured-metadata labels never become series of their own.

mod counts;
mod operators;
mod range;

pub use counts::{CountDimensions, CountRow, Counting};

use super::ast::{Grouping, MetricExpr, RangeAggregation, RangeOp, VectorAggregation, VectorOp};
use super::labels::LabelModel;
use super::pushdown::{AttributeKeys, Pushdown};
use super::streams::{EvalError, Labels, MAX_SERIES};
use crate::domain::LogRecord;
use operators::Value;
use range::RangeSamples;
use std::collections::BTreeMap;

/// Loki's (Prometheus') most points per series.
pub const MAX_POINTS: usize = 11_000;

/// One step's samples.
pub type StepVector = Vec<(Labels, f64)>;

/// The evaluation times: `start, start + step, …` up to `end` for a range
/// query, one time for an instant query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepGrid {
    start: i64,
    end: i64,
    /// 0 for an instant query.
    step: i64,
}

impl StepGrid {
    /// `query_range`'s grid, in nanoseconds.
    pub fn range(start_nanos: i64, end_nanos: i64, step_nanos: i64) -> Result<StepGrid, EvalError> {
        if step_nanos <= 0 {
            return Err(EvalError::InvalidGrid(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end_nanos < start_nanos {
            return Err(EvalError::InvalidGrid(
                "end timestamp must not be before start time".into(),
            ));
        }
        let points = end_nanos
            .checked_sub(start_nanos)
            .map(|span| span / step_nanos + 1)
            .ok_or_else(|| EvalError::InvalidGrid("the time range is too long".into()))?;
        if points > MAX_POINTS as i64 {
            return Err(EvalError::TooManyPoints);
        }
        Ok(StepGrid {
            start: start_nanos,
            end: end_nanos,
            step: step_nanos,
        })
    }

    /// `query`'s single time, in nanoseconds.
    pub fn instant(time_nanos: i64) -> StepGrid {
        StepGrid {
            start: time_nanos,
            end: time_nanos,
            step: 0,
        }
    }

    pub fn start_nanos(&self) -> i64 {
        self.start
    }

    pub fn end_nanos(&self) -> i64 {
        self.end
    }

    /// 0 for an instant query.
    pub fn step_nanos(&self) -> i64 {
        self.step
    }

    pub fn is_instant(&self) -> bool {
        self.step == 0
    }

    pub fn times(&self) -> impl Iterator<Item = i64> + use<> {
        let (start, end, step) = (self.start, self.end, self.step.max(1));
        let count = if self.step == 0 {
            1
        } else {
            (end - start) / step + 1
        };
        (0..count).map(move |index| start + index * step)
    }
}

/// A metric query ready to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPlan {
    expr: MetricExpr,
    leaves: Vec<Leaf>,
}

/// One range aggregation: what to read and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    pub aggregation: RangeAggregation,
    /// The store condition for its rows, and the stages left for them.
    pub pushdown: Pushdown,
    /// The grouping applied while aggregating (its own `by`, or the `sum
    /// by` above it for additive operations).
    grouping: Option<Grouping>,
    count_dimensions: Option<CountDimensions>,
}

impl Leaf {
    /// The rows to read: timestamps `from < t <= to`, in nanoseconds.
    pub fn fetch_range(&self, grid: &StepGrid) -> (i64, i64) {
        let offset = self.aggregation.offset_nanos;
        (
            grid.start_nanos()
                .saturating_sub(offset)
                .saturating_sub(self.aggregation.range_nanos),
            grid.end_nanos().saturating_sub(offset),
        )
    }

    /// How to compute this leaf from counts, when it can be.
    pub fn countable(&self, grid: &StepGrid) -> Option<Counting> {
        let dimensions = self.count_dimensions.clone()?;
        Some(Counting::new(
            dimensions,
            grid,
            self.aggregation.range_nanos,
            self.aggregation.offset_nanos,
        ))
    }
}

fn is_additive(op: RangeOp) -> bool {
    matches!(
        op,
        RangeOp::CountOverTime
            | RangeOp::Rate
            | RangeOp::BytesOverTime
            | RangeOp::BytesRate
            | RangeOp::SumOverTime
    )
}

impl MetricPlan {
    /// Plans `expr`; `attribute_keys` resolves label names to stored keys
    /// (see [`super::LogExpr::push_down`]).
    pub fn new(expr: &MetricExpr, attribute_keys: AttributeKeys<'_>) -> MetricPlan {
        let mut leaves = Vec::new();
        collect_leaves(expr, None, attribute_keys, &mut leaves);
        MetricPlan {
            expr: expr.clone(),
            leaves,
        }
    }

    /// The range aggregations, left to right.
    pub fn leaves(&self) -> &[Leaf] {
        &self.leaves
    }

    pub fn evaluator<'a>(&'a self, grid: StepGrid, model: &'a LabelModel) -> MetricEvaluator<'a> {
        MetricEvaluator {
            plan: self,
            grid,
            model,
            samples: self
                .leaves
                .iter()
                .map(|_| RangeSamples::default())
                .collect(),
            inputs: vec![Input::Nothing; self.leaves.len()],
        }
    }
}

fn collect_leaves(
    expr: &MetricExpr,
    parent: Option<&VectorAggregation>,
    attribute_keys: AttributeKeys<'_>,
    leaves: &mut Vec<Leaf>,
) {
    match expr {
        MetricExpr::Range(aggregation) => {
            let pushdown = aggregation.log.push_down(attribute_keys);
            let parent_sum_by =
                parent
                    .filter(|p| p.op == VectorOp::Sum)
                    .and_then(|p| match &p.grouping {
                        None => Some(Vec::new()),
                        Some(grouping) if !grouping.without => Some(grouping.labels.clone()),
                        Some(_) => None,
                    });
            let grouping = match (&aggregation.grouping, &parent_sum_by) {
                (Some(own), _) => Some(own.clone()),
                (None, Some(labels)) if is_additive(aggregation.op) => Some(Grouping {
                    without: false,
                    labels: labels.clone(),
                }),
                _ => None,
            };
            let countable = matches!(aggregation.op, RangeOp::CountOverTime | RangeOp::Rate)
                && aggregation.unwrap.is_none()
                && aggregation.grouping.is_none()
                && pushdown.residual_is_noop();
            let count_dimensions = parent_sum_by
                .filter(|_| countable)
                .and_then(|labels| CountDimensions::of(&labels, attribute_keys));
            leaves.push(Leaf {
                aggregation: aggregation.clone(),
                pushdown,
                grouping,
                count_dimensions,
            });
        }
        MetricExpr::Vector(vector) => {
            collect_leaves(&vector.inner, Some(vector), attribute_keys, leaves)
        }
        MetricExpr::Binary(binary) => {
            collect_leaves(&binary.left, None, attribute_keys, leaves);
            collect_leaves(&binary.right, None, attribute_keys, leaves);
        }
        MetricExpr::Literal(_) | MetricExpr::VectorLiteral(_) => {}
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    Nothing,
    Rows,
    /// Counts in buckets of this width.
    Buckets(i64),
}

/// Collects each leaf's rows or counts, then evaluates the query.
pub struct MetricEvaluator<'a> {
    plan: &'a MetricPlan,
    grid: StepGrid,
    model: &'a LabelModel,
    samples: Vec<RangeSamples>,
    inputs: Vec<Input>,
}

impl<'a> MetricEvaluator<'a> {
    fn leaf(&self, leaf: usize) -> Result<&'a Leaf, EvalError> {
        let plan: &'a MetricPlan = self.plan;
        plan.leaves
            .get(leaf)
            .ok_or_else(|| EvalError::Counts(format!("no leaf {leaf}")))
    }

    /// One row the store returned for leaf `leaf`'s `pushdown.expr` (rows
    /// outside [`Leaf::fetch_range`] are ignored).
    pub fn push_row(&mut self, leaf: usize, record: &LogRecord) -> Result<(), EvalError> {
        let spec = self.leaf(leaf)?;
        if matches!(self.inputs[leaf], Input::Buckets(_)) {
            return Err(EvalError::Counts(format!(
                "leaf {leaf} was given counts already"
            )));
        }
        let (from, to) = spec.fetch_range(&self.grid);
        let nanos = record.timestamp.saturating_mul(1000);
        if nanos <= from || nanos > to {
            return Ok(());
        }
        self.inputs[leaf] = Input::Rows;
        self.samples[leaf].push_row(
            &spec.aggregation,
            &spec.pushdown.residual,
            spec.grouping.as_ref(),
            self.model,
            record,
        )
    }

    /// Counts for a countable leaf (see [`Leaf::countable`]) in buckets of
    /// `bucket_width_nanos`, which [`Counting::accepts_buckets_of`].
    pub fn push_counts(
        &mut self,
        leaf: usize,
        bucket_width_nanos: i64,
        rows: &[CountRow],
    ) -> Result<(), EvalError> {
        let spec = self.leaf(leaf)?;
        let counting = spec
            .countable(&self.grid)
            .ok_or_else(|| EvalError::Counts(format!("leaf {leaf} is not countable")))?;
        // The buckets start at the counting's own origin (the store is asked
        // for them from there; each row is checked below), so only the width
        // must divide the windows'. `accepts_buckets_of` is the stricter
        // question of epoch-aligned rollups, which an instant query's
        // windows (ending at `now`) never are.
        if bucket_width_nanos <= 0 || counting.width_nanos % bucket_width_nanos != 0 {
            return Err(EvalError::Counts(format!(
                "buckets of {bucket_width_nanos} ns do not tile windows of {} ns from {}",
                counting.width_nanos, counting.origin_nanos
            )));
        }
        match self.inputs[leaf] {
            Input::Rows => {
                return Err(EvalError::Counts(format!(
                    "leaf {leaf} was given rows already"
                )));
            }
            Input::Buckets(width) if width != bucket_width_nanos => {
                return Err(EvalError::Counts("counts of two bucket widths".into()));
            }
            _ => {}
        }
        self.inputs[leaf] = Input::Buckets(bucket_width_nanos);
        for row in rows {
            let from_origin = row.bucket_start_nanos.wrapping_sub(counting.origin_nanos);
            if from_origin.rem_euclid(bucket_width_nanos) != 0 {
                return Err(EvalError::Counts(format!(
                    "bucket {} is not on the grid",
                    row.bucket_start_nanos
                )));
            }
            if row.count == 0 {
                continue;
            }
            let labels = counting.dimensions.labels(row);
            self.samples[leaf].push_bucket(labels, row.bucket_start_nanos, row.count as f64)?;
        }
        Ok(())
    }

    /// The answer.
    pub fn finish(self) -> Result<MetricResult, EvalError> {
        let mut leaf_steps = Vec::with_capacity(self.samples.len());
        for ((samples, leaf), input) in self
            .samples
            .into_iter()
            .zip(&self.plan.leaves)
            .zip(&self.inputs)
        {
            let bucket_width = match input {
                Input::Buckets(width) => Some(*width),
                _ => None,
            };
            leaf_steps.push(samples.evaluate(&leaf.aggregation, &self.grid, bucket_width)?);
        }
        let times: Vec<i64> = self.grid.times().collect();
        let mut values = Vec::with_capacity(times.len());
        for step in 0..times.len() {
            let mut next_leaf = 0;
            values.push(evaluate(
                &self.plan.expr,
                step,
                &mut leaf_steps,
                &mut next_leaf,
            )?);
        }
        assemble(&self.plan.expr, &self.grid, &times, values)
    }
}

fn evaluate(
    expr: &MetricExpr,
    step: usize,
    leaf_steps: &mut [Vec<StepVector>],
    next_leaf: &mut usize,
) -> Result<Value, EvalError> {
    Ok(match expr {
        MetricExpr::Range(_) => {
            let leaf = *next_leaf;
            *next_leaf += 1;
            Value::Vector(std::mem::take(&mut leaf_steps[leaf][step]))
        }
        MetricExpr::Vector(vector) => {
            let inner = match evaluate(&vector.inner, step, leaf_steps, next_leaf)? {
                Value::Vector(inner) => inner,
                Value::Scalar(_) => Vec::new(),
            };
            Value::Vector(operators::aggregate(vector, inner))
        }
        MetricExpr::Binary(binary) => {
            let left = evaluate(&binary.left, step, leaf_steps, next_leaf)?;
            let right = evaluate(&binary.right, step, leaf_steps, next_leaf)?;
            operators::binary(binary, left, right)?
        }
        MetricExpr::Literal(value) => Value::Scalar(*value),
        MetricExpr::VectorLiteral(value) => Value::Vector(vec![(Vec::new(), *value)]),
    })
}

/// A metric query's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricResult {
    /// `query_range`: series ordered by labels.
    Matrix(Vec<Series>),
    /// `query` of a vector.
    Vector(Vec<Sample>),
    /// `query` of a scalar.
    Scalar { timestamp_ms: i64, value: f64 },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    /// (milliseconds since the epoch, value).
    pub points: Vec<(i64, f64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub timestamp_ms: i64,
    pub value: f64,
}

fn keeps_own_order(expr: &MetricExpr) -> bool {
    matches!(
        expr,
        MetricExpr::Vector(VectorAggregation {
            op: VectorOp::Topk | VectorOp::Bottomk | VectorOp::Sort | VectorOp::SortDesc,
            ..
        })
    )
}

fn assemble(
    expr: &MetricExpr,
    grid: &StepGrid,
    times: &[i64],
    values: Vec<Value>,
) -> Result<MetricResult, EvalError> {
    let millis = |nanos: i64| nanos.div_euclid(1_000_000);
    if grid.is_instant() {
        let timestamp_ms = millis(times[0]);
        return Ok(match values.into_iter().next() {
            Some(Value::Scalar(value)) => MetricResult::Scalar {
                timestamp_ms,
                value,
            },
            Some(Value::Vector(mut vector)) => {
                if vector.len() > MAX_SERIES {
                    return Err(EvalError::TooManySeries);
                }
                if !keeps_own_order(expr) {
                    vector.sort_by(|a, b| a.0.cmp(&b.0));
                }
                MetricResult::Vector(
                    vector
                        .into_iter()
                        .map(|(labels, value)| Sample {
                            labels,
                            timestamp_ms,
                            value,
                        })
                        .collect(),
                )
            }
            None => MetricResult::Vector(Vec::new()),
        });
    }
    let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for (time, value) in times.iter().zip(values) {
        let samples = match value {
            Value::Scalar(value) => vec![(Vec::new(), value)],
            Value::Vector(vector) => vector,
        };
        for (labels, value) in samples {
            if !series.contains_key(&labels) && series.len() >= MAX_SERIES {
                return Err(EvalError::TooManySeries);
            }
            series
                .entry(labels)
                .or_default()
                .push((millis(*time), value));
        }
    }
    Ok(MetricResult::Matrix(
        series
            .into_iter()
            .map(|(labels, points)| Series { labels, points })
            .collect(),
    ))
}
