//! The live feed: what ingest copies to the live subject, forwarded into
//! this instance's live fan-out while someone tails. Subscribed, a query
//! instance receives every log the deployment ingests (as many bytes as
//! the work queue, and as much work for `nats-server` per instance), so it
//! subscribes only while a tail is open, and lets go once none has been
//! for [`IDLE_BEFORE_LETTING_GO`].

use super::shared::{Shared, reconnect_delay, until_closed};
use crate::bus::wire;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long the subject stays subscribed after the last tail closed: a
/// dashboard reconnecting does not resubscribe each time.
const IDLE_BEFORE_LETTING_GO: Duration = Duration::from_secs(5);
/// How often an unwatched subscription checks whether it may let go.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// How long [`live_ready`] waits for the subscription before a tail opens
/// anyway (NATS away: it shows logs once the client is back).
const READY_WAIT: Duration = Duration::from_secs(2);

/// Subscribes to the live subject while the fan-out has subscribers, and
/// forwards what arrives, until the bus closes.
pub(super) async fn forward_live(shared: Arc<Shared>) {
    let mut closed = shared.closed.subscribe();
    loop {
        while !shared.live.is_watched() {
            tokio::select! {
                () = shared.live.next_subscription() => {}
                _ = until_closed(&mut closed) => return,
            }
        }
        let mut attempt: u32 = 0;
        let mut subscription = loop {
            match shared.client.subscribe(shared.live_subject.clone()).await {
                Ok(subscription) => break subscription,
                Err(error) => {
                    tracing::warn!(%error, "cannot subscribe to the live subject; retrying");
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(reconnect_delay(attempt)) => {}
                        _ = until_closed(&mut closed) => return,
                    }
                }
            }
        };
        // The server has the subscription once it answered the ping a
        // flush sends after it: from then on a tail misses nothing.
        if tokio::time::timeout(READY_WAIT, shared.client.flush())
            .await
            .is_ok_and(|flushed| flushed.is_ok())
        {
            shared.live_subscribed.send_replace(true);
        }
        let mut watched_at = Instant::now();
        let mut check = tokio::time::interval(IDLE_CHECK);
        loop {
            tokio::select! {
                message = subscription.next() => {
                    let Some(message) = message else { break };
                    // A flush that timed out above (NATS away) left this
                    // false; the first message says otherwise. Read first:
                    // every live message passes here.
                    if !*shared.live_subscribed.borrow() {
                        shared.live_subscribed.send_replace(true);
                    }
                    if !shared.live.is_watched() {
                        continue;
                    }
                    watched_at = Instant::now();
                    match wire::decode(&message.payload) {
                        Ok(batch) => shared.live.send(batch),
                        Err(error) => tracing::warn!(%error, "skipping an undecodable live message"),
                    }
                }
                _ = check.tick() => {
                    if shared.live.is_watched() {
                        watched_at = Instant::now();
                    } else if watched_at.elapsed() >= IDLE_BEFORE_LETTING_GO {
                        break;
                    }
                }
                _ = until_closed(&mut closed) => return,
            }
        }
        shared.live_subscribed.send_replace(false);
        // Dropping the subscription unsubscribes.
        drop(subscription);
    }
}

/// Until the live subject is subscribed (see [`forward_live`]), at most
/// [`READY_WAIT`].
pub(super) async fn live_ready(shared: &Shared) {
    let mut subscribed = shared.live_subscribed.subscribe();
    let _ = tokio::time::timeout(READY_WAIT, subscribed.wait_for(|subscribed| *subscribed)).await;
}
