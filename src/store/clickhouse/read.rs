//! A page of logs: the window loop. A read steps through time windows from
//! the edge the order starts at (`windows.rs` sizes them from the parts'
//! metadata, [`extent`]) and asks each window for the rest of the page
//! ([`window_page`]), until the page is full. Deep offsets count a window
//! first ([`window_count`]) and skip it whole when they can. Every
//! statement of a page runs within one [`ReadBudget`]. A filter pinning one
//! trace id skips the windows: its page is one lookup in `logs_by_trace`
//! ([`trace_page`]). This file calls the others (pool, conditions, rows,
//! windows); none of them calls back.

use super::conditions::{after_condition, logs_time_range, narrows_beyond_scope, prewhere};
use super::pool::{Pool, ReadBudget};
use super::rows::{LogRow, One, PartRow};
use super::schema::{Features, TRACE_TABLE};
use super::shares::TenantShares;
use super::windows;
use crate::domain::LogRecord;
use crate::domain::time::Micros;
use crate::store::StoreError;
use crate::store::filter::{LogQuery, Order};

/// A page query with at most this many logs to skip fetches them and drops
/// them here; beyond it each window is counted first and skipped whole when
/// it can be.
const FETCH_TO_SKIP: u64 = 1000;

/// The columns of a log, in the order the store reads them.
pub const LOG_COLUMNS: &str =
    "ts_us, id, level, service, message, attributes, tenant, trace_id, span_id";

/// Steps through time windows from the edge the order starts at (see
/// `windows.rs`) until the page is full, so a page reads about what it
/// returns rather than sorting the whole range.
pub async fn logs(
    pool: &Pool,
    shares: &TenantShares,
    query: &LogQuery,
) -> Result<Vec<LogRecord>, StoreError> {
    let budget = ReadBudget::new(pool.options.read_timeout);
    let limit = query.limit as u64;
    if limit == 0 {
        return Ok(Vec::new());
    }
    if query.filter.pinned_trace_id().is_some() {
        let statement = trace_page(pool.database(), pool.features(), query);
        let rows: Vec<LogRow> = pool.read(&budget, &statement).await?;
        return Ok(rows.into_iter().map(|row| row.0).collect());
    }
    let (mut from, mut to) = query.filter.bounds();
    // A cursor narrows the range the windows step through to the side
    // still to read; the rows of its own microsecond are then told
    // apart by id ([`window_page`]).
    if let Some(after) = &query.after {
        match query.order {
            Order::Desc => to = to.min(after.timestamp.saturating_add(1)),
            Order::Asc => from = from.max(after.timestamp),
        }
    }
    if from >= to {
        return Ok(Vec::new());
    }
    let extent = extent(pool, &budget).await?;
    let share = shares
        .share(pool, &budget, query.filter.scope.tenants())
        .await;
    let mut windows = windows::Windows::new(
        &extent,
        from,
        to,
        query.order,
        query.offset as u64 + limit,
        pool.options.stepping.for_page(&query.filter, share),
    );
    let database = pool.database();
    let features = pool.features();
    let mut skip = query.offset as u64;
    let mut page = Vec::new();
    while (page.len() as u64) < limit {
        let Some(window) = windows.next_window() else {
            break;
        };
        if skip > FETCH_TO_SKIP {
            let counted: Vec<One<u64>> = pool
                .read(&budget, &window_count(database, features, query, window))
                .await?;
            let in_window = counted.first().map_or(0, |One(n)| *n);
            if in_window <= skip {
                skip -= in_window;
                windows.found(in_window, skip + limit - page.len() as u64);
                continue;
            }
        }
        let want = limit - page.len() as u64;
        // Skipping up to FETCH_TO_SKIP rows here rather than on the
        // server tells how many the window held when it falls short.
        let (server_skip, fetch) = if skip > FETCH_TO_SKIP {
            (skip, want)
        } else {
            (0, skip + want)
        };
        let statement = window_page(
            database,
            features,
            query,
            window,
            (server_skip, fetch),
            pool.options.cluster.is_some(),
        );
        let rows: Vec<LogRow> = pool.read(&budget, &statement).await?;
        let matched = server_skip + rows.len() as u64;
        let skipped_here = (skip - server_skip).min(rows.len() as u64);
        skip -= server_skip + skipped_here;
        page.extend(
            rows.into_iter()
                .skip(skipped_here as usize)
                .map(|row| row.0),
        );
        windows.found(matched, skip + limit.saturating_sub(page.len() as u64));
    }
    page.truncate(limit as usize);
    Ok(page)
}

