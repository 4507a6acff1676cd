//! [`Coordination`] on JetStream key-value buckets (NATS 2.9 semantics):
//!
//! - leases live in `<stream>_leases`, whose `max_age` is the lease TTL
//!   (2.9 has no per-key TTL): a lease is one key whose value is its
//!   holder. `create` writes it only if the key is absent, which it is
//!   again once its last write is older than the TTL (the server drops it)
//!   or after a release (a delete marker). A renewal is an `update` at the
//!   revision the holder last wrote, so it fails once anyone else wrote.
//! - state lives in `<stream>_state` (no expiry): `create` when the caller
//!   expects no value, else `update` at the expected revision.
//!
//! - an expiring set `<name>` lives in `<stream>_<name>`, whose `max_age`
//!   is at least the longest time it was asked to remember a key (never
//!   lowered, so an instance asking for less cannot shorten another's):
//!   a key is present until the server drops its last write.
//!
//! Every bucket keeps one revision per key and `nats.replicas` copies. They
//! are created on first use, so instances that never coordinate never touch
//! them.

use super::stream::{self, MaxAge, Wanted};
use crate::bus::coordination::{
    Acquired, Coordination, CoordinationError, Lease, Versioned, check_key, check_set,
};
use async_nats::jetstream::context::Context;
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

pub struct NatsCoordination {
    jetstream: Context,
    lease_bucket: String,
    state_bucket: String,
    replicas: usize,
    ttl: Duration,
    buckets: OnceCell<(kv::Store, kv::Store)>,
    stream: String,
    /// Expiring sets' buckets opened so far, by set.
    sets: tokio::sync::Mutex<HashMap<String, kv::Store>>,
}

fn unavailable(error: impl std::fmt::Display) -> CoordinationError {
    CoordinationError::Unavailable(error.to_string())
}

