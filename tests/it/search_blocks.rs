//! The embedded store's skip index for `q` (src/store/search_blocks.rs) on
//! enough logs to fill many blocks: every search must answer exactly what a
//! scan of all logs answers (`LogFilter::matches`), whatever the order,
//! page, time range or needle, and stay so across a restart (the open block
//! is rebuilt), retention, and an upgrade from a store without the index.

use crate::split::contract::expected_logs;
use oglogstream::domain::{Level, LevelSet, LogBatch, LogRecord};
use oglogstream::store::sqlite::SqliteStore;
use oglogstream::store::{LogFilter, LogQuery, Order, Store};

const SECOND: i64 = 1_000_000;
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000_000;

/// A tiny deterministic generator: the test needs variety, not randomness.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Logs numbered from `first`, one second apart, except that about one in
/// 50 arrives with a time far in the past or the future (late shippers,
/// skewed clocks), so blocks' time ranges overlap.
fn logs(first: usize, count: usize, rng: &mut Lcg) -> Vec<LogRecord> {
    (first..first + count)
        .map(|n| {
            let mut timestamp = T0 + n as i64 * SECOND;
            match rng.below(100) {
                0 => timestamp -= rng.below(20_000) as i64 * SECOND,
                1 => timestamp += rng.below(20_000) as i64 * SECOND,
                _ => {}
            }
            let word = match rng.below(1000) {
                0..=2 => "Deadlock detected on orders",
                3..=60 => "upstream timeout after 3s",
                61..=62 => "Ошибка базы данных",
                _ => "request served",
            };
            LogRecord {
                id: format!("id-{n:06}"),
                timestamp,
                level: Level::ALL[rng.below(5) as usize],
                service: format!("svc-{}", rng.below(7)),
                message: format!("{word} #{n} user {}", rng.below(100_000)),
                attributes: Default::default(),
                ..Default::default()
            }
        })
        .collect()
}

async fn insert(store: &SqliteStore, records: &[LogRecord]) {
    // Uneven batches, so blocks end in the middle of transactions.
    for chunk in records.chunks(677) {
        let batch: LogBatch = chunk.to_vec().into();
        store.insert(&[batch]).await.expect("insert");
    }
}

async fn every_search_agrees(store: &SqliteStore, all: &[LogRecord], stage: &str) {
    let newest = all.iter().map(|r| r.timestamp).max().unwrap_or(T0);
    let ranges = [
        (None, None),
        (Some(T0 + 3_000 * SECOND), Some(T0 + 9_000 * SECOND)),
        (Some(newest - 2_000 * SECOND), None),
    ];
    let mut error_or_warn = LevelSet::default();
    error_or_warn.insert(Level::Error);
    error_or_warn.insert(Level::Warn);
    let mut checked = 0;
    for needle in ["deadlock", "timeout", "ошибка", "zanzibar", "ad", "#1234 "] {
        for (from, to) in ranges {
            for levels in [None, Some(error_or_warn)] {
                for order in [Order::Desc, Order::Asc] {
                    for (offset, limit) in [(0, 50), (0, 1), (40, 25), (300, 100)] {
                        let query = LogQuery {
                            filter: LogFilter {
                                text: Some(needle.to_string()),
                                levels,
                                from,
                                to,
                                ..Default::default()
                            },
                            limit,
                            offset,
                            order,
                            after: None,
                        };
                        let got: Vec<String> = store
                            .logs(&query)
                            .await
                            .expect("query")
                            .into_iter()
                            .map(|r| r.id)
                            .collect();
                        assert_eq!(got, expected_logs(all, &query), "{stage}: {query:?}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 6 * 3 * 2 * 2 * 4);
}

#[tokio::test]
async fn searches_through_blocks_answer_what_a_full_scan_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = Lcg(7);
    let mut all = logs(0, 12_000, &mut rng);
    let store = SqliteStore::open(dir.path()).expect("open");
    insert(&store, &all).await;
    every_search_agrees(&store, &all, "fresh").await;

    // A restart rebuilds the open block from its rows; more logs follow.
    store.close().await;
    let store = SqliteStore::open(dir.path()).expect("reopen");
    every_search_agrees(&store, &all, "reopened").await;
    let more = logs(all.len(), 3_000, &mut rng);
    insert(&store, &more).await;
    all.extend(more);
    every_search_agrees(&store, &all, "reopened and grown").await;

    // Retention drops rows (and the filters of blocks it emptied); new logs
    // must land where no stale filter can hide them.
    let cutoff = T0 + 6_000 * SECOND;
    store.delete_older_than(cutoff).await.expect("retention");
    all.retain(|r| r.timestamp >= cutoff);
    let more = logs(20_000, 2_500, &mut rng);
    insert(&store, &more).await;
    all.extend(more);
    every_search_agrees(&store, &all, "after retention").await;
    store.close().await;

    // A store from before the index (schema 2) builds it when it opens.
    {
        let connection =
            rusqlite::Connection::open(dir.path().join("oglogstream.db")).expect("sqlite");
        connection
            .execute_batch("DROP TABLE message_blocks; PRAGMA user_version = 2;")
            .expect("downgrade");
    }
    let store = SqliteStore::open(dir.path()).expect("upgrade");
    let blocks: i64 = {
        let connection =
            rusqlite::Connection::open(dir.path().join("oglogstream.db")).expect("sqlite");
        connection
            .query_row("SELECT COUNT(*) FROM message_blocks", [], |row| row.get(0))
            .expect("count")
    };
    assert!(
        blocks >= 10,
        "the upgrade built the filters: {blocks} blocks"
    );
    every_search_agrees(&store, &all, "upgraded from schema 2").await;
    store.close().await;
}
