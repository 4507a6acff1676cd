//! Vector aggregations and binary operations on one step's values, with
//! Prometheus' semantics (which Loki reuses): grouping by `by`/`without`,
//! `topk`/`bottomk` keeping whole series, comparisons that filter unless
//! `bool`, one-to-one matching on all labels or `on`/`ignoring`, many-to-one
//! with `group_left`/`group_right`, and the set operators.

use super::super::ast::{
    BinaryExpr, BinaryOp, GroupSide, Grouping, VectorAggregation, VectorMatching, VectorOp,
};
use super::super::streams::{EvalError, Labels, labels_text};
use super::StepVector;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A step's value: a number, or samples keyed by labels.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value {
    Scalar(f64),
    Vector(StepVector),
}

impl Grouping {
    /// The labels a sample keeps under this grouping.
    pub fn apply(&self, labels: &[(String, String)]) -> Labels {
        labels
            .iter()
            .filter(|(name, _)| self.labels.contains(name) != self.without)
            .cloned()
            .collect()
    }
}

/// `op by (…) (inner)` at one step.
pub(super) fn aggregate(aggregation: &VectorAggregation, input: StepVector) -> StepVector {
    match aggregation.op {
        VectorOp::Sort | VectorOp::SortDesc => {
            let mut sorted = input;
            sorted.sort_by(|a, b| {
                let order = a.1.total_cmp(&b.1);
                if aggregation.op == VectorOp::SortDesc {
                    order.reverse()
                } else {
                    order
                }
            });
            return sorted;
        }
        _ => {}
    }
    let mut groups: BTreeMap<Labels, Vec<(Labels, f64)>> = BTreeMap::new();
    for (labels, value) in input {
        let key = match &aggregation.grouping {
            Some(grouping) => grouping.apply(&labels),
            None => Vec::new(),
        };
        groups.entry(key).or_default().push((labels, value));
    }
    let mut out = Vec::new();
    for (key, mut members) in groups {
        let values = || members.iter().map(|(_, value)| *value);
        let count = members.len() as f64;
        let value = match aggregation.op {
            VectorOp::Sum => values().sum(),
            VectorOp::Avg => values().sum::<f64>() / count,
            VectorOp::Count => count,
            VectorOp::Min => {
                values().fold(f64::NAN, |a, b| if a.is_nan() || b < a { b } else { a })
            }
            VectorOp::Max => {
                values().fold(f64::NAN, |a, b| if a.is_nan() || b > a { b } else { a })
            }
            VectorOp::Stddev | VectorOp::Stdvar => {
                let mean = values().sum::<f64>() / count;
                let variance = values().map(|v| (v - mean) * (v - mean)).sum::<f64>() / count;
                if aggregation.op == VectorOp::Stddev {
                    variance.sqrt()
                } else {
                    variance
                }
            }
            VectorOp::Topk | VectorOp::Bottomk => {
                let k = aggregation.parameter.unwrap_or(0.0).max(0.0) as usize;
                let top = aggregation.op == VectorOp::Topk;
                members.sort_by(|a, b| {
                    let order = a.1.total_cmp(&b.1);
                    let order = if top { order.reverse() } else { order };
                    order.then_with(|| a.0.cmp(&b.0))
                });
                members.truncate(k);
                out.extend(members);
                continue;
            }
            VectorOp::Sort | VectorOp::SortDesc => continue,
        };
        out.push((key, value));
    }
    out
}

/// `(value, keep)`: arithmetic always keeps; a comparison keeps the left
/// value when it holds.
fn apply(op: BinaryOp, left: f64, right: f64) -> (f64, bool) {
    match op {
        BinaryOp::Add => (left + right, true),
        BinaryOp::Sub => (left - right, true),
        BinaryOp::Mul => (left * right, true),
        BinaryOp::Div => (left / right, true),
        BinaryOp::Mod => (left % right, true),
        BinaryOp::Pow => (left.powf(right), true),
        BinaryOp::Equal => (left, left == right),
        BinaryOp::NotEqual => (left, left != right),
        BinaryOp::Greater => (left, left > right),
        BinaryOp::GreaterOrEqual => (left, left >= right),
        BinaryOp::Less => (left, left < right),
        BinaryOp::LessOrEqual => (left, left <= right),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => (left, true),
    }
}

fn compared(value: f64, keep: bool, return_bool: bool) -> Option<f64> {
    if return_bool {
        Some(if keep { 1.0 } else { 0.0 })
    } else {
        keep.then_some(value)
    }
}

