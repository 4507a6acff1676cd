//! What the Loki tests share: seeding logs with fixed timestamps, and
//! requests as Grafana sends them (its headers, nanosecond times).

use crate::support::Server;
use awc::http::StatusCode;
use serde_json::Value;

/// 2025-01-01T10:00:00Z in nanoseconds.
pub const T0: i64 = 1_735_725_600_000_000_000;
pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;

/// RFC 3339 of a time in nanoseconds (microsecond precision, as stored).
pub fn rfc3339(nanos: i64) -> String {
    let micros = nanos / 1000;
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction:06}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Hinnant's civil-from-days.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Posts `logs` (JSON objects with a `timestamp` in nanoseconds as
/// `ts_ns`, turned into RFC 3339 here) and waits until all are stored.
pub async fn seed(server: &Server, logs: &[Value]) {
    for chunk in logs.chunks(5000) {
        let body: Vec<Value> = chunk
            .iter()
            .map(|log| {
                let mut log = log.clone();
                if let Some(nanos) = log.get("ts_ns").and_then(Value::as_i64) {
                    log["timestamp"] = Value::String(rfc3339(nanos));
                    log.as_object_mut().map(|o| o.remove("ts_ns"));
                }
                log
            })
            .collect();
        let (status, answer) = server
            .post(
                "/log/bulk",
                Some("application/json"),
                Value::Array(body).to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    wait_stored(server, logs.len() as u64).await;
}

/// Waits until the store holds `total` logs of any time.
pub async fn wait_stored(server: &Server, total: u64) {
    crate::support::eventually(
        &format!("{total} logs stored"),
        std::time::Duration::from_secs(30),
        || async {
            let (_, stats) = server.get("/api/stats?from=0").await;
            (stats["total_logs"].as_u64() == Some(total)).then_some(())
        },
    )
    .await;
}

/// An answer: status, body as text, body as JSON (`Null` when not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub text: String,
    pub json: Value,
    pub content_type: String,
}

/// `GET <path>?<params>` with `headers`, as Grafana sends it.
pub async fn get(
    server: &Server,
    path: &str,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Answer {
    let query = serde_urlencoded::to_string(params).expect("encodable");
    let mut request = server.client.get(server.url(&format!("{path}?{query}")));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    answer(&mut response).await
}

/// `POST <path>` with `params` as a form body.
pub async fn post_form(
    server: &Server,
    path: &str,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Answer {
    let body = serde_urlencoded::to_string(params).expect("encodable");
    let mut request = server
        .client
        .post(server.url(path))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request
        .send_body(body)
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    answer(&mut response).await
}

async fn answer<S>(response: &mut awc::ClientResponse<S>) -> Answer
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let body = response.body().limit(64 << 20).await.expect("body");
    let text = String::from_utf8_lossy(&body).into_owned();
    Answer {
        status: response.status(),
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        content_type: response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        text,
    }
}

/// Grafana's headers on `query` and `query_range`.
pub const GRAFANA: &[(&str, &str)] = &[
    ("X-Loki-Response-Encoding-Flags", "categorize-labels"),
    ("X-Query-Tags", "Source=grafana"),
    ("User-Agent", "Grafana/11.5.0"),
];

pub fn ns(nanos: i64) -> String {
    nanos.to_string()
}
