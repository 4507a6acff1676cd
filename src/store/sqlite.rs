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
//! - `alert_records` (schema 5): alerting's rules, state and notifications as
//!   JSON documents (`sqlite/alert_records.rs`).
//!
//! Writes happen on one connection (SQLite has a single writer anyway) inside
//! `spawn_blocking`; WAL checkpoints on a thread of their own
//! (`sqlite/checkpoint.rs`); reads use a small pool of connections, which WAL
//! lets run concurrently with the writer. The query language becomes SQL in
//! `sqlite/expr.rs`.

mod alert_records;
mod checkpoint;
mod expr;
mod facet_blocks;
mod grouped;

use super::disk::DiskWatch;
use super::facets::{self, FacetQuery, Facets, KeyCount, Tally};
use super::filter::{HistogramQuery, LogFilter, LogQuery, Order};
use super::search_blocks::{self, OpenBlock};
use super::{
    BucketCount, GroupedCount, GroupedCountQuery, LevelServiceCount, RawLog, Store, StoreError,
};
use crate::domain::log::attributes_from_json;
use crate::domain::query::{Expr, FieldName, Matcher, Predicate, TextField};
use crate::domain::time::Micros;
use crate::domain::{Level, LogBatch, LogRecord};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const SCHEMA_VERSION: i64 = 6;
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
const READER_CACHE_KIB: u32 = 4 * 1024;

pub struct SqliteStore {
    path: PathBuf,
    /// The free space of the data directory's filesystem (see `store::disk`).
    disk: Arc<DiskWatch>,
    writer: Arc<Mutex<Writer>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Logs the facet blocks do not cover yet (see `facet_blocks`).
    facet_backlog: Arc<std::sync::atomic::AtomicU64>,
}

struct Writer {
    connection: Option<Connection>,
    /// Runs the checkpoints the writer connection does not (see there).
    checkpointer: checkpoint::Checkpointer,
    /// Builds the facet blocks from stored rows, off the writer's thread.
    facet_builder: facet_blocks::Builder,
    /// Reused for every log's attributes JSON: one allocation per writer,
    /// not one per log.
    json: Vec<u8>,
    /// Service name -> id, so the hot path skips the dictionary lookup.
    service_ids: HashMap<String, i64>,
    /// The search block being filled; `None` after a failed transaction,
    /// rebuilt from the database by the next insert.
    open_block: Option<OpenBlock>,
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
        let checkpointer = checkpoint::Checkpointer::start(&path).map_err(sql_error)?;
        let facet_builder = facet_blocks::Builder::start(&path).map_err(sql_error)?;
        let facet_backlog = facet_builder.backlog();
        Ok(SqliteStore {
            path,
            disk: Arc::new(disk),
            facet_backlog,
            writer: Arc::new(Mutex::new(Writer {
                connection: Some(connection),
                checkpointer,
                facet_builder,
                json: Vec::new(),
                service_ids: HashMap::new(),
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

/// SQLite virtual-machine steps between two checks for cancellation:
/// about a millisecond of work.
const PROGRESS_STEPS: i32 = 10_000;

/// Sets its flag when dropped before `disarm`: the read's future was
/// dropped, so its SQL should stop.
#[derive(Default)]
struct CancelOnDrop {
    flag: Arc<std::sync::atomic::AtomicBool>,
    disarmed: bool,
}

impl CancelOnDrop {
    fn disarm(mut self) {
        self.disarmed = true;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.disarmed {
            self.flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Internal("sqlite connection lock poisoned".into())
}

async fn run_blocking<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Internal(format!("sqlite task failed: {e}")))?
}

fn sql_error(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(error.to_string())
        }
        Some(ErrorCode::DiskFull) => StoreError::DiskFull(error.to_string()),
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen) => {
            StoreError::Unavailable(error.to_string())
        }
        _ => StoreError::Internal(error.to_string()),
    }
}

fn open_connection(path: &Path, writer: bool) -> Result<Connection, StoreError> {
    let flags = if writer {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    // WAL lets readers run beside the writer. synchronous=NORMAL keeps every
    // committed batch through a process crash; only an OS crash or power loss
    // can take back the last few commits (never corrupting the file).
    //
    // Page caches are small on purpose (they count in the process's RSS, the
    // operating system caches the file anyway): the writer only touches the
    // right edge of the table, the page index and the rollups; a reader's
    // scan streams through its cache rather than living in it.
    let cache_kib = if writer {
        WRITER_CACHE_KIB
    } else {
        READER_CACHE_KIB
    };
    connection
        .execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -{cache_kib};
             PRAGMA temp_store = MEMORY;"
        ))
        .map_err(sql_error)?;
    expr::register_functions(&connection).map_err(sql_error)?;
    Ok(connection)
}

fn migrate(connection: &Connection) -> Result<(), StoreError> {
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql_error)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "database schema version {version} is newer than this binary understands ({SCHEMA_VERSION}); upgrade oglogstream"
        )));
    }
    if version < 1 {
        connection
            .execute_batch(
                "BEGIN;
                 CREATE TABLE services (
                     id   INTEGER PRIMARY KEY,
                     name TEXT NOT NULL UNIQUE
                 );
                 CREATE TABLE logs (
                     seq        INTEGER PRIMARY KEY,
                     id         TEXT NOT NULL,
                     ts         INTEGER NOT NULL,
                     level      INTEGER NOT NULL,
                     service_id INTEGER NOT NULL,
                     message    TEXT NOT NULL,
                     attributes TEXT
                 );
                 CREATE INDEX logs_by_time ON logs (ts);
                 CREATE INDEX logs_by_level ON logs (level, ts);
                 CREATE INDEX logs_by_service ON logs (service_id, ts);
                 CREATE TABLE counts_minute (
                     bucket     INTEGER NOT NULL,
                     service_id INTEGER NOT NULL,
                     level      INTEGER NOT NULL,
                     n          INTEGER NOT NULL,
                     PRIMARY KEY (bucket, service_id, level)
                 ) WITHOUT ROWID;
                 CREATE TABLE counts_hour (
                     bucket     INTEGER NOT NULL,
                     service_id INTEGER NOT NULL,
                     level      INTEGER NOT NULL,
                     n          INTEGER NOT NULL,
                     PRIMARY KEY (bucket, service_id, level)
                 ) WITHOUT ROWID;
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
            .map_err(sql_error)?;
    }
    if version < 2 {
        if version == 1 {
            tracing::info!(
                "migrating the store to schema 2: building the logs_page index and rollups once"
            );
        }
        // Rollup keys lead with (bucket, level), so a histogram sums them in
        // key order with no sort; schema 1 had (bucket, service_id, level).
        let rollup = |table: &str| {
            format!(
                "CREATE TABLE {table} (
                     bucket     INTEGER NOT NULL,
                     level      INTEGER NOT NULL,
                     service_id INTEGER NOT NULL,
                     n          INTEGER NOT NULL,
                     PRIMARY KEY (bucket, level, service_id)
                 ) WITHOUT ROWID;"
            )
        };
        let copy = |to: &str, grain: Micros, from: &str| {
            format!(
                "INSERT INTO {to} (bucket, level, service_id, n)
                     SELECT bucket - bucket % {grain}, level, service_id, SUM(n)
                     FROM {from} GROUP BY 1, 2, 3;"
            )
        };
        // The index build sorts every log: with temp_store = MEMORY it held
        // 600 MB for a 10M-log store; temporary files bound it by cache_size.
        connection
            .execute_batch(&format!(
                "PRAGMA temp_store = FILE;
                 BEGIN;
                 CREATE INDEX IF NOT EXISTS logs_page ON logs (ts, seq, level, service_id);
                 DROP INDEX IF EXISTS logs_by_time;
                 DROP INDEX IF EXISTS logs_by_level;
                 DROP INDEX IF EXISTS logs_by_service;
                 ALTER TABLE counts_minute RENAME TO counts_minute_v1;
                 ALTER TABLE counts_hour RENAME TO counts_hour_v1;
                 {} {} {} {}
                 {} {} {} {}
                 DROP TABLE counts_minute_v1;
                 DROP TABLE counts_hour_v1;
                 PRAGMA user_version = 2;
                 COMMIT;
                 PRAGMA temp_store = MEMORY;",
                rollup("counts_minute"),
                rollup("counts_5min"),
                rollup("counts_hour"),
                rollup("counts_day"),
                copy("counts_minute", MINUTE, "counts_minute_v1"),
                copy("counts_5min", FIVE_MINUTES, "counts_minute_v1"),
                copy("counts_hour", HOUR, "counts_hour_v1"),
                copy("counts_day", DAY, "counts_hour_v1"),
            ))
            .map_err(sql_error)?;
    }
    if version < 3 {
        // Filled by `OpenBlock::load` when the store opens (search_blocks.rs).
        connection
            .execute_batch(
                "BEGIN;
                 CREATE TABLE message_blocks (
                     block  INTEGER PRIMARY KEY,
                     min_ts INTEGER NOT NULL,
                     max_ts INTEGER NOT NULL,
                     bloom  BLOB NOT NULL
                 );
                 CREATE INDEX message_blocks_time ON message_blocks (max_ts, min_ts);
                 PRAGMA user_version = 3;
                 COMMIT;",
            )
            .map_err(sql_error)?;
    }
    if version < 4 {
        unique_page_index(connection)?;
    }
    if version < 5 {
        // Alerting's rules, state and notifications (alert_records.rs).
        connection
            .execute_batch(&format!(
                "BEGIN; {} PRAGMA user_version = 5; COMMIT;",
                alert_records::CREATE_TABLE
            ))
            .map_err(sql_error)?;
    }
    if version < 6 {
        // Filled by the facet block builder after the store opens.
        connection
            .execute_batch("BEGIN;")
            .and_then(|()| facet_blocks::create_tables(connection))
            .and_then(|()| connection.execute_batch("PRAGMA user_version = 6; COMMIT;"))
            .map_err(sql_error)?;
    }
    Ok(())
}

