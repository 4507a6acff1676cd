//! Coordination between the instances sharing a bus: leases (at most one
//! holder at a time) and small key-value state written by compare-and-set.
//! The alert evaluator is the user: the query instance holding the `alerts`
//! lease evaluates the rules and keeps their state here, so the instance that
//! takes the lease over resumes where the last holder stopped.
//!
//! Guarantees of every implementation:
//! - [`Coordination::acquire`] takes a lease only when nobody holds it: never
//!   taken, released, or expired because its holder stopped renewing it for
//!   [`Coordination::lease_ttl`] (a killed holder's lease is free again after
//!   the TTL).
//! - a [`Lease`] is valid until [`Lease::valid_until`], counted from before
//!   the request that took or renewed it, so the holder's view ends no later
//!   than the broker's: act only while [`Lease::is_valid`]. Two holders are
//!   never valid at once (given clocks that run at the same rate).
//! - [`Coordination::renew`] extends the lease only if nobody took it
//!   meanwhile, else fails with [`CoordinationError::Conflict`];
//!   [`Coordination::release`] ends it at once if it is still ours.
//! - [`Coordination::store`] writes a value only if the key's revision is the
//!   one expected (`None`: the key must not exist) and returns the new
//!   revision; revisions of a key only grow.
//!
//! - [`Coordination::remember`] adds a key to a named expiring set, where
//!   [`Coordination::remembers`] finds it for at least the time asked (an
//!   implementation may keep it longer, never shorter): revoked sessions,
//!   which every query instance must refuse until they would have expired.
//!
//! Implementations: [`MemoryCoordination`] for the in-process bus (one
//! process: whoever asks first holds the lease), and JetStream key-value
//! buckets in `bus/nats/` for split roles.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoordinationError {
    /// Someone else changed the key (or took the lease) first.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The broker cannot answer now; retrying later may work.
    #[error("coordination unavailable: {0}")]
    Unavailable(String),
    /// The key or lease name cannot be used.
    #[error("invalid key {0:?}: use letters, digits, '-', '_', '=', '/' and inner '.'")]
    InvalidKey(String),
}

/// A lease this instance holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    /// The broker's revision of the lease, which a renewal must match.
    pub revision: u64,
    /// Until when the holder may act on it (see the module's guarantees).
    pub valid_until: Instant,
}

impl Lease {
    pub fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// The lease is ours.
    Held(Lease),
    /// Someone else holds it; their holder name.
    HeldBy(String),
}

/// A stored value and the revision it was written at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    pub revision: u64,
}

#[async_trait]
pub trait Coordination: Send + Sync {
    /// How long a lease outlives its holder's last renewal.
    fn lease_ttl(&self) -> Duration;

    /// Takes lease `name` for `holder` if nobody holds it.
    async fn acquire(&self, name: &str, holder: &str) -> Result<Acquired, CoordinationError>;

    /// Extends a lease we hold; `Conflict` if it expired and someone else
    /// took it (or it expired at the broker: take it again with `acquire`).
    async fn renew(&self, lease: &Lease) -> Result<Lease, CoordinationError>;

    /// Gives a lease up at once if it is still ours (on a graceful stop), so
    /// the next holder need not wait for the TTL.
    async fn release(&self, lease: &Lease) -> Result<(), CoordinationError>;

    /// The current value of `key` and its revision, if any.
    async fn load(&self, key: &str) -> Result<Option<Versioned>, CoordinationError>;

    /// Writes `value` if the key's revision is `expected` (`None`: only if
    /// the key does not exist); the new revision, or `Conflict`.
    async fn store(
        &self,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<u64, CoordinationError>;

    /// Adds `key` to the expiring set `set` for at least `keep_for`.
    /// Idempotent; `set` and `key` follow [`check_key`] (a set's name
    /// without dots or slashes).
    async fn remember(
        &self,
        set: &str,
        key: &str,
        keep_for: Duration,
    ) -> Result<(), CoordinationError>;

    /// Whether `key` is in the expiring set `set`.
    async fn remembers(&self, set: &str, key: &str) -> Result<bool, CoordinationError>;
}

/// A set's name becomes part of a bucket's name: letters, digits, `-`, `_`.
pub fn check_set(set: &str) -> Result<(), CoordinationError> {
    if !set.is_empty()
        && set
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(CoordinationError::InvalidKey(set.to_string()))
    }
}

