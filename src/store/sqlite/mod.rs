//! The embedded store: one SQLite file in WAL mode.
//!
//! Layout (schema version 4, kept in `PRAGMA user_version`):
//! - `services`: a dictionary of service names, so `logs` stores a small
//!   integer and a service filter (a substring) is resolved against the
//!   dictionary once instead of against every row.
//! - `logs`: one row per log, with one index, `logs_page`, UNIQUE on
//!   (ts, id, level, service_id). It yields rows in page order (time, then
//!   id), seeks to a cursor's (ts, id) without reading rows, lets level and
//!   service filters be checked in the index, fetching a table row only for
//!   a match, and makes inserts idempotent: a log stored again conflicts and
//!   is skipped (schema 4; see `unique_page_index`). Version 1 had three
//!   indexes, (ts), (level, ts) and (service_id, ts): measured, the two
//!   secondary ones cost about 3 µs of the writer's ~4.5 µs per log (each
//!   batch inserts at 5 and 60 points of those trees), and a multi-level
//!   filter on (level, ts) forced a sort of every matching row (2.7 s for
//!   `level=error,fatal` on 6M logs).
//! - `counts_minute`, `counts_5min`, `counts_hour` and `counts_day`: rollups
//!   maintained in the same transaction as the insert, so stats and
//!   histograms over long ranges read thousands of rollup rows instead of
//!   millions of logs. With 60 services a day holds 432k minute rows but only
//!   86k five-minute rows (a 24 h histogram in 15-minute buckets) and 300 day
//!   rows (stats over a week): the 5-minute and day grains came with schema
//!   2, when the 24 h histogram took 0.8 s on 10M logs.
//! - `message_blocks`: the search blocks (`search_blocks.rs`).
//! - `alert_records` (schema 5): alerting's rules, state and notifications,
//!   and the saved views, as JSON documents (`sqlite/alert_records.rs`).
//!
//! Writes happen on one connection (SQLite has a single writer anyway) inside
//! `spawn_blocking`; WAL checkpoints on a thread of their own
//! (`sqlite/checkpoint.rs`); reads use a small pool of connections, which WAL
//! lets run concurrently with the writer. The query language becomes SQL in
//! `sqlite/expr.rs`.

mod alert_records;
mod checkpoint;
mod conditions;
mod connection;
mod counts;
mod expr;
mod facet_blocks;
mod facet_counts;
mod grouped;
mod matching_deletes;
mod pages;
mod schema;
mod writer;

use connection::{
    CancelOnDrop, PROGRESS_STEPS, open_connection, poisoned, run_blocking, sql_error,
};
use facet_counts::{count_attribute_keys, count_facets};
use pages::{log_record, query_logs, raw_log, stored_ids};
use schema::migrate;
use writer::Writer;

use super::disk::DiskWatch;
use super::facets::{FacetQuery, Facets, KeyCount};
use super::filter::{HistogramQuery, LogFilter, LogQuery};
use super::search_blocks::OpenBlock;
use super::{
    BucketCount, GroupedCount, GroupedCountQuery, LevelServiceCount, RawLog, Store, StoreError,
};
use crate::domain::time::Micros;
use crate::domain::{LogBatch, LogRecord, TenantId};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const SCHEMA_VERSION: i64 = 8;
/// The trace id index is kept per bucket of 2^16 consecutive logs (by
/// `seq`), so inserts stay local (see `schema::trace_index_by_insert_order`).
const TRACE_BUCKET_SHIFT: u32 = 16;
const MINUTE: Micros = 60_000_000;
const FIVE_MINUTES: Micros = 5 * MINUTE;
const HOUR: Micros = 60 * MINUTE;
const DAY: Micros = 24 * HOUR;

/// Rollup tables, fine to coarse. Every grain divides the next one, so the
/// writer derives the coarser counts from the minute counts.
const ROLLUPS: [(Micros, &str); 4] = [
    (MINUTE, "counts_minute"),
    (FIVE_MINUTES, "counts_5min"),
    (HOUR, "counts_hour"),
    (DAY, "counts_day"),
];
const READ_POOL_SIZE: usize = 4;
/// SQLite page cache per connection, in KiB (see `open_connection`).
const WRITER_CACHE_KIB: u32 = 8 * 1024;
const READER_CACHE_KIB: u32 = 2 * 1024;

pub struct SqliteStore {
    path: PathBuf,
    /// The free space of the data directory's filesystem (see `store::disk`).
    disk: Arc<DiskWatch>,
    writer: Arc<Mutex<Writer>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Logs the facet blocks do not cover yet (see `facet_blocks`).
    facet_backlog: Arc<std::sync::atomic::AtomicU64>,
}