/// Where the logs are, from part metadata.
async fn extent(pool: &Pool, budget: &ReadBudget) -> Result<windows::Extent, StoreError> {
    let statement = extent_statement(pool.database(), pool.options.cluster.as_deref());
    let rows: Vec<PartRow> = pool.read(budget, &statement).await?;
    Ok(windows::Extent {
        parts: rows.into_iter().map(PartRow::span).collect(),
    })
}

/// Up to `limit` logs of one time window (`[start, end)`, already inside
/// the filter's range) matching `query` after skipping `offset`, in the
/// query's order, past its cursor (`after`) when it has one. Ties on the
/// timestamp fall back to the id, which ingest makes time-ordered, so pages
/// are stable and follow arrival per instance.
///
/// With a filter, the page's keys are found first reading only the key and
/// filter columns, and only the granules holding those keys are then read
/// whole (`(tenant, ts_us, id) IN (…)` is answered from the primary
/// index, whose key it is; without the tenant it would read every tenant's
/// rows in the window): a
/// window of a million rows with a hundred matches reads the messages of a
/// hundred logs, not of every match. Without one (the scope alone), the
/// window is about the page and is read directly.
pub fn window_page(
    database: &str,
    features: Features,
    query: &LogQuery,
    (start, end): (Micros, Micros),
    (offset, limit): (u64, u64),
    distributed: bool,
) -> String {
    let (filter, order) = (&query.filter, query.order);
    // Over a Distributed table the keys are found once, on this server, and
    // the set sent to every shard.
    let in_keys = if distributed { "GLOBAL IN" } else { "IN" };
    let direction = direction(order);
    let range = window_range((start, end), query);
    let order_limit = format!("ORDER BY ts_us {direction}, id {direction} LIMIT {offset}, {limit}");
    let prewhere = prewhere(filter, features);
    if !narrows_beyond_scope(filter) {
        // The scope alone (tenants, the audit log) leaves most rows of a
        // window in: read it directly.
        return format!(
            "SELECT {LOG_COLUMNS} FROM {database}.logs{prewhere} WHERE {range} {order_limit}"
        );
    }
    format!(
        "SELECT {LOG_COLUMNS} FROM {database}.logs WHERE {range} AND (tenant, ts_us, id) {in_keys} \
         (SELECT tenant, ts_us, id FROM {database}.logs{prewhere} WHERE {range} {order_limit}) \
         ORDER BY ts_us {direction}, id {direction}"
    )
}

/// A page of the logs of the trace `query`'s filter pins, in one statement
/// on `logs_by_trace` (schema version 12): the trace's logs are a run of its
/// sort key `(tenant, trace_id, ts_us, id)` in each day's partition, which
/// the primary index finds whatever the time range; the server sorts that
/// run (a trace's few logs) and applies the rest of the filter, its range
/// and the cursor to it. No windows: there is nothing to step through.
///
/// A range also bounds `ts`, the partition key's column: then only the
/// parts of the range's days are looked at (the key's run is in every part,
/// so without it a lookup reads a granule of each part of the table).
pub fn trace_page(database: &str, features: Features, query: &LogQuery) -> String {
    let direction = direction(query.order);
    let range = window_range(query.filter.bounds(), query);
    format!(
        "SELECT {LOG_COLUMNS} FROM {database}.{TRACE_TABLE}{prewhere} WHERE {range} \
         ORDER BY ts_us {direction}, id {direction} LIMIT {offset}, {limit}",
        prewhere = prewhere(&query.filter, features),
        offset = query.offset,
        limit = query.limit,
    )
}

/// How many logs of one window match the query (past its cursor).
pub fn window_count(
    database: &str,
    features: Features,
    query: &LogQuery,
    window: (Micros, Micros),
) -> String {
    format!(
        "SELECT count() FROM {database}.logs{} WHERE {}",
        prewhere(&query.filter, features),
        window_range(window, query),
    )
}

