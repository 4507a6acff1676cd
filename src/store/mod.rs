//! The store seam: process writes batches, query reads them back.
//!
//! Two implementations: `sqlite` (embedded, the default) and `clickhouse`
//! (production). Role modules see only [`Store`]; only `store/sqlite.rs` (and
//! `store/sqlite/`, `store/search_blocks.rs`) knows rusqlite and only
//! `store/clickhouse/` knows klickhouse.

pub mod alert_records;
pub mod clickhouse;
pub mod disk;
pub mod facets;
pub mod filter;
pub mod grouped;
pub mod search_blocks;
pub mod settings;
pub mod sqlite;

use crate::domain::time::Micros;
use crate::domain::{Level, LogBatch, LogRecord, TenantId};
use async_trait::async_trait;
pub use facets::{FacetQuery, Facets, KeyCount};
pub use filter::{HistogramQuery, LogFilter, LogKey, LogQuery, Order};
pub use grouped::{Dimension, GroupedCount, GroupedCountQuery};
use std::collections::HashSet;
use std::sync::Arc;

/// A stored log with its attributes as JSON text (see `Store::raw_logs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawLog {
    pub timestamp: Micros,
    pub id: String,
    pub level: Level,
    pub service: String,
    pub message: String,
    /// A JSON object of strings; `None` when there are no attributes.
    pub attributes_json: Option<String>,
    pub tenant: TenantId,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

impl RawLog {
    pub fn key(&self) -> LogKey {
        LogKey {
            timestamp: self.timestamp,
            id: self.id.clone(),
        }
    }

    /// The attributes as a JSON object (`{}` for none).
    pub fn attributes_json(&self) -> &str {
        self.attributes_json.as_deref().unwrap_or("{}")
    }

    /// The `/api/logs` row, exactly as `LogRecord` serialises it (with its
    /// tenant when `with_tenant`, as `Row::with_tenant` writes it).
    pub fn write_json(
        &self,
        out: &mut impl std::io::Write,
        with_tenant: bool,
    ) -> std::io::Result<()> {
        let mut timestamp = String::with_capacity(27);
        crate::domain::time::write_rfc3339(&mut timestamp, self.timestamp);
        out.write_all(b"{\"id\":")?;
        serde_json::to_writer(&mut *out, &self.id)?;
        out.write_all(b",\"timestamp\":\"")?;
        out.write_all(timestamp.as_bytes())?;
        out.write_all(b"\",\"level\":\"")?;
        out.write_all(self.level.as_str().as_bytes())?;
        out.write_all(b"\",\"message\":")?;
        serde_json::to_writer(&mut *out, &self.message)?;
        out.write_all(b",\"service\":")?;
        serde_json::to_writer(&mut *out, &self.service)?;
        out.write_all(b",\"attributes\":")?;
        out.write_all(self.attributes_json().as_bytes())?;
        if let Some(trace_id) = &self.trace_id {
            out.write_all(b",\"trace_id\":")?;
            serde_json::to_writer(&mut *out, trace_id)?;
        }
        if let Some(span_id) = &self.span_id {
            out.write_all(b",\"span_id\":")?;
            serde_json::to_writer(&mut *out, span_id)?;
        }
        if with_tenant {
            out.write_all(b",\"tenant\":")?;
            serde_json::to_writer(&mut *out, self.tenant.as_str())?;
        }
        out.write_all(b"}")
    }
}

