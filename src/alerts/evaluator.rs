//! The evaluation loop, run on every query instance but acting only on the
//! one holding the `alerts` lease. Every `evaluation_interval` it counts
//! each rule's groups, advances their state, and saves the new states
//! together with the notifications they call for (pending) in one
//! all-or-nothing store write; only then are the notifications handed to
//! the notifier. So:
//! - a restart, or another instance taking the lease over, loads the states
//!   and sends the notifications still pending: nothing repeated, nothing
//!   skipped (a crash between a receiver's `200` and the record of it is
//!   the one window where a message can go out twice);
//! - a failed write changes nothing: the next round computes the same
//!   transitions again;
//! - stopping writes nothing, so a shutdown resolves nothing.

use super::counting::{CountError, count_groups};
use super::lease::Leadership;
use super::notify::{Delivery, DeliveryState, Notification, Status};
use super::rule::{Channel, Rule, RuleSpec};
use super::state::{Change, RuleState, Timing, Transition};
use super::{Alerts, StoredState, explorer_query, state_record};
use crate::domain::time::{Micros, now_micros};
use crate::metrics::EvaluationOutcome;
use crate::store::StoreError;
use crate::store::alert_records::{AlertRecord, RecordKind};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// Rules counted at once: store reads overlap, a slow rule does not hold up
/// the others for long, and the store is not flooded.
const CONCURRENT_RULES: usize = 4;
/// Notifications are kept this long for the dashboard.
const NOTIFICATION_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Pending notifications looked at when taking over.
const RESUME_LOOKBACK: usize = 1000;

pub struct Evaluator {
    pub alerts: Arc<Alerts>,
    pub leadership: Leadership,
    pub stop: watch::Receiver<bool>,
}

