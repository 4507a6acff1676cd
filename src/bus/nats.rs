//! The NATS JetStream bus for split roles: the only module that knows
//! async-nats.
//!
//! - Work queue: ingest publishes each batch (as one or more [`wire`]
//!   messages) to `<prefix>.logs`, captured by a JetStream stream with
//!   work-queue retention. `publish` returns once the broker has acknowledged
//!   every message of the batch, i.e. stored it. Small batches from
//!   concurrent requests are committed as a group: while `GROUPS_IN_FLIGHT`
//!   messages await their acks, the next requests' batches gather into one
//!   message, and each request answers when its group is acknowledged.
//!   JetStream costs per message, not per byte: one message per single-log
//!   request held the broker to ~11k requests/s on two cores.
//! - Every process instance pulls from one durable consumer, so each message
//!   goes to exactly one instance; it is acknowledged only after the store
//!   took it. An instance that dies leaves its messages unacknowledged and the
//!   broker redelivers them after `ack_wait`: at least once, never lost.
//! - Live tail: after the broker's ack, ingest also publishes the same bytes
//!   to the plain subject `<prefix>.live`; every query instance subscribes and
//!   feeds a local broadcast, so live tail is independent of the work queue.
//! - The stream is bounded (`max_bytes`, `max_age`, discard new): when it is
//!   full, publishes fail with [`BusError::Full`] and ingest answers 503.
//! - The broker may be down at start or at any time: the client reconnects
//!   by itself, a background task (re)creates the stream and consumer, and
//!   meanwhile `check` and `publish` answer `Unavailable`.

use super::wire;
use super::{Ack, Bus, BusError, Delivery, WorkQueue};
use crate::config::NatsConfig;
use crate::domain::LogBatch;
use async_nats::connection::State;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::context::{Context, ContextBuilder, PublishErrorKind};
use async_nats::jetstream::message::{AckKind, Acker};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::{Client, ConnectOptions};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// How long ingest waits for the broker to acknowledge a publish.
const PUBLISH_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Room left in each message for the protocol's own bytes.
const MESSAGE_HEADROOM: usize = 1024;
/// Messages one pull request asks for; also what an instance may hold
/// unacknowledged in its client buffer.
const PULL_BATCH: usize = 256;
/// Unacknowledged messages the broker lets all process instances hold.
const MAX_ACK_PENDING: i64 = 20_000;
/// Group commits awaiting their acks at once; more requests wait and join
/// the next group. Measured with `make bench-split`: 4 gave 36k requests/s,
/// 2 gives 41k (bigger groups, fewer messages for the broker to store) at
/// the same p99.
const GROUPS_IN_FLIGHT: usize = 2;
/// A batch encoded larger than this is published alone.
const GROUP_MEMBER_MAX_BYTES: usize = 64 * 1024;
/// Requests waiting to join a group.
const GROUP_QUEUE: usize = 8192;
/// Decoded deliveries waiting for the batcher.
const DELIVERY_BUFFER: usize = 64;
/// Batches a live subscriber may fall behind by before it is cut off.
const LIVE_BACKLOG: usize = 256;
/// JetStream's error code for "the stream refused to store the message":
/// with discard-new this is the stream being full.
const STREAM_STORE_FAILED: u64 = 10077;

/// What [`NatsBus::connect`] needs.
pub struct NatsSettings {
    pub url: String,
    pub config: NatsConfig,
    /// Subscribe to the live subject (query instances do).
    pub live: bool,
    /// Shown in the broker's connection list.
    pub client_name: String,
}

pub struct NatsBus {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    groups: mpsc::Sender<GroupMember>,
}

/// One request's encoded batch, waiting to be committed with others.
struct GroupMember {
    bytes: Vec<u8>,
    done: oneshot::Sender<Result<(), BusError>>,
}

struct Shared {
    /// For messages: the URL without credentials.
    url: String,
    client: Client,
    jetstream: Context,
    config: NatsConfig,
    work_subject: String,
    live_subject: String,
    setup: watch::Sender<Setup>,
    /// Asks the setup task to create the stream and consumer again (after
    /// the broker lost them, say).
    resetup: Notify,
    closed: watch::Sender<bool>,
    live: RwLock<Option<broadcast::Sender<LogBatch>>>,
    /// Deliveries handed out and not settled yet: the last one settled after
    /// close flushes the connection, so the final acks reach the broker
    /// before the process exits.
    outstanding: AtomicUsize,
}

