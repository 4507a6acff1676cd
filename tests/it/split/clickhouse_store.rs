//! What the ClickHouse store does beyond the shared contract: pages that
//! step through time windows (edges: empty windows, pages spanning windows,
//! equal timestamps on a window boundary), the schema migrations that give
//! an existing table the time-first sort key and then the tenant-first one,
//! and the one that back-fills the trace lookup table.

use super::contract::{expected_logs, page_ids, ready};
use super::deps::ClickHouse;
use oglogstream::domain::{Level, LevelSet, LogRecord, TenantId};
use oglogstream::store::clickhouse::{ClickHouseStore, Options, Stepping};
use oglogstream::store::filter::Scope;
use oglogstream::store::{LogFilter, LogQuery, Order, Store};
use std::sync::Arc;

const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400 * SECOND;
/// 2025-01-01T00:10:00Z.
const T: i64 = 1_735_689_600_000_000 + 600 * SECOND;

fn record(n: usize, timestamp: i64) -> LogRecord {
    LogRecord {
        id: format!("w-{n:03}"),
        timestamp,
        level: if n % 3 == 0 {
            Level::Error
        } else {
            Level::Info
        },
        service: "svc".into(),
        message: format!("message {}", if n % 2 == 0 { "even" } else { "odd" }),
        attributes: Default::default(),
        ..Default::default()
    }
}

/// With a first window of one second doubling each time and the range
/// ending at `T`, descending windows are `[T-1s, T)`, `[T-3s, T-1s)`,
/// `[T-7s, T-3s)`, …; ascending ones from `T-3s` are `[T-3s, T-2s)`,
/// `[T-2s, T)`. Logs sit on those edges, several sharing one timestamp, with
/// empty windows (and a whole empty day) between groups.
fn dataset() -> Vec<LogRecord> {
    let timestamps = [
        T - DAY - 5 * SECOND,
        T - DAY,
        T - 20 * SECOND,
        T - 20 * SECOND,
        T - 3 * SECOND,
        T - 3 * SECOND,
        T - 2 * SECOND,
        T - 2 * SECOND,
        T - SECOND - 1,
        T - SECOND,
        T - SECOND,
        T - SECOND,
        T - 1,
        T,
        T + 1,
    ];
    // Inserted out of time order; ids still rise with insertion, which is
    // the tie-break within a timestamp.
    let mut order: Vec<usize> = (0..timestamps.len()).collect();
    order.reverse();
    order.rotate_left(4);
    order
        .into_iter()
        .enumerate()
        .map(|(n, i)| record(n, timestamps[i]))
        .collect()
}

#[actix_web::test]
async fn clickhouse_pages_step_through_windows_at_the_edges() {
    let clickhouse = ClickHouse::start().await;
    let stepping = Stepping {
        first_width: Some(SECOND),
        growth: 2,
        max_growth: 2,
        ..Stepping::default()
    };
    let options = Options {
        stepping,
        ..Options::default()
    };
    let store: Arc<dyn Store> =
        Arc::new(ClickHouseStore::open_with(&clickhouse.dsn("windows"), options).unwrap());
    ready(store.as_ref()).await;
    let records = dataset();
    for chunk in records.chunks(4) {
        store.insert(&[chunk.into()]).await.expect("insert");
    }

    let mut errors = LevelSet::default();
    errors.insert(Level::Error);
    let filters = [
        LogFilter::default(),
        LogFilter {
            to: Some(T),
            ..Default::default()
        },
        LogFilter {
            from: Some(T - 3 * SECOND),
            to: Some(T),
            ..Default::default()
        },
        LogFilter {
            to: Some(T),
            levels: Some(errors),
            ..Default::default()
        },
        LogFilter {
            text: Some("even".into()),
            ..Default::default()
        },
    ];
    let mut pages = 0;
    for filter in &filters {
        for order in [Order::Desc, Order::Asc] {
            for limit in [1, 2, 3, 5, 100] {
                for offset in [0, 1, 2, 3, 4, 6, 9, 14] {
                    let query = LogQuery {
                        filter: filter.clone(),
                        limit,
                        offset,
                        order,
                        after: None,
                    };
                    let got = page_ids(store.as_ref(), &query).await;
                    assert_eq!(got, expected_logs(&records, &query), "{query:?}");
                    pages += 1;
                }
            }
        }
    }
    assert_eq!(pages, 400);
    store.close().await;
}