impl From<LogRecord> for RawLog {
    fn from(record: LogRecord) -> RawLog {
        RawLog {
            attributes_json: crate::domain::log::attributes_to_json(&record.attributes),
            timestamp: record.timestamp,
            id: record.id,
            level: record.level,
            service: record.service,
            message: record.message,
            tenant: record.tenant,
            trace_id: record.trace_id,
            span_id: record.span_id,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or is not ready; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store's disk has no room for the write; retrying once space is
    /// freed will work.
    #[error("the store's disk is full: {0}")]
    DiskFull(String),
    /// The store refused this data; retrying the same batch will not help.
    #[error("store rejected the batch: {0}")]
    Rejected(String),
    #[error("store error: {0}")]
    Internal(String),
    /// The read asks more than its reader's limits allow (a tenant's
    /// `max_query_range`); `field` names the limit.
    #[error("{message}")]
    OverLimit { field: String, message: String },
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

impl BucketCount {
    /// Histogram cells from counts that may name one (bucket, level) more
    /// than once (a store sums several sources): added up, empty cells left
    /// out, ordered by bucket start, then level.
    pub fn summed(counts: impl IntoIterator<Item = (Micros, Level, u64)>) -> Vec<BucketCount> {
        let mut totals: std::collections::BTreeMap<(Micros, u8), u64> = Default::default();
        for (bucket_start, level, count) in counts {
            *totals.entry((bucket_start, level.code())).or_default() += count;
        }
        totals
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .filter_map(|((bucket_start, code), count)| {
                Some(BucketCount {
                    bucket_start,
                    level: Level::from_code(code)?,
                    count,
                })
            })
            .collect()
    }
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

    /// How many `insert` calls the batcher makes at once. One by default:
    /// a store that can do nothing with a second call while the first runs.
    fn writes_at_once(&self) -> usize {
        1
    }

    /// Which ids of these batches' logs the store already holds. The batcher
    /// asks before writing a batch the bus delivers again (a processor died
    /// between its insert and its ack) and writes only the rest, so a
    /// redelivery never stores a log twice. A log counts as stored when a
    /// row with its id exists within the batches' time range (stores bound
    /// the lookup by it; a log's id and timestamp never change).
    async fn existing_ids(&self, batches: &[LogBatch]) -> Result<HashSet<String>, StoreError>;

    /// A page of logs in page order: timestamp, then id compared as a
    /// string (`desc` reverses both); after `query.after` when given.
    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError>;

    /// The same page as `logs`, each log's attributes left as the JSON the
    /// store keeps: an export streams millions of rows, and parsing each
    /// one's attributes into a map only to write them out again was most
    /// of its time. Stores that keep attributes otherwise need not override.
    async fn raw_logs(&self, query: &LogQuery) -> Result<Vec<RawLog>, StoreError> {
        Ok(self
            .logs(query)
            .await?
            .into_iter()
            .map(RawLog::from)
            .collect())
    }

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

    /// Counts per time bucket and per level, service and attribute value as
    /// asked, counted in the store: see [`grouped`] for the contract.
    /// (Both stores implement it; the default serves test doubles.)
    async fn grouped_counts(
        &self,
        _query: &GroupedCountQuery,
    ) -> Result<Vec<GroupedCount>, StoreError> {
        Err(StoreError::Unavailable(format!(
            "the {} store cannot count by group",
            self.kind()
        )))
    }

    /// Deletes logs (and rollup rows) older than `cutoff`, which callers align
    /// to the minute (age retention to the hour) so rollups and raw rows stay
    /// consistent. Returns the number of logs deleted, where known.
    async fn delete_older_than(&self, cutoff: Micros) -> Result<u64, StoreError>;

    /// `delete_older_than` for one tenant's logs and rollup counts (a
    /// tenant's own `retention`). (Both stores implement it; the default
    /// serves test doubles.)
    async fn delete_tenant_older_than(
        &self,
        tenant: &TenantId,
        _cutoff: Micros,
    ) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable(format!(
            "the {} store cannot delete tenant {tenant}'s logs alone",
            self.kind()
        )))
    }

    /// Deletes every log `filter` matches, wherever it sits in time, and
    /// keeps every derived structure (rollups, facet and trace indexes)
    /// agreeing with the rows that are left: retention rules (a tenant's
    /// scope, `to` the rule's cutoff, `expr` the rule and none before it).
    /// Returns the number of logs deleted. (Both stores implement it; the
    /// default serves test doubles.)
    async fn delete_matching(&self, _filter: &LogFilter) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable(format!(
            "the {} store cannot delete by query",
            self.kind()
        )))
    }

    /// Every tenant that has logs stored (or had: a dictionary may keep a
    /// name its logs left).
    async fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        Ok(vec![TenantId::default()])
    }

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

    /// The watch over the free space of the store's local disk, where the
    /// store writes to one (the embedded store): ingest asks it before
    /// acknowledging, `/health` and `/metrics` show it.
    fn disk_watch(&self) -> Option<Arc<disk::DiskWatch>> {
        None
    }

    /// Bytes the stored logs use, where the store can tell cheaply; what
    /// `storage.max_bytes` bounds. (Not the file size: SQLite reuses the
    /// pages a deletion frees without shrinking its file.)
    async fn used_bytes(&self) -> Option<u64> {
        None
    }

    /// The timestamp of the oldest stored log, if any.
    async fn oldest_timestamp(&self) -> Result<Option<Micros>, StoreError> {
        Ok(None)
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

/// [`ids_and_range`] for each tenant of the batches: stores keyed by tenant
/// first look each tenant's ids up in its own range.
pub fn ids_and_range_by_tenant(
    batches: &[LogBatch],
) -> Vec<(TenantId, Vec<String>, Micros, Micros)> {
    let mut by_tenant: std::collections::BTreeMap<&TenantId, (Vec<String>, Micros, Micros)> =
        Default::default();
    for record in batches.iter().flat_map(|batch| batch.iter()) {
        let entry = by_tenant
            .entry(&record.tenant)
            .or_insert_with(|| (Vec::new(), record.timestamp, record.timestamp));
        entry.0.push(record.id.clone());
        entry.1 = entry.1.min(record.timestamp);
        entry.2 = entry.2.max(record.timestamp);
    }
    by_tenant
        .into_iter()
        .map(|(tenant, (ids, from, to))| (tenant.clone(), ids, from, to))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_counts_are_summed_sorted_and_never_empty() {
        let cells = BucketCount::summed([
            (60, Level::Error, 2),
            (0, Level::Info, 0),
            (60, Level::Error, 3),
            (0, Level::Warn, 1),
        ]);
        assert_eq!(
            cells,
            [
                BucketCount {
                    bucket_start: 0,
                    level: Level::Warn,
                    count: 1
                },
                BucketCount {
                    bucket_start: 60,
                    level: Level::Error,
                    count: 5
                },
            ]
        );
    }

    #[test]
    fn raw_rows_write_what_records_serialise() {
        for attributes in [
            Default::default(),
            [
                ("k\"ey".to_string(), "v\\al\u{0}ue\n".to_string()),
                ("region".into(), "日本".into()),
            ]
            .into(),
        ] {
            let record = LogRecord {
                id: "id-\"1".into(),
                timestamp: 1_735_689_600_000_001,
                level: Level::Fatal,
                service: "svc\t".into(),
                message: "line\none \u{1} é".into(),
                attributes,
                ..Default::default()
            };
            let mut written = Vec::new();
            RawLog::from(record.clone())
                .write_json(&mut written, false)
                .unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&record).unwrap()
            );
        }
    }
}
