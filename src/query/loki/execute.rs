//! Running a parsed LogQL query against the store: the log side reads rows
//! through `Store::logs` in the query's direction, page after page (keyset
//! `after`), until the answer is full; the metric side asks
//! `Store::grouped_counts` for every leaf that counts (the rollups or a
//! `GROUP BY` in the store) and reads rows only for the rest. Times arrive
//! in nanoseconds and become the store's microseconds here.

use super::error::LokiError;
use crate::domain::LogRecord;
use crate::domain::logql::{
    AttributeKeyIndex, CountRow, Counting, LabelModel, Leaf, LogExpr, LogQueryEvaluator,
    LogQueryOptions, MetricExpr, MetricPlan, MetricResult, Progress, Query, StepGrid, Stream,
};
use crate::domain::time::Micros;
use crate::domain::{Level, query::Expr};
use crate::store::{
    Dimension, GroupedCount, GroupedCountQuery, LogFilter, LogKey, LogQuery, Order, RawLog, Store,
};
use std::cell::RefCell;

/// Rows read per store call when the residual pipeline may drop some.
const PAGE: usize = 1000;
/// Rows read per store call when every row goes into a metric.
const METRIC_PAGE: usize = 5000;
const MINUTE_MICROS: Micros = 60_000_000;

/// What a query read, for Loki's `stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadStats {
    pub lines: u64,
    pub bytes: u64,
}

impl ReadStats {
    fn add(&mut self, record: &LogRecord) {
        self.lines += 1;
        self.bytes += record.message.len() as u64;
    }
}

/// `[start, end)` in nanoseconds as the store's `[from, to)` in
/// microseconds (a log at `t` µs is at `t * 1000` ns).
pub fn micros_from_start_end(start: i64, end: i64) -> (Micros, Micros) {
    (ceil_micros(start), ceil_micros(end))
}

/// `(from, to]` in nanoseconds as the store's `[from, to)` in microseconds.
pub fn micros_from_after_through(from: i64, to: i64) -> (Micros, Micros) {
    (
        from.div_euclid(1000).saturating_add(1),
        to.div_euclid(1000).saturating_add(1),
    )
}

fn ceil_micros(nanos: i64) -> Micros {
    nanos.div_euclid(1000) + i64::from(nanos.rem_euclid(1000) != 0)
}

/// The label names a query asks the store's keys about (any name but
/// `service_name` and the level labels, which need no lookup; `level`
/// itself only matters when a log has such an attribute, which ingest
/// makes the level: looking it up would cost Explore's logs volume a read
/// of every key).
pub fn names_to_resolve(query: &Query) -> Vec<String> {
    let names = RefCell::new(Vec::<String>::new());
    let record = |label: &str| {
        let mut names = names.borrow_mut();
        if label != "level" && !names.iter().any(|known| known == label) {
            names.push(label.to_string());
        }
        Vec::new()
    };
    match query {
        Query::Log(log) => {
            log.push_down(&record);
        }
        Query::Metric(metric) => {
            MetricPlan::new(metric, &record);
        }
    }
    names.into_inner()
}

/// Resolves label names to the stored attribute keys whose sanitized name
/// they are.
pub struct KeyResolver {
    index: AttributeKeyIndex,
}

impl KeyResolver {
    /// Reads the keys of the logs in `[from, to)` when `names` holds any
    /// (a store samples its keys past a million logs, so a name also
    /// stands for itself: a rare key missed by the sample still answers).
    pub async fn for_names(
        store: &dyn Store,
        names: &[String],
        from: Micros,
        to: Micros,
    ) -> Result<KeyResolver, LokiError> {
        let index = if names.is_empty() {
            AttributeKeyIndex::default()
        } else {
            let filter = LogFilter {
                from: Some(from),
                to: Some(to),
                ..Default::default()
            };
            let keys = store.attribute_keys(&filter).await?;
            AttributeKeyIndex::new(keys.into_iter().map(|key| key.key))
        };
        Ok(KeyResolver { index })
    }

    pub fn index(&self) -> &AttributeKeyIndex {
        &self.index
    }

    /// The keys for a label. `level` stands only for a stored `level` key:
    /// otherwise it is the level itself (and grouping by it adds nothing,
    /// which keeps Explore's `sum by (level, detected_level)` on the
    /// rollups).
    pub fn keys_for(&self, label: &str) -> Vec<String> {
        let mut keys = self.index.keys_for(label);
        if label != "level" && !keys.iter().any(|key| key == label) {
            keys.push(label.to_string());
            keys.sort();
        }
        keys
    }
}