/// Schema 4: the page index becomes unique and ordered as pages are,
/// `(ts, id, level, service_id)`. One index gives page order by timestamp
/// then id, keyset seeks without reading rows, and idempotent inserts: a
/// log stored again (a batch redelivered after a crash) conflicts and is
/// skipped. Measured against a second, unique index on `id`: that cost the
/// writer 0.5 µs more per log (2.3 -> 2.8 µs CPU, 2M corpus logs). Lookups
/// by id use the id range of each search block instead (schema 4 adds it).
/// A store that already holds duplicates keeps the first of each and takes
/// the others out of the rollups, so counts still match rows.
fn unique_page_index(connection: &Connection) -> Result<(), StoreError> {
    tracing::info!("migrating the store to schema 4: rebuilding the page index once");
    // The index build sorts every log: temporary files, not memory.
    connection
        .execute_batch("PRAGMA temp_store = FILE; BEGIN;")
        .map_err(sql_error)?;
    let outcome = (|| {
        let unique = "CREATE UNIQUE INDEX logs_page ON logs (ts, id, level, service_id)";
        connection
            .execute_batch("DROP INDEX IF EXISTS logs_page")
            .map_err(sql_error)?;
        match connection.execute_batch(unique) {
            Ok(()) => {}
            Err(error)
                if error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
            {
                drop_duplicates(connection)?;
                connection.execute_batch(unique).map_err(sql_error)?;
            }
            Err(error) => return Err(sql_error(error)),
        }
        search_blocks::add_id_ranges(connection).map_err(sql_error)
    })();
    let finish = match outcome {
        Ok(()) => "PRAGMA user_version = 4; COMMIT; PRAGMA temp_store = MEMORY;",
        Err(_) => "ROLLBACK; PRAGMA temp_store = MEMORY;",
    };
    connection.execute_batch(finish).map_err(sql_error)?;
    outcome
}