/// Keys and lease names: what a JetStream key-value key allows, so both
/// implementations accept the same names.
pub fn check_key(key: &str) -> Result<(), CoordinationError> {
    let valid = !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=/.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(CoordinationError::InvalidKey(key.to_string()))
    }
}

/// Coordination inside one process (the in-memory bus): real leases and
/// revisions, without a broker.
pub struct MemoryCoordination {
    ttl: Duration,
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    /// name -> (holder, revision, expires at)
    leases: HashMap<String, (String, u64, Instant)>,
    values: HashMap<String, Versioned>,
    /// (set, key) -> forgotten at
    remembered: HashMap<(String, String), Instant>,
    revision: u64,
}

impl MemoryCoordination {
    pub fn new(ttl: Duration) -> MemoryCoordination {
        MemoryCoordination {
            ttl,
            state: Mutex::new(MemoryState::default()),
        }
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, CoordinationError> {
        self.state
            .lock()
            .map_err(|_| CoordinationError::Unavailable("coordination state poisoned".into()))
    }
}

#[async_trait]
impl Coordination for MemoryCoordination {
    fn lease_ttl(&self) -> Duration {
        self.ttl
    }

    async fn acquire(&self, name: &str, holder: &str) -> Result<Acquired, CoordinationError> {
        check_key(name)?;
        let now = Instant::now();
        let mut state = self.state()?;
        if let Some((current, _, expires)) = state.leases.get(name)
            && *expires > now
        {
            return Ok(Acquired::HeldBy(current.clone()));
        }
        state.revision += 1;
        let revision = state.revision;
        state.leases.insert(
            name.to_string(),
            (holder.to_string(), revision, now + self.ttl),
        );
        Ok(Acquired::Held(Lease {
            name: name.to_string(),
            holder: holder.to_string(),
            revision,
            valid_until: now + self.ttl,
        }))
    }

