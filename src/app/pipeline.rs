//! The process role's tasks: the batcher (bus to store), retention, and the
//! storing of a previous stop's spill; and how they stop, saying what could
//! not be stored.

use crate::bus::Bus;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::process::dead_letter::DeadLetterFile;
use crate::process::retention::Retention;
use crate::process::spill::{self, SpillFile};
use crate::process::{Batcher, Drained};
use crate::store::Store;
use crate::tenants::TenantLimiter;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long after the stop's deadline a batcher has to write its spill.
const SPILL_GRACE: Duration = Duration::from_secs(10);

/// The process role's running tasks (none of them in other roles).
pub struct Pipeline {
    batcher: Option<JoinHandle<anyhow::Result<Drained>>>,
    /// Tells the batcher the stop's deadline.
    batcher_stop: watch::Sender<Option<Instant>>,
    retention: Option<JoinHandle<()>>,
    spill_recovery: Option<JoinHandle<()>>,
}

/// Starts the process role's tasks when this process runs it.
pub fn start_pipeline(
    config: &Config,
    bus: &Arc<dyn Bus>,
    store: Option<&Arc<dyn Store>>,
    dead_letters: DeadLetterFile,
    metrics: &Arc<Metrics>,
    tenant_limits: Option<&Arc<TenantLimiter>>,
) -> Pipeline {
    let (batcher_stop, batcher_stopped) = watch::channel(None);
    let store = match store {
        Some(store) if config.roles.process => store,
        _ => {
            return Pipeline {
                batcher: None,
                batcher_stop,
                retention: None,
                spill_recovery: None,
            };
        }
    };
    let retention = (config.retention_days.is_some()
        || config.storage.max_bytes.is_some()
        || tenant_limits.is_some()
        || !config.retention_rules.is_empty())
    .then(|| {
        tokio::spawn(
            Retention {
                store: Arc::clone(store),
                metrics: Arc::clone(metrics),
                max_age_days: config.retention_days,
                max_bytes: config.storage.max_bytes,
                tenant_limits: tenant_limits.cloned(),
                rules: config.retention_rules.clone(),
            }
            .run(),
        )
    });
    // An in-memory queue loses what it holds with the process: what a stop
    // cannot store goes to the spill file, stored first at the next start.
    let spill_file = || SpillFile::new(&config.data_dir, config.ingest.queue_max_bytes);
    let spill = (!bus.durable()).then(spill_file);
    if let Some(spill) = &spill
        && let Err(error) = spill.reserve_room()
    {
        tracing::warn!(%error, bytes = config.ingest.queue_max_bytes, "cannot reserve room for a spill file: a stop on a full disk may not be able to keep what it could not store");
    }
    let spill_recovery = spill
        .is_some()
        .then(|| tokio::spawn(spill::store_spilled(spill_file(), Arc::clone(store))));
    let batcher = tokio::spawn(
        Batcher {
            bus: Arc::clone(bus),
            store: Arc::clone(store),
            config: config.process.clone(),
            dead_letters,
            metrics: Arc::clone(metrics),
            spill,
            stop: batcher_stopped,
        }
        .run(),
    );
    Pipeline {
        batcher: Some(batcher),
        batcher_stop,
        retention,
        spill_recovery,
    }
}

impl Pipeline {
    /// From now on the batcher gives up on a full disk at once, and on
    /// anything else at `deadline`: what it cannot store is spilled.
    pub fn stopping(&self, deadline: Instant) {
        let _ = self.batcher_stop.send(Some(deadline));
    }

    /// Waits for the batcher to drain (the bus is closed by now) and stops
    /// the rest; what could not be stored, spilled or handed back.
    pub async fn stop(self, deadline: Instant, bus: &Arc<dyn Bus>) -> Drained {
        let mut unstored = Drained::default();
        if let Some(batcher) = self.batcher {
            // Past the deadline the batcher spills what is left: give it time
            // to write that out.
            match tokio::time::timeout_at(deadline + SPILL_GRACE, batcher).await {
                Ok(Ok(Ok(drained))) => unstored = drained,
                Ok(Ok(Err(error))) => tracing::error!(%error, "batcher failed"),
                Ok(Err(error)) => tracing::error!(%error, "batcher task failed"),
                Err(_) => {
                    unstored.lost = bus.pending().unwrap_or(0);
                    tracing::error!(
                        pending = unstored.lost,
                        "shutdown timeout reached before every batch was stored or spilled"
                    );
                }
            }
        }
        for task in [self.retention, self.spill_recovery].into_iter().flatten() {
            task.abort();
        }
        unstored
    }
}

/// The end of a stop, as the exit code sees it: an error when acknowledged
/// logs were spilled or lost, so the process exits non-zero and says why.
pub fn outcome(config: &Config, unstored: Drained) -> anyhow::Result<()> {
    if unstored.returned_to_bus > 0 {
        tracing::warn!(
            logs = unstored.returned_to_bus,
            "stopped with logs the store could not take: the stream keeps them for the next process instance"
        );
    }
    if unstored.spilled == 0 && unstored.lost == 0 {
        return Ok(());
    }
    let spill_file = config.data_dir.join(spill::FILE_NAME);
    let message = match unstored.lost {
        0 => format!(
            "{} acknowledged logs could not be stored before the stop: they are in {}, which the next start stores first",
            unstored.spilled,
            spill_file.display()
        ),
        lost => format!(
            "{lost} acknowledged logs were lost: neither the store nor the spill file {} could take them ({} others spilled)",
            spill_file.display(),
            unstored.spilled
        ),
    };
    Err(anyhow::anyhow!(message))
}