fn drop_duplicates(connection: &Connection) -> Result<(), StoreError> {
    connection
        .execute_batch("CREATE INDEX logs_duplicates ON logs (id, seq)")
        .map_err(sql_error)?;
    let duplicates: Vec<(i64, Micros, u8, i64)> = {
        let mut statement = connection
            .prepare(
                "SELECT l.seq, l.ts, l.level, l.service_id FROM logs l
                 WHERE EXISTS (SELECT 1 FROM logs o WHERE o.id = l.id AND o.seq < l.seq
                     AND o.ts = l.ts AND o.level = l.level AND o.service_id = l.service_id)",
            )
            .map_err(sql_error)?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)?
    };
    tracing::warn!(
        duplicates = duplicates.len(),
        "removing logs stored twice (redelivered) before schema 4"
    );
    for (seq, ts, level, service_id) in duplicates {
        connection
            .execute("DELETE FROM logs WHERE seq = ?1", [seq])
            .map_err(sql_error)?;
        for (grain, table) in ROLLUPS {
            connection
                .execute(
                    &format!(
                        "UPDATE {table} SET n = n - 1 WHERE bucket = ?1 AND level = ?2 AND service_id = ?3"
                    ),
                    rusqlite::params![ts - ts.rem_euclid(grain), level, service_id],
                )
                .map_err(sql_error)?;
        }
    }
    connection
        .execute_batch("DROP INDEX logs_duplicates")
        .map_err(sql_error)
}

impl Writer {
    fn insert(&mut self, batches: &[LogBatch]) -> Result<(), StoreError> {
        let Writer {
            connection,
            json,
            service_ids,
            open_block,
            ..
        } = self;
        let connection = connection
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
        let transaction = connection.transaction().map_err(sql_error)?;
        // Taken for the transaction: if it fails, the block state is dropped
        // with it and rebuilt from what the database kept.
        let mut block = match open_block.take() {
            Some(block) => block,
            None => OpenBlock::load(&transaction).map_err(sql_error)?,
        };
        // Ids added in a transaction that rolls back must not stay cached.
        let mut new_services: Vec<String> = Vec::new();
        let mut minute_counts: HashMap<(Micros, i64, u8), i64> = HashMap::new();
        {
            // A log whose id is stored already (a redelivered batch) is
            // skipped, and counted nowhere.
            let mut insert_log = transaction
                .prepare_cached(
                    "INSERT INTO logs (seq, id, ts, level, service_id, message, attributes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (ts, id, level, service_id) DO NOTHING",
                )
                .map_err(sql_error)?;
            let mut insert_service = transaction
                .prepare_cached(
                    "INSERT INTO services (name) VALUES (?1)
                     ON CONFLICT (name) DO UPDATE SET name = excluded.name
                     RETURNING id",
                )
                .map_err(sql_error)?;
            for record in batches.iter().flat_map(|batch| batch.iter()) {
                let service_id = match service_ids.get(&record.service) {
                    Some(id) => *id,
                    None => {
                        let id: i64 = insert_service
                            .query_row([&record.service], |row| row.get(0))
                            .map_err(sql_error)?;
                        service_ids.insert(record.service.clone(), id);
                        new_services.push(record.service.clone());
                        id
                    }
                };
                let level = record.level.code();
                let seq = block.take_seq();
                let attributes = if record.attributes.is_empty() {
                    None
                } else {
                    json.clear();
                    // Strings and a string map always serialise, as UTF-8.
                    let _ = serde_json::to_writer(&mut *json, &record.attributes);
                    std::str::from_utf8(json).ok()
                };
                let inserted = insert_log
                    .execute(rusqlite::params![
                        seq,
                        record.id,
                        record.timestamp,
                        level,
                        service_id,
                        record.message,
                        attributes,
                    ])
                    .map_err(sql_error)?;
                if inserted == 0 {
                    continue;
                }
                block
                    .add_row(
                        &transaction,
                        seq,
                        record.timestamp,
                        &record.id,
                        &record.message,
                    )
                    .map_err(sql_error)?;
                let minute = record.timestamp - record.timestamp.rem_euclid(MINUTE);
                *minute_counts
                    .entry((minute, service_id, level))
                    .or_default() += 1;
            }
        }
        let rolled_up = ROLLUPS
            .iter()
            .try_for_each(|(grain, table)| {
                let mut counts: HashMap<(Micros, i64, u8), i64> = HashMap::new();
                for ((minute, service_id, level), n) in &minute_counts {
                    let bucket = minute - minute.rem_euclid(*grain);
                    *counts.entry((bucket, *service_id, *level)).or_default() += n;
                }
                add_counts(&transaction, table, &counts)
            })
            .and_then(|_| transaction.commit().map_err(sql_error));
        if rolled_up.is_err() {
            for name in new_services {
                service_ids.remove(&name);
            }
        } else {
            *open_block = Some(block);
        }
        rolled_up
    }
}

fn add_counts(
    transaction: &rusqlite::Transaction,
    table: &str,
    counts: &HashMap<(Micros, i64, u8), i64>,
) -> Result<(), StoreError> {
    let mut upsert = transaction
        .prepare_cached(&format!(
            "INSERT INTO {table} (bucket, service_id, level, n) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (bucket, level, service_id) DO UPDATE SET n = n + excluded.n"
        ))
        .map_err(sql_error)?;
    for ((bucket, service_id, level), n) in counts {
        upsert
            .execute(rusqlite::params![bucket, service_id, level, n])
            .map_err(sql_error)?;
    }
    Ok(())
}

/// A WHERE clause and its bound parameters, built only from placeholders.
#[derive(Default)]
struct Conditions {
    sql: Vec<String>,
    params: Vec<Value>,
}

impl Conditions {
    fn push(&mut self, sql: impl Into<String>, params: impl IntoIterator<Item = Value>) {
        self.sql.push(sql.into());
        self.params.extend(params);
    }

    fn where_clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.sql.join(" AND "))
        }
    }
}

