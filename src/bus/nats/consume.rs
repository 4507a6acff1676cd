//! The work queue's deliveries, pulled from the durable consumer and
//! acknowledged (or handed back) by the batcher.

use super::shared::{REPUBLISHED_HEADER, Setup, Shared, reconnect_delay, until_closed};
use crate::bus::{Ack, Delivery, MaybeStored, WorkQueue, wire};
use async_nats::jetstream::consumer::{PullConsumer, pull};
use async_nats::jetstream::message::{AckKind, Acker};
use async_trait::async_trait;
use futures_util::{FutureExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages one pull request asks for; also what an instance may hold
/// unacknowledged in its client buffer.
const PULL_BATCH: usize = 256;
/// Bytes one pull request asks for. The client asks again when half of a
/// pull is left, so up to 1.5 pulls wait in its buffer: 6 MiB.
/// - Under the 64 MiB nats-server lets wait for one client before it cuts
///   it off as a slow consumer. Bounded by messages alone, 256 messages of
///   1000 bulk logs (~310 KB each) were 80 MB: while the store wrote, the
///   server cut the process role off every second, and what it had taken
///   came back redelivered after `ack_wait` (`make bench-split` stored
///   22-53k logs/s).
/// - Small beside what the batcher holds (`DELIVERY_BUFFER`): a message in
///   the client's buffer is not held yet (see `held.rs`), so its `ack_wait`
///   runs while it waits there. With 16 MiB pulls a backlog came back
///   redelivered under a 1 s `ack_wait` on a loaded machine.
const PULL_BYTES: usize = 4 << 20;
/// Decoded deliveries waiting for the batcher, held and kept in progress.
pub(super) const DELIVERY_BUFFER: usize = 64;

/// Pulls from the durable consumer into `deliveries` until the bus closes.
/// Any error (broker restart, leader change, consumer lost) asks setup to
/// check the stream and consumer, and pulls again.
pub(super) async fn pull(shared: Arc<Shared>, deliveries: mpsc::Sender<Delivery>) {
    let mut closed = shared.closed.subscribe();
    let mut setup = shared.setup.subscribe();
    let mut attempt: u32 = 0;
    loop {
        let consumer = tokio::select! {
            ready = setup.wait_for(|s| matches!(s, Setup::Ready(_))) => match ready {
                Ok(ready) => match &*ready {
                    Setup::Ready(consumer) => PullConsumer::clone(consumer),
                    Setup::Pending(_) => continue,
                },
                Err(_) => return,
            },
            _ = until_closed(&mut closed) => return,
        };
        if attempt > 0 {
            tokio::select! {
                _ = tokio::time::sleep(reconnect_delay(attempt)) => {}
                _ = until_closed(&mut closed) => return,
            }
        }
        let messages = consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
            .max_bytes_per_batch(PULL_BYTES)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await;
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(error) => {
                if attempt == 0 {
                    tracing::warn!(%error, "cannot pull from NATS; retrying");
                }
                attempt = attempt.saturating_add(1);
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                biased;
                _ = until_closed(&mut closed) => {
                    return_buffered(&shared, &mut messages).await;
                    return;
                }
                next = messages.next() => next,
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    if attempt == 0 {
                        tracing::warn!(%error, "NATS pull failed; pulling again");
                    }
                    attempt = attempt.saturating_add(1);
                    shared.verify.notify_one();
                    return_buffered(&shared, &mut messages).await;
                    break;
                }
                None => break,
            };
            attempt = 0;
            let info = message.info().ok();
            let maybe_stored = maybe_stored(
                info.as_ref().map_or(1, |info| info.delivered),
                message
                    .headers
                    .as_ref()
                    .is_some_and(|headers| headers.get(REPUBLISHED_HEADER).is_some()),
                info.as_ref()
                    .map(|info| time::OffsetDateTime::now_utc() - info.published),
            );
            let reply = message.reply.clone();
            let (message, acker) = message.split();
            let batch = match wire::decode(&message.payload) {
                Ok(batch) => batch,
                Err(error) => {
                    // Redelivering cannot fix it: terminate, loudly.
                    tracing::error!(%error, subject = %message.subject, "dropping an undecodable NATS message");
                    let _ = acker.ack_with(AckKind::Term).await;
                    continue;
                }
            };
            shared.outstanding.fetch_add(1, Ordering::AcqRel);
            let held = reply.map(|reply| shared.held.hold(reply));
            let delivery = Delivery {
                batch,
                maybe_stored,
                ack: Box::new(NatsAck {
                    shared: Arc::clone(&shared),
                    acker: Some(acker),
                    held,
                }),
            };
            tokio::select! {
                sent = deliveries.send(delivery) => if sent.is_err() { return },
                // The delivery is dropped unsettled: `NatsAck::drop` hands it back.
                _ = until_closed(&mut closed) => {
                    return_buffered(&shared, &mut messages).await;
                    return;
                }
            }
        }
    }
}

