//! The bus seam: ingest hands batches to the processing pipeline (a work queue,
//! each batch to exactly one consumer) and to live subscribers (fan-out, every
//! subscriber sees every batch).
//!
//! Two implementations: `memory` (in-process, for `--role all` on one machine)
//! and `nats` (JetStream, for split roles). Role modules see only [`Bus`];
//! only `bus/nats.rs` knows async-nats.

pub mod memory;
pub mod nats;
pub mod wire;

use crate::domain::LogBatch;
use async_trait::async_trait;
use tokio::sync::broadcast;

#[derive(Clone, Debug, thiserror::Error)]
pub enum BusError {
    /// Bounded capacity is used up; the client should retry shortly.
    #[error("ingest queue is full: {0}")]
    Full(String),
    /// The broker cannot be reached or refused the publish.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The bus is shutting down.
    #[error("bus is closed")]
    Closed,
}

/// Contract:
/// - `publish` returns `Ok` only once the batch is handed over with this bus's
///   guarantee: queued in memory (`durable() == false`) or acknowledged by the
///   broker's storage (`durable() == true`).
/// - every published batch reaches exactly one work queue consumer, which must
///   [`Ack::ack`] it after storing it; a durable bus redelivers batches that
///   were not acknowledged.
/// - live subscribers see batches as they are published, best effort: a
///   subscriber that falls behind gets `RecvError::Lagged`.
#[async_trait]
pub trait Bus: Send + Sync {
    /// A short name for health output and logs: `memory`, `nats`.
    fn kind(&self) -> &'static str;

    /// Whether an acknowledged publish survives the loss of this process.
    fn durable(&self) -> bool;

    async fn publish(&self, batch: LogBatch) -> Result<(), BusError>;

    /// The consumer side of the work queue.
    async fn work_queue(&self) -> Result<Box<dyn WorkQueue>, BusError>;

    /// A new live subscription.
    fn subscribe_live(&self) -> broadcast::Receiver<LogBatch>;

    /// Readiness for `/health`.
    async fn check(&self) -> Result<(), BusError>;

    /// Logs published but not yet acknowledged by a consumer, where known.
    fn pending(&self) -> Option<u64>;

    /// The most [`Bus::pending`] can reach before publishes are refused
    /// (`503`), in the same unit, where the bus is bounded in that unit; for
    /// `/metrics`, so an alert can fire before the queue is full.
    fn capacity(&self) -> Option<u64> {
        None
    }

    /// Stops accepting publishes; work queues end once drained and live
    /// subscriptions end.
    async fn close(&self);
}

#[async_trait]
pub trait WorkQueue: Send {
    /// The next delivery, or `None` once the bus is closed and drained.
    async fn next(&mut self) -> Option<Delivery>;
}

pub struct Delivery {
    pub batch: LogBatch,
    pub ack: Box<dyn Ack>,
}

#[async_trait]
pub trait Ack: Send {
    /// The batch is stored: never deliver it again.
    async fn ack(self: Box<Self>);
    /// The batch could not be stored now: deliver it again later (a no-op
    /// on a bus that is not durable).
    async fn retry_later(self: Box<Self>);
}
