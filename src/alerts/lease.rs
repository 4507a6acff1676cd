//! Whether this instance is the one that evaluates rules and sends their
//! notifications: it holds the `alerts` lease of the bus's coordination
//! (JetStream key-value with split roles; granted at once in one process).
//! Acting only while the lease is valid is what keeps two instances from
//! notifying the same transition.

use tokio::sync::watch;
use tokio::time::Instant;

/// A view of the lease: `Some(valid_until)` while this instance holds it.
#[derive(Clone)]
pub struct Leadership {
    valid_until: watch::Receiver<Option<Instant>>,
}

impl Leadership {
    pub fn new(valid_until: watch::Receiver<Option<Instant>>) -> Leadership {
        Leadership { valid_until }
    }

    /// Held now, and still valid.
    pub fn is_leader(&self) -> bool {
        self.valid_until
            .borrow()
            .is_some_and(|until| Instant::now() < until)
    }

    /// Waits until the lease is taken, lost or renewed; `false` once nobody
    /// will report changes any more.
    pub async fn changed(&mut self) -> bool {
        self.valid_until.changed().await.is_ok()
    }
}
