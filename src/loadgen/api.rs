//! Calls to the server's API that several load phases make.

use super::client::HttpConnection;
use serde_json::{Value, json};

/// Creates an alert rule over `query` (5-minute window, a threshold never
/// reached, so it evaluates without notifying); returns its id.
pub async fn create_alert_rule(
    connection: &mut HttpConnection,
    name: &str,
    query: &str,
    group_by: &[&str],
) -> anyhow::Result<String> {
    let rule = json!({
        "name": name,
        "query": query,
        "window": "5m",
        "threshold": 1_000_000_000u64,
        "group_by": group_by,
    });
    let request = HttpConnection::post_bytes(
        connection.host(),
        "/api/alerts/rules",
        "application/json",
        rule.to_string().as_bytes(),
    );
    let response = connection.send(&request).await?;
    anyhow::ensure!(
        response.status == 201,
        "creating an alert rule answered {}: {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    let answer: Value = serde_json::from_slice(&response.body)?;
    Ok(answer["id"].as_str().unwrap_or_default().to_string())
}
