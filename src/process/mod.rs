//! The process role: takes deliveries from the bus work queue, groups them into
//! batches (flushed at `batch_size` logs or after `flush_timeout`, whichever
//! comes first), writes them to the store with retries, and acknowledges them
//! only once they are stored or safely in the dead-letter file.
//!
//! A stop never drops what was acknowledged: from the moment the process
//! stops, a batch the store cannot take (its disk is full, it is away, or
//! the stop's deadline has come) goes to the spill file, which the next
//! start stores first (`spill.rs`); on a durable bus it is handed back to the
//! broker instead, which keeps it for the next processor.

pub mod dead_letter;
pub mod retention;
mod settings;
pub mod spill;

pub use settings::{ProcessConfig, RawProcess, RawRetention};

use crate::bus::{Bus, Delivery, MaybeStored};
use crate::domain::{LogBatch, LogRecord};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use dead_letter::DeadLetterFile;
use futures_util::FutureExt;
use spill::SpillFile;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};

/// How often an open batch looks for more deliveries (see `Batcher::run`).
const COLLECT_TICK: Duration = Duration::from_millis(5);

pub struct Batcher {
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn Store>,
    pub config: ProcessConfig,
    pub dead_letters: DeadLetterFile,
    pub metrics: Arc<Metrics>,
    /// Where a stop puts what it cannot store; `None` on a durable bus,
    /// whose broker keeps it.
    pub spill: Option<SpillFile>,
    /// The stop's deadline, once the process is stopping: from then on a
    /// batch the store's full disk refuses is given up at once, and at the
    /// deadline whatever is not stored yet is (see [`Batcher::give_up`]).
    pub stop: watch::Receiver<Option<Instant>>,
}

/// What a batcher could not store before it ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// In the spill file, for the next start to store.
    pub spilled: u64,
    /// Handed back to a durable bus, which delivers them again.
    pub returned_to_bus: u64,
    /// Neither stored nor spilled: the spill file could not be written.
    pub lost: u64,
}

impl Batcher {
    /// Runs until the bus is closed and every delivery taken is settled.
    pub async fn run(self) -> anyhow::Result<Drained> {
        let batcher = Arc::new(self);
        let mut queue = batcher.bus.work_queue().await?;
        // The next batch is collected while one is written, and up to this
        // many are written at once (see `Store::writes_at_once`). Stalling
        // after the first write (a test's kill point) writes one at a time,
        // so exactly one batch is stored unacknowledged when the test counts.
        let writes_at_once = if batcher.config.stall_after_store {
            1
        } else {
            batcher.store.writes_at_once().max(1)
        };
        let mut writing: JoinSet<Option<Vec<Delivery>>> = JoinSet::new();
        let settling = Arc::new(std::sync::Mutex::new(JoinSet::new()));
        let mut closed = false;
        let mut drained = Drained::default();
        // Once a stop has given up on the store, every later delivery goes
        // the same way without trying it again.
        let mut giving_up = false;
        while !closed {
            reap(&settling);
            let Some(first) = queue.next().await else {
                break;
            };
            let mut count = first.batch.len();
            let mut pending = vec![first];
            let deadline = Instant::now() + batcher.config.flush_timeout;
            while count < batcher.config.batch_size {
                // Take what is already queued without parking on the queue:
                // parked, every single-log publish had to wake this task
                // across threads (an eventfd write and a context switch per
                // log, ~10% of the server's CPU at 50k logs/s). Polling every
                // COLLECT_TICK instead costs at most 1/COLLECT_TICK wake-ups.
                // `unconstrained`: tokio's cooperative budget would otherwise
                // answer "pending" after 128 receives in one poll, which this
                // loop would take for an empty queue (it capped single-log
                // storage at ~25k logs/s).
                match tokio::task::unconstrained(queue.next()).now_or_never() {
                    Some(Some(delivery)) => {
                        count += delivery.batch.len();
                        pending.push(delivery);
                    }
                    Some(None) => {
                        closed = true;
                        break;
                    }
                    None => {
                        let now = Instant::now();
                        if now >= deadline {
                            break;
                        }
                        sleep_until((now + COLLECT_TICK).min(deadline)).await;
                    }
                }
            }
            while writing.len() >= writes_at_once {
                if let Some(unstored) = written(writing.join_next().await) {
                    giving_up = true;
                    batcher.give_up(unstored, &mut drained).await;
                }
            }
            if giving_up {
                batcher.give_up(pending, &mut drained).await;
                continue;
            }
            let (writer, settling) = (Arc::clone(&batcher), Arc::clone(&settling));
            writing.spawn(async move { writer.flush(pending, &settling).await });
        }
        while !writing.is_empty() {
            if let Some(unstored) = written(writing.join_next().await) {
                batcher.give_up(unstored, &mut drained).await;
            }
        }
        // Every ack reaches the bus before the batcher reports drained, so a
        // graceful stop leaves nothing to redeliver.
        let mut settling = std::mem::take(&mut *lock(&settling));
        while settling.join_next().await.is_some() {}
        if drained == Drained::default() {
            tracing::info!("batcher drained");
        } else {
            tracing::warn!(
                spilled = drained.spilled,
                returned_to_bus = drained.returned_to_bus,
                lost = drained.lost,
                "batcher stopped before storing everything"
            );
        }
        Ok(drained)
    }

