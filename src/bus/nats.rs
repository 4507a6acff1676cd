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
//!   took it, and kept from redelivery from the moment it is taken by
//!   progress acks (`held.rs`), however long it waits its turn. An
//!   instance that dies leaves its messages unacknowledged and the broker
//!   redelivers them after `ack_wait`, flagged as redelivered (delivery count
//!   above 1) so the batcher writes only the logs the store lacks.
//! - Setup (`upkeep.rs`, [`stream`]): creates the stream and consumer when JetStream says
//!   they do not exist; an existing stream only ever gains what it lacks
//!   (subjects, replicas, limits). Process instances also purge acknowledged
//!   messages a 2.9 failover left in the stream.
//! - Live tail: after the broker's ack, ingest also publishes the same bytes
//!   to the plain subject `<prefix>.live`; a query instance subscribes while
//!   someone tails through it (`live.rs`) and feeds its [`LiveFanOut`], so
//!   live tail is independent of the work queue, and an instance nobody
//!   tails through receives none of it.
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
//!
//! - TLS and credentials (`connect.rs`, `credentials.rs`): `nats.tls_*`,
//!   and one way of signing in (user and password, token, nkey, a `.creds`
//!   JWT). While the client cannot connect, `check` says why and names the
//!   setting to fix (refused credentials, an untrusted certificate, a
//!   client certificate the server asks for).
//!
//! Files: this one connects and answers the `Bus` calls; `connect.rs` (the
//! client's options and what its events mean), `credentials.rs`,
//! `publish.rs` (group commits, acks, retries), `consume.rs` (pulls, acks),
//! `held.rs` (deliveries kept in progress), `live.rs` (the live feed),
//! `upkeep.rs` (the stream and consumer kept in place, fill
//! level, purges), `shared.rs` (what those tasks share), `stream.rs`,
//! `coordination.rs`, `settings.rs`.

mod connect;
mod consume;
mod coordination;
mod credentials;
mod held;
mod live;
mod publish;
mod settings;
mod shared;
mod stream;
mod upkeep;

pub use credentials::NatsCredentials;
pub use settings::{NatsConfig, RawNats};

use super::coordination::Coordination;
use super::live::LiveFanOut;
use super::{Bus, BusError, StreamFill, WorkQueue};
use crate::domain::LogBatch;
use crate::domain::settings::redact_url;
use crate::metrics::Metrics;
use async_nats::jetstream::context::ContextBuilder;
use async_trait::async_trait;
use connect::{Link, connect_options};
use consume::{DELIVERY_BUFFER, NatsWorkQueue, keep_held_in_progress, pull};
use coordination::NatsCoordination;
use live::forward_live;
use publish::{GROUP_QUEUE, GroupMember, commit_groups};
use shared::{Setup, Shared, reconnect_delay};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use upkeep::{maintain_setup, watch_stream};

/// How long one publish attempt waits for the broker's ack.
const PUBLISH_ACK_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// Whether this instance forwards the live subject (query instances).
    live: bool,
}

impl NatsBus {
    /// Starts connecting in the background and returns at once: a broker
    /// that is down at start is retried for ever rather than failing start-up.
    pub async fn connect(settings: NatsSettings) -> Result<NatsBus, BusError> {
        let config = settings.config;
        let url = config
            .servers
            .iter()
            .map(|server| redact_url(server))
            .collect::<Vec<_>>()
            .join(",");
        // When the connection dropped, so publishes can wait for the client
        // to reconnect (to another node, say) during a blip, but fail fast
        // once the broker has been away longer than a publish's budget; and
        // why connecting fails, for `/health`.
        let link = Link::default();
        let client = connect_options(&config, &settings.client_name, &link)?
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
            link,
            config,
            verify: Notify::new(),
            closed: watch::Sender::new(false),
            live: LiveFanOut::default(),
            outstanding: AtomicUsize::new(0),
            held: held::Held::default(),
            live_subscribed: watch::Sender::new(false),
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
            live: settings.live,
        })
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
        publish::publish(&self.shared, &self.groups, batch).await
    }

    async fn work_queue(&self) -> Result<Box<dyn WorkQueue>, BusError> {
        if self.shared.is_closed() {
            return Err(BusError::Closed);
        }
        let (sender, receiver) = mpsc::channel(DELIVERY_BUFFER);
        let pulling = tokio::spawn(pull(Arc::clone(&self.shared), sender));
        let keeping = tokio::spawn(keep_held_in_progress(Arc::clone(&self.shared)));
        self.shared.purging.store(true, Ordering::Relaxed);
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.extend([pulling, keeping]);
        }
        Ok(Box::new(NatsWorkQueue {
            deliveries: receiver,
        }))
    }

    fn subscribe_live(&self) -> broadcast::Receiver<LogBatch> {
        self.shared.live.subscribe()
    }

    async fn live_ready(&self) {
        if self.live {
            live::live_ready(&self.shared).await;
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

    fn stream_fill(&self) -> Option<StreamFill> {
        self.shared.fill.lock().ok().and_then(|fill| *fill)
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