/// Resolves the service filter against the dictionary: `None` when there is no
/// service filter, `Some(empty)` when nothing matches.
fn matching_service_ids(
    connection: &Connection,
    filter: &LogFilter,
) -> Result<Option<Vec<i64>>, StoreError> {
    let Some(needle) = &filter.service else {
        return Ok(None);
    };
    let mut statement = connection
        .prepare_cached("SELECT id FROM services WHERE oglog_contains(name, ?1)")
        .map_err(sql_error)?;
    let ids = statement
        .query_map([needle], |row| row.get(0))
        .map_err(sql_error)?
        .collect::<Result<Vec<i64>, _>>()
        .map_err(sql_error)?;
    Ok(Some(ids))
}

/// The service dictionary, (id, name).
fn service_list(connection: &Connection) -> Result<Vec<(i64, String)>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT id, name FROM services")
        .map_err(sql_error)?;
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}

/// The `query` expression's conditions, one per top-level term so SQLite
/// can check level and service terms inside the page index. On the
/// rollups, only level and service terms may occur (see
/// `LogFilter::countable_by_level_and_service`).
fn expression_conditions(
    connection: &Connection,
    conditions: &mut Conditions,
    expr: &Expr,
    prefix: &str,
) -> Result<(), StoreError> {
    if expr.is_everything() {
        return Ok(());
    }
    let services = service_list(connection)?;
    for term in expr.conjuncts() {
        let fragment = expr::condition(term, prefix, &services);
        conditions.push(fragment.sql, fragment.params);
    }
    Ok(())
}

fn placeholders(count: usize) -> String {
    vec!["?"; count].join(",")
}

/// Level and service conditions, valid on `logs` and on the rollups alike.
/// `table` qualifies the columns when the query joins.
fn dimension_conditions(
    conditions: &mut Conditions,
    filter: &LogFilter,
    service_ids: &Option<Vec<i64>>,
    table: &str,
) {
    if let Some(levels) = filter.levels {
        let codes: Vec<Value> = levels
            .iter()
            .map(|l| Value::Integer(l.code().into()))
            .collect();
        conditions.push(
            format!("{table}level IN ({})", placeholders(codes.len())),
            codes,
        );
    }
    if let Some(ids) = service_ids {
        conditions.push(
            format!("{table}service_id IN ({})", placeholders(ids.len())),
            ids.iter().map(|id| Value::Integer(*id)),
        );
    }
}

fn service_names(connection: &Connection) -> Result<HashMap<i64, String>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT id, name FROM services")
        .map_err(sql_error)?;
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}

/// Where the counts of one time slice come from.
#[derive(Debug, PartialEq)]
enum Source {
    Raw,
    Rollup(&'static str),
}

/// Splits `[from, to)` into slices served by the coarsest rollup whose buckets
/// fit entirely inside, with raw rows only for the ragged edges. `grains` is
/// ordered coarse to fine.
fn decompose(
    from: Micros,
    to: Micros,
    grains: &[(Micros, &'static str)],
    out: &mut Vec<(Source, Micros, Micros)>,
) {
    if from >= to {
        return;
    }
    let Some(((grain, table), finer)) = grains.split_first() else {
        out.push((Source::Raw, from, to));
        return;
    };
    let start = from.div_euclid(*grain) * grain
        + if from.rem_euclid(*grain) == 0 {
            0
        } else {
            *grain
        };
    let end = to.div_euclid(*grain) * grain;
    if start >= end {
        decompose(from, to, finer, out);
        return;
    }
    decompose(from, start, finer, out);
    out.push((Source::Rollup(table), start, end));
    decompose(end, to, finer, out);
}

/// A raw slice lies inside one minute. When the rest of that minute holds no
/// log at all, the minute's rollup row counts exactly the slice, so it is
/// read instead of the logs. This matters at the end of "the last N hours",
/// which is the current minute: under heavy ingest it held up to a million
/// rows (a 24 h histogram took 450 ms right after a bulk load), while logs
/// stamped later than now, which would keep it raw, are rare.
fn widen_raw_edge(
    connection: &Connection,
    slice: &mut (Source, Micros, Micros),
) -> Result<(), StoreError> {
    let (Source::Raw, start, end) = *slice else {
        return Ok(());
    };
    let minute = start - start.rem_euclid(MINUTE);
    let minute_end = minute + MINUTE;
    if end > minute_end {
        return Ok(());
    }
    let mut any = connection
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM logs INDEXED BY logs_page WHERE ts >= ?1 AND ts < ?2)
                 OR EXISTS (SELECT 1 FROM logs INDEXED BY logs_page WHERE ts >= ?3 AND ts < ?4)",
        )
        .map_err(sql_error)?;
    let outside: bool = any
        .query_row([minute, start, end, minute_end], |row| row.get(0))
        .map_err(sql_error)?;
    if !outside {
        *slice = (Source::Rollup("counts_minute"), minute, minute_end);
    }
    Ok(())
}

/// Rollups usable for counts grouped by `interval` (no grouping: any rollup).
fn usable_grains(filter: &LogFilter, interval: Option<Micros>) -> Vec<(Micros, &'static str)> {
    if !filter.countable_by_level_and_service() {
        return Vec::new(); // message and attribute tests need the rows themselves
    }
    ROLLUPS
        .into_iter()
        .rev()
        .filter(|(grain, _)| interval.is_none_or(|i| i % grain == 0))
        .collect()
}

/// Reads the counts of every slice and hands each row to `add`: (bucket
/// start, level code, service id, count). Grouped by `interval`, the service
/// id is 0 (histograms do not split by service); without, the bucket is 0. Rows are aggregated by the
/// caller in a hash map rather than by SQL `GROUP BY`, whose sorter cost
/// ~40 ms over a week of hourly rollups (50k rows); streaming them is a few ms.
fn grouped_counts(
    connection: &Connection,
    filter: &LogFilter,
    interval: Option<Micros>,
    mut add: impl FnMut(Micros, u8, i64, u64),
) -> Result<(), StoreError> {
    let service_ids = matching_service_ids(connection, filter)?;
    if service_ids.as_ref().is_some_and(Vec::is_empty) {
        return Ok(());
    }
    let (from, to) = filter.bounds();
    let grains = usable_grains(filter, interval);
    let mut slices = Vec::new();
    decompose(from, to, &grains, &mut slices);
    if grains.iter().any(|(grain, _)| *grain == MINUTE) {
        for slice in &mut slices {
            widen_raw_edge(connection, slice)?;
        }
    }
    for (source, start, end) in slices {
        let mut conditions = Conditions::default();
        let (table, time_column, count) = match source {
            // One row per log; without a text filter only the index is read.
            Source::Raw => ("logs INDEXED BY logs_page", "ts", "1"),
            Source::Rollup(table) => (table, "bucket", "n"),
        };
        conditions.push(
            format!("{time_column} >= ? AND {time_column} < ?"),
            [Value::Integer(start), Value::Integer(end)],
        );
        dimension_conditions(&mut conditions, filter, &service_ids, "");
        expression_conditions(connection, &mut conditions, &filter.expr, "")?;
        if let (Source::Raw, Some(text)) = (&source, &filter.text) {
            conditions.push("oglog_contains(message, ?)", [Value::Text(text.clone())]);
        }
        let sql = match (interval, &source) {
            // Summed in key order, no sort; buckets are widened below.
            (Some(_), Source::Rollup(_)) => format!(
                "SELECT bucket, level, 0, SUM(n) FROM {table} {} GROUP BY bucket, level",
                conditions.where_clause()
            ),
            (Some(_), Source::Raw) => format!(
                "SELECT ts, level, 0, 1 FROM {table} {}",
                conditions.where_clause()
            ),
            (None, _) => format!(
                "SELECT 0, level, service_id, {count} FROM {table} {}",
                conditions.where_clause()
            ),
        };
        let mut statement = connection.prepare_cached(&sql).map_err(sql_error)?;
        let mut rows = statement
            .query(params_from_iter(conditions.params.iter()))
            .map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            let instant: i64 = row.get(0).map_err(sql_error)?;
            let bucket = interval.map_or(0, |interval| instant - instant.rem_euclid(interval));
            let level: u8 = row.get(1).map_err(sql_error)?;
            let service_id: i64 = row.get(2).map_err(sql_error)?;
            let n: i64 = row.get(3).map_err(sql_error)?;
            add(bucket, level, service_id, n.max(0) as u64);
        }
    }
    Ok(())
}

