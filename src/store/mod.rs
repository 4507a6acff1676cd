//! The store seam: process writes batches, query reads them back.
//!
//! Two implementations: `sqlite` (embedded, the default) and `clickhouse`
//! (production). Role modules see only [`Store`]; only `store/sqlite.rs` knows
//! rusqlite and only `store/clickhouse.rs` knows klickhouse.

pub mod clickhouse;
pub mod filter;
pub mod search_blocks;
pub mod sqlite;

pub use filter::{HistogramQuery, LogFilter, LogQuery, Order};

use crate::domain::time::Micros;
use crate::domain::{Level, LogBatch, LogRecord};
use async_trait::async_trait;
use std::collections::HashSet;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or is not ready; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store refused this data; retrying the same batch will not help.
    #[error("store rejected the batch: {0}")]
    Rejected(String),
    #[error("store error: {0}")]
    Internal(String),
}

/// One group of a count query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelServiceCount {
    pub level: Level,
    pub service: String,
    pub count: u64,
}

/// One non-empty cell of a histogram: the bucket's start and a level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketCount {
    pub bucket_start: Micros,
    pub level: Level,
    pub count: u64,
}

/// Contract shared by both stores (the store test suite runs against each):
/// - `insert` is all-or-nothing per call; a failed call may be retried with
///   the same batches without creating partial duplicates.
/// - reads see every insert that returned `Ok` before the read started.
/// - filters mean the same thing everywhere: see [`LogFilter`].
#[async_trait]
pub trait Store: Send + Sync {
    /// A short name for health output and logs: `sqlite`, `clickhouse`.
    fn kind(&self) -> &'static str;

    async fn insert(&self, batches: &[LogBatch]) -> Result<(), StoreError>;

    /// Which ids of these batches' logs the store already holds. The batcher
    /// asks before writing a batch the bus delivers again (a processor died
    /// between its insert and its ack) and writes only the rest, so a
    /// redelivery never stores a log twice. A log counts as stored when a
    /// row with its id exists within the batches' time range (stores bound
    /// the lookup by it; a log's id and timestamp never change).
    async fn existing_ids(&self, batches: &[LogBatch]) -> Result<HashSet<String>, StoreError>;

    /// A page of logs, ordered by timestamp (then arrival) as asked.
    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError>;

    /// Counts grouped by level and service: the source of stats and services.
    async fn level_service_counts(
        &self,
        filter: &LogFilter,
    ) -> Result<Vec<LevelServiceCount>, StoreError>;

    /// Counts per bucket and level; empty buckets are omitted.
    async fn bucket_counts(&self, query: &HistogramQuery) -> Result<Vec<BucketCount>, StoreError>;

    /// Deletes logs (and rollup rows) older than `cutoff`, which callers align
    /// to the hour so rollups and raw rows stay consistent. Returns the number
    /// of logs deleted, where known.
    async fn delete_older_than(&self, cutoff: Micros) -> Result<u64, StoreError>;

    /// Size on disk, where the store can tell cheaply (for `/metrics`).
    fn size_bytes(&self) -> Option<u64> {
        None
    }

    /// Cheap readiness check for `/health`.
    async fn check(&self) -> Result<(), StoreError>;

    /// Flushes and releases resources; later calls may fail.
    async fn close(&self);
}

/// The ids and the time range `[from, to]` (inclusive) of these batches'
/// logs, for [`Store::existing_ids`]; `None` when there are none.
pub fn ids_and_range(batches: &[LogBatch]) -> Option<(Vec<&str>, Micros, Micros)> {
    let mut records = batches.iter().flat_map(|batch| batch.iter());
    let first = records.next()?;
    let (mut from, mut to) = (first.timestamp, first.timestamp);
    let mut ids = vec![first.id.as_str()];
    for record in records {
        from = from.min(record.timestamp);
        to = to.max(record.timestamp);
        ids.push(record.id.as_str());
    }
    Some((ids, from, to))
}
