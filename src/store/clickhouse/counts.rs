//! Counts by level and service (stats, services, facets) and by time
//! bucket and level (the histogram): one statement each, summing the
//! coarsest exact source for each part of the range.
//!
//! Counts combine sources (mirroring the SQLite store): the hour and minute
//! rollups for the whole hours and minutes inside `[from, to)` and the raw
//! rows for the ragged edges, summed in one statement with `UNION ALL`.

use super::conditions::{dimension_conditions, logs_table, logs_time_range};
use super::pool::{Pool, ReadBudget};
use super::rows::CountRow;
use super::schema::Features;
use super::sql::{HOUR, MINUTE, time_range, where_clause};
use crate::domain::time::Micros;
use crate::store::filter::{HistogramQuery, LogFilter};
use crate::store::{BucketCount, LevelServiceCount, StoreError};

/// Every count row of `filter`'s range, grouped as asked.
async fn read(
    pool: &Pool,
    filter: &LogFilter,
    grouping: Grouping,
) -> Result<Vec<CountRow>, StoreError> {
    let budget = ReadBudget::new(pool.options.read_timeout);
    pool.read(
        &budget,
        &statement(pool.database(), pool.features(), filter, grouping),
    )
    .await
}

/// Logs by level and service over the filter's range.
pub async fn level_service_counts(
    pool: &Pool,
    filter: &LogFilter,
) -> Result<Vec<LevelServiceCount>, StoreError> {
    Ok(read(pool, filter, Grouping::LevelService)
        .await?
        .into_iter()
        .filter(|row| row.count > 0)
        .filter_map(|row| {
            Some(LevelServiceCount {
                level: row.level?,
                service: row.service,
                count: row.count,
            })
        })
        .collect())
}

/// The histogram: logs by `query.interval` bucket and level.
pub async fn bucket_counts(
    pool: &Pool,
    query: &HistogramQuery,
) -> Result<Vec<BucketCount>, StoreError> {
    let rows = read(pool, &query.filter, Grouping::BucketLevel(query.interval)).await?;
    Ok(BucketCount::summed(rows.into_iter().filter_map(|row| {
        Some((row.bucket, row.level?, row.count))
    })))
}

/// The whole `width`s inside `[from, to)`, if any.
pub fn whole_span(from: Micros, to: Micros, width: Micros) -> Option<(Micros, Micros)> {
    let start = from.div_euclid(width) * width
        + if from.rem_euclid(width) == 0 {
            0
        } else {
            width
        };
    let end = to.div_euclid(width) * width;
    (start < end).then_some((start, end))
}

/// What counts are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// Level and service, over the whole range (stats, services, facets).
    LevelService,
    /// The start of the `interval` holding the log, and level (histograms).
    BucketLevel(Micros),
}

/// A rollup table counts can come from.
struct Source {
    table: &'static str,
    column: &'static str,
    width: Micros,
}

/// Coarsest first.
const SOURCES: [Source; 2] = [
    Source {
        table: "tenant_counts_hour",
        column: "hour",
        width: HOUR,
    },
    Source {
        table: "tenant_counts_minute",
        column: "minute",
        width: MINUTE,
    },
];

