//! The first build steps: the store this process's roles need, then the bus
//! (an in-memory one asks that store's disk before taking a batch).

use crate::bus::Bus;
use crate::bus::memory::MemoryBus;
use crate::bus::nats::{NatsBus, NatsSettings};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::alert_records::AlertRecords;
use crate::store::clickhouse::{self, ClickHouseStore};
use crate::store::disk::DiskWatch;
use crate::store::sqlite::{SqliteOptions, SqliteStore};
use anyhow::Context;
use std::sync::Arc;

/// The store and, beside it, its small records (alerting's and the saved
/// views, kept in the same store).
pub struct Stores {
    pub logs: Arc<dyn Store>,
    pub alert_records: Arc<dyn AlertRecords>,
}

/// The store of the roles that read or write logs; `None` for an
/// ingest-only process, which never touches one.
pub fn build_stores(config: &Config) -> anyhow::Result<Option<Stores>> {
    if !(config.roles.process || config.roles.query) {
        return Ok(None);
    }
    let stores = match &config.clickhouse_url {
        None => {
            let options = SqliteOptions {
                min_free_bytes: config.storage.min_free_bytes,
            };
            let store = Arc::new(
                SqliteStore::open_with(&config.data_dir, options)
                    .context("opening the embedded store")?,
            );
            Stores {
                logs: store.clone(),
                alert_records: store,
            }
        }
        Some(url) => {
            let options = clickhouse::Options {
                cluster: config.clickhouse.cluster.clone(),
                replicated: config.clickhouse.replicated,
                tls: config.clickhouse.tls.clone(),
                password: config.clickhouse.password.clone(),
                // The server stops a read at the same bound the query
                // endpoints answer 503 at.
                read_timeout: config.query.timeout,
                ..clickhouse::Options::default()
            };
            let store = Arc::new(
                ClickHouseStore::open_with(url, options).context("opening the ClickHouse store")?,
            );
            Stores {
                logs: store.clone(),
                alert_records: store,
            }
        }
    };
    Ok(Some(stores))
}

/// In one process, a bounded in-memory queue; split, NATS JetStream.
pub async fn build_bus(
    config: &Config,
    store: Option<&Arc<dyn Store>>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Arc<dyn Bus>> {
    let bus: Arc<dyn Bus> = match &config.nats_url {
        None => {
            let mut bus = MemoryBus::new(config.ingest.queue_capacity, config.nats.lease_ttl)
                .with_max_bytes(config.ingest.queue_max_bytes);
            // The queue's logs go to this process's store: it takes no more
            // than that store's disk has room for.
            if let Some(watch) = store.and_then(|store| store.disk_watch()) {
                bus = bus.with_admission(Arc::new(DiskAdmission(watch)));
            }
            Arc::new(bus)
        }
        Some(_) => Arc::new(
            NatsBus::connect(NatsSettings {
                config: config.nats.clone(),
                live: config.roles.query,
                client_name: format!("oglogstream {}", config.roles),
                metrics: Arc::clone(metrics),
            })
            .await
            .context("starting the NATS bus")?,
        ),
    };
    Ok(bus)
}

/// The embedded store's disk as the in-memory queue's admission.
struct DiskAdmission(Arc<DiskWatch>);

impl crate::bus::Admission for DiskAdmission {
    fn admit(&self, queued: u64, incoming: u64) -> Result<(), String> {
        self.0
            .admit(queued, incoming)
            .map_err(|full| full.to_string())
    }
}