/// A page of `query`, each row made by `map` from the columns `ts, id,
/// level, service name, message, attributes` starting at the given column.
fn query_logs<T>(
    connection: &Connection,
    query: &LogQuery,
    map: fn(&rusqlite::Row, usize) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let filter = &query.filter;
    let service_ids = matching_service_ids(connection, filter)?;
    if service_ids.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let mut conditions = Conditions::default();
    if let Some(from) = filter.from {
        conditions.push("l.ts >= ?", [Value::Integer(from)]);
    }
    if let Some(to) = filter.to {
        conditions.push("l.ts < ?", [Value::Integer(to)]);
    }
    dimension_conditions(&mut conditions, filter, &service_ids, "l.");
    expression_conditions(connection, &mut conditions, &filter.expr, "l.")?;
    if let Some(after) = &query.after {
        // Strictly after the key in page order; the first term bounds the
        // index range, the second settles ties on the timestamp by id.
        let (towards, strictly) = match query.order {
            Order::Desc => ("<=", "<"),
            Order::Asc => (">=", ">"),
        };
        conditions.push(
            format!("l.ts {towards} ? AND (l.ts {strictly} ? OR l.id {strictly} ?)"),
            [
                Value::Integer(after.timestamp),
                Value::Integer(after.timestamp),
                Value::Text(after.id.clone()),
            ],
        );
    }
    let direction = match query.order {
        Order::Desc => "DESC",
        Order::Asc => "ASC",
    };
    if let Some(found) = by_id(connection, query, &conditions, direction, map)? {
        return Ok(found);
    }
    if let Some(text) = &filter.text {
        conditions.push("oglog_contains(l.message, ?)", [Value::Text(text.clone())]);
    }
    // Attribute terms that name a value (or only a key) can skip the blocks
    // whose attribute filter says they cannot match: worth it when most
    // blocks are skipped (a trace id), not for a value in every block.
    let probe = facet_blocks::AttributeProbe::of(connection, &filter.expr)?
        .filter(|probe| filter.text.is_some() || probe.selective(connection).unwrap_or(false));
    if filter.text.is_some() || probe.is_some() {
        let also = |block: i64| match &probe {
            Some(probe) => probe
                .may_hold(connection, block)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e))),
            None => Ok(true),
        };
        let found = search_blocks::search(
            connection,
            query,
            filter.text.as_deref(),
            &also,
            "SELECT l.seq, l.ts, l.id, l.level, s.name, l.message, l.attributes
             FROM logs l NOT INDEXED CROSS JOIN services s ON s.id = l.service_id",
            &conditions.sql,
            &conditions.params,
            |row| map(row, 1),
        )
        .map_err(sql_error)?;
        if let Some(found) = found {
            return Ok(found);
        }
    }
    // The page index walks rows in page order and checks level and service
    // (and a cursor's id) in the index; CROSS JOIN keeps `logs` the outer
    // loop, so the walk stops after `offset + limit` matches instead of
    // sorting every match.
    page_rows(
        connection,
        "INDEXED BY logs_page",
        conditions,
        query,
        direction,
        map,
    )
}

/// One page of rows matching `conditions`, in page order, read the way
/// `access` says (an `INDEXED BY`/`NOT INDEXED` clause on `logs`).
fn page_rows<T>(
    connection: &Connection,
    access: &str,
    conditions: Conditions,
    query: &LogQuery,
    direction: &str,
    map: fn(&rusqlite::Row, usize) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let sql = format!(
        "SELECT l.ts, l.id, l.level, s.name, l.message, l.attributes
         FROM logs l {access} CROSS JOIN services s ON s.id = l.service_id
         {}
         ORDER BY l.ts {direction}, l.id {direction}
         LIMIT ? OFFSET ?",
        conditions.where_clause()
    );
    let mut params = conditions.params;
    params.push(Value::Integer(query.limit as i64));
    params.push(Value::Integer(query.offset as i64));
    let mut statement = connection.prepare_cached(&sql).map_err(sql_error)?;
    let rows = statement
        .query_map(params_from_iter(params.iter()), |row| map(row, 0))
        .map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}

