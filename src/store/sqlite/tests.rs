//! The embedded store's own tests: migrations, rollup decomposition, duplicates, cancellation.

use super::conditions::Dimensions;
use super::counts::{Source, decompose, widen_raw_edge};
use super::*;
use crate::domain::Level;
use crate::store::filter::Order;

/// A store written by schema 1 (three indexes, minute and hour rollups
/// keyed (bucket, service_id, level)) keeps its rows and counts when
/// opened by schema 2, whose day and 5-minute rollups are derived from
/// the old ones.
#[tokio::test]
async fn a_schema_1_store_migrates_with_its_counts() {
    let dir = tempfile::tempdir().unwrap();
    let hour = 1_735_732_800_000_000; // 2025-01-01T12:00:00Z
    {
        let connection = Connection::open(dir.path().join("oglogstream.db")).unwrap();
        connection
            .execute_batch(&format!(
                "CREATE TABLE services (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
                 CREATE TABLE logs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, ts INTEGER NOT NULL,
                     level INTEGER NOT NULL, service_id INTEGER NOT NULL, message TEXT NOT NULL, attributes TEXT);
                 CREATE INDEX logs_by_time ON logs (ts);
                 CREATE INDEX logs_by_level ON logs (level, ts);
                 CREATE INDEX logs_by_service ON logs (service_id, ts);
                 CREATE TABLE counts_minute (bucket INTEGER NOT NULL, service_id INTEGER NOT NULL,
                     level INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (bucket, service_id, level)) WITHOUT ROWID;
                 CREATE TABLE counts_hour (bucket INTEGER NOT NULL, service_id INTEGER NOT NULL,
                     level INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (bucket, service_id, level)) WITHOUT ROWID;
                 INSERT INTO services VALUES (1, 'api');
                 INSERT INTO logs VALUES (1, 'a', {hour}, 1, 1, 'one', NULL);
                 INSERT INTO logs VALUES (2, 'b', {hour} + 61000000, 3, 1, 'two', NULL);
                 INSERT INTO logs VALUES (3, 'c', {hour} + 62000000, 3, 1, 'three', '{{\"k\":\"v\"}}');
                 INSERT INTO counts_minute VALUES ({hour}, 1, 1, 1), ({hour} + 60000000, 1, 3, 2);
                 INSERT INTO counts_hour VALUES ({hour}, 1, 1, 1), ({hour}, 1, 3, 2);
                 PRAGMA user_version = 1;"
            ))
            .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut counts = store
        .level_service_counts(&LogFilter::default())
        .await
        .unwrap();
    counts.sort_by_key(|c| c.level);
    let counts: Vec<(Level, u64)> = counts.iter().map(|c| (c.level, c.count)).collect();
    assert_eq!(
        counts,
        [(Level::Info, 1), (Level::Error, 2)],
        "full range: day rollup"
    );
    let histogram = store
        .bucket_counts(&HistogramQuery {
            filter: LogFilter {
                from: Some(hour),
                to: Some(hour + HOUR),
                ..LogFilter::default()
            },
            interval: 5 * MINUTE,
        })
        .await
        .unwrap();
    let total: u64 = histogram.iter().map(|b| b.count).sum();
    assert_eq!(total, 3, "5-minute rollup derived from minutes");
    let page = store
        .logs(&LogQuery {
            filter: LogFilter::default(),
            limit: 10,
            offset: 0,
            order: Order::Asc,
            after: None,
        })
        .await
        .unwrap();
    let ids: Vec<&str> = page.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(page[2].attributes.get("k").map(String::as_str), Some("v"));
}

#[test]
fn decompose_uses_rollups_inside_and_raw_at_edges() {
    let grains = [(HOUR, "counts_hour"), (MINUTE, "counts_minute")];
    let mut out = Vec::new();
    let from = HOUR + 30 * 1_000_000; // 01:00:30
    let to = 3 * HOUR + 2 * MINUTE + 5; // 03:02:00.000005
    decompose(from, to, &grains, &mut out);
    assert_eq!(
        out,
        vec![
            (Source::Raw, from, HOUR + MINUTE),
            (Source::Rollup("counts_minute"), HOUR + MINUTE, 2 * HOUR),
            (Source::Rollup("counts_hour"), 2 * HOUR, 3 * HOUR),
            (
                Source::Rollup("counts_minute"),
                3 * HOUR,
                3 * HOUR + 2 * MINUTE
            ),
            (Source::Raw, 3 * HOUR + 2 * MINUTE, to),
        ]
    );
    let covered: Micros = out.iter().map(|(_, a, b)| b - a).sum();
    assert_eq!(covered, to - from);
}

