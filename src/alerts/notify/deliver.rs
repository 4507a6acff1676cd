//! Delivery: one queue and one task per channel, so a slow or dead receiver
//! holds up only its own channel, never another channel or the evaluation
//! (which only enqueues, and never waits). Within a channel notifications go
//! out in order, so a "resolved" never overtakes its "firing".
//!
//! A delivery retries network errors, `408`, `429` (after its `Retry-After`)
//! and `5xx` with exponential backoff (1 s doubling to 60 s) until it is
//! `max_delivery_time` old, then gives up; any other `4xx` is final at once.
//! Every outcome is written back to the notification's record and counted.
//!
//! awc is not `Send`, so the dispatcher and the channel tasks run on the
//! thread that starts them (the main arbiter); [`Notifier`] is the `Send`
//! handle to them.

use super::client::http_client;
use super::{Delivery, DeliveryState, Notification, payload};
use crate::alerts::lease::Leadership;
use crate::alerts::rule::{Channel, ChannelKind};
use crate::domain::time::now_micros;
use crate::metrics::{Metrics, NotificationOutcome};
use crate::store::alert_records::{AlertRecord, AlertRecords, RecordKind};
use actix_web::http::header::{self, HttpDate};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Notifications waiting per channel before new ones are refused (and
/// recorded as failed): a dead receiver cannot make the queue grow forever.
const CHANNEL_QUEUE: usize = 1000;

#[derive(Clone, Debug)]
pub struct NotifierSettings {
    /// Where links in notifications point (the dashboard's address).
    pub external_url: String,
    /// How long after its creation a notification is still worth sending.
    pub max_delivery_time: Duration,
    /// One HTTP request's limit.
    pub request_timeout: Duration,
}

struct Job {
    notification: Notification,
    channel: Channel,
    deadline: Instant,
    /// Test messages: answered to the caller, not recorded as alerts, sent
    /// by whichever instance was asked.
    reply: Option<oneshot::Sender<Delivery>>,
}

/// The handle the evaluator and the API send through.
#[derive(Clone)]
pub struct Notifier {
    jobs: mpsc::UnboundedSender<Job>,
    max_delivery_time: Duration,
}

/// The running dispatcher; [`NotifierTask::stop`] abandons what is in
/// flight (it stays pending in the store, for the next lease holder).
pub struct NotifierTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl NotifierTask {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "alert notifier failed");
        }
    }
}

struct Context {
    /// Notifications queued or being delivered: one taken over again (after
    /// the lease came back to this instance) is not queued twice.
    in_hand: RefCell<HashSet<String>>,
    client: awc::Client,
    records: Arc<dyn AlertRecords>,
    metrics: Arc<Metrics>,
    leadership: Leadership,
    settings: NotifierSettings,
}

impl Notifier {
    /// Starts the dispatcher on the current thread's local task set.
    pub fn start(
        records: Arc<dyn AlertRecords>,
        metrics: Arc<Metrics>,
        leadership: Leadership,
        settings: NotifierSettings,
    ) -> (Notifier, NotifierTask) {
        let (jobs, queue) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let notifier = Notifier {
            jobs,
            max_delivery_time: settings.max_delivery_time,
        };
        let context = Rc::new(Context {
            in_hand: RefCell::new(HashSet::new()),
            client: http_client(settings.request_timeout),
            records,
            metrics,
            leadership,
            settings,
        });
        let task = actix_web::rt::spawn(dispatch(queue, context, stopped));
        (notifier, NotifierTask { stop, task })
    }

    /// Queues an alert's notification; its record must already be stored
    /// (pending). Never waits.
    pub fn send(&self, notification: Notification, channel: Channel) {
        let remaining = (notification.created + self.max_delivery_time.as_micros() as i64
            - now_micros())
        .max(0);
        let _ = self.jobs.send(Job {
            notification,
            channel,
            deadline: Instant::now() + Duration::from_micros(remaining as u64),
            reply: None,
        });
    }