    /// Deliveries the store cannot take before the stop: into the spill
    /// file (then acknowledged: they are safe), or back to a durable bus.
    async fn give_up(&self, deliveries: Vec<Delivery>, drained: &mut Drained) {
        let records: Vec<&LogRecord> = deliveries.iter().flat_map(|d| d.batch.iter()).collect();
        let count = records.len() as u64;
        let Some(spill) = &self.spill else {
            drained.returned_to_bus += count;
            settle(deliveries, false).await;
            return;
        };
        match spill.write(&records) {
            Ok(written) => {
                drained.spilled += written;
                Metrics::add(&self.metrics.spilled_logs, written);
            }
            Err(error) => {
                tracing::error!(
                    %error,
                    logs = count,
                    file = %spill.path().display(),
                    "acknowledged logs lost: neither the store nor the spill file could take them"
                );
                drained.lost += count;
            }
        }
        settle(deliveries, true).await;
    }

    /// Waits `pause`, or less if the process starts stopping meanwhile (a
    /// full disk then gives up at once rather than after the pause).
    async fn pause(&self, pause: Duration) {
        if self.stopping() {
            sleep(pause).await;
            return;
        }
        let mut stop = self.stop.clone();
        let stopping = async move {
            if stop.wait_for(Option::is_some).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = sleep(pause) => {}
            () = stopping => {}
        }
    }

    fn stopping(&self) -> bool {
        self.stop.borrow().is_some()
    }

    /// Stores one batch. Acknowledging a stored batch (and freeing its logs)
    /// runs beside the next write: done inline, it left the single SQLite
    /// writer idle for a few milliseconds after every batch (perf: dropping
    /// 5000 logs with their attributes was 9% of the server's time in bulk).
    /// The bus keeps the deliveries from redelivery meanwhile, however slow
    /// the write (see `bus/nats/held.rs`).
    /// Returns the deliveries when the stop gave up on storing them.
    async fn flush(
        &self,
        deliveries: Vec<Delivery>,
        settling: &std::sync::Mutex<JoinSet<()>>,
    ) -> Option<Vec<Delivery>> {
        let outcome = tokio::select! {
            outcome = self.store_batch(&deliveries) => outcome,
            () = past_deadline(self.stop.clone()) => Outcome::GiveUp,
        };
        match outcome {
            Outcome::Stored(batches) => {
                if self.config.stall_after_store {
                    // Testing only: hold the deliveries unacknowledged until
                    // the test kills the process.
                    tracing::warn!(
                        "stalling after the store write, before the ack (--stall-after-store)"
                    );
                    std::future::pending::<()>().await;
                }
                lock(settling).spawn(async move {
                    settle(deliveries, true).await;
                    drop(batches);
                });
            }
            Outcome::DeadLettered => settle(deliveries, true).await,
            Outcome::ReturnToBus(pause) => {
                settle(deliveries, false).await;
                self.pause(pause).await;
            }
            Outcome::GiveUp => return Some(deliveries),
        }
        None
    }