/// The window's time range, and the rows past the query's cursor in it.
fn window_range((start, end): (Micros, Micros), query: &LogQuery) -> String {
    let range = logs_time_range(start, end);
    match &query.after {
        Some(after) => format!("{range} AND {}", after_condition(after, query.order)),
        None => range,
    }
}

/// Each part of `logs` with its rows and the first and last second it
/// holds: metadata, answered without reading any data.
/// On a cluster, the parts of every host's local table.
fn extent_statement(database: &str, cluster: Option<&str>) -> String {
    let (parts, table) = match cluster {
        Some(cluster) => (format!("cluster('{cluster}', system, parts)"), "logs_local"),
        None => ("system.parts".to_string(), "logs"),
    };
    format!(
        "SELECT toUInt64(rows), toUInt64(toUInt32(min_time)), toUInt64(toUInt32(max_time)) \
         FROM {parts} WHERE database = '{database}' AND table = '{table}' AND active"
    )
}

fn direction(order: Order) -> &'static str {
    match order {
        Order::Desc => "DESC",
        Order::Asc => "ASC",
    }
}

#[cfg(test)]
mod tests {
    use super::super::counts::{Grouping, statement as counts};
    use super::super::schema::{OLD_SERVER as OLD, TS_CLAMP_SECONDS};
    use super::super::sql::{HOUR, text_literal, with_time_limit};
    use super::*;
    use crate::domain::{Level, LevelSet};
    use crate::store::filter::{LogFilter, LogKey};

    #[test]
    fn window_pages_filter_early_and_order_stably() {
        let mut levels = LevelSet::default();
        levels.insert(Level::Warn);
        levels.insert(Level::Error);
        let query = |filter, order| LogQuery {
            filter,
            limit: 0,
            offset: 0,
            order,
            after: None,
        };
        let filter = LogFilter {
            levels: Some(levels),
            service: Some("api".into()),
            ..LogFilter::default()
        };
        let sql = window_page(
            "db",
            OLD,
            &query(filter, Order::Asc),
            (5, 9),
            (20, 10),
            false,
        );
        assert!(
            sql.contains(&format!("(SELECT tenant, ts_us, id FROM db.logs PREWHERE tenant = {} AND service != {} AND level IN (2, 3) AND positionCaseInsensitiveUTF8(service, unhex('617069')) > 0 WHERE ((ts_us >= 5 AND ts_us < 9) AND ts >= toDateTime(0, 'UTC') AND ts <= toDateTime(0, 'UTC')) ORDER BY ts_us ASC, id ASC LIMIT 20, 10)", text_literal("default"), text_literal("oglogstream.audit"))),
            "{sql}"
        );
        assert!(sql.ends_with(") ORDER BY ts_us ASC, id ASC"), "{sql}");
        let sql = window_page(
            "db",
            OLD,
            &query(LogFilter::default(), Order::Desc),
            (5, 9),
            (0, 10),
            true,
        );
        assert!(
            sql.contains(&format!(
                "FROM db.logs PREWHERE tenant = {} AND service != {} WHERE",
                text_literal("default"),
                text_literal("oglogstream.audit")
            )) && !sql.contains(" IN "),
            "the scope alone is read directly: {sql}"
        );
        assert!(
            sql.contains("ORDER BY ts_us DESC, id DESC LIMIT 0, 10"),
            "{sql}"
        );
        assert_eq!(
            with_time_limit("SELECT 1", 0),
            "SELECT 1 SETTINGS max_execution_time = 1"
        );
    }

