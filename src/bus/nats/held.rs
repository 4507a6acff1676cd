//! The deliveries this instance took and has not settled yet, kept from
//! redelivery. The broker hands a delivery to another consumer once
//! `ack_wait` passes without word from the one holding it; here a delivery
//! waits its turn (among the decoded deliveries, in the batch being
//! collected, while the writes before it finish) before its own write even
//! starts. In a backlog on a slow store that wait passed a short `ack_wait`,
//! and the whole held backlog came back redelivered to be checked id by id.
//! So the instance says "still working on it" for everything it holds, from
//! the moment it takes a delivery until it settles it.

use async_nats::{Client, Subject};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// JetStream's "work in progress" acknowledgement: restarts the delivery's
/// `ack_wait`.
const IN_PROGRESS: &[u8] = b"+WPI";

/// Reply subjects of the deliveries held, by a token their acks keep.
#[derive(Default)]
pub(super) struct Held {
    next: AtomicU64,
    replies: Mutex<HashMap<u64, Subject>>,
}

impl Held {
    /// Starts holding a delivery; its ack gives the token back to
    /// [`Held::release`] when it settles it.
    pub(super) fn hold(&self, reply: Subject) -> u64 {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(token, reply);
        token
    }

    pub(super) fn release(&self, token: u64) {
        self.lock().remove(&token);
    }

    fn replies(&self) -> Vec<Subject> {
        self.lock().values().cloned().collect()
    }

    /// Tells the broker each held delivery is still being worked on, which
    /// restarts its `ack_wait`.
    pub(super) async fn keep_in_progress(&self, client: &Client) {
        for reply in self.replies() {
            if let Err(error) = client.publish(reply, Bytes::from_static(IN_PROGRESS)).await {
                tracing::debug!(%error, "could not extend a NATS delivery");
            }
        }
    }

    /// Inserting and removing cannot panic half-way, so a poisoned map is
    /// whole and is used as it is.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Subject>> {
        self.replies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_is_held_from_its_hold_to_its_release() {
        let held = Held::default();
        let a = held.hold(Subject::from("$JS.ACK.a"));
        let b = held.hold(Subject::from("$JS.ACK.b"));
        assert_ne!(a, b);
        held.release(a);
        assert_eq!(held.replies(), vec![Subject::from("$JS.ACK.b")]);
        held.release(b);
        held.release(b);
        assert!(held.replies().is_empty());
    }
}