#[derive(Clone)]
enum Setup {
    Pending(String),
    Ready(Box<PullConsumer>),
}

impl NatsBus {
    /// Starts connecting in the background and returns at once: a broker
    /// that is down at start is retried for ever rather than failing start-up.
    pub async fn connect(settings: NatsSettings) -> Result<NatsBus, BusError> {
        let url = crate::config::redact_url(&settings.url);
        let client = ConnectOptions::new()
            .name(&settings.client_name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .reconnect_delay_callback(|attempts| reconnect_delay(attempts as u32))
            .connect(settings.url.as_str())
            .await
            .map_err(|e| BusError::Unavailable(format!("invalid NATS url {url}: {e}")))?;
        let jetstream = ContextBuilder::new()
            .timeout(PUBLISH_ACK_TIMEOUT)
            .build(client.clone());
        let prefix = &settings.config.subject_prefix;
        let (live, _) = broadcast::channel(LIVE_BACKLOG);
        let shared = Arc::new(Shared {
            work_subject: format!("{prefix}.logs"),
            live_subject: format!("{prefix}.live"),
            setup: watch::Sender::new(Setup::Pending(format!("connecting to NATS at {url}"))),
            url,
            client,
            jetstream,
            config: settings.config,
            resetup: Notify::new(),
            closed: watch::Sender::new(false),
            live: RwLock::new(Some(live)),
            outstanding: AtomicUsize::new(0),
        });
        let (groups, members) = mpsc::channel(GROUP_QUEUE);
        let mut tasks = vec![
            tokio::spawn(maintain_setup(Arc::clone(&shared))),
            tokio::spawn(commit_groups(Arc::clone(&shared), members)),
        ];
        if settings.live {
            tasks.push(tokio::spawn(forward_live(Arc::clone(&shared))));
        }
        Ok(NatsBus {
            shared,
            tasks: Mutex::new(tasks),
            groups,
        })
    }
}

impl Shared {
    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Connected, with the stream and consumer in place.
    fn ready(&self) -> Result<(), BusError> {
        if self.is_closed() {
            return Err(BusError::Closed);
        }
        if self.client.connection_state() != State::Connected {
            return Err(BusError::Unavailable(format!(
                "not connected to NATS at {}; reconnecting",
                self.url
            )));
        }
        match &*self.setup.borrow() {
            Setup::Ready(_) => Ok(()),
            Setup::Pending(reason) => Err(BusError::Unavailable(reason.clone())),
        }
    }

    fn publish_error(&self, error: async_nats::jetstream::context::PublishError) -> BusError {
        let full = std::error::Error::source(&error)
            .and_then(|source| source.downcast_ref::<async_nats::jetstream::Error>())
            .is_some_and(|e| e.error_code().0 == STREAM_STORE_FAILED);
        if full {
            return BusError::Full(format!(
                "NATS stream {} is at its limit ({} bytes); batches wait for a process instance to store them",
                self.config.stream, self.config.stream_max_bytes
            ));
        }
        if error.kind() == PublishErrorKind::StreamNotFound {
            self.resetup.notify_one();
        }
        BusError::Unavailable(format!(
            "NATS at {} did not store the batch: {error}",
            self.url
        ))
    }