/// Calls `each` with the rows of `filter` in `order`, page by page, until
/// it answers `false` or the rows run out.
pub async fn for_each_row(
    store: &dyn Store,
    filter: &LogFilter,
    order: Order,
    page: usize,
    mut each: impl FnMut(&LogRecord) -> bool,
) -> Result<(), LokiError> {
    let mut after: Option<LogKey> = None;
    loop {
        let rows = store
            .logs(&LogQuery {
                filter: filter.clone(),
                limit: page,
                offset: 0,
                order,
                after: after.clone(),
            })
            .await?;
        for row in &rows {
            if !each(row) {
                return Ok(());
            }
        }
        if rows.len() < page {
            return Ok(());
        }
        after = rows.last().map(LogKey::of);
    }
}

/// [`for_each_row`] with attributes left as stored JSON (`Store::raw_logs`):
/// for readers that need no attribute, such as pattern mining.
pub async fn for_each_raw_row(
    store: &dyn Store,
    filter: &LogFilter,
    order: Order,
    page: usize,
    mut each: impl FnMut(&RawLog) -> bool,
) -> Result<(), LokiError> {
    let mut after: Option<LogKey> = None;
    loop {
        let rows = store
            .raw_logs(&LogQuery {
                filter: filter.clone(),
                limit: page,
                offset: 0,
                order,
                after: after.clone(),
            })
            .await?;
        for row in &rows {
            if !each(row) {
                return Ok(());
            }
        }
        if rows.len() < page {
            return Ok(());
        }
        after = rows.last().map(RawLog::key);
    }
}

/// A log query's answer over `[start, end)` (nanoseconds).
pub struct LogRun<'a> {
    pub store: &'a dyn Store,
    pub model: &'a LabelModel,
    pub resolver: &'a KeyResolver,
}

impl LogRun<'_> {
    pub async fn streams(
        &self,
        log: &LogExpr,
        options: LogQueryOptions,
        range: (i64, i64),
        order: Order,
        stats: &mut ReadStats,
    ) -> Result<Vec<Stream>, LokiError> {
        let plan = log.push_down(&|label| self.resolver.keys_for(label));
        let (from, to) = micros_from_start_end(range.0, range.1);
        let filter = LogFilter {
            expr: plan.expr.clone(),
            text: plan.text_hint.clone(),
            from: Some(from),
            to: Some(to),
            ..Default::default()
        };
        let mut evaluator = LogQueryEvaluator::new(&plan.residual, self.model, options)?;
        if options.limit == 0 || is_nothing(&plan.expr) {
            return Ok(evaluator.finish());
        }
        // Without a residual every row is an entry: read exactly `limit`.
        let page = if plan.residual.is_empty() {
            options.limit
        } else {
            PAGE.max(options.limit)
        };
        for_each_row(self.store, &filter, order, page, |row| {
            stats.add(row);
            evaluator.push(row) == Progress::More
        })
        .await?;
        Ok(evaluator.finish())
    }
}

fn is_nothing(expr: &Expr) -> bool {
    matches!(expr, Expr::Or(children) if children.is_empty())
}

/// A metric query's answer on `grid`.
pub struct MetricRun<'a> {
    pub store: &'a dyn Store,
    pub model: &'a LabelModel,
    pub resolver: &'a KeyResolver,
}

impl MetricRun<'_> {
    pub async fn result(
        &self,
        metric: &MetricExpr,
        grid: StepGrid,
        stats: &mut ReadStats,
    ) -> Result<MetricResult, LokiError> {
        let plan = MetricPlan::new(metric, &|label| self.resolver.keys_for(label));
        let mut evaluation = plan.evaluator(grid, self.model);
        for (index, leaf) in plan.leaves().iter().enumerate() {
            if is_nothing(&leaf.pushdown.expr) {
                continue;
            }
            if let Some(request) = leaf
                .countable(&grid)
                .and_then(|counting| CountRequest::of(&counting, leaf))
            {
                let rows = self.store.grouped_counts(&request.query).await?;
                stats.lines += rows.iter().map(|row| row.count).sum::<u64>();
                let counts = request.count_rows(rows);
                evaluation.push_counts(index, request.width_nanos, &counts)?;
                continue;
            }
            let (from, to) = leaf.fetch_range(&grid);
            let (from, to) = micros_from_after_through(from, to);
            let filter = LogFilter {
                expr: leaf.pushdown.expr.clone(),
                text: leaf.pushdown.text_hint.clone(),
                from: Some(from),
                to: Some(to),
                ..Default::default()
            };
            let mut failed = None;
            for_each_row(self.store, &filter, Order::Asc, METRIC_PAGE, |row| {
                stats.add(row);
                match evaluation.push_row(index, row) {
                    Ok(()) => true,
                    Err(error) => {
                        failed = Some(error);
                        false
                    }
                }
            })
            .await?;
            if let Some(error) = failed {
                return Err(error.into());
            }
        }
        Ok(evaluation.finish()?)
    }
}