    /// Writes the deliveries' logs with retries. A redelivered batch, and
    /// any batch after a failed attempt (the store may have written it and
    /// lost the answer), is first checked against the store, and only the
    /// logs it does not hold are written: a redelivery never stores a log
    /// twice.
    async fn store_batch(&self, deliveries: &[Delivery]) -> Outcome {
        let mut batches: Vec<LogBatch> = deliveries
            .iter()
            .map(|d| LogBatch::clone(&d.batch))
            .collect();
        let mut maybe_stored: Vec<MaybeStored> =
            deliveries.iter().map(|d| d.maybe_stored).collect();
        let mut attempt: u32 = 0;
        loop {
            let started = std::time::Instant::now();
            let written = match self.skip_stored(&mut batches, &maybe_stored).await {
                Ok(()) => {
                    maybe_stored.fill(MaybeStored::No);
                    if batches.iter().all(|batch| batch.is_empty()) {
                        Ok(())
                    } else {
                        self.store.insert(&batches).await
                    }
                }
                Err(error) => Err(error),
            };
            self.metrics
                .store_write_seconds
                .observe_duration(started.elapsed());
            let count: usize = batches.iter().map(|b| b.len()).sum();
            let error = match written {
                Ok(()) => {
                    self.metrics.batch_sizes.observe(count as f64);
                    Metrics::add(&self.metrics.logs_stored, count as u64);
                    Metrics::add(&self.metrics.batches_stored, 1);
                    return Outcome::Stored(batches);
                }
                Err(error) => error,
            };
            maybe_stored.fill(MaybeStored::Partly);
            Metrics::add(&self.metrics.store_write_failures, 1);
            let retryable = matches!(error, StoreError::Unavailable(_) | StoreError::DiskFull(_));
            // Space does not come back by itself within a stop's deadline.
            if self.stopping() && matches!(error, StoreError::DiskFull(_)) {
                tracing::warn!(%error, batch_size = count, "stopping with the store's disk full");
                return Outcome::GiveUp;
            }
            if attempt < self.config.max_retries {
                tracing::warn!(%error, attempt, batch_size = count, "store write failed; retrying");
                self.pause(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
            // A durable bus keeps the batch: when the store is merely away,
            // hand it back for redelivery instead of dead-lettering it.
            if self.bus.durable() && retryable {
                tracing::warn!(%error, batch_size = count, "store unavailable; batch returned to the bus");
                return Outcome::ReturnToBus(backoff(attempt));
            }
            // In memory, a store that is away or full keeps the batch here,
            // holding its place in the queue so ingest answers 503 once the
            // queue is full; a stop spills it. The dead-letter file is for
            // logs the store refuses, not for an outage: it sits on the same
            // disk, and its logs would wait for someone to replay them.
            if retryable {
                tracing::warn!(%error, batch_size = count, "store unavailable; keeping the batch and retrying");
                self.pause(backoff(attempt)).await;
                continue;
            }
            let records = batches.iter().flat_map(|b| b.iter());
            match self.dead_letters.append(records) {
                Ok(written) => {
                    Metrics::add(&self.metrics.dead_letter_logs, written);
                    tracing::error!(
                        %error,
                        batch_size = count,
                        file = %self.dead_letters.path().display(),
                        "store refused a batch after every retry; written to the dead-letter file"
                    );
                    return Outcome::DeadLettered;
                }
                Err(io_error) => {
                    // Nowhere safe to put the logs: keep them and keep trying,
                    // which fills the queue so ingest answers 503 meanwhile.
                    tracing::error!(%error, %io_error, "store and dead-letter file both failed; retrying");
                    if self.stopping() {
                        return Outcome::GiveUp;
                    }
                    self.pause(backoff(attempt)).await;
                    attempt = 0;
                }
            }
        }
    }

    /// Drops from the batches the logs the store already holds, asking it
    /// about every log of a batch that may be stored in part, and about the
    /// first and last log of one that is stored whole if at all (then about
    /// the rest, should either be there).
    async fn skip_stored(
        &self,
        batches: &mut [LogBatch],
        maybe_stored: &[MaybeStored],
    ) -> Result<(), StoreError> {
        let probes: Vec<LogBatch> = batches
            .iter()
            .zip(maybe_stored)
            .filter_map(|(batch, maybe)| match maybe {
                MaybeStored::No => None,
                MaybeStored::Whole => Some(ends(batch)),
                MaybeStored::Partly => Some(LogBatch::clone(batch)),
            })
            .collect();
        if probes.is_empty() {
            return Ok(());
        }
        let mut stored = self.store.existing_ids(&probes).await?;
        if stored.is_empty() {
            return Ok(());
        }
        let found_whole: Vec<LogBatch> = batches
            .iter()
            .zip(maybe_stored)
            .filter(|(batch, maybe)| {
                **maybe == MaybeStored::Whole && batch.iter().any(|r| stored.contains(&r.id))
            })
            .map(|(batch, _)| LogBatch::clone(batch))
            .collect();
        if !found_whole.is_empty() {
            stored.extend(self.store.existing_ids(&found_whole).await?);
        }
        let mut skipped = 0;
        for (batch, maybe) in batches.iter_mut().zip(maybe_stored) {
            if *maybe != MaybeStored::No && batch.iter().any(|r| stored.contains(&r.id)) {
                let rest: Vec<_> = batch
                    .iter()
                    .filter(|r| !stored.contains(&r.id))
                    .cloned()
                    .collect();
                skipped += batch.len() - rest.len();
                *batch = rest.into();
            }
        }
        Metrics::add(&self.metrics.redelivered_logs_skipped, skipped as u64);
        tracing::info!(
            skipped,
            "redelivered logs already stored; not written again"
        );
        Ok(())
    }
}

/// What a finished write left unstored (the stop gave up on it). A write
/// that panicked takes the batcher with it, as it did when writes ran inline.
fn written(
    finished: Option<Result<Option<Vec<Delivery>>, tokio::task::JoinError>>,
) -> Option<Vec<Delivery>> {
    match finished? {
        Ok(unstored) => unstored,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => None,
    }
}

/// The acknowledgements in flight. A panic elsewhere cannot leave the set
/// half-changed (spawning and reaping do not panic), so a poisoned lock is
/// taken as it is.
fn lock(settling: &std::sync::Mutex<JoinSet<()>>) -> std::sync::MutexGuard<'_, JoinSet<()>> {
    settling
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Forgets the acknowledgements that are done.
fn reap(settling: &std::sync::Mutex<JoinSet<()>>) {
    let mut settling = lock(settling);
    while settling.try_join_next().is_some() {}
}

/// A batch's first and last logs (one log for a batch of one).
fn ends(batch: &LogBatch) -> LogBatch {
    match (batch.first(), batch.last()) {
        (Some(first), Some(last)) if batch.len() > 1 => vec![first.clone(), last.clone()].into(),
        _ => LogBatch::clone(batch),
    }
}

/// How a batch left [`Batcher::store_batch`].
enum Outcome {
    /// In the store (the batches as written, freed after the ack).
    Stored(Vec<LogBatch>),
    /// In the dead-letter file.
    DeadLettered,
    /// Not stored: hand back to the bus, then pause this long.
    ReturnToBus(Duration),
    /// Not stored, and the process is stopping: spill it (or hand it back).
    GiveUp,
}

/// Resolves at the stop's deadline; never before the process stops.
async fn past_deadline(mut stop: watch::Receiver<Option<Instant>>) {
    let deadline = match stop.wait_for(Option::is_some).await {
        Ok(deadline) => *deadline,
        Err(_) => None,
    };
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn settle(deliveries: Vec<Delivery>, stored: bool) {
    for delivery in deliveries {
        if stored {
            delivery.ack.ack().await;
        } else {
            delivery.ack.retry_later().await;
        }
    }
}

/// 100 ms, 200 ms, 400 ms ... capped at 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests;
