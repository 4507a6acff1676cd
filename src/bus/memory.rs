//! The in-process bus for `--role all`: a channel to the batcher and a
//! broadcast to live subscribers.
//!
//! Capacity is counted in logs, not messages, with a semaphore: a permit per
//! queued log, returned when the batcher acknowledges the batch. When the
//! permits run out, `publish` fails with `Full` at once (ingest answers 503)
//! rather than buffering without bound.

use super::coordination::{Coordination, MemoryCoordination};
use super::live::LiveFanOut;
use super::{Ack, Bus, BusError, Delivery, WorkQueue};
use crate::domain::LogBatch;
use async_trait::async_trait;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};

type Queued = (LogBatch, OwnedSemaphorePermit);

pub struct MemoryBus {
    capacity: usize,
    permits: Arc<Semaphore>,
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
            sender: RwLock::new(Some(sender)),
            receiver: Mutex::new(Some(receiver)),
            live: LiveFanOut::default(),
            coordination: Arc::new(MemoryCoordination::new(lease_ttl)),
        }
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
        {
            let sender = self.sender.read().map_err(|_| BusError::Closed)?;
            let sender = sender.as_ref().ok_or(BusError::Closed)?;
            sender
                .send((LogBatch::clone(&batch), permit))
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

    fn redelivery_after(&self) -> Option<Duration> {
        None
    }

    fn coordination(&self) -> Arc<dyn Coordination> {
        Arc::clone(&self.coordination) as Arc<dyn Coordination>
    }

    fn capacity(&self) -> Option<u64> {
        Some(self.capacity as u64)
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
        let (batch, permit) = self.receiver.recv().await?;
        Some(Delivery {
            batch,
            redelivered: false,
            ack: Box::new(MemoryAck { _permit: permit }),
        })
    }
}

/// Holding the permits until the batch is stored is what bounds the queue.
struct MemoryAck {
    _permit: OwnedSemaphorePermit,
}

#[async_trait]
impl Ack for MemoryAck {
    async fn ack(self: Box<Self>) {}
    async fn retry_later(self: Box<Self>) {}
    async fn in_progress(&self) {}
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