/// One countable leaf as a `grouped_counts` query, and how its rows map
/// back onto the leaf's bucket grid.
struct CountRequest {
    query: GroupedCountQuery,
    width_nanos: i64,
    /// Added to a store bucket's start (µs) to get the leaf's bucket start:
    /// 0 when the store's `[b, b + w)` buckets stand for `(b, b + w]`
    /// (rollup-aligned), -1 when the store counted exactly `(b, b + w]`.
    shift_micros: i64,
    attribute: bool,
}

impl CountRequest {
    /// `None` when the grid is finer than the store's microseconds.
    fn of(counting: &Counting, leaf: &Leaf) -> Option<CountRequest> {
        let micros = |nanos: i64| (nanos % 1000 == 0).then_some(nanos / 1000);
        let width = micros(counting.width_nanos)?;
        let origin = micros(counting.origin_nanos)?;
        let (from, to) = (micros(counting.from_nanos)?, micros(counting.to_nanos)?);
        let mut group_by = Vec::new();
        if counting.dimensions.level {
            group_by.push(Dimension::Level);
        }
        if counting.dimensions.service {
            group_by.push(Dimension::Service);
        }
        if let Some((_, keys)) = &counting.dimensions.attribute {
            group_by.push(Dimension::Attribute(keys.clone()));
        }
        let filter = LogFilter {
            expr: leaf.pushdown.expr.clone(),
            text: leaf.pushdown.text_hint.clone(),
            ..Default::default()
        };
        // On the rollups' minutes, their `[b, b + w)` buckets serve as the
        // windows' `(b, b + w]` (only a log stamped exactly on a minute
        // lands in the next step): that keeps long ranges on the rollups.
        // Anywhere else the store counts exactly `(b, b + w]`: buckets one
        // microsecond later.
        let on_rollups = filter.countable_by_level_and_service()
            && counting.dimensions.attribute.is_none()
            && width % MINUTE_MICROS == 0
            && origin % MINUTE_MICROS == 0;
        let shift = if on_rollups { 0 } else { 1 };
        Some(CountRequest {
            query: GroupedCountQuery {
                filter: LogFilter {
                    from: Some(from + shift),
                    to: Some(to + shift),
                    ..filter
                },
                interval: Some(width),
                origin: origin + shift,
                group_by,
                limit_groups: None,
            },
            width_nanos: counting.width_nanos,
            shift_micros: -shift,
            attribute: counting.dimensions.attribute.is_some(),
        })
    }

    fn count_rows(&self, rows: Vec<GroupedCount>) -> Vec<CountRow> {
        rows.into_iter()
            .map(|row| CountRow {
                bucket_start_nanos: (row.bucket_start + self.shift_micros).saturating_mul(1000),
                level: row.level.unwrap_or(Level::Info),
                service: row.service.unwrap_or_default(),
                attribute: if self.attribute { row.attribute } else { None },
                count: row.count,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanosecond_ranges_become_microsecond_ranges() {
        // [1500 ns, 3000 ns): logs at 2 µs only.
        assert_eq!(micros_from_start_end(1500, 3000), (2, 3));
        assert_eq!(micros_from_start_end(1000, 3001), (1, 4));
        // (1000 ns, 3000 ns]: logs at 2 and 3 µs.
        assert_eq!(micros_from_after_through(1000, 3000), (2, 4));
        assert_eq!(micros_from_after_through(1500, 2999), (2, 3));
    }

    #[test]
    fn names_that_need_the_stored_keys() {
        let query = crate::domain::logql::parse(
            r#"sum by (k8s_pod, pod_b) (count_over_time({service_name="api"}[1m]))"#,
        )
        .unwrap();
        assert_eq!(names_to_resolve(&query), ["k8s_pod", "pod_b"]);
        let plain =
            crate::domain::logql::parse(r#"{service_name="checkout"} |= "timeout""#).unwrap();
        assert!(names_to_resolve(&plain).is_empty());
    }
}
