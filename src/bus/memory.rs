//! The in-process bus for `--role all`: a channel to the batcher and a
//! broadcast to live subscribers.
//!
//! Capacity is counted in logs, not messages, with a semaphore: a permit per
//! queued log, returned when the batcher acknowledges the batch. When the
//! permits run out, `publish` fails with `Full` at once (ingest answers 503)
//! rather than buffering without bound. The queue is bounded in bytes too
//! (the logs' estimated size), so a spill file written at a stop that cannot
//! store them has a known size; and an [`Admission`] (the embedded store's
//! disk) may refuse a batch its consumer could not store.

use super::coordination::{Coordination, MemoryCoordination};
use super::live::LiveFanOut;
use super::{Ack, Admission, Bus, BusError, Delivery, MaybeStored, WorkQueue};
use crate::domain::LogBatch;
use crate::domain::log::batch_bytes;
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};

type Queued = (LogBatch, Reservation);

/// A queued batch's share of the queue: its log permits and its bytes,
/// both given back when the batcher acknowledges it (drops this).
struct Reservation {
    _permit: OwnedSemaphorePermit,
    bytes: u64,
    queued_bytes: Arc<AtomicU64>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.queued_bytes.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

pub struct MemoryBus {
    capacity: usize,
    permits: Arc<Semaphore>,
    /// Estimated bytes of the logs queued, and the most it may reach.
    queued_bytes: Arc<AtomicU64>,
    max_bytes: u64,
    admission: Option<Arc<dyn Admission>>,
    sender: RwLock<Option<mpsc::UnboundedSender<Queued>>>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Queued>>>,
    live: LiveFanOut,
    coordination: Arc<MemoryCoordination>,
}

impl MemoryBus {
    /// `capacity`: logs that may wait for the batcher before publishes fail.
    /// `lease_ttl`: how long a coordination lease outlives its last renewal.
    pub fn new(capacity: usize, lease_ttl: Duration) -> MemoryBus {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        let (sender, receiver) = mpsc::unbounded_channel();
        MemoryBus {
            capacity,
            permits: Arc::new(Semaphore::new(capacity)),
            queued_bytes: Arc::new(AtomicU64::new(0)),
            max_bytes: u64::MAX,
            admission: None,
            sender: RwLock::new(Some(sender)),
            receiver: Mutex::new(Some(receiver)),
            live: LiveFanOut::default(),
            coordination: Arc::new(MemoryCoordination::new(lease_ttl)),
        }
    }

    /// Bounds the queue at `max_bytes` of logs (their estimated size).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> MemoryBus {
        self.max_bytes = max_bytes.max(1);
        self
    }

    /// Asks `admission` before taking each batch.
    pub fn with_admission(mut self, admission: Arc<dyn Admission>) -> MemoryBus {
        self.admission = Some(admission);
        self
    }

