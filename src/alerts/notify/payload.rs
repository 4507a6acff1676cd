//! The body each kind of receiver expects, from a [`Notification`]. Pure.
//!
//! - Slack incoming webhooks: `{"text", "blocks"}`; `text` is the fallback
//!   shown in notifications and says "Resolved" only for a resolved alert.
//! - Prometheus Alertmanager's webhook, version 4: anything that accepts
//!   Alertmanager's notifications accepts ours.
//! - PagerDuty Events API v2: `trigger` and `resolve` with one stable
//!   `dedup_key` per rule and group, so PagerDuty pairs them.

use super::{Notification, Status, group_text};
use crate::alerts::state::Labels;
use crate::domain::time::format_rfc3339;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Alertmanager's "no end yet".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
const PAGERDUTY_SUMMARY_MAX: usize = 1024;

/// The dashboard's explorer showing the logs the rule counted for this group.
pub fn explorer_link(notification: &Notification, external_url: &str) -> String {
    let query = serde_urlencoded::to_string([
        ("query", notification.explorer_query.as_str()),
        ("from", &format_rfc3339(notification.from)),
        ("to", &format_rfc3339(notification.to)),
    ])
    .unwrap_or_default();
    format!("{}/explorer?{query}", external_url.trim_end_matches('/'))
}

/// 16 hex digits naming the rule and group, the same on every instance.
pub fn fingerprint(rule_id: &str, group: &Labels) -> String {
    let mut hasher = Sha256::new();
    hasher.update(rule_id.as_bytes());
    for (key, value) in group {
        hasher.update([0]);
        hasher.update(key.as_bytes());
        hasher.update([1]);
        hasher.update(value.as_bytes());
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn threshold_text(threshold: f64) -> String {
    if threshold.fract() == 0.0 && threshold.abs() < 1e15 {
        format!("{}", threshold as i64)
    } else {
        format!("{threshold}")
    }
}

/// `42 logs in the last 5m, above the threshold of 10`.
fn count_text(notification: &Notification) -> String {
    let relation = match notification.status {
        Status::Firing => "above",
        Status::Resolved => "no longer above",
    };
    format!(
        "{} log{} in the last {}, {relation} the threshold of {}",
        notification.value,
        if notification.value == 1 { "" } else { "s" },
        notification.window,
        threshold_text(notification.threshold)
    )
}

/// `Alert firing: checkout errors (service=checkout)`, `Alert resolved:
/// ...`; tests say so.
fn headline(notification: &Notification) -> String {
    let status = match notification.status {
        Status::Firing => "Alert firing",
        Status::Resolved => "Alert resolved",
    };
    let test = if notification.is_test() {
        "[test] "
    } else {
        ""
    };
    format!("{test}{status}: {}", notification.title())
}

/// Slack's mrkdwn gives `&`, `<` and `>` meaning; rule names and values are
/// shown as text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn slack(notification: &Notification, external_url: &str) -> Value {
    let link = explorer_link(notification, external_url);
    let text = format!("{}: {}", headline(notification), count_text(notification));
    let icon = match notification.status {
        Status::Firing => ":rotating_light:",
        Status::Resolved => ":white_check_mark:",
    };
    let query = if notification.query.trim().is_empty() {
        "every log".to_string()
    } else {
        format!("`{}`", slack_escape(&notification.query.replace('`', "'")))
    };
    json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!(
                "{icon} *{}*\n{}",
                slack_escape(&headline(notification)),
                slack_escape(&count_text(notification)),
            )}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
                "Query {query} · rule `{}`", slack_escape(&notification.rule_id)
            )}]},
            {"type": "actions", "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": "Show the logs"},
                "url": link,
            }]},
        ],
    })
}

/// Alertmanager's labels for the alert: `alertname`, the rule's labels, the
/// group's values under their `group_by` keys.
fn alert_labels(notification: &Notification) -> Labels {
    let mut labels = notification.rule_labels.clone();
    labels.extend(notification.group.clone());
    labels.insert("alertname".into(), notification.rule_name.clone());
    if notification.is_test() {
        labels.insert("test".into(), "true".into());
    }
    labels
}