/// Calls `each` with (level code, service id, attributes JSON) of every log
/// matching `filter`: all of them through the page index, or (`seq_from`)
/// those from that `seq` on, by rowid (the logs no facet block covers yet).
fn for_each_matching(
    connection: &Connection,
    filter: &LogFilter,
    seq_from: Option<i64>,
    mut each: impl FnMut(u8, i64, Option<&str>),
) -> Result<(), StoreError> {
    let service_ids = matching_service_ids(connection, filter)?;
    if service_ids.as_ref().is_some_and(Vec::is_empty) {
        return Ok(());
    }
    let mut conditions = Conditions::default();
    let (from, to) = filter.bounds();
    conditions.push(
        "ts >= ? AND ts < ?",
        [Value::Integer(from), Value::Integer(to)],
    );
    let source = match seq_from {
        Some(seq) => {
            conditions.push("seq >= ?", [Value::Integer(seq)]);
            "logs NOT INDEXED"
        }
        None => "logs INDEXED BY logs_page",
    };
    dimension_conditions(&mut conditions, filter, &service_ids, "");
    expression_conditions(connection, &mut conditions, &filter.expr, "")?;
    if let Some(text) = &filter.text {
        conditions.push("oglog_contains(message, ?)", [Value::Text(text.clone())]);
    }
    let sql = format!(
        "SELECT level, service_id, attributes FROM {source} {}",
        conditions.where_clause()
    );
    let mut statement = connection.prepare_cached(&sql).map_err(sql_error)?;
    let mut rows = statement
        .query(params_from_iter(conditions.params.iter()))
        .map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let level: u8 = row.get(0).map_err(sql_error)?;
        let service_id: i64 = row.get(1).map_err(sql_error)?;
        let attributes = row
            .get_ref(2)
            .map_err(sql_error)?
            .as_str_or_null()
            .ok()
            .flatten();
        each(level, service_id, attributes);
    }
    Ok(())
}

/// Counts over the matching logs from the facet blocks and the rows after
/// them; `None` when the filter needs what blocks do not hold (the message
/// or the id). Sampled (and scaled) past `EXACT_BELOW` matching logs: the
/// bool says so.
fn block_counts(
    connection: &Connection,
    filter: &LogFilter,
    wanted: &facet_blocks::Wanted,
) -> Result<Option<(facet_blocks::Counts, bool)>, StoreError> {
    // The blocks are read through a memory map while scanning: copying
    // tens of megabytes of blobs through read() was a quarter of a facet's
    // time. Mapped pages count in the RSS only while mapped: unmapped after.
    connection
        .execute_batch(&format!("PRAGMA mmap_size = {SCAN_MMAP_BYTES};"))
        .map_err(sql_error)?;
    let outcome = block_counts_mapped(connection, filter, wanted);
    connection
        .execute_batch("PRAGMA mmap_size = 0;")
        .map_err(sql_error)?;
    outcome
}

/// Address space a facet scan maps (the file beyond it is read as usual).
const SCAN_MMAP_BYTES: u64 = 4 << 30;

fn block_counts_mapped(
    connection: &Connection,
    filter: &LogFilter,
    wanted: &facet_blocks::Wanted,
) -> Result<Option<(facet_blocks::Counts, bool)>, StoreError> {
    // One snapshot for the dictionaries, the blocks and the rows after
    // them, while the builder adds blocks and keys.
    let snapshot = connection.unchecked_transaction().map_err(sql_error)?;
    let connection: &Connection = &snapshot;
    let dictionaries = facet_blocks::dictionaries(connection)?;
    let Some(scan) = facet_blocks::scan(
        connection,
        filter,
        &dictionaries,
        wanted,
        facets::EXACT_BELOW,
    )?
    else {
        return Ok(None);
    };
    let mut counts = scan.counts;
    let approximate = scan.fraction < 1.0;
    counts.scale(scan.fraction);
    // The newest logs, not in a block yet, are read as rows.
    for_each_matching(
        connection,
        filter,
        Some(scan.tail_from),
        |level, service, json| counts.add_row(level, service, json, wanted),
    )?;
    if approximate && filter.countable_by_level_and_service() {
        // Levels and services are exact from the rollups anyway.
        counts.total = 0;
        counts.levels = [0; 5];
        counts.services.clear();
        grouped_counts(connection, filter, None, |_, level, service_id, n| {
            counts.total += n;
            if let Some(slot) = counts.levels.get_mut(level as usize) {
                *slot += n;
            }
            *counts.services.entry(service_id).or_default() += n;
        })?;
    }
    Ok(Some((counts, approximate)))
}

/// Attribute keys of the matching logs with how many logs have each.
fn count_attribute_keys(
    connection: &Connection,
    filter: &LogFilter,
) -> Result<Vec<KeyCount>, StoreError> {
    if let Some((counts, _)) = block_counts(connection, filter, &facet_blocks::Wanted::Nothing)? {
        return Ok(facet_blocks::keys_from(&counts));
    }
    let mut counts: HashMap<String, u64> = HashMap::new();
    for_each_matching(connection, filter, None, |_, _, attributes| {
        if let Some(json) = attributes {
            expr::for_each_attribute(json, |key, _| match counts.get_mut(key.as_ref()) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(key.into_owned(), 1);
                }
            });
        }
    })?;
    let mut keys: Vec<KeyCount> = counts
        .into_iter()
        .map(|(key, count)| KeyCount { key, count })
        .collect();
    facets::sort_key_counts(&mut keys);
    Ok(keys)
}

