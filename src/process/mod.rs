//! The process role: takes deliveries from the bus work queue, groups them into
//! batches (flushed at `batch_size` logs or after `flush_timeout`, whichever
//! comes first), writes them to the store with retries, and acknowledges them
//! only once they are stored or safely in the dead-letter file.

pub mod dead_letter;

use crate::bus::{Bus, Delivery};
use crate::config::ProcessConfig;
use crate::domain::LogBatch;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use dead_letter::DeadLetterFile;
use futures_util::FutureExt;
use std::sync::Arc;
use std::time::Duration;
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
}

impl Batcher {
    /// Runs until the bus is closed and every delivery taken is settled.
    pub async fn run(self) -> anyhow::Result<()> {
        let mut queue = self.bus.work_queue().await?;
        let mut closed = false;
        let mut settling = JoinSet::new();
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
            self.flush(pending, &mut settling).await;
        }
        // Every ack reaches the bus before the batcher reports drained, so a
        // graceful stop leaves nothing to redeliver.
        while settling.join_next().await.is_some() {}
        tracing::info!("batcher drained");
        Ok(())
    }

    /// Stores one batch. Acknowledging a stored batch (and freeing its logs)
    /// runs beside the next write: done inline, it left the single SQLite
    /// writer idle for a few milliseconds after every batch (perf: dropping
    /// 5000 logs with their attributes was 9% of the server's time in bulk).
    async fn flush(&self, deliveries: Vec<Delivery>, settling: &mut JoinSet<()>) {
        let batches: Vec<LogBatch> = deliveries
            .iter()
            .map(|d| LogBatch::clone(&d.batch))
            .collect();
        let count: usize = batches.iter().map(|b| b.len()).sum();
        let mut attempt: u32 = 0;
        loop {
            let started = std::time::Instant::now();
            let written = self.store.insert(&batches).await;
            self.metrics
                .store_write_seconds
                .observe_duration(started.elapsed());
            let error = match written {
                Ok(()) => {
                    self.metrics.batch_sizes.observe(count as f64);
                    Metrics::add(&self.metrics.logs_stored, count as u64);
                    Metrics::add(&self.metrics.batches_stored, 1);
                    settling.spawn(async move {
                        settle(deliveries, true).await;
                        drop(batches);
                    });
                    return;
                }
                Err(error) => error,
            };
            Metrics::add(&self.metrics.store_write_failures, 1);
            if attempt < self.config.max_retries {
                tracing::warn!(%error, attempt, batch_size = count, "store write failed; retrying");
                sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
            // A durable bus keeps the batch: when the store is merely away,
            // hand it back for redelivery instead of dead-lettering it.
            if self.bus.durable() && matches!(error, StoreError::Unavailable(_)) {
                tracing::warn!(%error, batch_size = count, "store unavailable; batch returned to the bus");
                settle(deliveries, false).await;
                sleep(backoff(attempt)).await;
                return;
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
                    settle(deliveries, true).await;
                    return;
                }
                Err(io_error) => {
                    // Nowhere safe to put the logs: keep them and keep trying,
                    // which fills the queue so ingest answers 503 meanwhile.
                    tracing::error!(%error, %io_error, "store and dead-letter file both failed; retrying");
                    sleep(backoff(attempt)).await;
                    attempt = 0;
                }
            }
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

    /// A store double whose writes fail a chosen number of times: a failing
    /// SQLite cannot be arranged on demand, and the batcher's timing and
    /// retry rules are what is under test here.
    #[derive(Default)]
    struct RecordingStore {
        failures_left: Mutex<u32>,
        inserts: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl Store for RecordingStore {
        fn kind(&self) -> &'static str {
            "recording"
        }
        async fn insert(&self, batches: &[LogBatch]) -> Result<(), StoreError> {
            let mut failures = self.failures_left.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                return Err(StoreError::Internal("refused".into()));
            }
            self.inserts
                .lock()
                .unwrap()
                .push(batches.iter().map(|b| b.len()).sum());
            Ok(())
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
            },
            dead_letters: DeadLetterFile::new(dir),
            metrics: Arc::new(Metrics::default()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn flushes_at_batch_size_or_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RecordingStore::default());
        let bus = Arc::new(MemoryBus::new(1000));
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
        let bus = Arc::new(MemoryBus::new(1000));
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
        let bus = Arc::new(MemoryBus::new(1000));
        let task = tokio::spawn(batcher(Arc::clone(&store), Arc::clone(&bus), dir.path(), 1).run());
        bus.publish(batch(4)).await.unwrap();
        bus.close().await;
        task.await.unwrap().unwrap();
        assert_eq!(*store.inserts.lock().unwrap(), vec![4]);
        assert_eq!(DeadLetterFile::new(dir.path()).count_existing(), 0);
    }
}
