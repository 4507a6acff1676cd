//! Whether this instance is the one that evaluates rules and sends their
//! notifications: it holds the `alerts` lease of the bus's coordination
//! (JetStream key-value with split roles; granted at once in one process),
//! kept by a `LeaseKeeper`. Acting only while the lease is valid is what
//! keeps two instances from notifying the same transition.

use crate::bus::coordination::Lease;
use tokio::sync::watch;

/// The name of the lease every query instance competes for.
pub const LEASE_NAME: &str = "alerts";

/// A view of the lease: `Some` while this instance holds it.
#[derive(Clone)]
pub struct Leadership {
    held: watch::Receiver<Option<Lease>>,
}

impl Leadership {
    pub fn new(held: watch::Receiver<Option<Lease>>) -> Leadership {
        Leadership { held }
    }

    /// Held now, and still valid.
    pub fn is_leader(&self) -> bool {
        self.held.borrow().as_ref().is_some_and(Lease::is_valid)
    }

    /// Waits until the lease is taken, lost or renewed; `false` once nobody
    /// will report changes any more.
    pub async fn changed(&mut self) -> bool {
        self.held.changed().await.is_ok()
    }
}