/// Every third of `ack_wait`, keeps what this instance holds from
/// redelivery (see `held.rs`), until the bus closes.
pub(super) async fn keep_held_in_progress(shared: Arc<Shared>) {
    let mut closed = shared.closed.subscribe();
    let period = (shared.config.ack_wait / 3).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = until_closed(&mut closed) => return,
        }
        shared.held.keep_in_progress(&shared.client).await;
    }
}

/// Hands back, for immediate redelivery elsewhere, what the client buffered
/// but nobody took, instead of leaving it to wait for `ack_wait`.
async fn return_buffered(shared: &Shared, messages: &mut pull::Stream) {
    while let Some(Some(Ok(message))) = messages.next().now_or_never() {
        let _ = message.ack_with(AckKind::Nak(None)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), shared.client.flush()).await;
}

pub(super) struct NatsWorkQueue {
    pub(super) deliveries: mpsc::Receiver<Delivery>,
}

#[async_trait]
impl WorkQueue for NatsWorkQueue {
    /// Cancel-safe: receiving from a channel loses nothing when dropped.
    async fn next(&mut self) -> Option<Delivery> {
        self.deliveries.recv().await
    }
}

struct NatsAck {
    shared: Arc<Shared>,
    acker: Option<Acker>,
    /// Its token in [`Shared::held`], released when it settles.
    held: Option<u64>,
}

impl NatsAck {
    /// The acker, once: a delivery is settled one way only, and stops
    /// being kept in progress as it is.
    fn settling(&mut self) -> Option<Acker> {
        if let Some(token) = self.held.take() {
            self.shared.held.release(token);
        }
        self.acker.take()
    }
}

#[async_trait]
impl Ack for NatsAck {
    async fn ack(mut self: Box<Self>) {
        if let Some(acker) = self.settling() {
            self.shared.settle(&acker, AckKind::Ack).await;
        }
    }

    async fn retry_later(mut self: Box<Self>) {
        if let Some(acker) = self.settling() {
            // The delay keeps a dead store from turning into a redelivery storm.
            let delay = Some(Duration::from_secs(2));
            self.shared.settle(&acker, AckKind::Nak(delay)).await;
        }
    }
}

impl Drop for NatsAck {
    /// A delivery dropped unsettled (shutdown, a panic) is handed back so the
    /// broker redelivers it now rather than after `ack_wait`.
    fn drop(&mut self) {
        if let Some(acker) = self.settling() {
            let shared = Arc::clone(&self.shared);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { shared.settle(&acker, AckKind::Nak(None)).await });
            } else {
                shared.outstanding.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// A delivery that waited in the stream longer than this is checked against
/// the store before it is written. A delivery normally reaches a processor
/// within milliseconds of its publish (a batch flush is 200 ms at most).
const SUSPECT_AGE: Duration = Duration::from_secs(2);

/// Whether the store may already hold some of a delivery's logs, so the
/// process role checks before writing (see `process::Batcher::skip_stored`):
/// - delivered more than once (a consumer took it before and never
///   acknowledged it), or a publish retried after a lost ack, which the
///   broker may have stored twice: any part of it;
/// - older than [`SUSPECT_AGE`]: after a stream or consumer leader is
///   killed, the new leader may hand out again, counted as a first delivery,
///   a message the old one had delivered but whose delivery it never
///   replicated, and whose ack went to the dead node (the three-node
///   failover test stored one such batch twice). That store was one write
///   that succeeded, so the delivery is there whole or not at all. A backlog
///   (the store was down or slower than ingest) is this case too: probing
///   each delivery's ends keeps catching up at the store's full speed
///   (checking every id of every late delivery took ClickHouse 18.16 twice
///   as long as writing them, and the split pipeline fell to 22k logs/s).
fn maybe_stored(delivered: i64, republished: bool, age: Option<time::Duration>) -> MaybeStored {
    if delivered > 1 || republished {
        MaybeStored::Partly
    } else if age.is_some_and(|age| age > SUSPECT_AGE) {
        MaybeStored::Whole
    } else {
        MaybeStored::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivered_republished_or_late_deliveries_may_be_stored_already() {
        let fresh = Some(time::Duration::milliseconds(30));
        let late = Some(time::Duration::seconds(5));
        assert_eq!(maybe_stored(1, false, fresh), MaybeStored::No);
        assert_eq!(maybe_stored(2, false, fresh), MaybeStored::Partly);
        assert_eq!(maybe_stored(1, true, fresh), MaybeStored::Partly);
        assert_eq!(maybe_stored(2, false, late), MaybeStored::Partly);
        assert_eq!(maybe_stored(1, false, late), MaybeStored::Whole);
        assert_eq!(maybe_stored(1, false, None), MaybeStored::No);
    }
}
