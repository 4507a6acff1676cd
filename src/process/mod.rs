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

pub use settings::{ProcessConfig, RawProcess};

use crate::bus::{Bus, Delivery};
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
        let mut queue = self.bus.work_queue().await?;
        let mut closed = false;
        let mut settling = JoinSet::new();
        let mut drained = Drained::default();
        // Once a stop has given up on the store, every later delivery goes
        // the same way without trying it again.
        let mut giving_up = false;
        while !closed {
            while settling.try_join_next().is_some() {}
            let Some(first) = queue.next().await else {
                break;
            };
            let mut count = first.batch.len();
            let mut pending = vec![first];
            let deadline = Instant::now() + self.config.flush_timeout;
            while count < self.config.batch_size {
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
            if giving_up {
                self.give_up(pending, &mut drained).await;
                continue;
            }
            if let Some(unstored) = self.flush(pending, &mut settling).await {
                giving_up = true;
                self.give_up(unstored, &mut drained).await;
            }
        }
        // Every ack reaches the bus before the batcher reports drained, so a
        // graceful stop leaves nothing to redeliver.
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
    /// While the batch is being stored, the bus is told so (progress acks),
    /// so a slow write is not redelivered to another processor meanwhile.
    /// Returns the deliveries when the stop gave up on storing them.
    async fn flush(
        &self,
        deliveries: Vec<Delivery>,
        settling: &mut JoinSet<()>,
    ) -> Option<Vec<Delivery>> {
        let outcome = tokio::select! {
            outcome = self.store_batch(&deliveries) => outcome,
            never = keep_in_progress(&deliveries, self.bus.redelivery_after()) => match never {},
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
                settling.spawn(async move {
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
        let mut maybe_stored: Vec<bool> = deliveries.iter().map(|d| d.redelivered).collect();
        let mut attempt: u32 = 0;
        loop {
            let started = std::time::Instant::now();
            let written = match self.skip_stored(&mut batches, &maybe_stored).await {
                Ok(()) => {
                    maybe_stored.fill(false);
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
            maybe_stored.fill(true);
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

    /// Drops from the batches flagged `maybe_stored` the logs the store
    /// already holds.
    async fn skip_stored(
        &self,
        batches: &mut [LogBatch],
        maybe_stored: &[bool],
    ) -> Result<(), StoreError> {
        let suspects: Vec<LogBatch> = batches
            .iter()
            .zip(maybe_stored)
            .filter(|(_, maybe)| **maybe)
            .map(|(batch, _)| LogBatch::clone(batch))
            .collect();
        if suspects.is_empty() {
            return Ok(());
        }
        let stored = self.store.existing_ids(&suspects).await?;
        if stored.is_empty() {
            return Ok(());
        }
        let mut skipped = 0;
        for (batch, maybe) in batches.iter_mut().zip(maybe_stored) {
            if *maybe && batch.iter().any(|r| stored.contains(&r.id)) {
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

/// Tells the bus, at a third of its redelivery timeout, that the deliveries
/// are still being worked on. Never returns.
async fn keep_in_progress(
    deliveries: &[Delivery],
    redelivery_after: Option<Duration>,
) -> std::convert::Infallible {
    let Some(redelivery_after) = redelivery_after else {
        return std::future::pending().await;
    };
    let period = (redelivery_after / 3).max(Duration::from_millis(100));
    loop {
        sleep(period).await;
        for delivery in deliveries {
            delivery.ack.in_progress().await;
        }
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
mod tests {
    use super::*;
    use crate::bus::memory::MemoryBus;
    use crate::domain::{Level, LogRecord};
    use crate::store::{BucketCount, HistogramQuery, LevelServiceCount, LogFilter, LogQuery};
    use async_trait::async_trait;
    use std::sync::Mutex;

    /// A store double whose writes fail a chosen number of times (or write
    /// and then report failure, like a store whose answer was lost), or take
    /// a while: a failing SQLite cannot be arranged on demand, and the
    /// batcher's timing, retry and redelivery rules are what is under test.
    #[derive(Default)]
    struct RecordingStore {
        failures_left: Mutex<u32>,
        lost_answers_left: Mutex<u32>,
        write_time: Duration,
        inserts: Mutex<Vec<usize>>,
        stored: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Store for RecordingStore {
        fn kind(&self) -> &'static str {
            "recording"
        }
        async fn insert(&self, batches: &[LogBatch]) -> Result<(), StoreError> {
            tokio::time::sleep(self.write_time).await;
            {
                let mut failures = self.failures_left.lock().unwrap();
                if *failures > 0 {
                    *failures -= 1;
                    return Err(StoreError::Internal("refused".into()));
                }
            }
            self.inserts
                .lock()
                .unwrap()
                .push(batches.iter().map(|b| b.len()).sum());
            self.stored
                .lock()
                .unwrap()
                .extend(batches.iter().flat_map(|b| b.iter().map(|r| r.id.clone())));
            let mut lost = self.lost_answers_left.lock().unwrap();
            if *lost > 0 {
                *lost -= 1;
                return Err(StoreError::Unavailable("connection reset".into()));
            }
            Ok(())
        }
        async fn existing_ids(
            &self,
            batches: &[LogBatch],
        ) -> Result<std::collections::HashSet<String>, StoreError> {
            let stored = self.stored.lock().unwrap();
            Ok(batches
                .iter()
                .flat_map(|b| b.iter())
                .filter(|r| stored.contains(&r.id))
                .map(|r| r.id.clone())
                .collect())
        }
        async fn logs(&self, _: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
            Ok(Vec::new())
        }
        async fn level_service_counts(
            &self,
            _: &LogFilter,
        ) -> Result<Vec<LevelServiceCount>, StoreError> {
            Ok(Vec::new())
        }
        async fn bucket_counts(&self, _: &HistogramQuery) -> Result<Vec<BucketCount>, StoreError> {
            Ok(Vec::new())
        }
        async fn delete_older_than(&self, _: i64) -> Result<u64, StoreError> {
            Ok(0)
        }
        async fn check(&self) -> Result<(), StoreError> {
            Ok(())
        }
        async fn close(&self) {}
    }

    /// A durable bus double that hands out scripted deliveries (redelivered
    /// or not) and records how each is settled: the memory bus never
    /// redelivers, and NATS redelivery timing is tested end to end in
    /// tests/it.
    struct ScriptedBus {
        deliveries: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Delivery>>>,
        redelivery_after: Option<Duration>,
    }

    struct ScriptedQueue(tokio::sync::mpsc::UnboundedReceiver<Delivery>);

    #[async_trait]
    impl crate::bus::WorkQueue for ScriptedQueue {
        async fn next(&mut self) -> Option<Delivery> {
            self.0.recv().await
        }
    }

    #[async_trait]
    impl Bus for ScriptedBus {
        fn kind(&self) -> &'static str {
            "scripted"
        }
        fn durable(&self) -> bool {
            true
        }
        async fn publish(&self, _: LogBatch) -> Result<(), crate::bus::BusError> {
            Err(crate::bus::BusError::Closed)
        }
        async fn work_queue(&self) -> Result<Box<dyn crate::bus::WorkQueue>, crate::bus::BusError> {
            let receiver = self.deliveries.lock().unwrap().take().unwrap();
            Ok(Box::new(ScriptedQueue(receiver)))
        }
        fn subscribe_live(&self) -> tokio::sync::broadcast::Receiver<LogBatch> {
            tokio::sync::broadcast::channel(1).1
        }
        async fn check(&self) -> Result<(), crate::bus::BusError> {
            Ok(())
        }
        fn pending(&self) -> Option<u64> {
            None
        }
        fn redelivery_after(&self) -> Option<Duration> {
            self.redelivery_after
        }
        fn coordination(&self) -> Arc<dyn crate::bus::coordination::Coordination> {
            Arc::new(crate::bus::coordination::MemoryCoordination::new(
                Duration::from_secs(5),
            ))
        }
        async fn close(&self) {}
    }

    /// Settlements in order: "ack a", "retry a", "progress a".
    type Settled = Arc<Mutex<Vec<String>>>;

    struct RecordingAck {
        name: String,
        settled: Settled,
    }

    #[async_trait]
    impl crate::bus::Ack for RecordingAck {
        async fn ack(self: Box<Self>) {
            self.settled
                .lock()
                .unwrap()
                .push(format!("ack {}", self.name));
        }
        async fn retry_later(self: Box<Self>) {
            self.settled
                .lock()
                .unwrap()
                .push(format!("retry {}", self.name));
        }
        async fn in_progress(&self) {
            self.settled
                .lock()
                .unwrap()
                .push(format!("progress {}", self.name));
        }
    }

    fn named(prefix: &str, n: usize) -> LogBatch {
        (0..n)
            .map(|i| LogRecord {
                id: format!("{prefix}-{i}"),
                ..batch(1)[0].clone()
            })
            .collect()
    }

    /// Runs a batcher over `deliveries` (name, batch, redelivered) on the
    /// scripted bus until they are all settled.
    async fn run_scripted(
        store: Arc<RecordingStore>,
        deliveries: Vec<(&str, LogBatch, bool)>,
        redelivery_after: Option<Duration>,
    ) -> (Vec<String>, Arc<Metrics>) {
        let dir = tempfile::tempdir().unwrap();
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let settled: Settled = Default::default();
        for (name, batch, redelivered) in deliveries {
            sender
                .send(Delivery {
                    batch,
                    redelivered,
                    ack: Box::new(RecordingAck {
                        name: name.to_string(),
                        settled: Arc::clone(&settled),
                    }),
                })
                .unwrap_or_else(|_| panic!("queued"));
        }
        drop(sender);
        let bus = Arc::new(ScriptedBus {
            deliveries: Mutex::new(Some(receiver)),
            redelivery_after,
        });
        let batcher = Batcher {
            bus,
            store,
            config: ProcessConfig {
                batch_size: 1000,
                flush_timeout: Duration::from_millis(10),
                max_retries: 2,
                stall_after_store: false,
            },
            dead_letters: DeadLetterFile::new(dir.path()),
            metrics: Arc::new(Metrics::default()),
            spill: None,
            stop: watch::channel(None).1,
        };
        let metrics = Arc::clone(&batcher.metrics);
        batcher.run().await.unwrap();
        let settled = settled.lock().unwrap().clone();
        (settled, metrics)
    }

    #[tokio::test(start_paused = true)]
    async fn a_redelivered_batch_writes_only_what_the_store_lacks() {
        let store = Arc::new(RecordingStore::default());
        store.stored.lock().unwrap().extend([
            "a-0".to_string(),
            "a-1".to_string(),
            "b-0".to_string(),
        ]);
        let (settled, metrics) = run_scripted(
            Arc::clone(&store),
            vec![("a", named("a", 4), true), ("b", named("b", 2), false)],
            None,
        )
        .await;
        // b was not redelivered, so it is written whole: a log can be stored
        // already only if its batch was delivered before.
        assert_eq!(*store.inserts.lock().unwrap(), vec![4]);
        let stored = store.stored.lock().unwrap().clone();
        assert_eq!(stored, ["a-0", "a-1", "b-0", "a-2", "a-3", "b-0", "b-1"]);
        assert_eq!(settled, ["ack a", "ack b"]);
        assert_eq!(Metrics::get(&metrics.redelivered_logs_skipped), 2);
        assert_eq!(Metrics::get(&metrics.logs_stored), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_redelivery_stored_whole_is_only_acknowledged() {
        let store = Arc::new(RecordingStore::default());
        store
            .stored
            .lock()
            .unwrap()
            .extend(["a-0".to_string(), "a-1".to_string()]);
        let (settled, _) =
            run_scripted(Arc::clone(&store), vec![("a", named("a", 2), true)], None).await;
        assert!(store.inserts.lock().unwrap().is_empty());
        assert_eq!(settled, ["ack a"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_whose_answer_was_lost_is_not_written_again() {
        let store = Arc::new(RecordingStore::default());
        *store.lost_answers_left.lock().unwrap() = 1;
        let (settled, _) =
            run_scripted(Arc::clone(&store), vec![("a", named("a", 3), false)], None).await;
        assert_eq!(
            *store.stored.lock().unwrap(),
            ["a-0", "a-1", "a-2"],
            "the retry found every log stored"
        );
        assert_eq!(settled, ["ack a"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_write_keeps_its_deliveries_in_progress() {
        let store = Arc::new(RecordingStore {
            write_time: Duration::from_secs(10),
            ..Default::default()
        });
        let (settled, _) = run_scripted(
            Arc::clone(&store),
            vec![("a", named("a", 1), false), ("b", named("b", 1), false)],
            Some(Duration::from_secs(3)),
        )
        .await;
        // Every second (a third of the 3 s redelivery timeout) for 10 s.
        let progress_a = settled.iter().filter(|s| *s == "progress a").count();
        assert!((9..=10).contains(&progress_a), "{settled:?}");
        assert_eq!(settled[settled.len() - 2..], ["ack a", "ack b"]);
        let (settled, _) = run_scripted(
            Arc::new(RecordingStore {
                write_time: Duration::from_secs(10),
                ..Default::default()
            }),
            vec![("a", named("a", 1), false)],
            None,
        )
        .await;
        assert_eq!(
            settled,
            ["ack a"],
            "no progress on a bus that never redelivers"
        );
    }

    fn batch(n: usize) -> LogBatch {
        (0..n)
            .map(|i| LogRecord {
                id: format!("id-{i}"),
                timestamp: 1_000_000,
                level: Level::Error,
                service: "svc".into(),
                message: format!("message {i}"),
                attributes: Default::default(),
            })
            .collect()
    }

    fn batcher(
        store: Arc<RecordingStore>,
        bus: Arc<MemoryBus>,
        dir: &std::path::Path,
        batch_size: usize,
    ) -> Batcher {
        Batcher {
            bus,
            store,
            config: ProcessConfig {
                batch_size,
                flush_timeout: Duration::from_secs(2),
                max_retries: 2,
                stall_after_store: false,
            },
            dead_letters: DeadLetterFile::new(dir),
            metrics: Arc::new(Metrics::default()),
            spill: Some(SpillFile::new(dir, 64 << 10)),
            stop: watch::channel(None).1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn flushes_at_batch_size_or_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RecordingStore::default());
        let bus = Arc::new(MemoryBus::new(1000, Duration::from_secs(15)));
        let task = tokio::spawn(batcher(Arc::clone(&store), Arc::clone(&bus), dir.path(), 5).run());
        bus.publish(batch(3)).await.unwrap();
        bus.publish(batch(3)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            *store.inserts.lock().unwrap(),
            vec![6],
            "size reached: flushed at once"
        );
        bus.publish(batch(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1900)).await;
        assert_eq!(
            store.inserts.lock().unwrap().len(),
            1,
            "not before the timeout"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(*store.inserts.lock().unwrap(), vec![6, 1]);
        bus.close().await;
        task.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn retries_then_dead_letters_and_frees_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RecordingStore::default());
        *store.failures_left.lock().unwrap() = 3; // more than max_retries = 2
        let bus = Arc::new(MemoryBus::new(1000, Duration::from_secs(15)));
        let batcher = batcher(Arc::clone(&store), Arc::clone(&bus), dir.path(), 1);
        let metrics = Arc::clone(&batcher.metrics);
        let task = tokio::spawn(batcher.run());
        bus.publish(batch(2)).await.unwrap();
        bus.close().await;
        task.await.unwrap().unwrap();
        assert!(store.inserts.lock().unwrap().is_empty());
        let file = DeadLetterFile::new(dir.path());
        assert_eq!(file.count_existing(), 2);
        assert_eq!(Metrics::get(&metrics.dead_letter_logs), 2);
        assert_eq!(bus.pending(), Some(0));
        let text = std::fs::read_to_string(file.path()).unwrap();
        let replay = crate::domain::parse::parse_bulk(
            text.as_bytes(),
            crate::domain::parse::BulkFormat::Ndjson,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(
            replay.accepted.len(),
            2,
            "dead letters replay through /log/bulk"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_that_succeeds_stores_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RecordingStore::default());
        *store.failures_left.lock().unwrap() = 2;
        let bus = Arc::new(MemoryBus::new(1000, Duration::from_secs(15)));
        let task = tokio::spawn(batcher(Arc::clone(&store), Arc::clone(&bus), dir.path(), 1).run());
        bus.publish(batch(4)).await.unwrap();
        bus.close().await;
        task.await.unwrap().unwrap();
        assert_eq!(*store.inserts.lock().unwrap(), vec![4]);
        assert_eq!(DeadLetterFile::new(dir.path()).count_existing(), 0);
    }
}
