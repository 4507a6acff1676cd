//! The NATS JetStream bus for split roles: the only module (with its
//! submodules in `bus/nats/`) that knows async-nats.
//!
//! - Servers: `nats.url` lists one server or several (a cluster); the client
//!   connects to one and reconnects to any other, including the cluster
//!   members the server announces.
//! - Work queue: ingest publishes each batch (as one or more [`wire`]
//!   messages) to `<prefix>.logs`, captured by a JetStream stream with
//!   work-queue retention and `nats.replicas` copies. `publish` returns once
//!   the broker has acknowledged every message of the batch, i.e. stored it
//!   (on a majority of the replicas). Small batches from concurrent requests
//!   are committed as a group: while `GROUPS_IN_FLIGHT` messages await their
//!   acks, the next requests' batches gather into one message, and each
//!   request answers when its group is acknowledged. JetStream costs per
//!   message, not per byte: one message per single-log request held the
//!   broker to ~11k requests/s on two cores.
//! - Retries are deduplicated: every message carries `Nats-Msg-Id` (its first
//!   log's id and its log count), so a publish retried after a lost ack is
//!   stored once (within the stream's duplicate window, 2 minutes by
//!   default) while the first copy is in the stream; a retry also carries
//!   `Oglogstream-Republished`, so that if the first copy was consumed
//!   already, the processor writes only the logs the store lacks. What the broker cannot take yet ("no responders" while a
//!   stream leader is elected, an ack that never came) is retried for
//!   `nats.publish_timeout`, then ingest answers 503; it never makes the bus
//!   re-create the stream.
//! - Every process instance pulls from one durable consumer, so each message
//!   goes to exactly one instance; it is acknowledged only after the store
//!   took it, and kept from redelivery meanwhile by progress acks. An
//!   instance that dies leaves its messages unacknowledged and the broker
//!   redelivers them after `ack_wait`, flagged as redelivered (delivery count
//!   above 1) so the batcher writes only the logs the store lacks.
//! - Setup ([`stream`]): creates the stream and consumer when JetStream says
//!   they do not exist; an existing stream only ever gains what it lacks
//!   (subjects, replicas, limits). Process instances also purge acknowledged
//!   messages a 2.9 failover left in the stream.
//! - Live tail: after the broker's ack, ingest also publishes the same bytes
//!   to the plain subject `<prefix>.live`; every query instance subscribes and
//!   feeds its [`LiveFanOut`], so live tail is independent of the work queue.
//! - The stream is bounded (`max_bytes`, `max_age`, discard new): when it is
//!   full, publishes fail with [`BusError::Full`] and ingest answers 503.
//! - The broker may be down at start or at any time: the client reconnects
//!   by itself, a background task creates the stream and consumer, and
//!   meanwhile `check` answers `Unavailable`. A publish waits (within its
//!   budget) for a client that lost its server less than
//!   `nats.publish_timeout` ago to reconnect, so a node that stops in a
//!   cluster goes unnoticed; after that, publishes fail at once.
//! - Coordination ([`coordination`]): leases and state in JetStream
//!   key-value buckets.

mod coordination;
mod settings;
mod stream;

pub use settings::{NatsConfig, RawNats};

