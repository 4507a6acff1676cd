//! The production store: ClickHouse over its native protocol, through
//! klickhouse. Only this folder knows klickhouse.
//!
//! This file is the store at a glance: [`ClickHouseStore`] answers each
//! [`Store`] and [`AlertRecords`] call by handing it to the file that owns
//! it, each of which calls downward only:
//!
//! - `write.rs`: inserts, and which ids are stored already (retries and
//!   redeliveries never store a log twice);
//! - `read.rs`: pages, stepping through time windows (`windows.rs`, the
//!   first sized by the scope's share of the logs, `shares.rs`);
//! - `counts.rs`: stats, services and the histogram, from the rollups where
//!   they are exact; `grouped.rs`: counts by bucket, level, service and
//!   attribute (LogQL's metric queries, the split histogram); `facets.rs`:
//!   facets and attribute keys;
//! - `retention.rs`, `alert_records.rs`: deleting old logs; alerting's
//!   records;
//! - beneath them: `pool.rs` (connections, readiness, read budgets), which
//!   runs `migrate.rs` on each new server; `client.rs` (one connection's
//!   statements); `rows.rs` (klickhouse rows); `conditions.rs`,
//!   `language.rs` and `sql.rs` (the SQL text: the shared filter, the query
//!   language, literals); `schema.rs` (tables per server version);
//!   `settings.rs`, `dsn.rs`.
//!
//! `check.rs` exposes the SQL for a given server version to the test suite.

mod alert_records;
pub mod check;
mod client;
mod conditions;
mod counts;
mod dsn;
mod facets;
mod grouped;
mod language;
mod migrate;
mod pool;
mod read;
mod retention;
mod rows;
mod schema;
mod settings;
mod shares;
mod sql;
mod windows;
mod write;

pub use settings::{ClickHouseConfig, Options, RawClickHouse};
pub use windows::Stepping;

use super::alert_records::{AlertRecord, AlertRecords, RecordKind};
use super::facets::{FacetQuery, Facets, KeyCount};
use super::filter::{HistogramQuery, LogFilter, LogQuery};
use super::{BucketCount, GroupedCount, GroupedCountQuery, LevelServiceCount, Store, StoreError};
use crate::domain::settings::redact_url;
use crate::domain::time::Micros;
use crate::domain::{LogBatch, LogRecord, TenantId};
use async_trait::async_trait;
use dsn::Dsn;
use pool::Pool;
use shares::TenantShares;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

pub struct ClickHouseStore {
    pool: Arc<Pool>,
    /// Each tenant's share of the logs, for sizing page windows.
    shares: TenantShares,
    /// Prepares the database at start, so `/health` turns green without
    /// waiting for the first request.
    starter: Mutex<Option<JoinHandle<()>>>,
}

impl ClickHouseStore {
    /// Parses the DSN and starts preparing the database in the background;
    /// fails only for a DSN that can never work.
    pub fn open(url: &str) -> Result<ClickHouseStore, StoreError> {
        ClickHouseStore::open_with(url, Options::default())
    }

    pub fn open_with(url: &str, options: Options) -> Result<ClickHouseStore, StoreError> {
        let mut dsn = Dsn::parse(url).map_err(|e| {
            StoreError::Rejected(format!("clickhouse url {}: {e}", redact_url(url)))
        })?;
        secure(&mut dsn, &options)?;
        let pool = Arc::new(Pool::new(dsn, options));
        let starter = tokio::spawn(pool::prepare_until_ready(Arc::clone(&pool)));
        Ok(ClickHouseStore {
            pool,
            shares: TenantShares::default(),
            starter: Mutex::new(Some(starter)),
        })
    }
}