    /// Sends a test message and waits for its outcome, at most `within`.
    pub async fn test(
        &self,
        notification: Notification,
        channel: Channel,
        within: Duration,
    ) -> Delivery {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            notification,
            channel,
            deadline: Instant::now() + within,
            reply: Some(reply),
        };
        if self.jobs.send(job).is_err() {
            return failed(Delivery::pending(), "the notifier is stopping");
        }
        answer
            .await
            .unwrap_or_else(|_| failed(Delivery::pending(), "the notifier is stopping"))
    }
}

fn failed(mut delivery: Delivery, reason: impl Into<String>) -> Delivery {
    delivery.state = DeliveryState::Failed;
    delivery.last_error = Some(reason.into());
    delivery.finished = Some(now_micros());
    delivery
}

/// Routes jobs to one task per channel, starting them as channels appear.
async fn dispatch(
    mut queue: mpsc::UnboundedReceiver<Job>,
    context: Rc<Context>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut channels: HashMap<String, (mpsc::Sender<Job>, JoinHandle<()>)> = HashMap::new();
    loop {
        let job = tokio::select! {
            job = queue.recv() => match job {
                Some(job) => job,
                None => break,
            },
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        if job.reply.is_none()
            && !context
                .in_hand
                .borrow_mut()
                .insert(job.notification.id.clone())
        {
            continue; // already on its way
        }
        let name = job.channel.name.clone();
        let (sender, _) = channels.entry(name.clone()).or_insert_with(|| {
            let (sender, receiver) = mpsc::channel(CHANNEL_QUEUE);
            let task = actix_web::rt::spawn(channel_worker(receiver, Rc::clone(&context)));
            (sender, task)
        });
        if let Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) =
            sender.try_send(job)
        {
            tracing::warn!(channel = %name, "alert channel queue is full; notification dropped");
            let delivery = failed(
                job.notification.delivery.clone(),
                "too many notifications waiting for this channel",
            );
            context.in_hand.borrow_mut().remove(&job.notification.id);
            finish(&context, job, delivery).await;
        }
    }
    // Abandon deliveries in flight: their records stay pending.
    for (_, (_, task)) in channels {
        task.abort();
    }
}

async fn channel_worker(mut jobs: mpsc::Receiver<Job>, context: Rc<Context>) {
    while let Some(job) = jobs.recv().await {
        let outcome = deliver(&context, &job).await;
        context.in_hand.borrow_mut().remove(&job.notification.id);
        match outcome {
            Some(delivery) => finish(&context, job, delivery).await,
            None => tracing::info!(
                channel = %job.channel.name,
                notification = %job.notification.id,
                "lease lost: leaving the notification to the next holder"
            ),
        }
    }
}

/// Records the outcome (or answers a test) and counts it.
async fn finish(context: &Context, job: Job, delivery: Delivery) {
    let outcome = match delivery.state {
        DeliveryState::Delivered => NotificationOutcome::Delivered,
        _ => NotificationOutcome::Failed,
    };
    context
        .metrics
        .alerts
        .count_notification(&job.channel.name, outcome);
    match &delivery.state {
        DeliveryState::Delivered => tracing::info!(
            channel = %job.channel.name,
            rule = %job.notification.rule_name,
            status = job.notification.status.as_str(),
            attempts = delivery.attempts,
            "alert notification delivered"
        ),
        _ => tracing::warn!(
            channel = %job.channel.name,
            rule = %job.notification.rule_name,
            attempts = delivery.attempts,
            error = delivery.last_error.as_deref().unwrap_or(""),
            "alert notification failed"
        ),
    }
    let mut notification = job.notification;
    notification.delivery = delivery;
    if let Some(reply) = job.reply {
        let _ = reply.send(notification.delivery.clone());
    }
    save(context, &notification).await;
}

