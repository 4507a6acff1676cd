//! What receivers get: a spike fires once per receiver and its recovery
//! resolves it once, a receiver answering 500 (or 429) first still gets one
//! message, a dead receiver holds up nobody, `for` delays firing and
//! `repeat_interval` re-sends.

use super::receiver::{Answer, Receiver};
use super::{
    EVERY_SECOND, channel, config_file, listed_rule, metric, send_logs, statuses, wait_rounds,
    with_config,
};
use crate::support::{Server, eventually, log};
use awc::http::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};

const EXTERNAL: &str = "https://logs.example.com";

fn error_log(service: &str, message: &str) -> Value {
    log("error", service, message)
}

async fn wait_accepted(receiver: &Receiver, count: usize, what: &str) -> Vec<Value> {
    eventually(what, Duration::from_secs(40), || async {
        let accepted = receiver.accepted();
        (accepted.len() >= count).then_some(accepted)
    })
    .await
}

#[actix_web::test]
async fn a_spike_notifies_each_receiver_once_and_its_recovery_resolves_it_once() {
    let started = Instant::now();
    let slack = Receiver::start(&[]);
    let alertmanager = Receiver::start(&[Answer::Status(500)]);
    let pagerduty = Receiver::start(&[Answer::TooManyRequests(1)]);
    let dead = Receiver::dead();
    let (_dir, path) = config_file(&format!(
        r#"
[alerts]
evaluation_interval = "1s"
external_url = "{EXTERNAL}/"
max_delivery_time = "60s"
{dead}{slack}{alertmanager}{pagerduty}
[[alerts.rules]]
name = "checkout errors"
query = "service:checkout level:>=error"
window = "6s"
threshold = 2
group_by = ["service"]
channels = ["dead", "ops-slack", "alertmanager", "pagerduty"]
labels = {{ severity = "critical" }}
"#,
        dead = channel("dead", "webhook", &dead.url),
        slack = channel("ops-slack", "slack", &slack.url),
        alertmanager = channel("alertmanager", "webhook", &alertmanager.url),
        pagerduty = channel("pagerduty", "pagerduty", &pagerduty.url),
    ));
    let server = Server::launch(with_config(&path)).await;

    // Three matching logs (threshold 2) among others that do not match.
    let spike_at = Instant::now();
    let mut logs = vec![
        error_log("checkout", "payment declined"),
        log("fatal", "checkout", "card service down"),
        error_log("checkout", "payment declined again"),
    ];
    logs.extend((0..5).map(|n| log("info", "checkout", &format!("ok {n}"))));
    logs.extend((0..5).map(|n| error_log("payments", &format!("other {n}"))));
    send_logs(&server, &logs).await;

    let slack_firing = wait_accepted(&slack, 1, "slack's firing message").await;
    let slack_at = slack.accepted_at()[0];
    // The dead receiver was sent to first (its channel is listed first) and
    // never answers; Slack's message did not wait for that request to time
    // out (10 s), nor did the evaluation.
    let dead_attempts = dead.attempts();
    assert!(!dead_attempts.is_empty(), "the dead receiver was tried");
    assert!(
        slack_at < dead_attempts[0] + Duration::from_secs(10),
        "slack waited for the dead receiver"
    );

    let rule = listed_rule(&server, None, "checkout errors").await;
    assert_eq!(rule["state"], "firing", "{rule}");
    assert_eq!(rule["source"], "config");
    assert_eq!(rule["read_only"], true);
    assert_eq!(rule["last_value"], 3, "{rule}");
    assert!(rule["id"].as_str().unwrap().starts_with("config-"));
    assert_eq!(rule["groups"][0]["labels"]["service"], "checkout", "{rule}");
    assert_eq!(rule["groups"][0]["state"], "firing");
    assert_eq!(rule["groups"][0]["value"], 3);

    let text = slack_firing[0]["text"].as_str().unwrap();
    assert!(
        text.contains("checkout errors") && text.contains("service=checkout"),
        "{text}"
    );
    assert!(text.contains('3') && text.contains("6s"), "{text}");
    assert!(!text.to_lowercase().contains("resolved"), "{text}");
    assert!(
        slack_firing[0]["blocks"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
    );
    let link = slack_firing[0].to_string();
    assert!(
        link.contains(&format!("{EXTERNAL}/explorer?query=")),
        "{link}"
    );

    // A 500, then delivered on the retry: one message.
    let webhook = wait_accepted(&alertmanager, 1, "alertmanager's firing message").await;
    assert_eq!(alertmanager.attempts().len(), 2, "one 500, one retry");
    let firing = &webhook[0];
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["receiver"], "alertmanager");
    assert_eq!(firing["externalURL"], EXTERNAL);
    assert_eq!(firing["groupLabels"]["service"], "checkout");
    assert!(firing["groupKey"].is_string());
    assert_eq!(firing["commonLabels"]["alertname"], "checkout errors");
    let alert = &firing["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["alertname"], "checkout errors");
    assert_eq!(alert["labels"]["service"], "checkout");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert!(alert["annotations"]["summary"].is_string());
    assert!(alert["annotations"]["description"].is_string());
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert!(alert["startsAt"].as_str().unwrap().ends_with('Z'));
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{EXTERNAL}/"))
    );
    assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);

    // A 429 with Retry-After: 1, honoured, then delivered.
    let events = wait_accepted(&pagerduty, 1, "pagerduty's trigger").await;
    let attempts = pagerduty.attempts();
    assert_eq!(attempts.len(), 2, "one 429, one retry");
    assert!(
        attempts[1] - attempts[0] >= Duration::from_millis(900),
        "Retry-After was honoured"
    );
    let trigger = &events[0];
    assert_eq!(trigger["routing_key"], "test-routing-key");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["payload"]["severity"], "critical");
    let summary = trigger["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("checkout errors") && summary.contains("service=checkout"),
        "{summary}"
    );
    assert!(trigger["payload"]["source"].is_string());
    assert!(trigger["payload"]["custom_details"].is_object());
    assert!(
        trigger["links"][0]["href"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{EXTERNAL}/explorer?"))
    );

    // Recovery: no more matching logs, so once the window has passed the
    // count is back under the threshold and every receiver hears it once.
    let slack_all = wait_accepted(&slack, 2, "slack's resolved message").await;
    let webhook_all = wait_accepted(&alertmanager, 2, "alertmanager's resolved").await;
    let events_all = wait_accepted(&pagerduty, 2, "pagerduty's resolve").await;
    assert!(
        slack.accepted_at()[1] >= spike_at + Duration::from_secs(6),
        "a resolve never comes before the last matching log's time plus the window"
    );
    let resolved_text = slack_all[1]["text"].as_str().unwrap();
    assert!(resolved_text.contains("resolved"), "{resolved_text}");
    let resolved = &webhook_all[1];
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        resolved["alerts"][0]["fingerprint"],
        firing["alerts"][0]["fingerprint"]
    );
    assert_eq!(events_all[1]["event_action"], "resolve");
    assert_eq!(events_all[1]["dedup_key"], trigger["dedup_key"]);

    // Nothing more arrives while the evaluator keeps running.
    wait_rounds(&server, 1, 3).await;
    assert_eq!(statuses(&slack.accepted()), ["firing", "resolved"]);
    assert_eq!(statuses(&alertmanager.accepted()), ["firing", "resolved"]);
    assert_eq!(statuses(&pagerduty.accepted()), ["trigger", "resolve"]);
    assert!(dead.accepted().is_empty());
    let rule = listed_rule(&server, None, "checkout errors").await;
    assert_eq!(rule["state"], "inactive", "{rule}");
    assert_eq!(rule["last_value"], 0, "{rule}");

    let delivered =
        "oglogstream_alert_notifications_total{channel=\"alertmanager\",outcome=\"delivered\"}";
    assert_eq!(metric(&server, delivered).await, 2.0);
    let retried =
        "oglogstream_alert_notifications_total{channel=\"alertmanager\",outcome=\"retried\"}";
    assert_eq!(metric(&server, retried).await, 1.0);
    let (status, recent) = server.get("/api/alerts/notifications").await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    let recent = recent["notifications"].as_array().unwrap().clone();
    let delivery = |channel: &str, status: &str| {
        recent
            .iter()
            .filter(|n| n["channel"] == channel && n["status"] == status)
            .map(|n| n["delivery"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(delivery("ops-slack", "resolved"), ["delivered"]);
    assert_eq!(delivery("alertmanager", "firing"), ["delivered"]);
    assert_eq!(delivery("dead", "firing"), ["pending"], "still retrying");
    println!(
        "alerts: spike -> firing at slack after {:?}, whole test {:?}",
        slack_at - spike_at,
        started.elapsed()
    );
}

#[actix_web::test]
async fn for_delays_firing_and_repeat_interval_resends() {
    let held = Receiver::start(&[]);
    let repeated = Receiver::start(&[]);
    let (_dir, path) = config_file(&format!(
        r#"{EVERY_SECOND}{held}{repeated}
[[alerts.rules]]
name = "billing burn"
query = "service:billing"
window = "30s"
threshold = 0
for = "3s"
channels = ["held"]

[[alerts.rules]]
name = "repeater"
query = "service:repeater"
window = "30s"
threshold = 0
repeat_interval = "2s"
channels = ["repeated"]
"#,
        held = channel("held", "webhook", &held.url),
        repeated = channel("repeated", "slack", &repeated.url),
    ));
    let server = Server::launch(with_config(&path)).await;
    let sent_at = Instant::now();
    send_logs(
        &server,
        &[log("warn", "billing", "slow"), log("info", "repeater", "x")],
    )
    .await;

    eventually(
        "billing burn to be pending",
        Duration::from_secs(20),
        || async {
            let rule = listed_rule(&server, None, "billing burn").await;
            (rule["state"] == "pending").then_some(())
        },
    )
    .await;
    assert!(held.accepted().is_empty(), "pending never notifies");
    let firing = wait_accepted(&held, 1, "billing burn's firing").await;
    assert!(
        held.accepted_at()[0] >= sent_at + Duration::from_secs(3),
        "fired before the condition held for 3s"
    );
    assert_eq!(firing[0]["status"], "firing");
    let rule = listed_rule(&server, None, "billing burn").await;
    assert_eq!(rule["state"], "firing", "{rule}");

    let repeats = wait_accepted(&repeated, 3, "the first message and two repeats").await;
    assert_eq!(statuses(&repeats[..3]), ["firing", "firing", "firing"]);
    let at = repeated.accepted_at();
    for pair in at.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(1500),
            "repeated sooner than repeat_interval"
        );
    }
    assert_eq!(
        held.accepted().len(),
        1,
        "no repeat without repeat_interval"
    );
}