/// The password from `clickhouse.password_file`, and TLS when the DSN says
/// `secure=true` or a CA is given; contradictions are refused, named.
fn secure(dsn: &mut Dsn, options: &Options) -> Result<(), StoreError> {
    if let Some(password) = &options.password {
        if !dsn.password.is_empty() {
            return Err(StoreError::Rejected(
                "clickhouse.password_file: the DSN has a password too; give it one way".into(),
            ));
        }
        dsn.password = password.expose().to_string();
    }
    let wanted = match (dsn.secure, options.tls.is_set()) {
        (Some(false), true) => {
            return Err(StoreError::Rejected(
                "clickhouse.tls_ca asks for TLS but the DSN says secure=false".into(),
            ));
        }
        (secure, ca) => secure == Some(true) || ca,
    };
    if wanted {
        let (config, _) = options
            .tls
            .client_config()
            .map_err(|error| StoreError::Rejected(error.to_string()))?;
        dsn.tls = Some(dsn::Tls::new(
            config,
            options.tls.trust_setting("clickhouse"),
        ));
    }
    Ok(())
}

#[async_trait]
impl Store for ClickHouseStore {
    fn kind(&self) -> &'static str {
        "clickhouse"
    }

    async fn insert(&self, batches: &[LogBatch]) -> Result<(), StoreError> {
        write::insert(&self.pool, batches).await
    }

    /// Two: while the server writes one batch's parts, the process role
    /// builds the next insert block, and the server may write both at once.
    /// One at a time, each side waited for the other.
    fn writes_at_once(&self) -> usize {
        2
    }

    async fn existing_ids(&self, batches: &[LogBatch]) -> Result<HashSet<String>, StoreError> {
        write::existing_ids(&self.pool, batches).await
    }

    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        read::logs(&self.pool, &self.shares, query).await
    }

    async fn facets(&self, query: &FacetQuery) -> Result<Facets, StoreError> {
        facets::facets(&self.pool, query).await
    }

    async fn attribute_keys(&self, filter: &LogFilter) -> Result<Vec<KeyCount>, StoreError> {
        facets::attribute_keys(&self.pool, filter).await
    }

    async fn level_service_counts(
        &self,
        filter: &LogFilter,
    ) -> Result<Vec<LevelServiceCount>, StoreError> {
        counts::level_service_counts(&self.pool, filter).await
    }

    async fn bucket_counts(&self, query: &HistogramQuery) -> Result<Vec<BucketCount>, StoreError> {
        counts::bucket_counts(&self.pool, query).await
    }

    async fn grouped_counts(
        &self,
        query: &GroupedCountQuery,
    ) -> Result<Vec<GroupedCount>, StoreError> {
        grouped::grouped_counts(&self.pool, query).await
    }

    async fn delete_older_than(&self, cutoff: Micros) -> Result<u64, StoreError> {
        retention::delete_older_than(&self.pool, cutoff).await
    }

    async fn delete_tenant_older_than(
        &self,
        tenant: &TenantId,
        cutoff: Micros,
    ) -> Result<u64, StoreError> {
        retention::delete_tenant_older_than(&self.pool, tenant, cutoff).await
    }

    async fn delete_matching(&self, filter: &LogFilter) -> Result<u64, StoreError> {
        retention::delete_matching(&self.pool, filter).await
    }

    async fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        retention::tenants(&self.pool).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.pool.check().await
    }

    async fn close(&self) {
        self.pool.close();
        let starter = self.starter.lock().ok().and_then(|mut s| s.take());
        if let Some(starter) = starter {
            starter.abort();
            let _ = starter.await;
        }
    }
}

#[async_trait]
impl AlertRecords for ClickHouseStore {
    async fn alert_records(
        &self,
        kind: RecordKind,
        limit: Option<usize>,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        alert_records::alert_records(&self.pool, kind, limit).await
    }

    async fn put_alert_records(&self, records: &[AlertRecord]) -> Result<(), StoreError> {
        alert_records::put_alert_records(&self.pool, records).await
    }

    async fn prune_alert_records(
        &self,
        kind: RecordKind,
        cutoff: Micros,
    ) -> Result<(), StoreError> {
        alert_records::prune_alert_records(&self.pool, kind, cutoff).await
    }
}