/// How the embedded store is opened.
#[derive(Clone, Copy, Debug, Default)]
pub struct SqliteOptions {
    /// Space that must stay free on the data directory's filesystem before
    /// writes are refused; `None`: 1% of it or 256 MiB, the smaller.
    pub min_free_bytes: Option<u64>,
}

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/oglogstream.db` and migrates it.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(data_dir, SqliteOptions::default())
    }

    pub fn open_with(data_dir: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let disk = DiskWatch::start(data_dir, options.min_free_bytes).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot read the free space of {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join("oglogstream.db");
        let mut connection = open_connection(&path, true)?;
        migrate(&connection)?;
        // At start, not in the first insert: a store from before schema 3
        // builds the filters of all its logs here, once.
        let transaction = connection.transaction().map_err(sql_error)?;
        let open_block = OpenBlock::load(&transaction).map_err(sql_error)?;
        transaction.commit().map_err(sql_error)?;
        connection
            .execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(sql_error)?;
        let disk = Arc::new(disk);
        let checkpointer =
            checkpoint::Checkpointer::start(&path, Arc::clone(&disk)).map_err(sql_error)?;
        let facet_builder = facet_blocks::Builder::start(&path).map_err(sql_error)?;
        let facet_backlog = facet_builder.backlog();
        Ok(SqliteStore {
            path,
            disk,
            facet_backlog,
            writer: Arc::new(Mutex::new(Writer {
                connection: Some(connection),
                checkpointer,
                facet_builder,
                service_ids: HashMap::new(),
                tenant_ids: HashMap::new(),
                open_block: Some(open_block),
            })),
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on a pooled read connection on the blocking thread pool.
    /// Dropping the returned future (a timeout, a client gone) stops the
    /// work at its next SQLite step: the blocking thread is not left
    /// scanning for nobody.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let path = self.path.clone();
        let cancel = CancelOnDrop::default();
        let cancelled = Arc::clone(&cancel.flag);
        let result = run_blocking(move || {
            let pooled = readers.lock().map_err(poisoned)?.pop();
            let mut connection = match pooled {
                Some(connection) => connection,
                None => open_connection(&path, false)?,
            };
            connection
                .progress_handler(
                    PROGRESS_STEPS,
                    Some(move || cancelled.load(std::sync::atomic::Ordering::Relaxed)),
                )
                .map_err(sql_error)?;
            let result = work(&connection);
            connection
                .progress_handler(PROGRESS_STEPS, None::<fn() -> bool>)
                .map_err(sql_error)?;
            let mut pool = readers.lock().map_err(poisoned)?;
            if pool.len() < READ_POOL_SIZE {
                pool.push(connection);
            }
            result
        })
        .await;
        cancel.disarm();
        result
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn insert(&self, batches: &[LogBatch]) -> Result<(), StoreError> {
        let writer = Arc::clone(&self.writer);
        let batches = batches.to_vec();
        let written = run_blocking(move || {
            let attributes = writer::attributes_json(&batches);
            writer
                .lock()
                .map_err(poisoned)?
                .insert(&batches, &attributes)
        })
        .await;
        match &written {
            Ok(()) => self.disk.write_succeeded(),
            Err(StoreError::DiskFull(_)) => self.disk.write_failed_for_space(),
            Err(_) => {}
        }
        written
    }

    /// Two: the second call writes its attributes' JSON while the first
    /// holds the writer, and the writer never waits for the next batch.
    fn writes_at_once(&self) -> usize {
        2
    }

    async fn existing_ids(&self, batches: &[LogBatch]) -> Result<HashSet<String>, StoreError> {
        let lookups = super::ids_and_range_by_tenant(batches);
        self.read(move |connection| {
            let mut found = HashSet::new();
            for (tenant, ids, from, to) in &lookups {
                found.extend(stored_ids(connection, tenant, ids, *from, *to)?);
            }
            Ok(found)
        })
        .await
    }

    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let query = query.clone();
        self.read(move |connection| query_logs(connection, &query, log_record))
            .await
    }

    async fn raw_logs(&self, query: &LogQuery) -> Result<Vec<RawLog>, StoreError> {
        let query = query.clone();
        self.read(move |connection| query_logs(connection, &query, raw_log))
            .await
    }

    async fn facets(&self, query: &FacetQuery) -> Result<Facets, StoreError> {
        let query = query.clone();
        self.read(move |connection| count_facets(connection, &query))
            .await
    }

    async fn attribute_keys(&self, filter: &LogFilter) -> Result<Vec<KeyCount>, StoreError> {
        let filter = filter.clone();
        self.read(move |connection| count_attribute_keys(connection, &filter))
            .await
    }

    async fn level_service_counts(
        &self,
        filter: &LogFilter,
    ) -> Result<Vec<LevelServiceCount>, StoreError> {
        let filter = filter.clone();
        self.read(move |connection| counts::level_service_counts(connection, &filter))
            .await
    }

    async fn bucket_counts(&self, query: &HistogramQuery) -> Result<Vec<BucketCount>, StoreError> {
        let query = query.clone();
        self.read(move |connection| counts::bucket_counts(connection, &query))
            .await
    }

    async fn grouped_counts(
        &self,
        query: &GroupedCountQuery,
    ) -> Result<Vec<GroupedCount>, StoreError> {
        let query = query.clone();
        self.read(move |connection| grouped::count(connection, &query))
            .await
    }

    async fn delete_older_than(&self, cutoff: Micros) -> Result<u64, StoreError> {
        let writer = Arc::clone(&self.writer);
        run_blocking(move || writer.lock().map_err(poisoned)?.delete_older_than(cutoff)).await
    }

    async fn delete_tenant_older_than(
        &self,
        tenant: &TenantId,
        cutoff: Micros,
    ) -> Result<u64, StoreError> {
        let writer = Arc::clone(&self.writer);
        let tenant = tenant.to_string();
        run_blocking(move || {
            writer
                .lock()
                .map_err(poisoned)?
                .delete_tenant_older_than(&tenant, cutoff)
        })
        .await
    }

    async fn delete_matching(&self, filter: &LogFilter) -> Result<u64, StoreError> {
        let writer = Arc::clone(&self.writer);
        let filter = filter.clone();
        run_blocking(move || writer.lock().map_err(poisoned)?.delete_matching(&filter)).await
    }

    async fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        self.read(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT name FROM tenants ORDER BY name")
                .map_err(connection::sql_error)?;
            let names = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(connection::sql_error)?
                .collect::<Result<Vec<String>, _>>()
                .map_err(connection::sql_error)?;
            Ok(names
                .iter()
                .filter_map(|name| TenantId::parse(name).ok())
                .collect())
        })
        .await
    }

    fn index_backlog(&self) -> Option<u64> {
        Some(
            self.facet_backlog
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    fn disk_watch(&self) -> Option<Arc<DiskWatch>> {
        Some(Arc::clone(&self.disk))
    }

    async fn used_bytes(&self) -> Option<u64> {
        // The pages in use: the file less its free list, which later writes
        // fill before the file grows.
        self.read(|connection| {
            let pages = |pragma: &str| -> Result<u64, StoreError> {
                connection
                    .query_row(&format!("PRAGMA {pragma}"), [], |row| row.get::<_, i64>(0))
                    .map(|n| n.max(0) as u64)
                    .map_err(sql_error)
            };
            let used = pages("page_count")?.saturating_sub(pages("freelist_count")?);
            Ok(used * pages("page_size")?)
        })
        .await
        .ok()
    }

    async fn oldest_timestamp(&self) -> Result<Option<Micros>, StoreError> {
        self.read(|connection| {
            let tenants: Vec<i64> = {
                let mut statement = connection
                    .prepare_cached("SELECT id FROM tenants")
                    .map_err(sql_error)?;
                statement
                    .query_map([], |row| row.get(0))
                    .map_err(sql_error)?
                    .collect::<Result<_, _>>()
                    .map_err(sql_error)?
            };
            facet_blocks::oldest_of(connection, &tenants)
        })
        .await
    }

    fn size_bytes(&self) -> Option<u64> {
        let main = std::fs::metadata(&self.path).ok()?.len();
        let wal = std::fs::metadata(self.path.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        Some(main + wal)
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.read(|connection| {
            connection
                .query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                .optional()
                .map_err(sql_error)?;
            Ok(())
        })
        .await
    }

    async fn close(&self) {
        let writer = Arc::clone(&self.writer);
        let readers = Arc::clone(&self.readers);
        let _ = run_blocking(move || {
            if let Ok(mut pool) = readers.lock() {
                pool.clear();
            }
            let mut writer = writer.lock().map_err(poisoned)?;
            writer.facet_builder.stop();
            writer.checkpointer.stop();
            if let Some(connection) = writer.connection.take() {
                // Fold the WAL back into the main file so the database is one
                // self-contained file for `sqlite3` and backups.
                let _ = connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
                let _ = connection.close();
            }
            Ok(())
        })
        .await;
    }
}

#[cfg(test)]
mod tests;