fn summary(notification: &Notification) -> String {
    format!("{}: {}", headline(notification), count_text(notification))
}

fn description(notification: &Notification) -> String {
    let query = if notification.query.trim().is_empty() {
        "every log".to_string()
    } else {
        format!("the query {:?}", notification.query)
    };
    format!(
        "{query} matched {} log(s) in the last {}{} (the rule fires above {}).",
        notification.value,
        notification.window,
        if notification.group.is_empty() {
            String::new()
        } else {
            format!(" for {}", group_text(&notification.group))
        },
        threshold_text(notification.threshold)
    )
}

pub fn webhook(notification: &Notification, receiver: &str, external_url: &str) -> Value {
    let labels = alert_labels(notification);
    let mut group_labels = notification.group.clone();
    group_labels.insert("alertname".into(), notification.rule_name.clone());
    let group_key = format!(
        "{{}}:{{{}}}",
        group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let annotations = json!({
        "summary": summary(notification),
        "description": description(notification),
    });
    let ends_at = match (notification.status, notification.ends_at) {
        (Status::Resolved, Some(end)) => format_rfc3339(end),
        (Status::Resolved, None) => format_rfc3339(notification.created),
        (Status::Firing, _) => ZERO_TIME.to_string(),
    };
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": notification.status.as_str(),
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url.trim_end_matches('/'),
        "alerts": [{
            "status": notification.status.as_str(),
            "labels": labels,
            "annotations": annotations,
            "startsAt": format_rfc3339(notification.starts_at),
            "endsAt": ends_at,
            "generatorURL": explorer_link(notification, external_url),
            "fingerprint": fingerprint(&notification.rule_id, &notification.group),
        }],
    })
}

/// PagerDuty's severities; a rule's `severity` label picks one.
fn pagerduty_severity(labels: &Labels) -> &'static str {
    match labels
        .get("severity")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("critical" | "fatal" | "page") => "critical",
        Some("warning" | "warn") => "warning",
        Some("info") => "info",
        _ => "error",
    }
}

pub fn pagerduty(notification: &Notification, routing_key: &str, external_url: &str) -> Value {
    let link = explorer_link(notification, external_url);
    let mut dedup_key = format!(
        "oglogstream-{}-{}",
        notification.rule_id,
        fingerprint(&notification.rule_id, &notification.group)
    );
    if notification.is_test() {
        dedup_key.push_str("-test");
    }
    let mut summary = summary(notification);
    if summary.len() > PAGERDUTY_SUMMARY_MAX {
        let mut cut = PAGERDUTY_SUMMARY_MAX - 3;
        while !summary.is_char_boundary(cut) {
            cut -= 1;
        }
        summary.truncate(cut);
        summary.push_str("...");
    }
    json!({
        "routing_key": routing_key,
        "event_action": match notification.status {
            Status::Firing => "trigger",
            Status::Resolved => "resolve",
        },
        "dedup_key": dedup_key,
        "payload": {
            "summary": summary,
            "source": source_name(external_url),
            "severity": pagerduty_severity(&notification.rule_labels),
            "timestamp": format_rfc3339(notification.created),
            "component": notification.group.get("service").cloned().unwrap_or_else(|| "oglogstream".into()),
            "custom_details": {
                "rule": notification.rule_name,
                "rule_id": notification.rule_id,
                "query": notification.query,
                "window": notification.window,
                "threshold": notification.threshold,
                "count": notification.value,
                "group": notification.group,
                "labels": notification.rule_labels,
            },
        },
        "links": [{"href": link, "text": "Show the logs in OgLogStream"}],
        "client": "OgLogStream",
        "client_url": external_url.trim_end_matches('/'),
    })
}