    /// Estimated bytes of the logs waiting to be stored.
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    fn check_room(&self, logs: usize, bytes: u64) -> Result<(), BusError> {
        let queued = self.queued_bytes();
        // A batch larger than the whole queue is taken when the queue is
        // empty rather than refused forever.
        if queued > 0 && queued.saturating_add(bytes) > self.max_bytes {
            return Err(BusError::Full(format!(
                "{queued} bytes of logs are waiting to be stored (limit {})",
                self.max_bytes
            )));
        }
        let pending = self.capacity - self.permits.available_permits();
        if pending + logs.clamp(1, self.capacity) > self.capacity {
            return Err(BusError::Full(format!(
                "{pending} logs are waiting to be stored"
            )));
        }
        if let Some(admission) = &self.admission {
            admission
                .admit(queued, bytes)
                .map_err(BusError::StoreFull)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Bus for MemoryBus {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn durable(&self) -> bool {
        false
    }

    async fn publish(&self, batch: LogBatch) -> Result<(), BusError> {
        let bytes = batch_bytes(&batch);
        self.check_room(batch.len(), bytes)?;
        // A batch larger than the whole queue takes all of it rather than
        // being refused forever.
        let wanted = batch.len().clamp(1, self.capacity) as u32;
        let permit = Arc::clone(&self.permits)
            .try_acquire_many_owned(wanted)
            .map_err(|_| {
                BusError::Full(format!(
                    "{} logs are waiting to be stored",
                    self.capacity - self.permits.available_permits()
                ))
            })?;
        self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        let reservation = Reservation {
            _permit: permit,
            bytes,
            queued_bytes: Arc::clone(&self.queued_bytes),
        };
        {
            let sender = self.sender.read().map_err(|_| BusError::Closed)?;
            let sender = sender.as_ref().ok_or(BusError::Closed)?;
            sender
                .send((LogBatch::clone(&batch), reservation))
                .map_err(|_| BusError::Closed)?;
        }
        self.live.send(batch);
        Ok(())
    }

    async fn work_queue(&self) -> Result<Box<dyn WorkQueue>, BusError> {
        let receiver = self
            .receiver
            .lock()
            .map_err(|_| BusError::Closed)?
            .take()
            .ok_or_else(|| {
                BusError::Unavailable("the in-memory bus has one consumer and it is taken".into())
            })?;
        Ok(Box::new(MemoryWorkQueue { receiver }))
    }

    fn subscribe_live(&self) -> broadcast::Receiver<LogBatch> {
        self.live.subscribe()
    }

    async fn check(&self) -> Result<(), BusError> {
        match self.sender.read() {
            Ok(sender) if sender.is_some() => Ok(()),
            _ => Err(BusError::Closed),
        }
    }

    fn pending(&self) -> Option<u64> {
        Some((self.capacity - self.permits.available_permits()) as u64)
    }

    fn coordination(&self) -> Arc<dyn Coordination> {
        Arc::clone(&self.coordination) as Arc<dyn Coordination>
    }

    fn capacity(&self) -> Option<u64> {
        Some(self.capacity as u64)
    }

    fn room_for(&self, logs: usize, bytes: u64) -> Result<(), BusError> {
        self.check_room(logs, bytes)
    }

    async fn close(&self) {
        if let Ok(mut sender) = self.sender.write() {
            sender.take();
        }
        self.live.close();
    }
}

struct MemoryWorkQueue {
    receiver: mpsc::UnboundedReceiver<Queued>,
}

#[async_trait]
impl WorkQueue for MemoryWorkQueue {
    async fn next(&mut self) -> Option<Delivery> {
        let (batch, reservation) = self.receiver.recv().await?;
        Some(Delivery {
            batch,
            maybe_stored: MaybeStored::No,
            ack: Box::new(MemoryAck {
                _reservation: reservation,
            }),
        })
    }
}

/// Holding the permits until the batch is stored is what bounds the queue.
struct MemoryAck {
    _reservation: Reservation,
}

#[async_trait]
impl Ack for MemoryAck {
    async fn ack(self: Box<Self>) {}
    async fn retry_later(self: Box<Self>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Level, LogRecord};

    fn batch(n: usize) -> LogBatch {
        (0..n)
            .map(|i| LogRecord {
                id: i.to_string(),
                timestamp: 0,
                level: Level::Info,
                service: "s".into(),
                message: "m".into(),
                attributes: Default::default(),
                ..Default::default()
            })
            .collect()
    }

    #[tokio::test]
    async fn full_queue_refuses_until_acknowledged() {
        let bus = MemoryBus::new(3, Duration::from_secs(15));
        let mut queue = bus.work_queue().await.unwrap();
        bus.publish(batch(2)).await.unwrap();
        assert!(matches!(
            bus.publish(batch(2)).await,
            Err(BusError::Full(_))
        ));
        assert_eq!(bus.pending(), Some(2));
        let delivery = queue.next().await.unwrap();
        delivery.ack.ack().await;
        bus.publish(batch(2)).await.unwrap();
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_bytes_and_by_its_admission() {
        struct Refuse;
        impl Admission for Refuse {
            fn admit(&self, _queued: u64, _incoming: u64) -> Result<(), String> {
                Err("the store's disk is full".into())
            }
        }
        let one = batch_bytes(&batch(1));
        let bus = MemoryBus::new(100, Duration::from_secs(15)).with_max_bytes(one * 3);
        let mut queue = bus.work_queue().await.unwrap();
        // Larger than the whole queue, but the queue is empty: taken.
        bus.publish(batch(4)).await.unwrap();
        assert_eq!(bus.queued_bytes(), one * 4);
        assert!(matches!(bus.room_for(1, one), Err(BusError::Full(_))));
        assert!(matches!(
            bus.publish(batch(1)).await,
            Err(BusError::Full(_))
        ));
        queue.next().await.unwrap().ack.ack().await;
        assert_eq!(bus.queued_bytes(), 0);
        bus.publish(batch(3)).await.unwrap();

        let refusing = MemoryBus::new(100, Duration::from_secs(15))
            .with_admission(Arc::new(Refuse) as Arc<dyn Admission>);
        let refused = refusing.publish(batch(1)).await.unwrap_err();
        assert!(matches!(refused, BusError::StoreFull(_)), "{refused}");
        assert_eq!(refusing.pending(), Some(0), "nothing taken");
    }

    #[tokio::test]
    async fn close_drains_then_ends() {
        let bus = MemoryBus::new(10, Duration::from_secs(15));
        let mut queue = bus.work_queue().await.unwrap();
        let mut live = bus.subscribe_live();
        bus.publish(batch(1)).await.unwrap();
        bus.close().await;
        assert!(matches!(bus.publish(batch(1)).await, Err(BusError::Closed)));
        assert_eq!(queue.next().await.map(|d| d.batch.len()), Some(1));
        assert!(queue.next().await.is_none());
        assert_eq!(live.recv().await.map(|b| b.len()).ok(), Some(1));
        assert!(live.recv().await.is_err());
    }
}