impl Evaluator {
    pub async fn run(mut self) {
        let interval = self.alerts.config.evaluation_interval;
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Loaded from the store whenever this instance (again) takes the
        // lease; dropped as soon as it loses it.
        let mut states: Option<HashMap<String, StoredState>> = None;
        let mut last_prune: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                alive = self.leadership.changed() => {
                    if !alive {
                        break;
                    }
                    if self.leadership.is_leader() == states.is_some() {
                        continue;
                    }
                    // Taken or lost: act at once rather than at the next tick.
                }
                _ = self.stop.wait_for(|stop| *stop) => break,
            }
            let leader = self.leadership.is_leader();
            self.alerts
                .metrics
                .alerts
                .leader
                .store(leader.into(), Ordering::Relaxed);
            if !leader {
                if states.take().is_some() {
                    tracing::info!("alert evaluation lease lost: another instance evaluates");
                }
                continue;
            }
            if states.is_none() {
                match self.take_over().await {
                    Ok(loaded) => states = Some(loaded),
                    Err(error) => {
                        tracing::warn!(%error, "cannot load alert state; retrying next round");
                        continue;
                    }
                }
            }
            let Some(current) = states.as_mut() else {
                continue;
            };
            if let Err(error) = self.round(current).await {
                tracing::warn!(%error, "alert evaluation round failed; retrying next round");
            }
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(Instant::now());
                let cutoff = now_micros() - NOTIFICATION_RETENTION.as_micros() as Micros;
                if let Err(error) = self
                    .alerts
                    .records
                    .prune_alert_records(RecordKind::Notification, cutoff)
                    .await
                {
                    tracing::warn!(%error, "cannot prune old alert notifications");
                }
            }
        }
        self.alerts
            .metrics
            .alerts
            .leader
            .store(0, Ordering::Relaxed);
    }

    /// Loads every rule's state and sends the notifications a previous
    /// holder saved but did not deliver.
    async fn take_over(&self) -> Result<HashMap<String, StoredState>, StoreError> {
        let states = self.alerts.states().await?;
        let channels = self.alerts.channels().await?;
        let now = now_micros();
        let max_age = self.alerts.config.max_delivery_time.as_micros() as Micros;
        let mut resumed = 0;
        let mut expired = Vec::new();
        for notification in self.alerts.notifications(RESUME_LOOKBACK).await? {
            if notification.delivery.state != DeliveryState::Pending {
                continue;
            }
            let channel = channels.iter().find(|c| c.name == notification.channel);
            match channel {
                Some(channel)
                    if !notification.is_test() && now - notification.created < max_age =>
                {
                    self.alerts.notifier.send(notification, channel.clone());
                    resumed += 1;
                }
                _ => {
                    let mut gone = notification;
                    gone.delivery = Delivery {
                        state: DeliveryState::Failed,
                        last_error: Some("not delivered in time by any instance".into()),
                        finished: Some(now),
                        ..gone.delivery
                    };
                    expired.push(gone.record());
                }
            }
        }
        self.alerts.records.put_alert_records(&expired).await?;
        tracing::info!(
            rules = states.len(),
            resumed,
            "alert evaluation lease taken: evaluating rules"
        );
        Ok(states)
    }

    /// One evaluation of every rule.
    async fn round(&self, states: &mut HashMap<String, StoredState>) -> Result<(), StoreError> {
        let alerts = &self.alerts;
        let now = now_micros();
        let channels = alerts.channels().await?;
        let rules: Vec<Rule> = alerts
            .entries(&channels)
            .await?
            .into_iter()
            .filter_map(|entry| entry.rule.ok())
            .collect();

        let evaluated: Vec<(Rule, Result<Vec<_>, CountError>)> = futures_util::stream::iter(rules)
            .map(|rule| async move {
                let started = Instant::now();
                let window = rule.window.as_micros() as Micros;
                let counts = count_groups(
                    &*alerts.store,
                    &rule,
                    now - window,
                    now,
                    alerts.read_timeout,
                )
                .await;
                alerts
                    .metrics
                    .alerts
                    .evaluation_seconds
                    .observe_duration(started.elapsed());
                (rule, counts)
            })
            .buffer_unordered(CONCURRENT_RULES)
            .collect()
            .await;

        let mut next: HashMap<String, StoredState> = HashMap::new();
        let mut records: Vec<AlertRecord> = Vec::new();
        let mut outbox: Vec<Notification> = Vec::new();
        for (rule, counts) in evaluated {
            let previous = states.get(&rule.id).map(|s| &s.state);
            let previous = previous.cloned().unwrap_or_default();
            let state = match counts {
                Ok(counts) => {
                    alerts
                        .metrics
                        .alerts
                        .count_evaluation(EvaluationOutcome::Ok);
                    let (state, transitions) = previous.advance(
                        counts,
                        Timing {
                            threshold: rule.threshold,
                            for_duration: rule.for_duration,
                            repeat_interval: rule.repeat_interval,
                        },
                        now,
                    );
                    for transition in &transitions {
                        outbox.extend(
                            self.notifications(&rule.id, &rule.spec, &rule, transition, now),
                        );
                    }
                    state
                }
                Err(error) => {
                    alerts
                        .metrics
                        .alerts
                        .count_evaluation(EvaluationOutcome::Error);
                    tracing::warn!(rule = %rule.spec.name, %error, "alert rule evaluation failed");
                    previous.failed(error.to_string(), now)
                }
            };
            let stored = StoredState {
                state,
                rule: Some(rule.spec.clone()),
            };
            records.push(state_record(&rule.id, &stored, now));
            next.insert(rule.id.clone(), stored);
        }
        // Rules deleted since the last round: their firing alerts resolve.
        for (id, gone) in states.iter().filter(|(id, _)| !next.contains_key(*id)) {
            if let Some(spec) = &gone.rule
                && let Ok(rule) = spec.validate(
                    id,
                    super::rule::Source::Api,
                    &super::rule::RuleContext {
                        channels: &channels,
                        evaluation_interval: Duration::ZERO,
                    },
                )
            {
                for transition in gone.state.resolve_all(now) {
                    outbox.extend(self.notifications(id, spec, &rule, &transition, now));
                }
            }
            records.push(AlertRecord {
                kind: RecordKind::State,
                id: id.clone(),
                body: None,
                updated: now,
            });
        }
        records.extend(outbox.iter().map(Notification::record));

        if !self.leadership.is_leader() {
            return Ok(()); // lost meanwhile: the next holder evaluates again
        }
        alerts.records.put_alert_records(&records).await?;
        *states = next;
        let firing: usize = states.values().map(|s| s.state.firing_groups()).sum();
        alerts
            .metrics
            .alerts
            .firing
            .store(firing as u64, Ordering::Relaxed);
        for notification in outbox {
            if let Some(channel) = channels.iter().find(|c| c.name == notification.channel) {
                alerts.notifier.send(notification, channel.clone());
            }
        }
        Ok(())
    }

    /// One pending notification per channel of the rule for `transition`.
    fn notifications(
        &self,
        rule_id: &str,
        spec: &RuleSpec,
        rule: &Rule,
        transition: &Transition,
        now: Micros,
    ) -> Vec<Notification> {
        let status = match transition.change {
            Change::Fired | Change::Repeated => Status::Firing,
            Change::Resolved => Status::Resolved,
        };
        let window = rule.window.as_micros() as Micros;
        spec.channels
            .iter()
            .map(|channel| Notification {
                id: self.alerts.new_id(),
                created: now,
                rule_id: rule_id.to_string(),
                rule_name: spec.name.clone(),
                channel: channel.clone(),
                status,
                change: Some(transition.change),
                group: transition.group.labels.clone(),
                rule_labels: spec.labels.clone(),
                value: transition.group.value,
                threshold: spec.threshold,
                window: spec.window.clone(),
                query: spec.query.clone(),
                explorer_query: explorer_query(
                    &spec.query,
                    &rule.group_by,
                    &transition.group.labels,
                ),
                from: now - window,
                to: now,
                starts_at: transition.group.active_since.unwrap_or(now),
                ends_at: transition.ends_at,
                delivery: Delivery::pending(),
            })
            .collect()
    }
}

/// A test message for `rule` to `channel`, as if its first group fired now.
pub fn test_notification(
    alerts: &Alerts,
    rule: &Rule,
    channel: &Channel,
    state: Option<&RuleState>,
) -> Notification {
    let now = now_micros();
    let window = rule.window.as_micros() as Micros;
    let group = state
        .and_then(|s| s.groups.first())
        .map(|g| g.labels.clone())
        .unwrap_or_default();
    Notification {
        id: alerts.new_id(),
        created: now,
        rule_id: rule.id.clone(),
        rule_name: rule.spec.name.clone(),
        channel: channel.name.clone(),
        status: Status::Firing,
        change: None,
        explorer_query: explorer_query(&rule.spec.query, &rule.group_by, &group),
        group,
        rule_labels: rule.spec.labels.clone(),
        value: state.and_then(|s| s.last_value).unwrap_or(0),
        threshold: rule.threshold,
        window: rule.spec.window.clone(),
        query: rule.spec.query.clone(),
        from: now - window,
        to: now,
        starts_at: now,
        ends_at: None,
        delivery: Delivery::pending(),
    }
}
