//! What the bus's tasks share: the connection, the stream's state and
//! readiness, and the small rules they all follow (reconnect delays,
//! stopping when the bus closes).

use super::connect::Link;
use super::coordination::NatsCoordination;
use super::held::Held;
use super::settings::NatsConfig;
use crate::bus::BusError;
use crate::bus::StreamFill;
use crate::bus::live::LiveFanOut;
use crate::metrics::Metrics;
use async_nats::Client;
use async_nats::connection::State;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::context::Context;
use async_nats::jetstream::message::{AckKind, Acker};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// Marks a publish retried after its ack was lost. `Nats-Msg-Id` stops the
/// broker storing it twice only while the first copy is still in the stream:
/// a leader elected after the first copy was consumed and deleted rebuilds
/// its duplicate map from the messages it holds and stores the retry as new.
/// The processor treats a marked message like a redelivery and writes only
/// the logs the store lacks (seen: 50 logs twice in the leader-kill test).
pub(super) const REPUBLISHED_HEADER: &str = "Oglogstream-Republished";

/// The connection, the stream's state and the live fan-out, shared by the
/// bus and its background tasks.
pub(super) struct Shared {
    /// For messages: the servers without credentials.
    pub(super) url: String,
    pub(super) client: Client,
    pub(super) jetstream: Context,
    pub(super) config: NatsConfig,
    pub(super) work_subject: String,
    pub(super) live_subject: String,
    pub(super) setup: watch::Sender<Setup>,
    /// Asks the setup task to check that the stream and consumer exist
    /// (creating what JetStream says is missing); never to tear them down.
    pub(super) verify: Notify,
    pub(super) closed: watch::Sender<bool>,
    pub(super) live: LiveFanOut,
    /// Whether the live subject is subscribed now (see `live.rs`).
    pub(super) live_subscribed: watch::Sender<bool>,
    /// Deliveries handed out and not settled yet: the last one settled after
    /// close flushes the connection, so the final acks reach the broker
    /// before the process exits.
    pub(super) outstanding: AtomicUsize,
    /// The same deliveries, kept from redelivery while they wait here.
    pub(super) held: Held,
    /// The stream's `max_bytes` in force (an operator may have raised it).
    pub(super) stream_max_bytes: AtomicI64,
    /// Last seen fill level of the stream, for `/metrics`.
    pub(super) fill: Mutex<Option<StreamFill>>,
    /// Set once this instance consumes (process role): it then also purges
    /// acknowledged messages left in the stream.
    pub(super) purging: AtomicBool,
    /// Since when the client has been disconnected, and why it cannot
    /// connect (see `connect.rs`).
    pub(super) link: Link,
    pub(super) metrics: Arc<Metrics>,
    pub(super) coordination: Arc<NatsCoordination>,
}

#[derive(Clone)]
pub(super) enum Setup {
    Pending(String),
    Ready(Box<PullConsumer>),
}

impl Shared {
    pub(super) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Connected, with the stream and consumer in place.
    pub(super) fn ready(&self) -> Result<(), BusError> {
        if self.is_closed() {
            return Err(BusError::Closed);
        }
        if self.client.connection_state() != State::Connected {
            return Err(BusError::Unavailable(self.not_connected("reconnecting")));
        }
        match &*self.setup.borrow() {
            Setup::Ready(_) => Ok(()),
            Setup::Pending(reason) => Err(BusError::Unavailable(reason.clone())),
        }
    }

    /// Why the client is not connected, for `/health` and the log: the
    /// setting to fix when the server refused us, else that it is away.
    pub(super) fn not_connected(&self, doing: &str) -> String {
        let problem = self
            .link
            .problem
            .lock()
            .ok()
            .and_then(|problem| problem.clone());
        match problem {
            Some(problem) => format!("cannot connect to NATS at {}: {problem}; {doing}", self.url),
            None => format!("not connected to NATS at {}; {doing}", self.url),
        }
    }

    /// Ready, or (after a connection loss less than a publish budget ago)
    /// ready once the client reconnects, if it does before `deadline`.
    pub(super) async fn ready_within(&self, deadline: Instant) -> Result<(), BusError> {
        loop {
            let outcome = self.ready();
            let reconnecting = self.client.connection_state() != State::Connected
                && self
                    .link
                    .disconnected_since
                    .lock()
                    .ok()
                    .and_then(|since| *since)
                    .is_some_and(|since| since.elapsed() < self.config.publish_timeout);
            if outcome.is_ok() || !reconnecting || Instant::now() >= deadline {
                return outcome;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Settles one delivery; see `outstanding`.
    pub(super) async fn settle(&self, acker: &Acker, kind: AckKind) {
        if let Err(error) = acker.ack_with(kind).await {
            // The broker redelivers after ack_wait: a duplicate, not a loss.
            tracing::warn!(%error, "could not settle a NATS delivery");
        }
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 && self.is_closed() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.client.flush()).await;
        }
    }
}

/// 100 ms doubling to 2 s: quick recovery in tests and after blips, without
/// hammering a broker that is down.
pub(super) fn reconnect_delay(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(2))
}

/// Resolves once the bus is closed.
pub(super) async fn until_closed(closed: &mut watch::Receiver<bool>) {
    let _ = closed.wait_for(|closed| *closed).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delay_grows_and_caps() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(100));
        assert_eq!(reconnect_delay(1), Duration::from_millis(200));
        assert_eq!(reconnect_delay(30), Duration::from_secs(2));
    }
}
