//! The bus seam: ingest hands batches to the processing pipeline (a work queue,
//! each batch to exactly one consumer) and to live subscribers (fan-out, every
//! subscriber sees every batch).
//!
//! Two implementations: `memory` (in-process, for `--role all` on one machine)
//! and `nats` (JetStream, for split roles). Role modules see only [`Bus`];
//! only `bus/nats.rs` (and its submodules in `bus/nats/`) knows async-nats.
//! Beside the queue and the feed, a bus offers [`coordination`]: leases and
//! compare-and-set state shared by the instances on it.

pub mod coordination;
pub mod live;
pub mod memory;
pub mod nats;
pub mod wire;

/// A gauge of `/metrics`, so defined there; a bus with a stream reports it.
pub use crate::metrics::StreamFill;

use crate::domain::LogBatch;
use async_trait::async_trait;
use coordination::Coordination;
use std::sync::Arc;
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
    /// What consumes the queue cannot store more now (the embedded store's
    /// disk is full): taking more would acknowledge logs no write can take.
    #[error("{0}")]
    StoreFull(String),
}

/// Asked by an in-memory queue before it takes a batch: whether whatever
/// stores the queue's logs has room for them. A durable bus needs none: its
/// broker keeps what a store cannot take yet.
pub trait Admission: Send + Sync {
    /// `queued`: estimated bytes of the logs waiting to be stored;
    /// `incoming`: of the batch offered. `Err` says why not.
    fn admit(&self, queued: u64, incoming: u64) -> Result<(), String>;
}

/// Contract:
/// - `publish` returns `Ok` only once the batch is handed over with this bus's
///   guarantee: queued in memory (`durable() == false`) or acknowledged by the
///   broker's storage (`durable() == true`).
/// - every published batch reaches exactly one work queue consumer, which must
///   [`Ack::ack`] it after storing it; a durable bus redelivers batches that
///   were not acknowledged (at least once), marking them in
///   [`Delivery::maybe_stored`] so the consumer can skip what it already
///   stored; the bus itself keeps a delivery its consumer holds from going
///   to another consumer meanwhile.
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

    /// Resolves once what is published from now on reaches the live
    /// subscriptions, so a tail opened after it misses nothing; or after a
    /// short wait when the bus cannot say (its broker away). A bus whose
    /// feed runs always is ready at once.
    async fn live_ready(&self) {}

    /// Readiness for `/health`.
    async fn check(&self) -> Result<(), BusError>;

    /// Logs published but not yet acknowledged by a consumer, where known.
    fn pending(&self) -> Option<u64>;

    /// How full the broker's stream is, where the bus has one (refreshed in
    /// the background; read at scrape time).
    fn stream_fill(&self) -> Option<StreamFill> {
        None
    }

    /// Leases and state shared by every instance on this bus.
    fn coordination(&self) -> Arc<dyn Coordination>;

    /// The most [`Bus::pending`] can reach before publishes are refused
    /// (`503`), in the same unit, where the bus is bounded in that unit; for
    /// `/metrics`, so an alert can fire before the queue is full.
    fn capacity(&self) -> Option<u64> {
        None
    }

    /// Whether a batch of `logs` logs, about `bytes` bytes, would be taken
    /// now, asked before the request's body is parsed (see
    /// `ingest::IngestState::ensure_room`). Buses that cannot tell say yes;
    /// `publish` still decides.
    fn room_for(&self, _logs: usize, _bytes: u64) -> Result<(), BusError> {
        Ok(())
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
    /// Whether some of the batch's logs may be stored already.
    pub maybe_stored: MaybeStored,
    pub ack: Box<dyn Ack>,
}

/// How much of a delivery the store may hold already, which decides how the
/// consumer checks before writing it (`process::Batcher::skip_stored`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaybeStored {
    /// A first delivery, fresh from its publish: none of it.
    No,
    /// A first delivery that waited in the stream: a backlog, or a message
    /// a new leader hands out again after a failover although the old one
    /// had delivered it. If the store holds it, one write that succeeded
    /// stored all of it, so its first and last logs answer for the rest.
    Whole,
    /// Delivered before without an ack (a processor died between storing
    /// and acknowledging it, say), or published twice (the first copy may
    /// have been delivered too), or its write failed: any part of it.
    Partly,
}

#[async_trait]
pub trait Ack: Send + Sync {
    /// The batch is stored: never deliver it again.
    async fn ack(self: Box<Self>);
    /// The batch could not be stored now: deliver it again later (a no-op
    /// on a bus that is not durable).
    async fn retry_later(self: Box<Self>);
}