/// The host of the external URL: where the alert comes from.
fn source_name(external_url: &str) -> String {
    let rest = external_url
        .split_once("://")
        .map_or(external_url, |(_, rest)| rest);
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        "oglogstream".into()
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::notify::Delivery;
    use crate::alerts::state::Change;

    const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

    fn notification(status: Status) -> Notification {
        Notification {
            id: "n1".into(),
            created: T0,
            rule_id: "config-abc".into(),
            rule_name: "checkout errors".into(),
            channel: "ops".into(),
            status,
            change: Some(match status {
                Status::Firing => Change::Fired,
                Status::Resolved => Change::Resolved,
            }),
            group: Labels::from([("service".into(), "checkout".into())]),
            rule_labels: Labels::from([("severity".into(), "critical".into())]),
            value: 42,
            threshold: 10.0,
            window: "5m".into(),
            query: "service:checkout level:>=error".into(),
            explorer_query: "(service:checkout level:>=error) service:\"checkout\"".into(),
            from: T0 - 300_000_000,
            to: T0,
            starts_at: T0 - 60_000_000,
            ends_at: (status == Status::Resolved).then_some(T0),
            delivery: Delivery::pending(),
        }
    }

    const EXTERNAL: &str = "https://logs.example.com/";

    #[test]
    fn slack_says_resolved_only_when_resolved() {
        let firing = slack(&notification(Status::Firing), EXTERNAL);
        let text = firing["text"].as_str().unwrap();
        assert!(text.contains("checkout errors") && text.contains("service=checkout"));
        assert!(text.contains("42") && text.contains("10") && text.contains("5m"));
        assert!(!text.to_lowercase().contains("resolved"), "{text}");
        let resolved = slack(&notification(Status::Resolved), EXTERNAL);
        assert!(resolved["text"].as_str().unwrap().contains("resolved"));
        let button = &firing["blocks"][2]["elements"][0]["url"];
        assert!(
            button
                .as_str()
                .unwrap()
                .starts_with("https://logs.example.com/explorer?query=%28service%3Acheckout"),
            "{button}"
        );
    }

    #[test]
    fn webhook_is_alertmanager_v4() {
        let body = webhook(&notification(Status::Firing), "ops", EXTERNAL);
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["receiver"], "ops");
        assert_eq!(body["externalURL"], "https://logs.example.com");
        assert_eq!(body["groupLabels"]["service"], "checkout");
        let alert = &body["alerts"][0];
        assert_eq!(alert["labels"]["alertname"], "checkout errors");
        assert_eq!(alert["labels"]["service"], "checkout");
        assert_eq!(alert["labels"]["severity"], "critical");
        assert_eq!(alert["endsAt"], ZERO_TIME);
        assert_eq!(alert["startsAt"], "2025-12-31T23:59:00.000000Z");
        assert!(
            alert["generatorURL"]
                .as_str()
                .unwrap()
                .starts_with("https://logs.example.com/")
        );
        assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);
        assert!(alert["annotations"]["summary"].is_string());
        assert!(alert["annotations"]["description"].is_string());
        let resolved = webhook(&notification(Status::Resolved), "ops", EXTERNAL);
        assert_eq!(
            resolved["alerts"][0]["endsAt"],
            "2026-01-01T00:00:00.000000Z"
        );
        assert_eq!(resolved["alerts"][0]["fingerprint"], alert["fingerprint"]);
    }

    #[test]
    fn pagerduty_pairs_trigger_and_resolve() {
        let trigger = pagerduty(&notification(Status::Firing), "key", EXTERNAL);
        let resolve = pagerduty(&notification(Status::Resolved), "key", EXTERNAL);
        assert_eq!(trigger["event_action"], "trigger");
        assert_eq!(resolve["event_action"], "resolve");
        assert_eq!(trigger["dedup_key"], resolve["dedup_key"]);
        assert_eq!(trigger["routing_key"], "key");
        assert_eq!(trigger["payload"]["severity"], "critical");
        assert_eq!(trigger["payload"]["source"], "logs.example.com");
        let summary = trigger["payload"]["summary"].as_str().unwrap();
        assert!(summary.contains("checkout errors") && summary.contains("service=checkout"));
        assert!(
            trigger["links"][0]["href"]
                .as_str()
                .unwrap()
                .contains("/explorer?")
        );
        let mut other = notification(Status::Firing);
        other.group.insert("service".into(), "payments".into());
        assert_ne!(
            pagerduty(&other, "key", EXTERNAL)["dedup_key"],
            trigger["dedup_key"]
        );
    }
}