/// Facets by reading the matching rows (level and service from the rollups
/// when the filter allows).
fn count_facets(connection: &Connection, query: &FacetQuery) -> Result<Facets, StoreError> {
    let filter = &query.filter;
    let only_dimensions = query.fields.as_ref().is_some_and(|fields| {
        fields
            .iter()
            .all(|f| matches!(f, FieldName::Level | FieldName::Text(TextField::Service)))
    });
    // Levels and services alone come from the rollups when they can.
    if !(only_dimensions && filter.countable_by_level_and_service()) {
        let wanted = match &query.fields {
            None => facet_blocks::Wanted::Every,
            Some(fields) => facet_blocks::Wanted::These(
                fields
                    .iter()
                    .filter_map(|field| match field {
                        FieldName::Text(TextField::Attribute(key)) => Some(key.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
        };
        if let Some((counts, approximate)) = block_counts(connection, filter, &wanted)? {
            let names = service_names(connection)?;
            return Ok(facet_blocks::facets_from(
                query,
                counts,
                approximate,
                &names,
            ));
        }
    }
    let keys = match &query.fields {
        None => count_attribute_keys(connection, filter)?,
        Some(_) => Vec::new(),
    };
    let fields = facets::chosen_fields(query, &keys);
    let wanted_keys: HashMap<&str, usize> = fields
        .iter()
        .enumerate()
        .filter_map(|(index, field)| match field {
            FieldName::Text(TextField::Attribute(key)) => Some((key.as_str(), index)),
            _ => None,
        })
        .collect();
    let mut tallies: Vec<Tally> = fields.iter().map(|_| Tally::default()).collect();
    let level_at = fields.iter().position(|f| *f == FieldName::Level);
    let service_at = fields
        .iter()
        .position(|f| *f == FieldName::Text(TextField::Service));
    let names = service_names(connection)?;
    let mut total = 0u64;
    let add_dimensions = |tallies: &mut Vec<Tally>, level: u8, service_id: i64, n: u64| {
        if let (Some(at), Some(level)) = (level_at, Level::from_code(level)) {
            tallies[at].add(level.as_str(), n);
        }
        if let (Some(at), Some(service)) = (service_at, names.get(&service_id)) {
            tallies[at].add(service, n);
        }
    };
    let rollups_count = filter.countable_by_level_and_service();
    if rollups_count {
        grouped_counts(connection, filter, None, |_, level, service_id, n| {
            total += n;
            add_dimensions(&mut tallies, level, service_id, n);
        })?;
    }
    let needs_rows = !rollups_count || !wanted_keys.is_empty();
    if needs_rows && (total > 0 || !rollups_count) {
        for_each_matching(connection, filter, None, |level, service_id, attributes| {
            if !rollups_count {
                total += 1;
                add_dimensions(&mut tallies, level, service_id, 1);
            }
            if let Some(json) = attributes.filter(|_| !wanted_keys.is_empty()) {
                expr::for_each_attribute(json, |key, value| {
                    if let Some(at) = wanted_keys.get(key.as_ref()) {
                        tallies[*at].add(&value, 1);
                    }
                });
            }
        })?;
    }
    Ok(Facets {
        total,
        approximate: false,
        fields: fields
            .into_iter()
            .zip(tallies)
            .map(|(field, tally)| tally.finish(field, query.limit))
            .collect(),
    })
}

/// Ids to look up per statement: far below SQLite's bound-parameter limit.
const IDS_PER_LOOKUP: usize = 500;

/// Which of `ids` are stored with a timestamp in `[from, to]`. The time range
/// keeps the lookup on the page index's leading `ts` column, so it reads the
/// batch's stretch of the index rather than the table.
fn stored_ids(
    connection: &Connection,
    ids: &[String],
    from: Micros,
    to: Micros,
) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::new();
    for chunk in ids.chunks(IDS_PER_LOOKUP) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let sql =
            format!("SELECT id FROM logs WHERE ts >= ? AND ts <= ? AND id IN ({placeholders})");
        let mut params = vec![Value::Integer(from), Value::Integer(to)];
        params.extend(chunk.iter().map(|id| Value::Text(id.clone())));
        let mut statement = connection.prepare_cached(&sql).map_err(sql_error)?;
        let rows = statement
            .query_map(params_from_iter(params.iter()), |row| {
                row.get::<_, String>(0)
            })
            .map_err(sql_error)?;
        for id in rows {
            found.insert(id.map_err(sql_error)?);
        }
    }
    Ok(found)
}

/// A query with `id:X` among its top-level terms reads only the blocks
/// whose id range holds X (there is no index on ids alone: see schema 4).
/// `None`: no such term, or the ranges would not narrow the search.
fn by_id<T>(
    connection: &Connection,
    query: &LogQuery,
    conditions: &Conditions,
    direction: &str,
    map: fn(&rusqlite::Row, usize) -> rusqlite::Result<T>,
) -> Result<Option<Vec<T>>, StoreError> {
    let Some(id) = query
        .filter
        .expr
        .conjuncts()
        .iter()
        .find_map(|term| match term {
            Expr::Is(Predicate::Text {
                field: TextField::Id,
                matcher: Matcher::Exact(id),
            }) => Some(id),
            _ => None,
        })
    else {
        return Ok(None);
    };
    let Some(ranges) = search_blocks::seq_ranges_for_id(connection, id).map_err(sql_error)? else {
        return Ok(None);
    };
    let mut conditions = Conditions {
        sql: conditions.sql.clone(),
        params: conditions.params.clone(),
    };
    conditions.push(
        format!(
            "({})",
            vec!["l.seq BETWEEN ? AND ?"; ranges.len()].join(" OR ")
        ),
        ranges
            .iter()
            .flat_map(|(first, last)| [Value::Integer(*first), Value::Integer(*last)]),
    );
    page_rows(connection, "NOT INDEXED", conditions, query, direction, map).map(Some)
}

/// The same columns as `log_record`, the attributes left as stored.
fn raw_log(row: &rusqlite::Row, ts_column: usize) -> rusqlite::Result<RawLog> {
    let at = |offset: usize| ts_column + offset;
    let level: u8 = row.get(at(2))?;
    Ok(RawLog {
        timestamp: row.get(at(0))?,
        id: row.get(at(1))?,
        level: Level::from_code(level).unwrap_or(Level::Info),
        service: row.get(at(3))?,
        message: row.get(at(4))?,
        attributes_json: row.get(at(5))?,
    })
}

/// A log from the columns `ts, id, level, service name, message,
/// attributes`, from `ts_column` on (the block search reads `seq` first).
fn log_record(row: &rusqlite::Row, ts_column: usize) -> rusqlite::Result<LogRecord> {
    let at = |offset: usize| ts_column + offset;
    let level: u8 = row.get(at(2))?;
    let attributes: Option<String> = row.get(at(5))?;
    Ok(LogRecord {
        timestamp: row.get(at(0))?,
        id: row.get(at(1))?,
        level: Level::from_code(level).unwrap_or(Level::Info),
        service: row.get(at(3))?,
        message: row.get(at(4))?,
        attributes: attributes_from_json(attributes.as_deref()),
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn insert(&self, batches: &[LogBatch]) -> Result<(), StoreError> {
        let writer = Arc::clone(&self.writer);
        let batches = batches.to_vec();
        let written = run_blocking(move || writer.lock().map_err(poisoned)?.insert(&batches)).await;
        match &written {
            Ok(()) => self.disk.write_succeeded(),
            Err(StoreError::DiskFull(_)) => self.disk.write_failed_for_space(),
            Err(_) => {}
        }
        written
    }

    async fn existing_ids(&self, batches: &[LogBatch]) -> Result<HashSet<String>, StoreError> {
        let Some((ids, from, to)) = super::ids_and_range(batches) else {
            return Ok(HashSet::new());
        };
        let ids: Vec<String> = ids.into_iter().map(str::to_string).collect();
        self.read(move |connection| stored_ids(connection, &ids, from, to))
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
        self.read(move |connection| {
            let mut totals: HashMap<(u8, i64), u64> = HashMap::new();
            grouped_counts(connection, &filter, None, |_, level, service_id, n| {
                *totals.entry((level, service_id)).or_default() += n;
            })?;
            if totals.is_empty() {
                return Ok(Vec::new());
            }
            let names = service_names(connection)?;
            Ok(totals
                .into_iter()
                .filter_map(|((level, service_id), count)| {
                    Some(LevelServiceCount {
                        level: Level::from_code(level)?,
                        service: names.get(&service_id)?.clone(),
                        count,
                    })
                })
                .collect())
        })
        .await
    }

    async fn bucket_counts(&self, query: &HistogramQuery) -> Result<Vec<BucketCount>, StoreError> {
        let query = query.clone();
        self.read(move |connection| {
            let mut totals: HashMap<(Micros, u8), u64> = HashMap::new();
            grouped_counts(
                connection,
                &query.filter,
                Some(query.interval),
                |bucket, level, _, n| {
                    *totals.entry((bucket, level)).or_default() += n;
                },
            )?;
            Ok(totals
                .into_iter()
                .filter_map(|((bucket_start, level), count)| {
                    Some(BucketCount {
                        bucket_start,
                        level: Level::from_code(level)?,
                        count,
                    })
                })
                .collect())
        })
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
        run_blocking(move || {
            let mut writer = writer.lock().map_err(poisoned)?;
            let connection = writer
                .connection
                .as_mut()
                .ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
            // Chunks keep each write transaction short, so ingestion's batches
            // are not held up behind one huge delete.
            let mut deleted = 0u64;
            loop {
                let removed = connection
                    .execute(
                        "DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE ts < ?1 LIMIT 20000)",
                        [cutoff],
                    )
                    .map_err(sql_error)?;
                deleted += removed as u64;
                if removed == 0 {
                    break;
                }
            }
            // The cutoff is minute-aligned (age retention aligns it to the
            // hour), so the minute rollup splits exactly at it; a coarser
            // bucket that straddles it is rebuilt from the next finer grain,
            // fine to coarse, so every grain keeps agreeing with the rows.
            let mut rollups = format!(
                "BEGIN; DELETE FROM counts_minute WHERE bucket < {cutoff};"
            );
            for pair in ROLLUPS.windows(2) {
                let [(_, finer), (grain, table)] = pair else {
                    continue;
                };
                let start = cutoff - cutoff.rem_euclid(*grain);
                if start == cutoff {
                    rollups.push_str(&format!("DELETE FROM {table} WHERE bucket < {cutoff};"));
                } else {
                    rollups.push_str(&format!(
                        "DELETE FROM {table} WHERE bucket <= {start};
                         INSERT INTO {table} (bucket, level, service_id, n)
                             SELECT {start}, level, service_id, SUM(n) FROM {finer}
                             WHERE bucket >= {start} AND bucket < {end}
                             GROUP BY level, service_id;",
                        end = start + grain
                    ));
                }
            }
            rollups.push_str("COMMIT;");
            if let Err(error) = connection.execute_batch(&rollups) {
                // Not left open: the writer's next transaction would fail.
                let _ = connection.execute_batch("ROLLBACK");
                return Err(sql_error(error));
            }
            search_blocks::forget_before(connection, cutoff).map_err(sql_error)?;
            facet_blocks::forget_before(connection, cutoff).map_err(sql_error)?;
            Ok(deleted)
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
            connection
                .query_row("SELECT MIN(ts) FROM logs", [], |row| row.get(0))
                .map_err(sql_error)
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
mod tests {
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

    use super::*;

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
        let mut edge = (Source::Raw, MINUTE, MINUTE + 20);
        widen_raw_edge(connection, &mut edge).unwrap();
        assert_eq!(edge, (Source::Rollup("counts_minute"), MINUTE, 2 * MINUTE));
        let mut edge = (Source::Raw, MINUTE, MINUTE + 5);
        widen_raw_edge(connection, &mut edge).unwrap();
        assert_eq!(
            edge,
            (Source::Raw, MINUTE, MINUTE + 5),
            "a log after the edge"
        );
        let mut edge = (Source::Raw, MINUTE + 20, 2 * MINUTE);
        widen_raw_edge(connection, &mut edge).unwrap();
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
            // Back to schema 3, then a redelivered copy of three logs.
            let connection = Connection::open(dir.path().join("oglogstream.db")).unwrap();
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
}
