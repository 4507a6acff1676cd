//! The batcher's timing, retry, redelivery and stop rules, with a store
//! double whose writes fail on demand and a scripted durable bus.

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
    /// The ids each `existing_ids` call asked about.
    asked: Mutex<Vec<Vec<String>>>,
    /// What `writes_at_once` answers (0: the trait's default).
    writes_at_once: usize,
}

#[async_trait]
impl Store for RecordingStore {
    fn kind(&self) -> &'static str {
        "recording"
    }
    fn writes_at_once(&self) -> usize {
        self.writes_at_once
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
        self.asked.lock().unwrap().push(
            batches
                .iter()
                .flat_map(|b| b.iter())
                .map(|r| r.id.clone())
                .collect(),
        );
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
    fn coordination(&self) -> Arc<dyn crate::bus::coordination::Coordination> {
        Arc::new(crate::bus::coordination::MemoryCoordination::new(
            Duration::from_secs(5),
        ))
    }
    async fn close(&self) {}
}

/// Settlements in order: "ack a", "retry a".
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
}

fn named(prefix: &str, n: usize) -> LogBatch {
    (0..n)
        .map(|i| LogRecord {
            id: format!("{prefix}-{i}"),
            ..batch(1)[0].clone()
        })
        .collect()
}

/// Runs a batcher over `deliveries` (name, batch, maybe stored) on the
/// scripted bus until they are all settled.
async fn run_scripted(
    store: Arc<RecordingStore>,
    deliveries: Vec<(&str, LogBatch, MaybeStored)>,
) -> (Vec<String>, Arc<Metrics>) {
    let dir = tempfile::tempdir().unwrap();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let settled: Settled = Default::default();
    for (name, batch, maybe_stored) in deliveries {
        sender
            .send(Delivery {
                batch,
                maybe_stored,
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
    store
        .stored
        .lock()
        .unwrap()
        .extend(["a-0".to_string(), "a-1".to_string(), "b-0".to_string()]);
    let (settled, metrics) = run_scripted(
        Arc::clone(&store),
        vec![
            ("a", named("a", 4), MaybeStored::Partly),
            ("b", named("b", 2), MaybeStored::No),
        ],
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
    let (settled, _) = run_scripted(
        Arc::clone(&store),
        vec![("a", named("a", 2), MaybeStored::Partly)],
    )
    .await;
    assert!(store.inserts.lock().unwrap().is_empty());
    assert_eq!(settled, ["ack a"]);
}

#[tokio::test(start_paused = true)]
async fn a_late_delivery_is_probed_by_its_ends_and_written_whole_when_absent() {
    let store = Arc::new(RecordingStore::default());
    let (settled, metrics) = run_scripted(
        Arc::clone(&store),
        vec![("a", named("a", 1000), MaybeStored::Whole)],
    )
    .await;
    // One question about two ids, not about the thousand logs: a backlog
    // is caught up at the store's writing speed.
    assert_eq!(*store.asked.lock().unwrap(), [["a-0", "a-999"]]);
    assert_eq!(*store.inserts.lock().unwrap(), vec![1000]);
    assert_eq!(settled, ["ack a"]);
    assert_eq!(Metrics::get(&metrics.redelivered_logs_skipped), 0);
}

#[tokio::test(start_paused = true)]
async fn a_late_delivery_found_stored_is_checked_in_full_and_not_written_again() {
    let store = Arc::new(RecordingStore::default());
    // Handed out again by a new leader after a failover: stored whole
    // by the write whose ack went to the dead node.
    store
        .stored
        .lock()
        .unwrap()
        .extend((0..3).map(|i| format!("a-{i}")));
    let (settled, metrics) = run_scripted(
        Arc::clone(&store),
        vec![
            ("a", named("a", 3), MaybeStored::Whole),
            ("b", named("b", 3), MaybeStored::Whole),
        ],
    )
    .await;
    assert_eq!(
        *store.asked.lock().unwrap(),
        [vec!["a-0", "a-2", "b-0", "b-2"], vec!["a-0", "a-1", "a-2"]]
    );
    assert_eq!(*store.inserts.lock().unwrap(), vec![3], "only b's logs");
    assert_eq!(settled, ["ack a", "ack b"]);
    assert_eq!(Metrics::get(&metrics.redelivered_logs_skipped), 3);
}

#[tokio::test(start_paused = true)]
async fn a_store_that_takes_two_writes_at_once_is_given_two() {
    for (writes_at_once, took) in [(1, 20), (2, 10)] {
        let store = Arc::new(RecordingStore {
            write_time: Duration::from_secs(10),
            writes_at_once,
            ..Default::default()
        });
        let started = Instant::now();
        // Two full batches (the batcher's batch_size is 1000).
        let (settled, _) = run_scripted(
            Arc::clone(&store),
            vec![
                ("a", named("a", 1000), MaybeStored::No),
                ("b", named("b", 1000), MaybeStored::No),
            ],
        )
        .await;
        assert_eq!(
            started.elapsed().as_secs(),
            took,
            "{writes_at_once} at once"
        );
        assert_eq!(*store.inserts.lock().unwrap(), [1000, 1000]);
        assert_eq!(settled, ["ack a", "ack b"]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_write_whose_answer_was_lost_is_not_written_again() {
    let store = Arc::new(RecordingStore::default());
    *store.lost_answers_left.lock().unwrap() = 1;
    let (settled, _) = run_scripted(
        Arc::clone(&store),
        vec![("a", named("a", 3), MaybeStored::No)],
    )
    .await;
    assert_eq!(
        *store.stored.lock().unwrap(),
        ["a-0", "a-1", "a-2"],
        "the retry found every log stored"
    );
    assert_eq!(settled, ["ack a"]);
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
            ..Default::default()
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