    async fn renew(&self, lease: &Lease) -> Result<Lease, CoordinationError> {
        let now = Instant::now();
        let mut state = self.state()?;
        state.revision += 1;
        let revision = state.revision;
        match state.leases.get_mut(&lease.name) {
            Some((holder, current, expires)) if *current == lease.revision && *expires > now => {
                *current = revision;
                *expires = now + self.ttl;
                Ok(Lease {
                    holder: holder.clone(),
                    revision,
                    valid_until: now + self.ttl,
                    ..lease.clone()
                })
            }
            _ => Err(CoordinationError::Conflict(format!(
                "lease {} was lost",
                lease.name
            ))),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), CoordinationError> {
        let mut state = self.state()?;
        if state
            .leases
            .get(&lease.name)
            .is_some_and(|(_, revision, _)| *revision == lease.revision)
        {
            state.leases.remove(&lease.name);
        }
        Ok(())
    }

    async fn load(&self, key: &str) -> Result<Option<Versioned>, CoordinationError> {
        check_key(key)?;
        Ok(self.state()?.values.get(key).cloned())
    }

    async fn store(
        &self,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<u64, CoordinationError> {
        check_key(key)?;
        let mut state = self.state()?;
        let current = state.values.get(key).map(|v| v.revision);
        if current != expected {
            return Err(CoordinationError::Conflict(format!(
                "{key} is at revision {current:?}, not {expected:?}"
            )));
        }
        state.revision += 1;
        let revision = state.revision;
        state.values.insert(
            key.to_string(),
            Versioned {
                value: value.to_vec(),
                revision,
            },
        );
        Ok(revision)
    }

    async fn remember(
        &self,
        set: &str,
        key: &str,
        keep_for: Duration,
    ) -> Result<(), CoordinationError> {
        check_set(set)?;
        check_key(key)?;
        let now = Instant::now();
        let mut state = self.state()?;
        // Forgetting the expired on each addition keeps the set as small as
        // what is still remembered.
        state.remembered.retain(|_, until| *until > now);
        let until = now + keep_for;
        let entry = state
            .remembered
            .entry((set.to_string(), key.to_string()))
            .or_insert(until);
        *entry = (*entry).max(until);
        Ok(())
    }

    async fn remembers(&self, set: &str, key: &str) -> Result<bool, CoordinationError> {
        check_set(set)?;
        check_key(key)?;
        let state = self.state()?;
        Ok(state
            .remembered
            .get(&(set.to_string(), key.to_string()))
            .is_some_and(|until| *until > Instant::now()))
    }
}

/// Holds a lease for as long as it runs: takes it whenever it is free,
/// renews it every third of the TTL, drops it (to `None`) as soon as it is
/// lost or its validity runs out without a renewal, and releases it on
/// [`LeaseKeeper::stop`]. [`LeaseKeeper::held`] tells when to act. Dropped
/// without `stop`, it abandons the lease, which then expires after its TTL
/// as if the process had died.
pub struct LeaseKeeper {
    held: watch::Receiver<Option<Lease>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl LeaseKeeper {
    pub fn start(coordination: Arc<dyn Coordination>, name: &str, holder: &str) -> LeaseKeeper {
        let (held_sender, held) = watch::channel(None);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(keep_lease(
            coordination,
            name.to_string(),
            holder.to_string(),
            held_sender,
            stopped,
        ));
        LeaseKeeper {
            held,
            stop,
            task: Some(task),
        }
    }

    /// `Some` while this instance holds the lease.
    pub fn held(&self) -> watch::Receiver<Option<Lease>> {
        self.held.clone()
    }

    /// Releases the lease (if held) and ends the keeper.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::error!(%error, "lease keeper failed");
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn keep_lease(
    coordination: Arc<dyn Coordination>,
    name: String,
    holder: String,
    held: watch::Sender<Option<Lease>>,
    mut stopped: watch::Receiver<bool>,
) {
    let ttl = coordination.lease_ttl();
    let period = ttl / 3;
    let mut current: Option<Lease> = None;
    let mut next_attempt = Instant::now();
    loop {
        // Wake for the next attempt, or when the lease's validity runs out.
        let wake = match &current {
            Some(lease) => next_attempt.min(lease.valid_until),
            None => next_attempt,
        };
        tokio::select! {
            _ = sleep_until(wake) => {}
            _ = stopped.wait_for(|stop| *stop) => break,
        }
        if let Some(lease) = &current
            && !lease.is_valid()
        {
            tracing::warn!(lease = %name, "lease ran out before it could be renewed");
            current = None;
            held.send_replace(None);
        }
        if Instant::now() < next_attempt {
            continue;
        }
        let attempt = match &current {
            Some(lease) => coordination.renew(lease).await.map(Acquired::Held),
            None => coordination.acquire(&name, &holder).await,
        };
        next_attempt = Instant::now() + period;
        match attempt {
            Ok(Acquired::Held(lease)) => {
                if current.is_none() {
                    tracing::info!(lease = %name, %holder, "lease taken");
                }
                current = Some(lease.clone());
                held.send_replace(Some(lease));
            }
            Ok(Acquired::HeldBy(other)) => {
                tracing::debug!(lease = %name, holder = %other, "lease held elsewhere");
            }
            Err(CoordinationError::Conflict(reason)) => {
                tracing::warn!(lease = %name, %reason, "lease lost");
                current = None;
                held.send_replace(None);
                // Free again, perhaps: it expired at the broker.
                next_attempt = Instant::now();
            }
            Err(error) => {
                // Keep what we hold until its validity ends; retry sooner.
                tracing::debug!(lease = %name, %error, "lease attempt failed");
                next_attempt = Instant::now() + period.min(Duration::from_secs(1));
            }
        }
    }
    if let Some(lease) = current.take() {
        held.send_replace(None);
        if let Err(error) = coordination.release(&lease).await {
            tracing::warn!(lease = %name, %error, "could not release the lease; it expires after its TTL");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keeper_holds_renews_and_hands_over_on_stop() {
        let coordination: Arc<dyn Coordination> =
            Arc::new(MemoryCoordination::new(Duration::from_secs(3)));
        let first = LeaseKeeper::start(Arc::clone(&coordination), "alerts", "a");
        let mut held = first.held();
        held.wait_for(|lease| lease.is_some()).await.unwrap();
        let second = LeaseKeeper::start(Arc::clone(&coordination), "alerts", "b");
        // Many TTLs pass: a keeps it by renewing, b never gets it.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(
            held.borrow().as_ref().map(|l| l.holder.clone()),
            Some("a".into())
        );
        assert!(second.held().borrow().is_none());
        first.stop().await;
        assert!(held.borrow().is_none());
        let mut taken = second.held();
        tokio::time::timeout(Duration::from_secs(2), taken.wait_for(|l| l.is_some()))
            .await
            .expect("released: b takes it on its next attempt, within a third of the TTL")
            .unwrap();
        second.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_expiring_set_remembers_for_as_long_as_asked() {
        let coordination = MemoryCoordination::new(Duration::from_secs(3));
        let day = Duration::from_secs(86_400);
        coordination.remember("revoked", "a", day).await.unwrap();
        coordination
            .remember("revoked", "b", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(coordination.remembers("revoked", "a").await.unwrap());
        assert!(!coordination.remembers("other", "a").await.unwrap());
        assert!(!coordination.remembers("revoked", "c").await.unwrap());
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(!coordination.remembers("revoked", "b").await.unwrap());
        // A shorter second remember never shortens the first.
        coordination
            .remember("revoked", "a", Duration::from_secs(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(coordination.remembers("revoked", "a").await.unwrap());
        assert_eq!(coordination.state().unwrap().remembered.len(), 1);
        assert!(matches!(
            coordination.remember("bad.set", "a", day).await,
            Err(CoordinationError::InvalidKey(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn keeper_gives_up_a_lease_it_cannot_renew() {
        /// Grants once, then cannot be reached.
        struct Flaky(MemoryCoordination, std::sync::atomic::AtomicBool);
        #[async_trait]
        impl Coordination for Flaky {
            fn lease_ttl(&self) -> Duration {
                self.0.lease_ttl()
            }
            async fn acquire(
                &self,
                name: &str,
                holder: &str,
            ) -> Result<Acquired, CoordinationError> {
                if self.1.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    return Err(CoordinationError::Unavailable("down".into()));
                }
                self.0.acquire(name, holder).await
            }
            async fn renew(&self, _: &Lease) -> Result<Lease, CoordinationError> {
                Err(CoordinationError::Unavailable("down".into()))
            }
            async fn release(&self, lease: &Lease) -> Result<(), CoordinationError> {
                self.0.release(lease).await
            }
            async fn load(&self, key: &str) -> Result<Option<Versioned>, CoordinationError> {
                self.0.load(key).await
            }
            async fn store(
                &self,
                key: &str,
                value: &[u8],
                expected: Option<u64>,
            ) -> Result<u64, CoordinationError> {
                self.0.store(key, value, expected).await
            }
            async fn remember(
                &self,
                set: &str,
                key: &str,
                keep_for: Duration,
            ) -> Result<(), CoordinationError> {
                self.0.remember(set, key, keep_for).await
            }
            async fn remembers(&self, set: &str, key: &str) -> Result<bool, CoordinationError> {
                self.0.remembers(set, key).await
            }
        }
        let keeper = LeaseKeeper::start(
            Arc::new(Flaky(
                MemoryCoordination::new(Duration::from_secs(3)),
                Default::default(),
            )),
            "alerts",
            "a",
        );
        let mut held = keeper.held();
        held.wait_for(|lease| lease.is_some()).await.unwrap();
        let taken_at = Instant::now();
        held.wait_for(|lease| lease.is_none()).await.unwrap();
        assert!(
            taken_at.elapsed() <= Duration::from_secs(3),
            "dropped when its validity ran out, not later"
        );
        keeper.stop().await;
    }
}
