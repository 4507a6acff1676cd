//! Metric queries from counts the store already has, instead of rows.
//!
//! A range aggregation is countable when it is `count_over_time` or `rate`
//! without `unwrap`, its whole pipeline was pushed down (no residual), and
//! it sits directly under `sum` [`by (…)`] whose labels are among
//! `detected_level`, `service_name` and at most one attribute label. Its
//! value is then a sum of per-bucket counts grouped by (level, service[,
//! attribute]): the minute and hour rollups on level and service, or a
//! `GROUP BY` on time buckets.
//!
//! Buckets: bucket `b` holds the logs with `b < timestamp <= b + width`,
//! keyed by `b`, and every `b` is `origin` plus a whole number of widths.
//! A step's window `(t - offset - range, t - offset]` is then exactly a run
//! of whole buckets. A store whose buckets are `[b, b + width)` (the
//! rollups) may feed them as they are: only a log stamped exactly on a
//! bucket edge lands in the neighbouring step.
//!
//! Which counts: the logs matching the leaf's `pushdown.expr` (with no
//! residual, that is the whole query). The level-and-service rollups serve
//! only when `LogFilter { expr, .. }.countable_by_level_and_service()` and
//! there is no attribute dimension, and their bucket width is accepted
//! ([`Counting::accepts_buckets_of`]); otherwise the store counts its rows
//! grouped by `bucket_of`-style buckets (`intDiv(ts - origin - 1, width)`)
//! and the dimensions, which is still exact and reads no message.

use super::super::labels::{LEVEL_LABEL, SERVICE_LABEL};
use super::super::pushdown::AttributeKeys;
use super::super::streams::Labels;
use super::StepGrid;
use crate::domain::Level;

/// The dimensions a countable aggregation groups by.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CountDimensions {
    pub level: bool,
    pub service: bool,
    /// The label and the attribute keys that give it (sorted): the value of
    /// the first of them a log has.
    pub attribute: Option<(String, Vec<String>)>,
}

impl CountDimensions {
    /// The dimensions of `sum by (labels)`, if they are countable.
    pub(super) fn of(
        labels: &[String],
        attribute_keys: AttributeKeys<'_>,
    ) -> Option<CountDimensions> {
        let mut dimensions = CountDimensions::default();
        for label in labels {
            match label.as_str() {
                LEVEL_LABEL => dimensions.level = true,
                SERVICE_LABEL => dimensions.service = true,
                name => {
                    let mut keys = attribute_keys(name);
                    if keys.is_empty() {
                        // No log has it (`level` included, unless an
                        // attribute is called so): grouping by it adds
                        // nothing.
                        continue;
                    }
                    if dimensions.attribute.is_some() {
                        return None;
                    }
                    keys.sort();
                    dimensions.attribute = Some((name.to_string(), keys));
                }
            }
        }
        Some(dimensions)
    }

    /// A count row's series labels.
    pub(super) fn labels(&self, row: &CountRow) -> Labels {
        let mut labels = Vec::new();
        if self.level {
            labels.push((LEVEL_LABEL.to_string(), row.level.as_str().to_string()));
        }
        if self.service {
            labels.push((SERVICE_LABEL.to_string(), row.service.clone()));
        }
        if let (Some((name, _)), Some(value)) = (&self.attribute, &row.attribute) {
            labels.push((name.clone(), value.clone()));
        }
        labels.sort();
        labels
    }
}

/// What the store must count for one range aggregation.
#[derive(Clone, Debug, PartialEq)]
pub struct Counting {
    pub dimensions: CountDimensions,
    /// Any bucket start is `origin + k * width`.
    pub origin_nanos: i64,
    /// The widest bucket that fits the grid; any width dividing it whose
    /// buckets also start on the grid works ([`Counting::accepts_buckets_of`]).
    pub width_nanos: i64,
    /// Logs to count: `from < timestamp <= to`.
    pub from_nanos: i64,
    pub to_nanos: i64,
}

impl Counting {
    pub(super) fn new(
        dimensions: CountDimensions,
        grid: &StepGrid,
        range_nanos: i64,
        offset_nanos: i64,
    ) -> Counting {
        let width = match grid.step_nanos() {
            0 => range_nanos,
            step => gcd(range_nanos, step),
        };
        let first_end = grid.start_nanos().saturating_sub(offset_nanos);
        Counting {
            dimensions,
            origin_nanos: first_end.rem_euclid(width),
            width_nanos: width,
            from_nanos: first_end.saturating_sub(range_nanos),
            to_nanos: grid.end_nanos().saturating_sub(offset_nanos),
        }
    }

    /// Whether buckets of `width` (starting at multiples of `width` since
    /// the epoch, as rollups do) tile every window.
    pub fn accepts_buckets_of(&self, width_nanos: i64) -> bool {
        width_nanos > 0
            && self.width_nanos % width_nanos == 0
            && self.origin_nanos.rem_euclid(width_nanos) == 0
    }

    /// The bucket of `(b, b + width]` holding a timestamp, as its `b`.
    pub fn bucket_of(&self, timestamp_nanos: i64) -> i64 {
        let since_origin = timestamp_nanos
            .saturating_sub(self.origin_nanos)
            .saturating_sub(1);
        let index = since_origin.div_euclid(self.width_nanos);
        self.origin_nanos
            .saturating_add(index.saturating_mul(self.width_nanos))
    }
}

/// One bucket's count for one (level, service[, attribute]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountRow {
    pub bucket_start_nanos: i64,
    pub level: Level,
    pub service: String,
    /// The attribute dimension's value; `None` when the log has none of
    /// its keys (or there is no attribute dimension).
    pub attribute: Option<String>,
    pub count: u64,
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs().max(1)
}