/// `left op right` at one step.
pub(super) fn binary(expr: &BinaryExpr, left: Value, right: Value) -> Result<Value, EvalError> {
    let op = expr.op;
    Ok(match (left, right) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let (value, keep) = apply(op, l, r);
            Value::Scalar(if op.is_comparison() {
                if keep { 1.0 } else { 0.0 }
            } else {
                value
            })
        }
        (Value::Vector(vector), Value::Scalar(scalar)) => Value::Vector(
            vector
                .into_iter()
                .filter_map(|(labels, v)| {
                    let (value, keep) = apply(op, v, scalar);
                    compared(value, keep, expr.return_bool).map(|value| (labels, value))
                })
                .collect(),
        ),
        (Value::Scalar(scalar), Value::Vector(vector)) => Value::Vector(
            vector
                .into_iter()
                .filter_map(|(labels, v)| {
                    let (value, keep) = apply(op, scalar, v);
                    // The vector's own value is what a comparison keeps.
                    let value = if op.is_comparison() { v } else { value };
                    compared(value, keep, expr.return_bool).map(|value| (labels, value))
                })
                .collect(),
        ),
        (Value::Vector(left), Value::Vector(right)) => {
            Value::Vector(vector_binary(expr, left, right)?)
        }
    })
}

fn signature(labels: &Labels, matching: Option<&VectorMatching>) -> Labels {
    match matching {
        None => labels.clone(),
        Some(matching) => labels
            .iter()
            .filter(|(name, _)| matching.labels.contains(name) == matching.on)
            .cloned()
            .collect(),
    }
}

fn vector_binary(
    expr: &BinaryExpr,
    left: StepVector,
    right: StepVector,
) -> Result<StepVector, EvalError> {
    let matching = expr.matching.as_ref();
    let op = expr.op;
    if op.is_set_operator() {
        let right_signatures: HashSet<Labels> =
            right.iter().map(|(l, _)| signature(l, matching)).collect();
        return Ok(match op {
            BinaryOp::And => left
                .into_iter()
                .filter(|(l, _)| right_signatures.contains(&signature(l, matching)))
                .collect(),
            BinaryOp::Unless => left
                .into_iter()
                .filter(|(l, _)| !right_signatures.contains(&signature(l, matching)))
                .collect(),
            _ => {
                let left_signatures: HashSet<Labels> =
                    left.iter().map(|(l, _)| signature(l, matching)).collect();
                let mut out = left;
                out.extend(
                    right
                        .into_iter()
                        .filter(|(l, _)| !left_signatures.contains(&signature(l, matching))),
                );
                out
            }
        });
    }
    let group = matching.and_then(|m| m.group.as_ref());
    let swapped = matches!(group, Some(GroupSide::Right(_)));
    let (many, one) = if swapped {
        (right, left)
    } else {
        (left, right)
    };
    let mut one_by_signature: HashMap<Labels, (Labels, f64)> = HashMap::new();
    for (labels, value) in one {
        let key = signature(&labels, matching);
        if one_by_signature.contains_key(&key) {
            let side = if swapped { "left" } else { "right" };
            return Err(EvalError::Matching(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side",
                labels_text(&key)
            )));
        }
        one_by_signature.insert(key, (labels, value));
    }
    let mut matched: HashSet<Labels> = HashSet::new();
    let mut out = Vec::new();
    for (labels, value) in many {
        let key = signature(&labels, matching);
        let Some((one_labels, one_value)) = one_by_signature.get(&key) else {
            continue;
        };
        if group.is_none() && !matched.insert(key.clone()) {
            return Err(EvalError::Matching(format!(
                "multiple matches for labels {}: many-to-one matching must be explicit (group_left/group_right)",
                labels_text(&key)
            )));
        }
        let (l, r) = if swapped {
            (*one_value, value)
        } else {
            (value, *one_value)
        };
        let (result, keep) = apply(op, l, r);
        let Some(result) = (if op.is_comparison() {
            compared(result, keep, expr.return_bool)
        } else {
            Some(result)
        }) else {
            continue;
        };
        out.push((result_labels(&labels, one_labels, matching), result));
    }
    Ok(out)
}

/// Prometheus' result labels: one-to-one keeps the `on` labels (or drops
/// the `ignoring` ones); grouping keeps the many side's and copies the
/// included labels from the one side.
fn result_labels(many: &Labels, one: &Labels, matching: Option<&VectorMatching>) -> Labels {
    let Some(matching) = matching else {
        return many.clone();
    };
    let include = match &matching.group {
        None => return signature(many, Some(matching)),
        Some(GroupSide::Left(include) | GroupSide::Right(include)) => include,
    };
    let mut labels: Labels = many
        .iter()
        .filter(|(name, _)| !include.contains(name))
        .cloned()
        .collect();
    for name in include {
        if let Some((_, value)) = one.iter().find(|(n, _)| n == name)
            && !value.is_empty()
        {
            labels.push((name.clone(), value.clone()));
        }
    }
    labels.sort();
    labels
}
