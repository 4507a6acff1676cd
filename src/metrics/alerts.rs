//! Alerting's metrics, rendered with the rest at `/metrics`: notifications
//! by channel and outcome, evaluations by outcome and their duration, firing
//! groups, and whether this instance holds the evaluation lease. Channel
//! names come from the configuration and the admin API, so they are few.
//! Here rather than in `alerts/`, so that `/metrics` can render them without
//! importing alerting.

use super::text::{Histogram, SECONDS_BUCKETS, escape_label};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotificationOutcome {
    Delivered,
    /// One failed attempt that will be retried.
    Retried,
    Failed,
}

impl NotificationOutcome {
    fn label(self) -> &'static str {
        match self {
            NotificationOutcome::Delivered => "delivered",
            NotificationOutcome::Retried => "retried",
            NotificationOutcome::Failed => "failed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvaluationOutcome {
    Ok,
    Error,
}

#[derive(Debug)]
pub struct AlertMetrics {
    notifications: RwLock<BTreeMap<(String, NotificationOutcome), u64>>,
    evaluations_ok: AtomicU64,
    evaluations_failed: AtomicU64,
    pub evaluation_seconds: Histogram,
    /// Groups firing now (as last evaluated by this instance).
    pub firing: AtomicU64,
    /// 1 while this instance holds the evaluation lease.
    pub leader: AtomicU64,
}

impl Default for AlertMetrics {
    fn default() -> Self {
        AlertMetrics {
            notifications: RwLock::new(BTreeMap::new()),
            evaluations_ok: AtomicU64::new(0),
            evaluations_failed: AtomicU64::new(0),
            evaluation_seconds: Histogram::new(SECONDS_BUCKETS),
            firing: AtomicU64::new(0),
            leader: AtomicU64::new(0),
        }
    }
}

impl AlertMetrics {
    pub fn count_notification(&self, channel: &str, outcome: NotificationOutcome) {
        if let Ok(mut counts) = self.notifications.write() {
            *counts.entry((channel.to_string(), outcome)).or_default() += 1;
        }
    }

    pub fn count_evaluation(&self, outcome: EvaluationOutcome) {
        match outcome {
            EvaluationOutcome::Ok => &self.evaluations_ok,
            EvaluationOutcome::Error => &self.evaluations_failed,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP oglogstream_alert_notifications_total Alert notifications by channel and outcome (retried: one failed attempt that is retried).\n# TYPE oglogstream_alert_notifications_total counter"
        );
        if let Ok(counts) = self.notifications.read() {
            for ((channel, outcome), count) in counts.iter() {
                let _ = writeln!(
                    out,
                    "oglogstream_alert_notifications_total{{channel=\"{}\",outcome=\"{}\"}} {count}",
                    escape_label(channel),
                    outcome.label()
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP oglogstream_alert_evaluations_total Rule evaluations by outcome.\n# TYPE oglogstream_alert_evaluations_total counter\noglogstream_alert_evaluations_total{{outcome=\"ok\"}} {}\noglogstream_alert_evaluations_total{{outcome=\"error\"}} {}",
            self.evaluations_ok.load(Ordering::Relaxed),
            self.evaluations_failed.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP oglogstream_alert_evaluation_seconds Duration of one rule's evaluation.\n# TYPE oglogstream_alert_evaluation_seconds histogram"
        );
        self.evaluation_seconds
            .render(out, "oglogstream_alert_evaluation_seconds", "");
        let _ = writeln!(
            out,
            "# HELP oglogstream_alerts_firing Alert groups firing, as this instance last evaluated them.\n# TYPE oglogstream_alerts_firing gauge\noglogstream_alerts_firing {}",
            self.firing.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP oglogstream_alerts_leader 1 while this instance holds the alert evaluation lease.\n# TYPE oglogstream_alerts_leader gauge\noglogstream_alerts_leader {}",
            self.leader.load(Ordering::Relaxed)
        );
    }
}