#[test]
fn a_raw_edge_becomes_the_minute_rollup_only_when_the_rest_of_the_minute_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let writer = store.writer.lock().unwrap();
    let connection = writer.connection.as_ref().unwrap();
    connection
        .execute(
            "INSERT INTO logs (id, ts, level, service_id, message) VALUES ('a', ?1, 1, 1, 'm')",
            [MINUTE + 10],
        )
        .unwrap();
    let filter = LogFilter::default();
    let dimensions = Dimensions::resolve(connection, &filter).unwrap().unwrap();
    let mut edge = (Source::Raw, MINUTE, MINUTE + 20);
    widen_raw_edge(connection, &mut edge, &filter, &dimensions).unwrap();
    assert_eq!(edge, (Source::Rollup("counts_minute"), MINUTE, 2 * MINUTE));
    let mut edge = (Source::Raw, MINUTE, MINUTE + 5);
    widen_raw_edge(connection, &mut edge, &filter, &dimensions).unwrap();
    assert_eq!(
        edge,
        (Source::Raw, MINUTE, MINUTE + 5),
        "a log after the edge"
    );
    let mut edge = (Source::Raw, MINUTE + 20, 2 * MINUTE);
    widen_raw_edge(connection, &mut edge, &filter, &dimensions).unwrap();
    assert_eq!(
        edge,
        (Source::Raw, MINUTE + 20, 2 * MINUTE),
        "a log before the edge"
    );
}

fn record(id: &str, ts: Micros, level: Level) -> LogRecord {
    LogRecord {
        id: id.into(),
        timestamp: ts,
        level,
        service: "api".into(),
        message: format!("message {id}"),
        attributes: Default::default(),
        ..Default::default()
    }
}

async fn totals(store: &SqliteStore) -> (usize, u64) {
    let rows = store
        .logs(&LogQuery {
            filter: LogFilter::default(),
            limit: 1000,
            offset: 0,
            order: Order::Asc,
            after: None,
        })
        .await
        .unwrap();
    let counted: u64 = store
        .level_service_counts(&LogFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|c| c.count)
        .sum();
    (rows.len(), counted)
}

/// A batch delivered twice (redelivery after a crash) is stored once,
/// in rows and in counts, and so is a log repeated within one batch.
#[tokio::test]
async fn a_log_stored_again_is_skipped_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let hour = 1_735_732_800_000_000;
    let batch: LogBatch = (0..50)
        .map(|i| {
            record(
                &format!("id-{i:03}"),
                hour + i * MINUTE,
                Level::ALL[i as usize % 5],
            )
        })
        .collect();
    store.insert(std::slice::from_ref(&batch)).await.unwrap();
    assert_eq!(totals(&store).await, (50, 50));
    store.insert(&[batch.clone(), batch]).await.unwrap();
    assert_eq!(totals(&store).await, (50, 50), "nothing twice");
    let again = record("id-new", hour, Level::Info);
    store
        .insert(&[vec![again.clone(), again].into()])
        .await
        .unwrap();
    assert_eq!(totals(&store).await, (51, 51));
    let histogram: u64 = store
        .bucket_counts(&HistogramQuery {
            filter: LogFilter {
                from: Some(hour),
                to: Some(hour + 2 * HOUR),
                ..LogFilter::default()
            },
            interval: 5 * MINUTE,
        })
        .await
        .unwrap()
        .iter()
        .map(|b| b.count)
        .sum();
    assert_eq!(histogram, 51, "rollups count rows actually stored");
}