async fn save(context: &Context, notification: &Notification) {
    if let Err(error) = context
        .records
        .put_alert_records(&[notification.record()])
        .await
    {
        tracing::warn!(%error, notification = %notification.id, "could not record a notification's delivery");
    }
}

impl Notification {
    /// The store record of this notification, as it is now.
    pub fn record(&self) -> AlertRecord {
        AlertRecord {
            kind: RecordKind::Notification,
            id: self.id.clone(),
            body: serde_json::to_string(self).ok(),
            updated: now_micros(),
        }
    }
}

enum Attempt {
    Delivered,
    /// Worth retrying, after the receiver's `Retry-After` if it gave one.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    Refused(String),
}

/// Sends until delivered, refused or out of time; `None` when the lease was
/// lost meanwhile (an alert's notification is then left to the next holder,
/// which sends what is still pending).
async fn deliver(context: &Context, job: &Job) -> Option<Delivery> {
    let external_url = &context.settings.external_url;
    let notification = &job.notification;
    let body = match job.channel.kind {
        ChannelKind::Slack => payload::slack(notification, external_url),
        ChannelKind::Webhook => payload::webhook(notification, &job.channel.name, external_url),
        ChannelKind::PagerDuty => {
            payload::pagerduty(notification, &job.channel.routing_key, external_url)
        }
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut delivery = notification.delivery.clone();
    let mut backoff = FIRST_BACKOFF;
    loop {
        if job.reply.is_none() && !context.leadership.is_leader() {
            return None;
        }
        let now = Instant::now();
        if now >= job.deadline {
            return Some(failed(delivery, "out of time before it could be sent"));
        }
        delivery.attempts += 1;
        let timeout = context
            .settings
            .request_timeout
            .min(job.deadline.duration_since(now));
        let (reason, after) = match attempt(&context.client, &job.channel.url, &body, timeout).await
        {
            Attempt::Delivered => {
                delivery.state = DeliveryState::Delivered;
                delivery.last_error = None;
                delivery.finished = Some(now_micros());
                return Some(delivery);
            }
            Attempt::Refused(reason) => return Some(failed(delivery, reason)),
            Attempt::Retry { reason, after } => (reason, after),
        };
        let wait = after.unwrap_or(backoff);
        if Instant::now() + wait >= job.deadline {
            let reason = format!("gave up after {} attempts: {reason}", delivery.attempts);
            return Some(failed(delivery, reason));
        }
        context
            .metrics
            .alerts
            .count_notification(&job.channel.name, NotificationOutcome::Retried);
        tracing::debug!(channel = %job.channel.name, %reason, wait_ms = wait.as_millis() as u64, "retrying an alert notification");
        delivery.last_error = Some(reason);
        if job.reply.is_none() {
            let mut progress = notification.clone();
            progress.delivery = delivery.clone();
            save(context, &progress).await;
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn attempt(client: &awc::Client, url: &str, body: &[u8], timeout: Duration) -> Attempt {
    let request = client
        .post(url)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .timeout(timeout);
    let mut response = match request.send_body(body.to_vec()).await {
        Ok(response) => response,
        Err(error) => {
            return Attempt::Retry {
                reason: format!("cannot reach the receiver: {error}"),
                after: None,
            };
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_retry_after);
    // Read (a little of) the answer so the connection can be reused and a
    // refusal can say why.
    let answer = response.body().limit(64 * 1024).await.unwrap_or_default();
    if status.is_success() {
        return Attempt::Delivered;
    }
    let snippet: String = String::from_utf8_lossy(&answer).chars().take(200).collect();
    let reason = format!("HTTP {}: {}", status.as_u16(), snippet.trim());
    if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
        Attempt::Retry {
            reason,
            after: retry_after,
        }
    } else {
        Attempt::Refused(reason)
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date: SystemTime = value.parse::<HttpDate>().ok()?.into();
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = SystemTime::now() + Duration::from_secs(120);
        let text = HttpDate::from(later).to_string();
        let wait = parse_retry_after(&text).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
