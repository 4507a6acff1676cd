//! Publishing to the work queue: small batches of concurrent requests are
//! committed as one group message, a larger batch as its own messages; each
//! publish waits for the broker's acks, retries what it did not take (marked
//! as republished) within `nats.publish_timeout`, then copies the messages
//! to the live subject.

use super::shared::{REPUBLISHED_HEADER, Shared, until_closed};
use crate::bus::{BusError, wire};
use crate::domain::LogBatch;
use crate::metrics::Metrics;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures_util::FutureExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

/// Room left in each message for the protocol's own bytes.
pub(super) const MESSAGE_HEADROOM: usize = 1024;
/// Group commits awaiting their acks at once; more requests wait and join
/// the next group. Measured with `make bench-split`: 4 gave 36k requests/s,
/// 2 gives 41k (bigger groups, fewer messages for the broker to store) at
/// the same p99.
const GROUPS_IN_FLIGHT: usize = 2;
/// A batch encoded larger than this is published alone.
const GROUP_MEMBER_MAX_BYTES: usize = 64 * 1024;
/// Requests waiting to join a group.
pub(super) const GROUP_QUEUE: usize = 8192;
/// JetStream's error code for "the stream refused to store the message".
/// With discard-new a full stream answers it ("maximum bytes exceeded",
/// "maximum messages exceeded"), but so does a stream whose store is closing
/// while its node stops ("store is closed"), which a retry on the next
/// leader gets past: only the first is "full".
const STREAM_STORE_FAILED: u64 = 10077;

/// One request's encoded batch, waiting to be committed with others.
pub(super) struct GroupMember {
    pub(super) message: wire::Message,
    /// When its request's publish budget runs out.
    pub(super) deadline: Instant,
    pub(super) done: oneshot::Sender<Result<(), BusError>>,
}

/// A message ready to publish: its bytes and its deduplication id.
pub(super) struct Outgoing {
    bytes: Bytes,
    id: String,
}

impl From<wire::Message> for Outgoing {
    fn from(message: wire::Message) -> Outgoing {
        Outgoing {
            bytes: Bytes::from(message.bytes),
            id: message.id,
        }
    }
}

/// What to do about a failed publish attempt.
enum Failure {
    /// The stream is full: retrying soon will not help; ingest says 503.
    Full(BusError),
    /// The broker may take it on a later attempt.
    Transient(String),
}

pub(super) async fn publish(
    shared: &Shared,
    groups: &mpsc::Sender<GroupMember>,
    batch: LogBatch,
) -> Result<(), BusError> {
    let deadline = Instant::now() + shared.config.publish_timeout;
    shared.ready_within(deadline).await?;
    let max_payload = shared.client.server_info().max_payload;
    let limit = max_payload.saturating_sub(MESSAGE_HEADROOM).max(1);
    let mut messages = wire::encode(&batch, limit)
        .map_err(|e| BusError::Unavailable(format!("cannot send to NATS: {e}")))?;
    if messages.len() == 1 && messages[0].bytes.len() <= GROUP_MEMBER_MAX_BYTES {
        let (done, committed) = oneshot::channel();
        let member = GroupMember {
            message: messages.remove(0),
            deadline,
            done,
        };
        groups.send(member).await.map_err(|_| BusError::Closed)?;
        return committed.await.unwrap_or(Err(BusError::Closed));
    }
    shared
        .publish_messages(messages.into_iter().map(Outgoing::from).collect(), deadline)
        .await
}

impl Shared {
    fn classify(&self, error: &PublishError) -> Failure {
        let full = std::error::Error::source(error)
            .and_then(|source| source.downcast_ref::<async_nats::jetstream::Error>())
            .is_some_and(|e| is_stream_full(e.error_code().0, &e.to_string()));
        if full {
            return Failure::Full(BusError::Full(format!(
                "NATS stream {} is at its limit ({} bytes); batches wait for a process instance to store them",
                self.config.stream,
                self.stream_max_bytes.load(Ordering::Relaxed)
            )));
        }
        // "No responders" arrives as `StreamNotFound`: the stream may be
        // missing, or electing a leader. Check, never tear down.
        if error.kind() == PublishErrorKind::StreamNotFound {
            self.verify.notify_one();
        }
        Failure::Transient(error.to_string())
    }