    /// Publishes `messages` to the work queue and waits for every ack
    /// together (one round trip however many there are), then copies them
    /// to the live subject.
    async fn publish_messages(&self, messages: Vec<Bytes>) -> Result<(), BusError> {
        self.ready()?;
        let mut acks = Vec::with_capacity(messages.len());
        for message in &messages {
            let ack = self
                .jetstream
                .publish(self.work_subject.clone(), message.clone())
                .await
                .map_err(|e| self.publish_error(e))?;
            acks.push(ack.into_future());
        }
        for acked in futures_util::future::join_all(acks).await {
            acked.map_err(|e| self.publish_error(e))?;
        }
        // Live tail only shows what the broker accepted. The flush puts the
        // live copy in the kernel's socket buffer before ingest answers 202,
        // so an instance killed right after answering still streams it.
        for message in messages {
            if let Err(error) = self
                .client
                .publish(self.live_subject.clone(), message)
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

    async fn ensure_stream_and_consumer(&self) -> Result<PullConsumer, String> {
        let config = &self.config;
        let stream_config = stream::Config {
            name: config.stream.clone(),
            subjects: vec![self.work_subject.clone()],
            retention: RetentionPolicy::WorkQueue,
            discard: DiscardPolicy::New,
            max_bytes: config.stream_max_bytes,
            max_age: config.stream_max_age,
            storage: StorageType::File,
            ..Default::default()
        };
        self.jetstream
            .create_or_update_stream(stream_config)
            .await
            .map_err(|e| format!("cannot create NATS stream {}: {e}", config.stream))?;
        let stream = self
            .jetstream
            .get_stream(&config.stream)
            .await
            .map_err(|e| format!("cannot open NATS stream {}: {e}", config.stream))?;
        stream
            .create_consumer(pull::Config {
                durable_name: Some(config.consumer.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                // Never give up on a batch: the stream's limits bound the backlog.
                max_deliver: -1,
                max_ack_pending: MAX_ACK_PENDING,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("cannot create NATS consumer {}: {e}", config.consumer))
    }

    /// Settles one delivery; see `outstanding`.
    async fn settle(&self, acker: &Acker, kind: AckKind) {
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
fn reconnect_delay(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(2))
}

/// Resolves once the bus is closed.
async fn until_closed(closed: &mut watch::Receiver<bool>) {
    let _ = closed.wait_for(|closed| *closed).await;
}

/// Creates the stream and consumer whenever they are missing, retrying with
/// backoff until the broker answers. Ends when the bus is closed.
async fn maintain_setup(shared: Arc<Shared>) {
    let mut closed = shared.closed.subscribe();
    let mut attempt: u32 = 0;
    loop {
        let outcome = if shared.client.connection_state() == State::Connected {
            shared.ensure_stream_and_consumer().await
        } else {
            Err(format!("cannot reach NATS at {}; retrying", shared.url))
        };
        match outcome {
            Ok(consumer) => {
                tracing::info!(
                    stream = %shared.config.stream,
                    consumer = %shared.config.consumer,
                    "NATS stream and consumer ready"
                );
                attempt = 0;
                shared.setup.send_replace(Setup::Ready(Box::new(consumer)));
                tokio::select! {
                    _ = shared.resetup.notified() => {
                        tracing::warn!(stream = %shared.config.stream, "NATS lost the stream or consumer; creating them again");
                        shared.setup.send_replace(Setup::Pending(format!(
                            "NATS stream {} is being created again", shared.config.stream
                        )));
                    }
                    _ = until_closed(&mut closed) => return,
                }
            }
            Err(error) => {
                // One warning per outage, then quiet retries.
                if attempt == 0 {
                    tracing::warn!(%error, "NATS not ready; retrying in the background");
                }
                shared.setup.send_replace(Setup::Pending(error));
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(reconnect_delay(attempt)) => {}
                    _ = until_closed(&mut closed) => return,
                }
            }
        }
    }
}

/// Gathers small batches into group messages (see the module comment).
/// A group's bytes are JSON lines, so concatenated batches decode as one.
async fn commit_groups(shared: Arc<Shared>, mut members: mpsc::Receiver<GroupMember>) {
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
        let mut bytes = first.bytes;
        let mut waiting = vec![first.done];
        while let Ok(next) = members.try_recv() {
            if bytes.len() + next.bytes.len() > limit {
                carried = Some(next);
                break;
            }
            bytes.extend_from_slice(&next.bytes);
            waiting.push(next.done);
        }
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let outcome = shared.publish_messages(vec![Bytes::from(bytes)]).await;
            for done in waiting {
                let _ = done.send(outcome.clone());
            }
            drop(slot);
        });
    }
}

/// Feeds the live subject into the local broadcast. Decoding is skipped
/// while nobody watches.
async fn forward_live(shared: Arc<Shared>) {
    let mut closed = shared.closed.subscribe();
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
    loop {
        let message = tokio::select! {
            message = subscription.next() => message,
            _ = until_closed(&mut closed) => return,
        };
        let Some(message) = message else { return };
        let Ok(live) = shared.live.read() else { return };
        let Some(live) = live.as_ref() else { return };
        if live.receiver_count() == 0 {
            continue;
        }
        match wire::decode(&message.payload) {
            Ok(batch) => {
                let _ = live.send(batch);
            }
            Err(error) => tracing::warn!(%error, "skipping an undecodable live message"),
        }
    }
}

/// Pulls from the durable consumer into `deliveries` until the bus closes.
/// Any error (broker restart, consumer lost) recreates the pull stream.
async fn pull(shared: Arc<Shared>, deliveries: mpsc::Sender<Delivery>) {
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
        let messages = consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
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
                tokio::select! {
                    _ = tokio::time::sleep(reconnect_delay(attempt)) => continue,
                    _ = until_closed(&mut closed) => return,
                }
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
                    tracing::warn!(%error, "NATS pull failed; pulling again");
                    if matches!(
                        error.kind(),
                        pull::MessagesErrorKind::ConsumerDeleted
                            | pull::MessagesErrorKind::NoResponders
                    ) {
                        shared.resetup.notify_one();
                    }
                    return_buffered(&shared, &mut messages).await;
                    break;
                }
                None => break,
            };
            attempt = 0;
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
            let delivery = Delivery {
                batch,
                ack: Box::new(NatsAck {
                    shared: Arc::clone(&shared),
                    acker: Some(acker),
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

/// Hands back, for immediate redelivery elsewhere, what the client buffered
/// but nobody took, instead of leaving it to wait for `ack_wait`.
async fn return_buffered(shared: &Shared, messages: &mut pull::Stream) {
    while let Some(Some(Ok(message))) = messages.next().now_or_never() {
        let _ = message.ack_with(AckKind::Nak(None)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), shared.client.flush()).await;
}

struct NatsWorkQueue {
    deliveries: mpsc::Receiver<Delivery>,
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
}

#[async_trait]
impl Ack for NatsAck {
    async fn ack(mut self: Box<Self>) {
        if let Some(acker) = self.acker.take() {
            self.shared.settle(&acker, AckKind::Ack).await;
        }
    }

    async fn retry_later(mut self: Box<Self>) {
        if let Some(acker) = self.acker.take() {
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
        if let Some(acker) = self.acker.take() {
            let shared = Arc::clone(&self.shared);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { shared.settle(&acker, AckKind::Nak(None)).await });
            } else {
                shared.outstanding.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

#[async_trait]
impl Bus for NatsBus {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn durable(&self) -> bool {
        true
    }

    async fn publish(&self, batch: LogBatch) -> Result<(), BusError> {
        let shared = &self.shared;
        shared.ready()?;
        let max_payload = shared.client.server_info().max_payload;
        let limit = max_payload.saturating_sub(MESSAGE_HEADROOM).max(1);
        let mut messages = wire::encode(&batch, limit)
            .map_err(|e| BusError::Unavailable(format!("cannot send to NATS: {e}")))?;
        if messages.len() == 1 && messages[0].len() <= GROUP_MEMBER_MAX_BYTES {
            let (done, committed) = oneshot::channel();
            let member = GroupMember {
                bytes: messages.remove(0),
                done,
            };
            self.groups
                .send(member)
                .await
                .map_err(|_| BusError::Closed)?;
            return committed.await.unwrap_or(Err(BusError::Closed));
        }
        shared
            .publish_messages(messages.into_iter().map(Bytes::from).collect())
            .await
    }

    async fn work_queue(&self) -> Result<Box<dyn WorkQueue>, BusError> {
        if self.shared.is_closed() {
            return Err(BusError::Closed);
        }
        let (sender, receiver) = mpsc::channel(DELIVERY_BUFFER);
        let task = tokio::spawn(pull(Arc::clone(&self.shared), sender));
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
        Ok(Box::new(NatsWorkQueue {
            deliveries: receiver,
        }))
    }

    fn subscribe_live(&self) -> broadcast::Receiver<LogBatch> {
        match self
            .shared
            .live
            .read()
            .ok()
            .and_then(|live| live.as_ref().map(|l| l.subscribe()))
        {
            Some(receiver) => receiver,
            None => broadcast::channel(1).1,
        }
    }

    async fn check(&self) -> Result<(), BusError> {
        self.shared.ready()
    }

    fn pending(&self) -> Option<u64> {
        // The broker counts messages, not logs; /health shows nothing
        // rather than a number in another unit.
        None
    }

    async fn close(&self) {
        self.shared.closed.send_replace(true);
        if let Ok(mut live) = self.shared.live.write() {
            live.take();
        }
        let tasks = match self.tasks.lock() {
            Ok(mut tasks) => std::mem::take(&mut *tasks),
            Err(_) => Vec::new(),
        };
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "NATS bus task failed");
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.shared.client.flush()).await;
    }
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
