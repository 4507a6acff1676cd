//! `GET /loki/api/v1/tail`: the history since `start` first (oldest
//! first), then every new matching line as it is accepted, in Loki's
//! frame shape; the rest of the pipeline applied; bad queries refused
//! before the handshake.

use super::support::{get, ns, seed, wait_stored};
use crate::support::{LiveConnection, Server, next_log};
use awc::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn connect(server: &Server, params: &[(&str, &str)]) -> LiveConnection {
    let query = serde_urlencoded::to_string(params).expect("encodable");
    let (_, connection) = server
        .client
        .ws(server.ws_url(&format!("/loki/api/v1/tail?{query}")))
        .connect()
        .await
        .expect("websocket connects");
    connection
}

/// The lines of a frame in time order (a frame groups them by stream),
/// after checking its shape.
fn lines(frame: &Value) -> Vec<String> {
    assert_eq!(frame["dropped_entries"], Value::Null, "{frame}");
    let mut lines: Vec<(i64, String)> = Vec::new();
    for stream in frame["streams"].as_array().expect("streams") {
        assert_eq!(stream["stream"]["service_name"], "shop", "{frame}");
        for value in stream["values"].as_array().unwrap() {
            assert_eq!(value.as_array().unwrap().len(), 2, "{value}");
            let time: i64 = value[0].as_str().unwrap().parse().unwrap();
            lines.push((time, value[1].as_str().unwrap().to_string()));
        }
    }
    lines.sort();
    lines.into_iter().map(|(_, line)| line).collect()
}

#[actix_web::test]
async fn history_then_new_lines_matching_the_query() {
    let server = Server::start().await;
    let now = crate::loki::support::T0.max(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64,
    );
    let minute = 60_000_000_000i64;
    seed(
        &server,
        &[
            json!({"ts_ns": now - 3 * minute, "level": "info", "service": "shop", "message": "keep: old order 1"}),
            json!({"ts_ns": now - 2 * minute, "level": "info", "service": "shop", "message": "drop: old noise"}),
            json!({"ts_ns": now - minute, "level": "error", "service": "shop", "message": "keep: old order 2 failed"}),
            json!({"ts_ns": now - 30 * minute, "level": "info", "service": "shop", "message": "keep: before start"}),
        ],
    )
    .await;
    let start = ns(now - 10 * minute);
    let mut connection = connect(
        &server,
        &[
            (
                "query",
                r#"{service_name="shop"} |= "keep" | detected_level != "debug""#,
            ),
            ("start", &start),
            ("limit", "10"),
        ],
    )
    .await;
    let history = next_log(&mut connection, Duration::from_secs(10))
        .await
        .expect("the history frame");
    assert_eq!(
        lines(&history),
        ["keep: old order 1", "keep: old order 2 failed"],
        "oldest first, within start"
    );
    for (level, message) in [
        ("info", "keep: new order 3"),
        ("debug", "keep: but debug"),
        ("info", "drop: new noise"),
        ("warn", "keep: new order 4"),
    ] {
        server
            .accept(&json!({"level": level, "service": "shop", "message": message}))
            .await;
    }
    server
        .accept(&json!({"level": "info", "service": "other", "message": "keep: other service"}))
        .await;
    let mut live = Vec::new();
    while live.len() < 2 {
        let frame = next_log(&mut connection, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("new lines; got {live:?}"));
        live.extend(lines(&frame));
    }
    assert_eq!(live, ["keep: new order 3", "keep: new order 4"]);
    assert!(
        next_log(&mut connection, Duration::from_millis(300))
            .await
            .is_none(),
        "nothing else matches"
    );
    wait_stored(&server, 9).await;
}

#[actix_web::test]
async fn bad_tail_requests_are_refused_before_the_handshake() {
    let server = Server::start().await;
    for (query, needle) in [
        ("count_over_time({a=\"b\"}[1m])", "log query"),
        ("{a=", "parse error"),
    ] {
        let answer = get(&server, "/loki/api/v1/tail", &[("query", query)], &[]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        assert!(answer.text.contains(needle), "{}", answer.text);
    }
    let answer = get(
        &server,
        "/loki/api/v1/tail",
        &[("query", r#"{a="b"}"#), ("delay_for", "60")],
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}
