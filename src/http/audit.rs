//! The audit log's writer. Events become log records of the reserved
//! service (`domain::audit::audit_record`) and are published through the
//! bus like ingested logs, so every store and topology keeps them; the
//! process role stores them, the query role reads them.
//!
//! Recording never waits on the bus: events queue (bounded) for one
//! publishing task. When the queue is full (a flood of refusals), a refusal
//! is dropped and counted (`oglogstream_audit_events_dropped_total`), while
//! a sign-in or a change waits for room on a task of its own, so no change
//! goes unrecorded for want of room.

use crate::bus::{Bus, BusError};
use crate::domain::LogBatch;
use crate::domain::audit::{AuditEvent, Outcome, audit_record};
use crate::domain::id::IdGenerator;
use crate::domain::time::{Micros, now_micros};
use crate::metrics::Metrics;
use actix_web::HttpResponse;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Events waiting for the publisher.
const QUEUE: usize = 4096;
/// Events published in one batch at most.
const BATCH: usize = 256;
/// How long a batch is retried while the bus cannot take it.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(30);

/// Cheap to clone: every worker holds one.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<(AuditEvent, Micros)>,
    metrics: Arc<Metrics>,
}

/// The publishing task; [`AuditTask::stop`] publishes what is queued, then ends.
pub struct AuditTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AuditLog {
    pub fn start(bus: Arc<dyn Bus>, metrics: Arc<Metrics>) -> (AuditLog, AuditTask) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(publish(bus, Arc::clone(&metrics), receiver, stopped));
        (AuditLog { sender, metrics }, AuditTask { stop, task })
    }

    /// Queues an event (timestamped now).
    pub fn record(&self, event: AuditEvent) {
        let item = (event, now_micros());
        match self.sender.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(item)) if item.0.outcome != Outcome::Denied => {
                let sender = self.sender.clone();
                tokio::spawn(async move {
                    let _ = sender.send(item).await;
                });
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if Metrics::get(&self.metrics.audit_events_dropped) == 0 {
                    tracing::warn!(
                        "the audit queue is full: refusals are dropped (and counted) until it drains"
                    );
                }
                Metrics::add(&self.metrics.audit_events_dropped, 1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Metrics::add(&self.metrics.audit_events_dropped, 1);
            }
        }
    }
}

impl AuditTask {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "audit publisher failed");
        }
    }
}

async fn publish(
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    mut receiver: mpsc::Receiver<(AuditEvent, Micros)>,
    mut stopped: watch::Receiver<bool>,
) {
    let ids = IdGenerator::new();
    loop {
        let first = tokio::select! {
            item = receiver.recv() => item,
            _ = stopped.wait_for(|stop| *stop) => None,
        };
        let mut items: Vec<(AuditEvent, Micros)> = first.into_iter().collect();
        // What is queued already goes in the same batch (all of it at a stop).
        while items.len() < BATCH || *stopped.borrow() {
            match receiver.try_recv() {
                Ok(item) => items.push(item),
                Err(_) => break,
            }
        }
        if items.is_empty() {
            return;
        }
        let batch: LogBatch = items
            .iter()
            .map(|(event, at)| audit_record(event, ids.next((*at / 1000) as u64), *at))
            .collect();
        let count = batch.len() as u64;
        if publish_patiently(&*bus, batch).await {
            Metrics::add(&metrics.audit_events, count);
        } else {
            Metrics::add(&metrics.audit_events_dropped, count);
            tracing::error!(
                events = count,
                "audit events lost: the bus did not take them within {PUBLISH_PATIENCE:?}"
            );
        }
    }
}

async fn publish_patiently(bus: &dyn Bus, batch: LogBatch) -> bool {
    let deadline = tokio::time::Instant::now() + PUBLISH_PATIENCE;
    let mut wait = Duration::from_millis(50);
    loop {
        match bus.publish(batch.clone()).await {
            Ok(()) => return true,
            Err(BusError::Closed) => return false,
            Err(error) => {
                if tokio::time::Instant::now() + wait > deadline {
                    tracing::warn!(%error, "the bus refused audit events");
                    return false;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// What a handler says about the change it made, for the audit record the
/// security middleware writes of every state-changing request: the action
/// (`alert_rule.create`) and what it acted on.
#[derive(Clone, Debug)]
pub struct ChangeDetail {
    pub action: String,
    pub target: Option<String>,
}

/// Names the change a response answers (kept in its extensions).
pub fn describe_change(response: &mut HttpResponse, action: &str, target: Option<&str>) {
    response.extensions_mut().insert(ChangeDetail {
        action: action.to_string(),
        target: target.map(str::to_string),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::memory::MemoryBus;
    use crate::domain::audit::{AUDIT_SERVICE, Actor, action};

    #[tokio::test]
    async fn events_reach_the_bus_as_audit_records_and_a_stop_publishes_what_is_queued() {
        let bus = Arc::new(MemoryBus::new(1000, Duration::from_secs(9)));
        let mut queue = bus.work_queue().await.unwrap();
        let metrics = Arc::new(Metrics::default());
        let (audit, task) = AuditLog::start(bus.clone(), Arc::clone(&metrics));
        for n in 0..3 {
            let mut event =
                AuditEvent::new(action::SIGN_IN, Outcome::Success, Actor::unidentified("u"));
            event.target = Some(format!("t{n}"));
            audit.record(event);
        }
        task.stop().await;
        let mut records = Vec::new();
        while records.len() < 3 {
            let delivery = queue.next().await.expect("a batch");
            records.extend(delivery.batch.iter().cloned());
            delivery.ack.ack().await;
        }
        assert_eq!(records.len(), 3);
        assert!(records.iter().all(|r| r.service == AUDIT_SERVICE));
        let targets: Vec<_> = records
            .iter()
            .map(|r| r.attributes["audit.target"].clone())
            .collect();
        assert_eq!(targets, ["t0", "t1", "t2"]);
        assert_eq!(Metrics::get(&metrics.audit_events), 3);
        // Closed: recorded afterwards is counted as dropped, not lost silently.
        audit.record(AuditEvent::new(
            "x",
            Outcome::Denied,
            Actor::unidentified("u"),
        ));
        assert_eq!(Metrics::get(&metrics.audit_events_dropped), 1);
    }
}