/// A database made by a version-1 binary (sort key `level, service, ts_us,
/// id`, rows, rollup) is rebuilt by version 3: every row stays, the key is
/// time-first, and the rollup still follows new inserts.
#[actix_web::test]
async fn clickhouse_version_1_tables_are_rebuilt_time_first() {
    let clickhouse = ClickHouse::start().await;
    let version_1 = [
        "CREATE DATABASE old",
        "CREATE TABLE old.schema_migrations (version UInt32, applied_at DateTime DEFAULT now()) \
         ENGINE = MergeTree ORDER BY version",
        "INSERT INTO old.schema_migrations (version) VALUES (1)",
        "CREATE TABLE old.logs (ts_us Int64, id String, level UInt8, service String, \
         message String, attributes String) ENGINE = MergeTree \
         PARTITION BY toYYYYMMDD(toDateTime(intDiv(ts_us, 1000000), 'UTC')) \
         ORDER BY (level, service, ts_us, id)",
        "CREATE TABLE old.counts_minute (minute Int64, level UInt8, service String, n UInt64) \
         ENGINE = SummingMergeTree(n) \
         PARTITION BY toYYYYMM(toDateTime(intDiv(minute, 1000000), 'UTC')) \
         ORDER BY (minute, level, service)",
        "CREATE MATERIALIZED VIEW old.counts_minute_mv TO old.counts_minute AS \
         SELECT toInt64(intDiv(ts_us, 60000000) * 60000000) AS minute, level, service, count() AS n \
         FROM old.logs GROUP BY minute, level, service",
        "INSERT INTO old.logs (ts_us, id, level, service, message, attributes) \
         SELECT toInt64(1735689600000000 + number * 3600000000), concat('old-', toString(number)), \
         toUInt8(number % 5), 'svc', 'before the upgrade', \
         if(number % 2 = 0, '{\"region\":\"eu-west-1\",\"zone\":\"b\"}', '') FROM numbers(100)",
    ];
    for statement in version_1 {
        clickhouse
            .query(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let store: Arc<dyn Store> = Arc::new(ClickHouseStore::open(&clickhouse.dsn("old")).unwrap());
    ready(store.as_ref()).await;
    let key = clickhouse
        .query("SELECT sorting_key FROM system.tables WHERE database = 'old' AND name = 'logs'")
        .await
        .unwrap();
    assert_eq!(key.trim(), "tenant, ts_us, id");
    assert_eq!(clickhouse.number("SELECT count() FROM old.logs").await, 100);
    assert_eq!(
        clickhouse
            .number("SELECT count() FROM system.tables WHERE database = 'old'")
            .await,
        9,
        "logs, two rollups and their views, logs_by_trace and its view, alert_records, \
         schema_migrations; nothing left over"
    );
    let new = LogRecord {
        id: "new-1".into(),
        timestamp: 1_735_689_600_000_000 + 5 * SECOND,
        level: Level::Warn,
        service: "svc".into(),
        message: "after the upgrade".into(),
        attributes: Default::default(),
        ..Default::default()
    };
    store.insert(&[vec![new].into()]).await.expect("insert");
    let counts = store
        .level_service_counts(&LogFilter::default())
        .await
        .expect("counts");
    let total: u64 = counts.iter().map(|c| c.count).sum();
    assert_eq!(total, 101, "{counts:?}");
    let by_hour = clickhouse
        .number(
            "SELECT sum(n) FROM old.tenant_counts_hour WHERE hour < 1735689600000000 + 3600000000",
        )
        .await;
    assert_eq!(
        by_hour, 2,
        "the hour rollup was filled from the minutes, then follows inserts"
    );
    let page = store
        .logs(&LogQuery {
            filter: LogFilter::default(),
            limit: 2,
            offset: 0,
            order: Order::Asc,
            after: None,
        })
        .await
        .expect("logs");
    let ids: Vec<&str> = page.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["old-0", "new-1"]);
    // Rows stored before the attribute arrays (schema version 5) answer
    // the query language from their JSON (the columns' DEFAULT).
    let filter = LogFilter {
        expr: oglogstream::domain::query::parse("region:eu* zone:b").unwrap(),
        ..LogFilter::default()
    };
    let total: u64 = store
        .level_service_counts(&filter)
        .await
        .expect("counts")
        .iter()
        .map(|c| c.count)
        .sum();
    assert_eq!(total, 50, "old rows with attributes");
    let keys = store.attribute_keys(&LogFilter::default()).await.unwrap();
    let keys: Vec<(&str, u64)> = keys.iter().map(|k| (k.key.as_str(), k.count)).collect();
    assert_eq!(keys, [("region", 50), ("zone", 50)]);
    store.close().await;
}

/// A database from before schema version 12 holds logs of three tenants,
/// some with trace ids, in `logs` sorted by time. Version 12 creates
/// `logs_by_trace` and its view and copies the traced logs in once, so trace
/// lookups find them; version 13 sorts `logs` by tenant first. Afterwards
/// every log is there once, each tenant's pages, counts and traces are its
/// own, and logs inserted later arrive by the views made again.
#[actix_web::test]
async fn clickhouse_versions_12_and_13_back_fill_traces_and_sort_logs_by_tenant() {
    let clickhouse = ClickHouse::start().await;
    let tenants: Vec<TenantId> = ["team-a", "team-b", "default"]
        .iter()
        .map(|t| TenantId::parse(t).unwrap())
        .collect();
    let of_tenant = |mut record: LogRecord| {
        let n: usize = record.id[2..].parse().unwrap();
        record.tenant = tenants[n % 3].clone();
        record
    };
    let traced = |n: usize, trace: usize| LogRecord {
        trace_id: Some(format!("{trace:032x}")),
        span_id: Some(format!("{n:016x}")),
        ..record(n, T + n as i64 * DAY / 10)
    };
    let before: Vec<LogRecord> = (0..30)
        .map(|n| {
            of_tenant(if n % 3 == 0 {
                record(n, T + n as i64)
            } else {
                traced(n, n % 4)
            })
        })
        .collect();
    let store = ClickHouseStore::open(&clickhouse.dsn("before13")).unwrap();
    ready(&store).await;
    store.insert(&[before.as_slice().into()]).await.unwrap();
    store.close().await;
    // The database as version 11 left it: `logs` sorted by time, no trace
    // table, versions 12 and 13 not recorded.
    for statement in [
        "DROP TABLE before13.logs_by_trace_mv",
        "DROP TABLE before13.logs_by_trace",
        "DROP TABLE before13.tenant_counts_minute_mv",
        "DROP TABLE before13.tenant_counts_hour_mv",
        "CREATE TABLE before13.logs_by_time AS before13.logs ENGINE = MergeTree \
         PARTITION BY toYYYYMMDD(ts) ORDER BY (ts_us, id)",
        "INSERT INTO before13.logs_by_time SELECT * FROM before13.logs",
        "DROP TABLE before13.logs",
        "RENAME TABLE before13.logs_by_time TO before13.logs",
        "CREATE MATERIALIZED VIEW before13.tenant_counts_minute_mv TO before13.tenant_counts_minute AS \
         SELECT toInt64(intDiv(ts_us, 60000000) * 60000000) AS minute, tenant, level, service, count() AS n \
         FROM before13.logs GROUP BY minute, tenant, level, service",
        "DROP TABLE before13.schema_migrations",
        "CREATE TABLE before13.schema_migrations (version UInt32, applied_at DateTime DEFAULT now()) \
         ENGINE = MergeTree ORDER BY version",
        "INSERT INTO before13.schema_migrations (version) SELECT toUInt32(number + 1) FROM numbers(11)",
    ] {
        clickhouse
            .query(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let sorting_key =
        "SELECT sorting_key FROM system.tables WHERE database = 'before13' AND name = 'logs'";
    assert_eq!(
        clickhouse.query(sorting_key).await.unwrap().trim(),
        "ts_us, id"
    );
    let store: Arc<dyn Store> =
        Arc::new(ClickHouseStore::open(&clickhouse.dsn("before13")).unwrap());
    ready(store.as_ref()).await;
    assert_eq!(
        clickhouse.query(sorting_key).await.unwrap().trim(),
        "tenant, ts_us, id"
    );
    assert_eq!(
        clickhouse
            .number("SELECT count() FROM system.tables WHERE database = 'before13'")
            .await,
        9,
        "logs, two rollups and their views, logs_by_trace and its view, alert_records, \
         schema_migrations; nothing left over"
    );
    let after: Vec<LogRecord> = (30..40).map(|n| of_tenant(traced(n, n % 4))).collect();
    store.insert(&[after.as_slice().into()]).await.unwrap();
    let every: Vec<LogRecord> = before.iter().chain(&after).cloned().collect();
    assert_eq!(
        clickhouse.number("SELECT count() FROM before13.logs").await,
        every.len() as u64,
        "each log once"
    );
    assert_eq!(
        clickhouse
            .number("SELECT count() FROM before13.logs_by_trace")
            .await,
        every.iter().filter(|r| r.trace_id.is_some()).count() as u64,
        "each traced log once"
    );
    for tenant in &tenants {
        let scope = Scope::tenant(tenant.clone());
        let mine = |expr: &str| LogFilter {
            expr: oglogstream::domain::query::parse(expr).unwrap(),
            scope: scope.clone(),
            ..LogFilter::default()
        };
        for order in [Order::Desc, Order::Asc] {
            let query = LogQuery {
                filter: mine("*"),
                limit: 100,
                offset: 0,
                order,
                after: None,
            };
            let expected = expected_logs(&every, &query);
            assert_eq!(
                expected.len(),
                13 + usize::from(tenant.as_str() == "team-a")
            );
            assert_eq!(
                page_ids(store.as_ref(), &query).await,
                expected,
                "{tenant:?}"
            );
        }
        for trace in 0..4 {
            let query = LogQuery {
                filter: mine(&format!("trace_id:{trace:032x}")),
                limit: 100,
                offset: 0,
                order: Order::Asc,
                after: None,
            };
            let expected = expected_logs(&every, &query);
            assert_eq!(page_ids(store.as_ref(), &query).await, expected);
        }
        let counted: u64 = store
            .level_service_counts(&mine("*"))
            .await
            .expect("counts")
            .iter()
            .map(|c| c.count)
            .sum();
        let sent = every.iter().filter(|r| &r.tenant == tenant).count() as u64;
        assert_eq!(
            counted, sent,
            "the rollups follow inserts after the swap: {tenant:?}"
        );
    }
    store.close().await;
}

/// An insert whose outcome is unknown (the server went away) may have
/// stored its rows; the next insert, the batcher's retry, must not store
/// them twice, on plain MergeTree too.
#[actix_web::test]
async fn clickhouse_a_retry_after_a_failed_insert_stores_each_log_once() {
    let mut clickhouse = ClickHouse::start().await;
    let store: Arc<dyn Store> = Arc::new(ClickHouseStore::open(&clickhouse.dsn("retry")).unwrap());
    ready(store.as_ref()).await;
    let first: Vec<LogRecord> = (0..30).map(|n| record(n, T + n as i64)).collect();
    let second: Vec<LogRecord> = (30..40).map(|n| record(n, T + n as i64)).collect();
    store.insert(&[first.as_slice().into()]).await.unwrap();
    clickhouse.stop();
    let failed = store.insert(&[second.as_slice().into()]).await;
    assert!(failed.is_err(), "{failed:?}");
    clickhouse.launch().await;
    ready(store.as_ref()).await;
    // The retry carries rows the server has (first) and rows it has not.
    let both: Vec<LogRecord> = first.iter().chain(&second).cloned().collect();
    store.insert(&[both.as_slice().into()]).await.unwrap();
    assert_eq!(
        clickhouse.number("SELECT count() FROM retry.logs").await,
        40
    );
    assert_eq!(
        clickhouse
            .number("SELECT uniqExact(id) FROM retry.logs")
            .await,
        40
    );
    store.close().await;
}