/// `SELECT bucket, level, service, n` counts. Each part of `[from, to)` is
/// read from the coarsest source that is exact for it: the hour rollup for
/// the whole hours, the minute rollup for the whole minutes around them, the
/// raw logs for the ragged edges. Rollups are summed (`sum(n)`), so parts
/// the server has not merged yet count right. A text filter needs the
/// messages (so does an expression testing more than levels and services),
/// and a histogram interval that is not whole hours (minutes)
/// cannot be built from hours (minutes).
pub fn statement(
    database: &str,
    features: Features,
    filter: &LogFilter,
    grouping: Grouping,
) -> String {
    let (from, to) = filter.bounds();
    // `materialize`: a constant column (`''`, `0`) read through a
    // `Distributed` table makes 18.16 refuse the query ("Cannot convert
    // column s because it is non constant in source stream but must be
    // constant in result", code 171): the remote shards send it as a full
    // column while the initiator expects a constant.
    let columns = |column: &str| match grouping {
        Grouping::LevelService => {
            "materialize(toInt64(0)) AS b, level, toString(service) AS s".to_string()
        }
        Grouping::BucketLevel(interval) => format!(
            "toInt64(intDiv({column}, {interval}) * {interval}) AS b, level, materialize('') AS s"
        ),
    };
    // The ranges still to count, narrowed source by source.
    let mut left = vec![(from, to)];
    let mut parts = Vec::new();
    for source in &SOURCES {
        let usable = filter.countable_by_level_and_service()
            && match grouping {
                Grouping::LevelService => true,
                Grouping::BucketLevel(interval) => interval % source.width == 0,
            };
        if !usable {
            continue;
        }
        let mut covered = Vec::new();
        let mut rest = Vec::new();
        for (a, b) in left {
            match whole_span(a, b, source.width) {
                Some((start, end)) => {
                    covered.push(time_range(source.column, start, end));
                    rest.extend([(a, start), (end, b)].into_iter().filter(|(x, y)| x < y));
                }
                None => rest.push((a, b)),
            }
        }
        left = rest;
        if covered.is_empty() {
            continue;
        }
        let mut conditions = vec![format!("({})", covered.join(" OR "))];
        conditions.extend(dimension_conditions(filter, false, features));
        parts.push(format!(
            "SELECT {}, sum(n) AS c FROM {database}.{} WHERE {} GROUP BY b, level, s",
            columns(source.column),
            source.table,
            where_clause(&conditions)
        ));
    }
    if !left.is_empty() {
        let ranges: Vec<String> = left.iter().map(|(a, b)| logs_time_range(*a, *b)).collect();
        let mut conditions = vec![format!("({})", ranges.join(" OR "))];
        conditions.extend(dimension_conditions(filter, true, features));
        parts.push(format!(
            "SELECT {}, count() AS c FROM {database}.{} WHERE {} GROUP BY b, level, s",
            columns("ts_us"),
            logs_table(filter),
            where_clause(&conditions)
        ));
    }
    format!(
        "SELECT b, level, s, toUInt64(sum(c)) FROM ({}) GROUP BY b, level, s",
        parts.join(" UNION ALL ")
    )
}

#[cfg(test)]
mod tests {
    use super::super::schema::OLD_SERVER as OLD;
    use super::*;

    #[test]
    fn whole_spans_keep_whole_widths_only() {
        let span = |a, b| whole_span(a, b, MINUTE);
        assert_eq!(span(0, 3 * MINUTE), Some((0, 3 * MINUTE)));
        assert_eq!(span(1, 3 * MINUTE - 1), Some((MINUTE, 2 * MINUTE)));
        assert_eq!(span(1, 2 * MINUTE - 1), None);
        assert_eq!(span(10, 20), None);
    }

    #[test]
    fn counts_use_the_coarsest_exact_source_for_each_part_of_the_range() {
        let mut filter = LogFilter {
            from: Some(HOUR - MINUTE + 5),
            to: Some(3 * HOUR + 2 * MINUTE),
            ..LogFilter::default()
        };
        let sql = statement("db", OLD, &filter, Grouping::BucketLevel(MINUTE));
        assert!(
            sql.contains(
                "FROM db.tenant_counts_minute WHERE ((minute >= 3600000000 AND minute < 10920000000))"
            ),
            "no hours for minute buckets: {sql}"
        );
        assert!(!sql.contains("counts_hour"), "{sql}");
        let sql = statement("db", OLD, &filter, Grouping::LevelService);
        assert!(
            sql.contains(
                "FROM db.tenant_counts_hour WHERE ((hour >= 3600000000 AND hour < 10800000000))"
            ),
            "{sql}"
        );
        assert!(
            sql.contains(
                "FROM db.tenant_counts_minute WHERE ((minute >= 10800000000 AND minute < 10920000000))"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("(ts_us >= 3540000005 AND ts_us < 3600000000)"),
            "the ragged edge from the logs: {sql}"
        );
        assert!(sql.contains("toString(service) AS s"), "{sql}");
        let sql = statement("db", OLD, &filter, Grouping::BucketLevel(HOUR));
        assert!(
            sql.contains("materialize('') AS s") && !sql.contains("toString(service)"),
            "{sql}"
        );
        assert!(
            !statement("db", OLD, &filter, Grouping::BucketLevel(1_000_000)).contains("counts_")
        );
        filter.text = Some("x".into());
        assert!(!statement("db", OLD, &filter, Grouping::LevelService).contains("counts_"));
    }
}