    #[test]
    fn a_pinned_trace_is_one_lookup_in_the_trace_table_whatever_the_range() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let query = |text: &str, from: Option<Micros>, after: Option<LogKey>| LogQuery {
            filter: LogFilter {
                expr: crate::domain::query::parse(text).unwrap(),
                from,
                ..LogFilter::default()
            },
            limit: 50,
            offset: 3,
            order: Order::Asc,
            after,
        };
        let sql = trace_page("db", OLD, &query(&format!("trace_id:{id}"), None, None));
        assert_eq!(
            sql,
            format!(
                "SELECT {LOG_COLUMNS} FROM db.logs_by_trace PREWHERE tenant = {} AND service != {} \
                 AND (trace_id != '' AND trace_id = {}) \
                 WHERE (ts_us >= 0 AND ts_us < {}) ORDER BY ts_us ASC, id ASC LIMIT 3, 50",
                text_literal("default"),
                text_literal("oglogstream.audit"),
                text_literal(id),
                crate::domain::time::MAX_MICROS,
            )
        );
        let after = LogKey {
            timestamp: 7,
            id: "b".into(),
        };
        let sql = trace_page(
            "db",
            OLD,
            &query(&format!("level:>=warn trace_id:{id}"), Some(5), Some(after)),
        );
        assert!(
            sql.contains("AND ((level IN (2, 3, 4)) AND (trace_id != '' AND trace_id = ")
                && sql.contains(&format!(
                    "WHERE ((ts_us >= 5 AND ts_us < {}) AND ts >= toDateTime(0, 'UTC') \
                     AND ts <= toDateTime({TS_CLAMP_SECONDS}, 'UTC')) AND",
                    crate::domain::time::MAX_MICROS
                ))
                && sql.contains("AND (ts_us > 7 OR (ts_us = 7 AND id > unhex('62')))"),
            "the rest of the filter, the range and the cursor apply to the trace's logs: {sql}"
        );
        let mut hour = query(&format!("trace_id:{id}"), Some(1_735_732_800_123_456), None);
        hour.filter.to = Some(hour.filter.from.unwrap() + 3_600_000_000);
        assert!(
            trace_page("db", OLD, &hour).contains(
                "AND ts >= toDateTime(1735732800, 'UTC') AND ts <= toDateTime(1735736400, 'UTC')) \
                 ORDER BY"
            ),
            "a range prunes partitions by ts"
        );
        for (text, table) in [
            (format!("trace_id:{id}"), "logs_by_trace"),
            (format!("trace_id:{id} region:eu"), "logs_by_trace"),
            (format!("trace_id:{id} OR level:error"), "logs"),
            ("trace_id:*".to_string(), "logs"),
        ] {
            let filter = query(&text, None, None).filter;
            assert_eq!(
                super::super::conditions::logs_table(&filter),
                table,
                "{text}"
            );
            let sql = counts("db", OLD, &filter, Grouping::LevelService);
            assert!(
                sql.contains(&format!("FROM db.{table} WHERE")),
                "counts read {table} for {text}: {sql}"
            );
        }
    }

    #[test]
    fn cursors_and_the_language_narrow_window_pages_and_counts() {
        let filter = LogFilter {
            expr: crate::domain::query::parse("region:eu*").unwrap(),
            ..LogFilter::default()
        };
        let after = LogKey {
            timestamp: 7,
            id: "b".into(),
        };
        let mut query = LogQuery {
            filter: filter.clone(),
            limit: 10,
            offset: 0,
            order: Order::Desc,
            after: Some(after),
        };
        let sql = window_page("db", OLD, &query, (5, 9), (0, 10), false);
        assert!(
            sql.contains(" AND (has(attr_keys, unhex('726567696F6E'))"),
            "the expression decides which rows qualify: {sql}"
        );
        assert!(
            sql.contains("(ts_us < 7 OR (ts_us = 7 AND id < unhex('62')))"),
            "{sql}"
        );
        query.order = Order::Asc;
        let sql = window_count("db", OLD, &query, (5, 9));
        assert!(
            sql.contains("(ts_us > 7 OR (ts_us = 7 AND id > unhex('62')))"),
            "{sql}"
        );
        let span = LogFilter {
            from: Some(0),
            to: Some(2 * HOUR),
            ..filter
        };
        assert!(
            !counts("db", OLD, &span, Grouping::LevelService).contains("counts_"),
            "attributes are not in the rollups"
        );
        let by_level = LogFilter {
            expr: crate::domain::query::parse("level:error service:api").unwrap(),
            ..span
        };
        let sql = counts("db", OLD, &by_level, Grouping::LevelService);
        assert!(sql.contains("FROM db.tenant_counts_hour WHERE"), "{sql}");
        assert!(sql.contains("(level IN (3))"), "{sql}");
    }
}
