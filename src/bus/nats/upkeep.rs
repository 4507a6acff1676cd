//! Keeping the stream and consumer there: created when missing and brought
//! up to what this bus needs (never lowered, see `stream.rs`), checked again
//! whenever a publish or a pull meets "no responders"; and, every
//! `STREAM_CHECK_INTERVAL`, the stream's fill level for `/metrics` and the
//! purge of acknowledged messages a failover left behind.

use super::shared::{Setup, Shared, reconnect_delay, until_closed};
use super::stream;
use crate::bus::StreamFill;
use crate::metrics::Metrics;
use async_nats::connection::State;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::{DiscardPolicy, RetentionPolicy, StorageType};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Unacknowledged messages the broker lets all process instances hold.
const MAX_ACK_PENDING: i64 = 20_000;
/// How often each instance reads the stream's state (one API request; a
/// process instance then looks for acknowledged messages left in it).
const STREAM_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// The least time between two checks that the stream and consumer exist.
const VERIFY_INTERVAL: Duration = Duration::from_secs(1);

/// Creates the stream and consumer when they are missing, retrying with
/// backoff until the broker answers; then checks again whenever asked (a
/// publish met "no responders", a pull failed). A failed check keeps a
/// ready bus ready: during a leader election nobody answers, yet the
/// stream is there. Ends when the bus is closed.
pub(super) async fn maintain_setup(shared: Arc<Shared>) {
    let mut closed = shared.closed.subscribe();
    let mut attempt: u32 = 0;
    let mut last_warning: Option<String> = None;
    loop {
        let outcome = if shared.client.connection_state() == State::Connected {
            shared.ensure_stream_and_consumer().await
        } else {
            Err(shared.not_connected("retrying"))
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

/// Every `STREAM_CHECK_INTERVAL`: reads how full the stream is (for
/// `/metrics`) and, on a process instance, purges acknowledged messages left
/// in it (see [`stream::purge_stale_acked`]), counting them.
pub(super) async fn watch_stream(shared: Arc<Shared>) {
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
