//! Alerting (issue 13) against the real binary: local receivers stand in for
//! Slack, Alertmanager and PagerDuty and record what they get; rules run
//! every second (`evaluation_interval = "1s"`) and tests poll with deadlines.

mod api;
mod counting;
mod notifications;
pub mod receiver;
pub mod records;
mod restart;
mod split;

use crate::support::{Launch, Server, eventually};
use awc::http::{Method, StatusCode};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// The `[alerts]` section the tests use: every rule evaluated every second.
pub const EVERY_SECOND: &str = "\n[alerts]\nevaluation_interval = \"1s\"\n";

/// A `[[alerts.channels]]` entry (PagerDuty's with the routing key
/// `test-routing-key`).
pub fn channel(name: &str, kind: &str, url: &str) -> String {
    let key = if kind == "pagerduty" {
        "routing_key = \"test-routing-key\"\n"
    } else {
        ""
    };
    format!("\n[[alerts.channels]]\nname = \"{name}\"\nkind = \"{kind}\"\nurl = \"{url}\"\n{key}")
}

/// Writes `contents` as a config file that lives as long as the returned dir.
pub fn config_file(contents: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("oglogstream.toml");
    std::fs::write(&path, contents).expect("write config");
    (dir, path)
}

pub fn with_config(path: &std::path::Path) -> Launch {
    Launch::default()
        .arg("--config")
        .arg(path.to_str().expect("utf-8 path"))
        .env("FLUSH_TIMEOUT", "50ms")
}

/// Requests to a server with an API key (or none).
#[derive(Clone, Copy)]
pub struct Client<'a> {
    pub server: &'a Server,
    pub key: Option<&'a str>,
}

impl<'a> Client<'a> {
    pub fn new(server: &'a Server, key: Option<&'a str>) -> Client<'a> {
        Client { server, key }
    }

    /// The status and the JSON answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let server = self.server;
        let mut request = server.client.request(method.clone(), server.url(path));
        if let Some(key) = self.key {
            request = request.insert_header(("X-API-Key", key));
        }
        let mut response = match body {
            Some(body) => {
                request
                    .insert_header(("Content-Type", "application/json"))
                    .send_body(body.to_string())
                    .await
            }
            None => request.send().await,
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let bytes = response.body().limit(16 << 20).await.expect("body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (response.status(), value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }
}

/// The rule named `name` as `GET /api/alerts` lists it.
pub async fn listed_rule(server: &Server, key: Option<&str>, name: &str) -> Value {
    let (status, body) = Client::new(server, key).get("/api/alerts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no rule {name:?} in {body}"))
}

/// The value of an unlabelled series, or of one with exactly `labels`.
pub async fn metric(server: &Server, series: &str) -> f64 {
    let (status, body) = server.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap_or_default().to_string();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until the server has evaluated its rules `rounds` more times
/// (every rule counts once per round), so "nothing more arrived" is checked
/// after the evaluator had its chances, not after a guessed sleep.
pub async fn wait_rounds(server: &Server, rules: usize, rounds: usize) {
    let series = "oglogstream_alert_evaluations_total{outcome=\"ok\"}";
    let start = metric(server, series).await;
    let target = start + (rules * rounds) as f64;
    eventually(
        &format!("{rounds} more evaluation rounds"),
        Duration::from_secs(30),
        || async { (metric(server, series).await >= target).then_some(()) },
    )
    .await;
}

/// Posts logs as a bulk request and waits until the store holds them all.
pub async fn send_logs(server: &Server, logs: &[Value]) {
    let body: String = logs.iter().map(|l| l.to_string() + "\n").collect();
    let (status, answer) = server
        .post("/log/bulk", Some("application/x-ndjson"), body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["accepted"], logs.len(), "{answer}");
}

/// Firing and resolved statuses of what a receiver accepted, in order,
/// in each kind's own words.
pub fn statuses(bodies: &[Value]) -> Vec<String> {
    bodies
        .iter()
        .map(|body| {
            if let Some(action) = body["event_action"].as_str() {
                action.to_string()
            } else if let Some(status) = body["status"].as_str() {
                status.to_string()
            } else {
                let text = body["text"].as_str().unwrap_or_default().to_lowercase();
                if text.contains("resolved") {
                    "resolved".into()
                } else {
                    "firing".into()
                }
            }
        })
        .collect()
}
