//! The embedded store's facet blocks (src/store/sqlite/facet_blocks/) on
//! enough logs to fill several: facets and attribute keys read from blocks
//! (and the newest logs, read as rows) must answer exactly what counting
//! every matching log in memory answers, before and after the builder has
//! caught up, across a restart and retention.

use crate::split::contract::{expected_facets, expected_keys, expected_logs, language};
use crate::support::eventually;
use oglogstream::domain::query::{FieldName, TextField};
use oglogstream::domain::{Level, LogBatch, LogRecord};
use oglogstream::store::facets::FacetQuery;
use oglogstream::store::sqlite::SqliteStore;
use oglogstream::store::{LogFilter, LogKey, LogQuery, Order, Store};
use std::path::Path;
use std::time::Duration;

const SECOND: i64 = 1_000_000;
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000_000;

/// Logs a second apart (a few far out of order) with attributes of low
/// and high cardinality, numbers, non-numbers and a key named `level`.
fn logs(first: usize, count: usize) -> Vec<LogRecord> {
    (first..first + count)
        .map(|n| {
            let mut timestamp = T0 + n as i64 * SECOND;
            if n % 97 == 0 {
                timestamp -= 50_000 * SECOND;
            }
            let mut attributes = oglogstream::domain::Attributes::new();
            let mut set = |key: &str, value: String| {
                attributes.insert(key.to_string(), value);
            };
            if n % 10 != 0 {
                set(
                    "region",
                    ["eu-west-1", "EU-West-1", "us-east-1", "ap-south-1"][n % 4].into(),
                );
            }
            if n % 2 == 0 {
                set(
                    "http.status",
                    ["200", "503", "404", "abc", "500"][n / 2 % 5].into(),
                );
            }
            if n % 3 == 0 {
                set("trace_id", format!("{:08x}", n / 3));
            }
            if n % 50 == 0 {
                set("level", "custom".into());
            }
            LogRecord {
                id: format!("id-{n:06}"),
                timestamp,
                level: Level::ALL[n * 7 % 5],
                service: format!("svc-{}", n % 7),
                message: format!("message {n}"),
                attributes,
                ..Default::default()
            }
        })
        .collect()
}

async fn insert(store: &SqliteStore, records: &[LogRecord]) {
    for chunk in records.chunks(677) {
        let batch: LogBatch = chunk.to_vec().into();
        store.insert(&[batch]).await.expect("insert");
    }
}

fn built_blocks(dir: &Path) -> i64 {
    let connection = rusqlite::Connection::open(dir.join("oglogstream.db")).expect("sqlite");
    connection
        .query_row("SELECT COUNT(*) FROM facet_blocks", [], |row| row.get(0))
        .unwrap_or(0)
}

/// Pages for rare and common attribute values (the rare ones read only
/// the blocks whose attribute filter may hold them), by cursor too.
async fn every_page_agrees(store: &SqliteStore, all: &[LogRecord], stage: &str) {
    for query in [
        "trace_id:0000001a",
        "trace_id:0000001A region:*",
        "trace_id:00000700 OR trace_id:0000001a",
        "@level:custom http.status:503",
        "missing.key:*",
        "region:eu-west-1",
    ] {
        for order in [Order::Desc, Order::Asc] {
            let filter = LogFilter {
                expr: language(query),
                ..Default::default()
            };
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .logs(&LogQuery {
                        filter: filter.clone(),
                        limit: 40,
                        offset: 0,
                        order,
                        after: after.clone(),
                    })
                    .await
                    .expect("logs");
                got.extend(page.iter().map(|r| r.id.clone()));
                if page.len() < 40 {
                    break;
                }
                after = page.last().map(LogKey::of);
            }
            let everything = LogQuery {
                filter,
                limit: usize::MAX,
                offset: 0,
                order,
                after: None,
            };
            assert_eq!(
                got,
                expected_logs(all, &everything),
                "{stage}: pages of {query:?} {order:?}"
            );
        }
    }
}

async fn every_count_agrees(store: &SqliteStore, all: &[LogRecord], stage: &str) {
    every_page_agrees(store, all, stage).await;
    let attribute = |key: &str| FieldName::Text(TextField::Attribute(key.into()));
    let newest = all.iter().map(|r| r.timestamp).max().unwrap_or(T0);
    let filters = [
        LogFilter::default(),
        LogFilter {
            expr: language("region:eu-* level:>=warn"),
            ..Default::default()
        },
        LogFilter {
            expr: language("-http.status:>=500 service:(svc-1 OR svc-2)"),
            ..Default::default()
        },
        LogFilter {
            expr: language("trace_id:* OR @level:custom"),
            from: Some(T0 + 1_000 * SECOND),
            to: Some(newest - 500 * SECOND),
            ..Default::default()
        },
        LogFilter {
            service: Some("svc-3".into()),
            expr: language("region:~\"^(?i)eu\" -region:\"eu-west-1\""),
            ..Default::default()
        },
        // Needs the messages: read as rows.
        LogFilter {
            expr: language("\"message 1\" region:*"),
            ..Default::default()
        },
    ];
    for filter in filters {
        for (fields, limit) in [
            (None, 5),
            (
                Some(vec![
                    FieldName::Level,
                    FieldName::Text(TextField::Service),
                    attribute("region"),
                    attribute("http.status"),
                    attribute("trace_id"),
                    attribute("level"),
                ]),
                3,
            ),
        ] {
            let query = FacetQuery {
                filter: filter.clone(),
                fields,
                limit,
            };
            assert_eq!(
                store.facets(&query).await.expect("facets"),
                expected_facets(all, &query),
                "{stage}: facets for {query:?}"
            );
        }
        assert_eq!(
            store.attribute_keys(&filter).await.expect("keys"),
            expected_keys(all, &filter),
            "{stage}: keys for {filter:?}"
        );
    }
}

#[actix_web::test]
async fn facets_from_blocks_answer_what_counting_every_log_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = logs(0, 6_000);
    let store = SqliteStore::open(dir.path()).unwrap();
    insert(&store, &all).await;
    // Before the builder catches up and after: the same answers.
    every_count_agrees(&store, &all, "as inserted").await;
    eventually(
        "the builder to build 5 blocks",
        Duration::from_secs(30),
        || {
            let built = built_blocks(dir.path());
            async move { (built >= 5).then_some(()) }
        },
    )
    .await;
    every_count_agrees(&store, &all, "from blocks").await;
    store.close().await;

    // A restart, more logs, retention of the oldest: still the same.
    let store = SqliteStore::open(dir.path()).unwrap();
    let more = logs(6_000, 3_000);
    insert(&store, &more).await;
    all.extend(more);
    eventually(
        "the builder to build 8 blocks",
        Duration::from_secs(30),
        || {
            let built = built_blocks(dir.path());
            async move { (built >= 8).then_some(()) }
        },
    )
    .await;
    every_count_agrees(&store, &all, "after a restart").await;
    let cutoff = T0 + 3_600 * SECOND;
    store.delete_older_than(cutoff).await.expect("retention");
    all.retain(|r| r.timestamp >= cutoff);
    every_count_agrees(&store, &all, "after retention").await;
    store.close().await;
}