/// A schema-3 store holding a log twice (stored before schema 4 made
/// that impossible) keeps one, and its counts follow.
#[tokio::test]
async fn schema_4_removes_duplicates_from_rows_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let hour = 1_735_732_800_000_000;
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        let logs: LogBatch = (0..3000)
            .map(|i| record(&format!("id-{i:05}"), hour + i, Level::Warn))
            .collect();
        store.insert(&[logs]).await.unwrap();
        store.close().await;
    }
    {
        // Back to schema 3 (undoing schema 7's tenants and trace ids too),
        // then a redelivered copy of three logs.
        let connection = Connection::open(dir.path().join("oglogstream.db")).unwrap();
        connection.execute_batch(&before_schema_7()).unwrap();
        connection
            .execute_batch(
                "DROP INDEX logs_page;
                 DROP INDEX message_blocks_ids;
                 ALTER TABLE message_blocks DROP COLUMN min_id;
                 ALTER TABLE message_blocks DROP COLUMN max_id;
                 CREATE INDEX logs_page ON logs (ts, seq, level, service_id);
                 INSERT INTO logs (seq, id, ts, level, service_id, message)
                     SELECT seq + 100000, id, ts, level, service_id, message FROM logs
                     WHERE id IN ('id-00001', 'id-01500', 'id-02999');
                 UPDATE counts_minute SET n = n + 3; UPDATE counts_5min SET n = n + 3;
                 UPDATE counts_hour SET n = n + 3; UPDATE counts_day SET n = n + 3;
                 PRAGMA user_version = 3;",
            )
            .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let rows = store
        .logs(&LogQuery {
            filter: LogFilter::default(),
            limit: 1000,
            offset: 0,
            order: Order::Asc,
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(rows[1].id, "id-00001");
    assert_eq!(rows[2].id, "id-00002", "the copy is gone");
    let counted: u64 = store
        .level_service_counts(&LogFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|c| c.count)
        .sum();
    assert_eq!(counted, 3000);
    // Found by id through the id ranges the migration computed.
    let found = store
        .logs(&LogQuery {
            filter: LogFilter {
                expr: crate::domain::query::parse("id:id-01500").unwrap(),
                ..LogFilter::default()
            },
            limit: 10,
            offset: 0,
            order: Order::Asc,
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].timestamp, hour + 1500);
}

/// Dropping a read's future (a timeout, a client gone) stops its SQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_read_stops_its_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (flag, began) = (Arc::clone(&finished), Arc::clone(&started));
    let read = store.read(move |connection| {
        began.store(true, std::sync::atomic::Ordering::SeqCst);
        // Counts to a billion: minutes of work unless interrupted.
        let outcome = connection.query_row(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000)
             SELECT count(*) FROM n",
            [],
            |row| row.get::<_, i64>(0),
        );
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        outcome.map_err(sql_error)
    });
    let outcome = tokio::time::timeout(std::time::Duration::from_millis(300), read).await;
    assert!(outcome.is_err(), "still running after 300 ms");
    assert!(started.load(std::sync::atomic::Ordering::SeqCst));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !finished.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(std::time::Instant::now() < deadline, "the SQL kept running");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[test]
fn decompose_small_ranges_are_raw() {
    let mut out = Vec::new();
    decompose(10, 20, &[(HOUR, "counts_hour")], &mut out);
    assert_eq!(out, vec![(Source::Raw, 10, 20)]);
}

/// SQL that takes a schema-7 store back to what schema 6 had: no tenants
/// table or columns, no trace ids, rollups keyed without a tenant.
fn before_schema_7() -> String {
    let mut sql = String::from(
        "DROP INDEX logs_page;
         DROP INDEX logs_trace;
         ALTER TABLE logs DROP COLUMN tenant_id;
         ALTER TABLE logs DROP COLUMN trace_id;
         ALTER TABLE logs DROP COLUMN span_id;
         DROP TABLE tenants;
         CREATE UNIQUE INDEX logs_page ON logs (ts, id, level, service_id);",
    );
    for table in ["counts_minute", "counts_5min", "counts_hour", "counts_day"] {
        sql.push_str(&format!(
            "ALTER TABLE {table} RENAME TO {table}_v7;
             CREATE TABLE {table} (
                 bucket     INTEGER NOT NULL,
                 level      INTEGER NOT NULL,
                 service_id INTEGER NOT NULL,
                 n          INTEGER NOT NULL,
                 PRIMARY KEY (bucket, level, service_id)
             ) WITHOUT ROWID;
             INSERT INTO {table} SELECT bucket, level, service_id, SUM(n) FROM {table}_v7
                 GROUP BY bucket, level, service_id;
             DROP TABLE {table}_v7;"
        ));
    }
    sql.push_str("PRAGMA user_version = 6;");
    sql
}

/// A schema-6 store (before tenants and trace ids) keeps every log and
/// count, all in the `default` tenant, and the trace and span ids its
/// shippers sent as attributes move into their own fields.
#[tokio::test]
async fn a_schema_6_store_migrates_into_the_default_tenant_with_its_trace_ids() {
    let dir = tempfile::tempdir().unwrap();
    let hour = 1_735_732_800_000_000;
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        let logs: LogBatch = (0..300)
            .map(|i| record(&format!("id-{i:05}"), hour + i * 1_000_000, Level::Error))
            .collect();
        store.insert(&[logs]).await.unwrap();
        store.close().await;
    }
    {
        let connection = Connection::open(dir.path().join("oglogstream.db")).unwrap();
        connection.execute_batch(&before_schema_7()).unwrap();
        // As schema 6 kept them: ids among the attributes, in any casing.
        connection
            .execute_batch(
                r#"UPDATE logs SET attributes = '{"region":"eu","traceId":"ABCDEF0123456789ABCDEF0123456789","span_id":"00f067aa0ba902b7"}'
                   WHERE id = 'id-00007';
                   UPDATE logs SET attributes = '{"trace.id":"not-hex id"}' WHERE id = 'id-00008';"#,
            )
            .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(totals(&store).await, (300, 300));
    let rows = store
        .logs(&LogQuery {
            filter: LogFilter {
                expr: crate::domain::query::parse("trace_id:abcdef0123456789abcdef0123456789")
                    .unwrap(),
                ..LogFilter::default()
            },
            limit: 10,
            offset: 0,
            order: Order::Asc,
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, "id-00007");
    assert!(rows[0].tenant.is_default());
    assert_eq!(rows[0].span_id.as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(
        rows[0].attributes,
        [("region".to_string(), "eu".to_string())].into(),
        "the ids left the attributes"
    );
    let rows = store
        .logs(&LogQuery {
            filter: LogFilter {
                expr: crate::domain::query::parse(r#"trace_id:"not-hex id""#).unwrap(),
                ..LogFilter::default()
            },
            limit: 10,
            offset: 0,
            order: Order::Asc,
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "a non-hex id is kept as it was");
    assert!(rows[0].attributes.is_empty());
    // Another tenant sees none of it.
    let other = LogFilter {
        scope: crate::store::filter::Scope::tenant(
            crate::domain::TenantId::parse("team-a").unwrap(),
        ),
        ..LogFilter::default()
    };
    assert!(store.level_service_counts(&other).await.unwrap().is_empty());
}

/// A trace's logs are found in whichever insert bucket of the trace index
/// they sit (schema 8), and the lookup seeks the index instead of scanning.
#[tokio::test]
async fn a_trace_spread_over_insert_buckets_is_found_through_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let hour = 1_735_732_800_000_000;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let store = SqliteStore::open(dir.path()).unwrap();
    let logs: LogBatch = (0..40)
        .map(|i| {
            let mut log = record(&format!("id-{i:05}"), hour + i * 1_000_000, Level::Info);
            log.trace_id = (i % 10 == 0).then(|| trace.to_string());
            log
        })
        .collect();
    store.insert(&[logs]).await.unwrap();
    {
        // Moves two of the trace's logs (and one other) into later buckets,
        // as 65,536 and 200,000 logs stored in between would.
        let connection = Connection::open(dir.path().join("oglogstream.db")).unwrap();
        connection
            .execute_batch(
                "UPDATE logs SET seq = seq + 65536 WHERE id IN ('id-00010', 'id-00011');
                 UPDATE logs SET seq = seq + 200000 WHERE id = 'id-00030';",
            )
            .unwrap();
        let mut fragment = super::expr::condition(
            &crate::domain::query::parse(&format!("trace_id:{trace}")).unwrap(),
            "l.",
            &[],
        );
        fragment.sql = format!(
            "EXPLAIN QUERY PLAN SELECT l.id FROM logs l WHERE {}",
            fragment.sql
        );
        let plan: Vec<String> = connection
            .prepare(&fragment.sql)
            .unwrap()
            .query_map(rusqlite::params_from_iter(&fragment.params), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains("INDEX logs_trace")),
            "the trace index answers: {plan:?}"
        );
    }
    let rows = store
        .logs(&LogQuery {
            filter: LogFilter {
                expr: crate::domain::query::parse(&format!("trace_id:{trace}")).unwrap(),
                ..LogFilter::default()
            },
            limit: 10,
            offset: 0,
            order: Order::Asc,
            after: None,
        })
        .await
        .unwrap();
    let ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
    assert_eq!(ids, ["id-00000", "id-00010", "id-00020", "id-00030"]);
}
