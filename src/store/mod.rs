//! The store seam: process writes batches, query reads them back.
//!
//! Two implementations: `sqlite` (embedded, the default) and `clickhouse`
//! (production). Role modules see only [`Store`]; only `store/sqlite.rs` knows
//! rusqlite and only `store/clickhouse.rs` knows klickhouse.

pub mod clickhouse;
pub mod facets;
pub mod filter;
pub mod search_blocks;
pub mod sqlite;

pub use facets::{FacetQuery, Facets, KeyCount};
pub use filter::{HistogramQuery, LogFilter, LogKey, LogQuery, Order};

use crate::domain::time::Micros;
use crate::domain::{Level, LogBatch, LogRecord};
use async_trait::async_trait;

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
///   the same batches without creating partial duplicates. The embedded
///   store skips a log whose id it already holds (a redelivered batch does
///   not show twice, in rows or counts).
/// - reads see every insert that returned `Ok` before the read started.
/// - filters mean the same thing everywhere: see [`LogFilter`].
#[async_trait]
pub trait Store: Send + Sync {
    /// A short name for health output and logs: `sqlite`, `clickhouse`.
    fn kind(&self) -> &'static str;

    async fn insert(&self, batches: &[LogBatch]) -> Result<(), StoreError>;

    /// A page of logs in page order: timestamp, then id compared as a
    /// string (`desc` reverses both); after `query.after` when given.
    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError>;

    /// The most frequent values of fields among the matching logs. Counts
    /// are exact below `facets::EXACT_BELOW` matching logs; above, a store
    /// may count a sample and scale (`approximate`).
    /// (Both stores implement it; the default serves test doubles.)
    async fn facets(&self, _query: &FacetQuery) -> Result<Facets, StoreError> {
        Err(StoreError::Unavailable(format!(
            "the {} store cannot count facets",
            self.kind()
        )))
    }

    /// Every attribute key present in the matching logs with the number of
    /// logs having it, most frequent first (ties by key).
    async fn attribute_keys(&self, _filter: &LogFilter) -> Result<Vec<KeyCount>, StoreError> {
        Err(StoreError::Unavailable(format!(
            "the {} store cannot list attribute keys",
            self.kind()
        )))
    }

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

    /// Stored logs that indexes built in the background do not cover yet
    /// (answers are complete meanwhile, only slower), where the store has
    /// such indexes (for `/metrics`).
    fn index_backlog(&self) -> Option<u64> {
        None
    }

    /// Cheap readiness check for `/health`.
    async fn check(&self) -> Result<(), StoreError>;

    /// Flushes and releases resources; later calls may fail.
    async fn close(&self);
}