use super::coordination::Coordination;
use super::live::LiveFanOut;
use super::wire;
use super::{Ack, Bus, BusError, Delivery, StreamFill, WorkQueue};
use crate::domain::LogBatch;
use crate::metrics::Metrics;
use async_nats::connection::State;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::context::{Context, ContextBuilder, PublishError, PublishErrorKind};
use async_nats::jetstream::message::{AckKind, Acker, PublishMessage};
use async_nats::jetstream::stream::{DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::{Client, ConnectOptions};
use async_trait::async_trait;
use bytes::Bytes;
use coordination::NatsCoordination;
use futures_util::{FutureExt, StreamExt};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long one publish attempt waits for the broker's ack.
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
/// Marks a publish retried after its ack was lost. `Nats-Msg-Id` stops the
/// broker storing it twice only while the first copy is still in the stream:
/// a leader elected after the first copy was consumed and deleted rebuilds
/// its duplicate map from the messages it holds and stores the retry as new.
/// The processor treats a marked message like a redelivery and writes only
/// the logs the store lacks (seen: 50 logs twice in the leader-kill test).
const REPUBLISHED_HEADER: &str = "Oglogstream-Republished";
/// JetStream's error code for "the stream refused to store the message":
/// with discard-new this is the stream being full.
const STREAM_STORE_FAILED: u64 = 10077;
/// How often each instance reads the stream's state (one API request; a
/// process instance then looks for acknowledged messages left in it).
const STREAM_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// The least time between two checks that the stream and consumer exist.
const VERIFY_INTERVAL: Duration = Duration::from_secs(1);

/// What [`NatsBus::connect`] needs.
pub struct NatsSettings {
    /// Servers, names, limits and timings (`config.servers` must not be empty).
    pub config: NatsConfig,
    /// Subscribe to the live subject (query instances do).
    pub live: bool,
    /// Shown in the broker's connection list.
    pub client_name: String,
    /// Publish retries, duplicates and purges are counted here.
    pub metrics: Arc<Metrics>,
}

pub struct NatsBus {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    groups: mpsc::Sender<GroupMember>,
}

/// One request's encoded batch, waiting to be committed with others.
struct GroupMember {
    message: wire::Message,
    /// When its request's publish budget runs out.
    deadline: Instant,
    done: oneshot::Sender<Result<(), BusError>>,
}

/// A message ready to publish: its bytes and its deduplication id.
struct Outgoing {
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

struct Shared {
    /// For messages: the servers without credentials.
    url: String,
    client: Client,
    jetstream: Context,
    config: NatsConfig,
    work_subject: String,
    live_subject: String,
    setup: watch::Sender<Setup>,
    /// Asks the setup task to check that the stream and consumer exist
    /// (creating what JetStream says is missing); never to tear them down.
    verify: Notify,
    closed: watch::Sender<bool>,
    live: LiveFanOut,
    /// Deliveries handed out and not settled yet: the last one settled after
    /// close flushes the connection, so the final acks reach the broker
    /// before the process exits.
    outstanding: AtomicUsize,
    /// The stream's `max_bytes` in force (an operator may have raised it).
    stream_max_bytes: AtomicI64,
    /// Last seen fill level of the stream, for `/metrics`.
    fill: Mutex<Option<StreamFill>>,
    /// Set once this instance consumes (process role): it then also purges
    /// acknowledged messages left in the stream.
    purging: AtomicBool,
    /// Since when the client has been disconnected after having been
    /// connected (`None` while connected, or before the first connection).
    disconnected_since: Arc<Mutex<Option<Instant>>>,
    metrics: Arc<Metrics>,
    coordination: Arc<NatsCoordination>,
}

#[derive(Clone)]
enum Setup {
    Pending(String),
    Ready(Box<PullConsumer>),
}

/// What to do about a failed publish attempt.
enum Failure {
    /// The stream is full: retrying soon will not help; ingest says 503.
    Full(BusError),
    /// The broker may take it on a later attempt.
    Transient(String),
}

impl NatsBus {
    /// Starts connecting in the background and returns at once: a broker
    /// that is down at start is retried for ever rather than failing start-up.
    pub async fn connect(settings: NatsSettings) -> Result<NatsBus, BusError> {
        let config = settings.config;
        let url = config
            .servers
            .iter()
            .map(|server| crate::domain::settings::redact_url(server))
            .collect::<Vec<_>>()
            .join(",");
        // When the connection dropped, so publishes can wait for the client
        // to reconnect (to another node, say) during a blip, but fail fast
        // once the broker has been away longer than a publish's budget.
        let disconnected_since: Arc<Mutex<Option<Instant>>> = Arc::default();
        let link = Arc::clone(&disconnected_since);
        let client = ConnectOptions::new()
            .name(&settings.client_name)
            .event_callback(move |event| {
                let link = Arc::clone(&link);
                async move {
                    if let Ok(mut since) = link.lock() {
                        match event {
                            async_nats::Event::Disconnected => {
                                since.get_or_insert_with(Instant::now);
                            }
                            async_nats::Event::Connected => *since = None,
                            _ => {}
                        }
                    }
                }
            })
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .reconnect_delay_callback(|attempts| reconnect_delay(attempts as u32))
            .connect(config.servers.as_slice())
            .await
            .map_err(|e| BusError::Unavailable(format!("invalid NATS url {url}: {e}")))?;
        let jetstream = ContextBuilder::new()
            .timeout(PUBLISH_ACK_TIMEOUT)
            .build(client.clone());
        let prefix = &config.subject_prefix;
        let coordination = Arc::new(NatsCoordination::new(
            jetstream.clone(),
            &config.stream,
            config.replicas,
            config.lease_ttl,
        ));
        let shared = Arc::new(Shared {
            work_subject: format!("{prefix}.logs"),
            live_subject: format!("{prefix}.live"),
            setup: watch::Sender::new(Setup::Pending(format!("connecting to NATS at {url}"))),
            url,
            client,
            jetstream,
            stream_max_bytes: AtomicI64::new(config.stream_max_bytes),
            fill: Mutex::new(None),
            purging: AtomicBool::new(false),
            disconnected_since,
            config,
            verify: Notify::new(),
            closed: watch::Sender::new(false),
            live: LiveFanOut::default(),
            outstanding: AtomicUsize::new(0),
            metrics: settings.metrics,
            coordination,
        });
        let (groups, members) = mpsc::channel(GROUP_QUEUE);
        let mut tasks = vec![
            tokio::spawn(maintain_setup(Arc::clone(&shared))),
            tokio::spawn(commit_groups(Arc::clone(&shared), members)),
            tokio::spawn(watch_stream(Arc::clone(&shared))),
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

    /// Ready, or (after a connection loss less than a publish budget ago)
    /// ready once the client reconnects, if it does before `deadline`.
    async fn ready_within(&self, deadline: Instant) -> Result<(), BusError> {
        loop {
            let outcome = self.ready();
            let reconnecting = self.client.connection_state() != State::Connected
                && self
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

    fn classify(&self, error: &PublishError) -> Failure {
        let full = std::error::Error::source(error)
            .and_then(|source| source.downcast_ref::<async_nats::jetstream::Error>())
            .is_some_and(|e| e.error_code().0 == STREAM_STORE_FAILED);
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
    async fn publish_messages(
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

    fn gave_up(&self, reason: &str) -> BusError {
        BusError::Unavailable(format!(
            "NATS at {} did not store the batch within {:?}: {reason}",
            self.url, self.config.publish_timeout
        ))
    }

    /// Creates the stream when JetStream says it does not exist, or brings
    /// the existing one up to what this bus needs without lowering anything;
    /// then the consumer.
    async fn ensure_stream_and_consumer(&self) -> Result<PullConsumer, String> {
        let config = &self.config;
        let name = &config.stream;
        let wanted = stream::Wanted {
            subject: Some(self.work_subject.clone()),
            replicas: config.replicas,
            max_bytes: Some(config.stream_max_bytes),
            max_age: stream::MaxAge::AtLeast(config.stream_max_age),
        };
        let in_force = match stream::info(&self.jetstream, name).await? {
            Some(info) => stream::ensure(&self.jetstream, name, info, &wanted).await?,
            None => {
                let created = self
                    .jetstream
                    .create_stream(async_nats::jetstream::stream::Config {
                        name: name.clone(),
                        subjects: vec![self.work_subject.clone()],
                        retention: RetentionPolicy::WorkQueue,
                        discard: DiscardPolicy::New,
                        max_bytes: config.stream_max_bytes,
                        max_age: config.stream_max_age,
                        storage: StorageType::File,
                        num_replicas: config.replicas,
                        ..Default::default()
                    })
                    .await;
                match (created, stream::info(&self.jetstream, name).await?) {
                    (_, Some(info)) => {
                        tracing::info!(stream = %name, replicas = config.replicas, "NATS stream created");
                        info["config"].clone()
                    }
                    (Err(error), None) => {
                        return Err(format!("cannot create NATS stream {name}: {error}"));
                    }
                    (Ok(_), None) => return Err(format!("NATS stream {name} vanished")),
                }
            }
        };
        if let Some(bytes) = in_force["max_bytes"].as_i64() {
            self.stream_max_bytes.store(bytes, Ordering::Relaxed);
        }
        if in_force["retention"].as_str() != Some("workqueue") {
            tracing::warn!(
                stream = %name,
                retention = %in_force["retention"],
                "the NATS stream does not use work-queue retention: acknowledged batches stay in it until process instances purge them"
            );
        }
        self.jetstream
            .create_consumer_on_stream(
                pull::Config {
                    durable_name: Some(config.consumer.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    // Never give up on a batch: the stream's limits bound the backlog.
                    max_deliver: -1,
                    max_ack_pending: MAX_ACK_PENDING,
                    ..Default::default()
                },
                name,
            )
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

/// 50 ms doubling to 1 s between publish attempts: a leader election takes
/// seconds, and the request waits for it within its budget.
fn publish_backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(1))
}

/// Resolves once the bus is closed.
async fn until_closed(closed: &mut watch::Receiver<bool>) {
    let _ = closed.wait_for(|closed| *closed).await;
}

/// Creates the stream and consumer when they are missing, retrying with
/// backoff until the broker answers; then checks again whenever asked (a
/// publish met "no responders", a pull failed). A failed check keeps a
/// ready bus ready: during a leader election nobody answers, yet the
/// stream is there. Ends when the bus is closed.
async fn maintain_setup(shared: Arc<Shared>) {
    let mut closed = shared.closed.subscribe();
    let mut attempt: u32 = 0;
    let mut last_warning: Option<String> = None;
    loop {
        let outcome = if shared.client.connection_state() == State::Connected {
            shared.ensure_stream_and_consumer().await
        } else {
            Err(format!("cannot reach NATS at {}; retrying", shared.url))
        };
        let was_ready = matches!(&*shared.setup.borrow(), Setup::Ready(_));
        match outcome {
            Ok(consumer) => {
                if !was_ready || attempt > 0 {
                    tracing::info!(
                        stream = %shared.config.stream,
                        consumer = %shared.config.consumer,
                        "NATS stream and consumer ready"
                    );
                }
                attempt = 0;
                shared.setup.send_replace(Setup::Ready(Box::new(consumer)));
                tokio::select! {
                    _ = shared.verify.notified() => {}
                    _ = until_closed(&mut closed) => return,
                }
                tokio::select! {
                    _ = tokio::time::sleep(VERIFY_INTERVAL) => {}
                    _ = until_closed(&mut closed) => return,
                }
            }
            Err(error) => {
                // One warning per outage and reason, then quiet retries: a
                // broker that answers but refuses the stream (too little
                // storage for its limits, say) must not hide behind the
                // earlier "cannot reach".
                if attempt == 0 || last_warning.as_deref() != Some(error.as_str()) {
                    tracing::warn!(%error, "NATS not ready; retrying in the background");
                    last_warning = Some(error.clone());
                }
                if !was_ready {
                    shared.setup.send_replace(Setup::Pending(error));
                }
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
/// A group's bytes are JSON lines, so concatenated batches decode as one;
/// its id is its first member's, which is in no other group.
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

/// Feeds the live subject into the live fan-out. Decoding is skipped while
/// nobody watches.
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
        if !shared.live.is_watched() {
            continue;
        }
        match wire::decode(&message.payload) {
            Ok(batch) => shared.live.send(batch),
            Err(error) => tracing::warn!(%error, "skipping an undecodable live message"),
        }
    }
}

/// Pulls from the durable consumer into `deliveries` until the bus closes.
/// Any error (broker restart, leader change, consumer lost) asks setup to
/// check the stream and consumer, and pulls again.
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
        if attempt > 0 {
            tokio::select! {
                _ = tokio::time::sleep(reconnect_delay(attempt)) => {}
                _ = until_closed(&mut closed) => return,
            }
        }
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
            // Delivered more than once (a consumer took it before and never
            // acknowledged it), or a publish retried after a lost ack that
            // the broker may have stored twice: the store may hold some of
            // it already.
            let redelivered = message.info().is_ok_and(|info| info.delivered > 1)
                || message
                    .headers
                    .as_ref()
                    .is_some_and(|headers| headers.get(REPUBLISHED_HEADER).is_some());
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
                redelivered,
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

/// Every `STREAM_CHECK_INTERVAL`: reads how full the stream is (for
/// `/metrics`) and, on a process instance, purges acknowledged messages left
/// in it (see [`stream::purge_stale_acked`]), counting them.
async fn watch_stream(shared: Arc<Shared>) {
    let mut closed = shared.closed.subscribe();
    loop {
        if shared.ready().is_ok() {
            match stream::info(&shared.jetstream, &shared.config.stream).await {
                Ok(Some(info)) => {
                    shared.note_fill(&info);
                    if shared.purging.load(Ordering::Relaxed) {
                        shared.purge_stale(&info).await;
                    }
                }
                Ok(None) => shared.verify.notify_one(),
                Err(error) => tracing::debug!(%error, "cannot read the NATS stream's state"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(STREAM_CHECK_INTERVAL) => {}
            _ = until_closed(&mut closed) => return,
        }
    }
}

impl Shared {
    fn note_fill(&self, info: &serde_json::Value) {
        let bytes = info["state"]["bytes"].as_u64().unwrap_or(0);
        let max_bytes = info["config"]["max_bytes"].as_i64().unwrap_or(-1);
        self.stream_max_bytes.store(max_bytes, Ordering::Relaxed);
        if let Ok(mut fill) = self.fill.lock() {
            // An unlimited stream has no fill level to report.
            *fill = u64::try_from(max_bytes)
                .ok()
                .map(|max_bytes| StreamFill { bytes, max_bytes });
        }
    }

    async fn purge_stale(&self, info: &serde_json::Value) {
        match stream::purge_stale_acked(
            &self.jetstream,
            &self.config.stream,
            info,
            &self.config.consumer,
        )
        .await
        {
            Ok(0) => {}
            Ok(purged) => {
                Metrics::add(&self.metrics.bus_stale_messages_purged, purged);
                tracing::warn!(
                    stream = %self.config.stream,
                    purged,
                    "purged acknowledged messages left in the NATS stream"
                );
            }
            Err(error) => tracing::debug!(%error, "cannot check the stream for stale messages"),
        }
    }
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

    async fn in_progress(&self) {
        if let Some(acker) = &self.acker
            && let Err(error) = acker.ack_with(AckKind::Progress).await
        {
            tracing::debug!(%error, "could not extend a NATS delivery");
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
            self.groups
                .send(member)
                .await
                .map_err(|_| BusError::Closed)?;
            return committed.await.unwrap_or(Err(BusError::Closed));
        }
        shared
            .publish_messages(messages.into_iter().map(Outgoing::from).collect(), deadline)
            .await
    }

    async fn work_queue(&self) -> Result<Box<dyn WorkQueue>, BusError> {
        if self.shared.is_closed() {
            return Err(BusError::Closed);
        }
        let (sender, receiver) = mpsc::channel(DELIVERY_BUFFER);
        let pulling = tokio::spawn(pull(Arc::clone(&self.shared), sender));
        self.shared.purging.store(true, Ordering::Relaxed);
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(pulling);
        }
        Ok(Box::new(NatsWorkQueue {
            deliveries: receiver,
        }))
    }

    fn subscribe_live(&self) -> broadcast::Receiver<LogBatch> {
        self.shared.live.subscribe()
    }

    async fn check(&self) -> Result<(), BusError> {
        self.shared.ready()
    }

    fn pending(&self) -> Option<u64> {
        // The broker counts messages, not logs; /health shows nothing
        // rather than a number in another unit.
        None
    }

    fn stream_fill(&self) -> Option<StreamFill> {
        self.shared.fill.lock().ok().and_then(|fill| *fill)
    }

    fn redelivery_after(&self) -> Option<Duration> {
        Some(self.shared.config.ack_wait)
    }

    fn coordination(&self) -> Arc<dyn Coordination> {
        Arc::clone(&self.shared.coordination) as Arc<dyn Coordination>
    }

    async fn close(&self) {
        self.shared.closed.send_replace(true);
        self.shared.live.close();
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
        assert_eq!(publish_backoff(0), Duration::from_millis(50));
        assert_eq!(publish_backoff(30), Duration::from_secs(1));
    }
}