    /// Publishes `messages` to the work queue (each with its `Nats-Msg-Id`)
    /// and waits for every ack together, one round trip however many there
    /// are; retries what the broker did not take until `deadline`. Then
    /// copies them to the live subject.
    pub(super) async fn publish_messages(
        &self,
        messages: Vec<Outgoing>,
        deadline: Instant,
    ) -> Result<(), BusError> {
        self.ready_within(deadline).await?;
        let mut waiting: Vec<&Outgoing> = messages.iter().collect();
        let mut attempt: u32 = 0;
        loop {
            let mut retry = Vec::new();
            let mut last_error = None;
            let mut acks = Vec::with_capacity(waiting.len());
            for message in waiting {
                let mut publish = PublishMessage::build()
                    .payload(message.bytes.clone())
                    .message_id(&message.id);
                if attempt > 0 {
                    publish = publish.header(REPUBLISHED_HEADER, "1");
                }
                match self
                    .jetstream
                    .send_publish(self.work_subject.clone(), publish)
                    .await
                {
                    Ok(ack) => acks.push(ack.into_future().map(move |acked| (message, acked))),
                    Err(error) => match self.classify(&error) {
                        Failure::Full(full) => return Err(full),
                        Failure::Transient(reason) => {
                            retry.push(message);
                            last_error = Some(reason);
                        }
                    },
                }
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, futures_util::future::join_all(acks)).await {
                Ok(results) => {
                    for (message, acked) in results {
                        match acked {
                            Ok(ack) if ack.duplicate => {
                                Metrics::add(&self.metrics.bus_duplicate_publishes, 1);
                            }
                            Ok(_) => {}
                            Err(error) => match self.classify(&error) {
                                Failure::Full(full) => return Err(full),
                                Failure::Transient(reason) => {
                                    retry.push(message);
                                    last_error = Some(reason);
                                }
                            },
                        }
                    }
                }
                Err(_) => return Err(self.gave_up("no ack in time")),
            }
            if retry.is_empty() {
                break;
            }
            let pause = publish_backoff(attempt);
            if self.is_closed() || Instant::now() + pause >= deadline {
                return Err(self.gave_up(last_error.as_deref().unwrap_or("no ack")));
            }
            Metrics::add(&self.metrics.bus_publish_retries, retry.len() as u64);
            tracing::debug!(messages = retry.len(), attempt, error = ?last_error, "retrying a NATS publish");
            tokio::time::sleep(pause).await;
            self.ready_within(deadline).await?;
            attempt += 1;
            waiting = retry;
        }
        // Live tail only shows what the broker accepted. The flush puts the
        // live copy in the kernel's socket buffer before ingest answers 202,
        // so an instance killed right after answering still streams it.
        for message in messages {
            if let Err(error) = self
                .client
                .publish(self.live_subject.clone(), message.bytes)
                .await
            {
                tracing::debug!(%error, "live publish failed");
            }
        }
        if let Err(error) = self.client.flush().await {
            tracing::debug!(%error, "live flush failed");
        }
        Ok(())
    }

    pub(super) fn gave_up(&self, reason: &str) -> BusError {
        BusError::Unavailable(format!(
            "NATS at {} did not store the batch within {:?}: {reason}",
            self.url, self.config.publish_timeout
        ))
    }
}

/// 50 ms doubling to 1 s between publish attempts: a leader election takes
/// seconds, and the request waits for it within its budget.
fn publish_backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(1))
}

/// Gathers small batches into group messages (see the module comment).
/// A group's bytes are JSON lines, so concatenated batches decode as one;
/// its id is its first member's, which is in no other group.
pub(super) async fn commit_groups(shared: Arc<Shared>, mut members: mpsc::Receiver<GroupMember>) {
    let slots = Arc::new(Semaphore::new(GROUPS_IN_FLIGHT));
    let mut carried: Option<GroupMember> = None;
    let mut closed = shared.closed.subscribe();
    loop {
        // By the time the bus closes, ingest has answered every request; a
        // member still queued is dropped, and its request sees `Closed`.
        let first = match carried.take() {
            Some(member) => member,
            None => tokio::select! {
                member = members.recv() => match member {
                    Some(member) => member,
                    None => return,
                },
                _ = until_closed(&mut closed) => return,
            },
        };
        // Waiting for a slot is what lets the next group grow.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let limit = shared
            .client
            .server_info()
            .max_payload
            .saturating_sub(MESSAGE_HEADROOM)
            .max(1);
        let mut group: Option<(Vec<u8>, String, Instant)> = None;
        let mut waiting = Vec::new();
        let mut next = Some(first);
        while let Some(member) = next.take().or_else(|| members.try_recv().ok()) {
            // A request whose budget ran out while it queued is answered now.
            if member.deadline <= Instant::now() {
                let _ = member
                    .done
                    .send(Err(shared.gave_up("waited too long to be sent")));
                continue;
            }
            match &mut group {
                None => {
                    group = Some((member.message.bytes, member.message.id, member.deadline));
                }
                Some((bytes, _, _)) if bytes.len() + member.message.bytes.len() > limit => {
                    carried = Some(member);
                    break;
                }
                Some((bytes, _, deadline)) => {
                    bytes.extend_from_slice(&member.message.bytes);
                    *deadline = (*deadline).min(member.deadline);
                }
            }
            waiting.push(member.done);
        }
        let Some((bytes, first_id, deadline)) = group else {
            continue;
        };
        let id = format!("{first_id}*{}", waiting.len());
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let message = Outgoing {
                bytes: Bytes::from(bytes),
                id,
            };
            let outcome = shared.publish_messages(vec![message], deadline).await;
            for done in waiting {
                let _ = done.send(outcome.clone());
            }
            drop(slot);
        });
    }
}

/// Whether JetStream refused a message because the stream is at a limit
/// (its error text is the server's: nats-server's `ErrMaxBytes`,
/// `ErrMaxMsgs`, `ErrMaxMsgsPerSubject`).
fn is_stream_full(error_code: u64, text: &str) -> bool {
    error_code == STREAM_STORE_FAILED && text.contains("maximum ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_backoff_grows_and_caps() {
        assert_eq!(publish_backoff(0), Duration::from_millis(50));
        assert_eq!(publish_backoff(30), Duration::from_secs(1));
    }

    #[test]
    fn only_a_stream_at_its_limit_is_full() {
        for limit in [
            "maximum bytes exceeded",
            "maximum messages exceeded",
            "maximum messages per subject exceeded",
        ] {
            let text = format!("{limit} (code 503, error code 10077)");
            assert!(is_stream_full(10077, &text), "{text}");
        }
        // A stopping node's stream: the next leader takes the retry.
        assert!(!is_stream_full(
            10077,
            "store is closed (code 503, error code 10077)"
        ));
        assert!(!is_stream_full(
            10008,
            "maximum bytes exceeded (code 503, error code 10008)"
        ));
    }
}