impl NatsCoordination {
    pub fn new(jetstream: Context, stream: &str, replicas: usize, ttl: Duration) -> Self {
        NatsCoordination {
            jetstream,
            lease_bucket: format!("{stream}_leases"),
            state_bucket: format!("{stream}_state"),
            replicas,
            ttl,
            buckets: OnceCell::new(),
            stream: stream.to_string(),
            sets: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The bucket of an expiring set: created (or its `max_age` raised) to
    /// keep keys at least `keep_for` when that is given; `None` when it is
    /// not given and the bucket does not exist (nothing was ever remembered).
    async fn set_bucket(
        &self,
        set: &str,
        keep_for: Option<Duration>,
    ) -> Result<Option<kv::Store>, CoordinationError> {
        check_set(set)?;
        let mut sets = self.sets.lock().await;
        let bucket = format!("{}_{set}", self.stream);
        let stream_name = format!("KV_{bucket}");
        let known = sets.get(set).cloned();
        match (known, keep_for) {
            (Some(store), None) => return Ok(Some(store)),
            (None, None) => {
                if stream::info(&self.jetstream, &stream_name)
                    .await
                    .map_err(unavailable)?
                    .is_none()
                {
                    return Ok(None);
                }
            }
            (_, Some(keep_for)) => {
                match stream::info(&self.jetstream, &stream_name)
                    .await
                    .map_err(unavailable)?
                {
                    Some(info) => {
                        let wanted = Wanted {
                            subject: None,
                            replicas: self.replicas,
                            max_bytes: None,
                            max_age: MaxAge::AtLeast(keep_for),
                        };
                        stream::ensure(&self.jetstream, &stream_name, info, &wanted)
                            .await
                            .map_err(unavailable)?;
                    }
                    None => {
                        let config = stream::bucket_config(&bucket, keep_for, self.replicas);
                        stream::create(&self.jetstream, &stream_name, config)
                            .await
                            .map_err(unavailable)?;
                    }
                }
            }
        }
        let store = self
            .jetstream
            .get_key_value(&bucket)
            .await
            .map_err(|error| unavailable(format!("cannot open bucket {bucket}: {error}")))?;
        sets.insert(set.to_string(), store.clone());
        Ok(Some(store))
    }

    /// (leases, state), created or brought up to date on first use.
    async fn buckets(&self) -> Result<&(kv::Store, kv::Store), CoordinationError> {
        self.buckets
            .get_or_try_init(|| async {
                let leases = self
                    .ensure_bucket(&self.lease_bucket, Some(self.ttl))
                    .await?;
                let state = self.ensure_bucket(&self.state_bucket, None).await?;
                Ok((leases, state))
            })
            .await
    }

    async fn ensure_bucket(
        &self,
        bucket: &str,
        ttl: Option<Duration>,
    ) -> Result<kv::Store, CoordinationError> {
        let stream_name = format!("KV_{bucket}");
        match stream::info(&self.jetstream, &stream_name)
            .await
            .map_err(unavailable)?
        {
            Some(info) => {
                let wanted = Wanted {
                    subject: None,
                    replicas: self.replicas,
                    max_bytes: None,
                    max_age: MaxAge::Exactly(ttl.unwrap_or(Duration::ZERO)),
                };
                stream::ensure(&self.jetstream, &stream_name, info, &wanted)
                    .await
                    .map_err(unavailable)?;
            }
            None => {
                let config =
                    stream::bucket_config(bucket, ttl.unwrap_or(Duration::ZERO), self.replicas);
                stream::create(&self.jetstream, &stream_name, config)
                    .await
                    .map_err(unavailable)?;
            }
        }
        self.jetstream
            .get_key_value(bucket)
            .await
            .map_err(|error| unavailable(format!("cannot open bucket {bucket}: {error}")))
    }
}

#[async_trait]
impl Coordination for NatsCoordination {
    fn lease_ttl(&self) -> Duration {
        self.ttl
    }

    async fn acquire(&self, name: &str, holder: &str) -> Result<Acquired, CoordinationError> {
        check_key(name)?;
        let (leases, _) = self.buckets().await?;
        let started = Instant::now();
        match leases
            .create(name, Bytes::copy_from_slice(holder.as_bytes()))
            .await
        {
            Ok(revision) => Ok(Acquired::Held(Lease {
                name: name.to_string(),
                holder: holder.to_string(),
                revision,
                valid_until: started + self.ttl,
            })),
            Err(error) if error.kind() == CreateErrorKind::AlreadyExists => {
                let current = leases.get(name).await.map_err(unavailable)?;
                Ok(Acquired::HeldBy(
                    current
                        .map(|value| String::from_utf8_lossy(&value).into_owned())
                        .unwrap_or_default(),
                ))
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn renew(&self, lease: &Lease) -> Result<Lease, CoordinationError> {
        let (leases, _) = self.buckets().await?;
        let started = Instant::now();
        match leases
            .update(
                &lease.name,
                Bytes::copy_from_slice(lease.holder.as_bytes()),
                lease.revision,
            )
            .await
        {
            Ok(revision) => Ok(Lease {
                revision,
                valid_until: started + self.ttl,
                ..lease.clone()
            }),
            Err(error) if error.kind() == UpdateErrorKind::WrongLastRevision => Err(
                CoordinationError::Conflict(format!("lease {} was lost", lease.name)),
            ),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), CoordinationError> {
        let (leases, _) = self.buckets().await?;
        match leases
            .delete_expect_revision(&lease.name, Some(lease.revision))
            .await
        {
            Ok(()) => Ok(()),
            // Someone else's now: nothing of ours to release.
            Err(error) if error.kind() == UpdateErrorKind::WrongLastRevision => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn load(&self, key: &str) -> Result<Option<Versioned>, CoordinationError> {
        check_key(key)?;
        let (_, state) = self.buckets().await?;
        let entry = state.entry(key).await.map_err(unavailable)?;
        Ok(entry
            .filter(|entry| entry.operation == Operation::Put)
            .map(|entry| Versioned {
                value: entry.value.to_vec(),
                revision: entry.revision,
            }))
    }

    async fn store(
        &self,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<u64, CoordinationError> {
        check_key(key)?;
        let (_, state) = self.buckets().await?;
        let value = Bytes::copy_from_slice(value);
        let conflict = || {
            CoordinationError::Conflict(format!(
                "{key} is not at the expected revision {expected:?}"
            ))
        };
        match expected {
            None => state.create(key, value).await.map_err(|error| {
                if error.kind() == CreateErrorKind::AlreadyExists {
                    conflict()
                } else {
                    unavailable(error)
                }
            }),
            Some(revision) => state.update(key, value, revision).await.map_err(|error| {
                if error.kind() == UpdateErrorKind::WrongLastRevision {
                    conflict()
                } else {
                    unavailable(error)
                }
            }),
        }
    }

    async fn remember(
        &self,
        set: &str,
        key: &str,
        keep_for: Duration,
    ) -> Result<(), CoordinationError> {
        check_key(key)?;
        let Some(bucket) = self.set_bucket(set, Some(keep_for)).await? else {
            return Err(unavailable(format!("bucket of set {set} missing")));
        };
        bucket
            .put(key, Bytes::from_static(b"1"))
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn remembers(&self, set: &str, key: &str) -> Result<bool, CoordinationError> {
        check_key(key)?;
        let Some(bucket) = self.set_bucket(set, None).await? else {
            return Ok(false);
        };
        let entry = bucket.entry(key).await.map_err(unavailable)?;
        Ok(entry.is_some_and(|entry| entry.operation == Operation::Put))
    }
}
