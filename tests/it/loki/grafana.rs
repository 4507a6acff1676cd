//! Grafana's Loki data source: Save & test, Explore's log query with and
//! without `categorize-labels`, its logs-volume query, infinite scroll in
//! both directions, errors in Loki's shape, read keys as Grafana sends
//! them (Basic auth, Bearer), form-encoded POST.

use super::support::{GRAFANA, MINUTE, SECOND, T0, get, ns, post_form, seed};
use crate::support::{Launch, Server};
use awc::http::StatusCode;
use serde_json::{Value, json};

/// Checkout, api and web logs over ten minutes from `T0`, one every 10 s,
/// with attributes (`http.status`, `region`) on some.
fn explore_logs() -> Vec<Value> {
    (0..60)
        .map(|n: i64| {
            let service = ["checkout", "api", "web"][n as usize % 3];
            let level = ["info", "warn", "error", "debug"][n as usize % 4];
            let message = if n % 5 == 0 {
                format!("payment timeout after {n}ms")
            } else {
                format!("request {n} served")
            };
            let mut log = json!({
                "ts_ns": T0 + n * 10 * SECOND + 123_000,
                "level": level,
                "service": service,
                "message": message,
            });
            if n % 2 == 0 {
                log["attributes"] =
                    json!({"http.status": if n % 4 == 0 { "500" } else { "200" }, "region": "eu"});
            }
            log
        })
        .collect()
}

async fn explore_server() -> Server {
    let server = Server::start().await;
    seed(&server, &explore_logs()).await;
    server
}

#[actix_web::test]
async fn save_and_test_turns_green() {
    let server = Server::start().await;
    let answer = get(
        &server,
        "/loki/api/v1/query",
        &[("query", "vector(1)+vector(1)"), ("time", "4000000000")],
        &[("User-Agent", "Grafana/11.5.0")],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["status"], "success");
    assert_eq!(answer.json["data"]["resultType"], "vector");
    assert_eq!(
        answer.json["data"]["result"],
        json!([{"metric": {}, "value": [4, "2"]}]),
        "exactly what Grafana's health check wants: {}",
        answer.text
    );
    let build = get(&server, "/loki/api/v1/status/buildinfo", &[], &[]).await;
    assert_eq!(build.status, StatusCode::OK);
    assert!(build.json["version"].as_str().unwrap().starts_with('3'));
}

#[actix_web::test]
async fn explore_log_query_with_and_without_categorized_labels() {
    let server = explore_server().await;
    let range = [
        ("query", r#"{service_name="checkout"} |= "timeout""#),
        ("limit", "1000"),
        ("direction", "backward"),
    ];
    let start = ns(T0);
    let end = ns(T0 + 10 * MINUTE);
    let mut params = range.to_vec();
    params.extend([
        ("start", start.as_str()),
        ("end", end.as_str()),
        ("step", "2000ms"),
    ]);
    // Grafana sends the flag: encodingFlags before result, stream labels
    // only, three-element values.
    let answer = get(&server, "/loki/api/v1/query_range", &params, GRAFANA).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let data = &answer.json["data"];
    assert_eq!(data["resultType"], "streams");
    assert_eq!(data["encodingFlags"], json!(["categorize-labels"]));
    let flags_at = answer.text.find("\"encodingFlags\"").unwrap();
    let result_at = answer.text.find("\"result\"").unwrap();
    assert!(flags_at < result_at, "encodingFlags first: {}", answer.text);
    let streams = data["result"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{}", answer.text);
    assert_eq!(streams[0]["stream"], json!({"service_name": "checkout"}));
    let values = streams[0]["values"].as_array().unwrap();
    // checkout is n % 3 == 0; timeout is n % 5 == 0: n = 0, 15, 30, 45.
    let expected: Vec<i64> = [45, 30, 15, 0]
        .iter()
        .map(|n| T0 + n * 10 * SECOND + 123_000)
        .collect();
    let times: Vec<i64> = values
        .iter()
        .map(|v| v[0].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(times, expected, "newest first");
    for value in values {
        assert_eq!(value.as_array().unwrap().len(), 3, "{value}");
        assert!(value[1].as_str().unwrap().contains("timeout"));
        let metadata = &value[2]["structuredMetadata"];
        assert!(metadata["detected_level"].is_string(), "{value}");
        assert!(value[2].get("parsed").is_none(), "nothing parsed: {value}");
    }
    // n = 0 has attributes: sanitized names.
    let oldest = &values[3][2]["structuredMetadata"];
    assert_eq!(
        oldest,
        &json!({"detected_level": "info", "http_status": "500", "region": "eu"})
    );
    assert!(data["stats"]["summary"]["execTime"].is_number());

    // An older client: no flag, two-element values, every label in the stream.
    let plain = get(&server, "/loki/api/v1/query_range", &params, &[]).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text);
    assert!(plain.json["data"].get("encodingFlags").is_none());
    let streams = plain.json["data"]["result"].as_array().unwrap();
    for stream in streams {
        for value in stream["values"].as_array().unwrap() {
            assert_eq!(value.as_array().unwrap().len(), 2, "{value}");
        }
    }
    let labels: Vec<&Value> = streams.iter().map(|s| &s["stream"]).collect();
    assert!(
        labels.contains(&&json!({"service_name": "checkout", "detected_level": "info", "http_status": "500", "region": "eu"})),
        "{labels:?}"
    );
    let total: usize = streams
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 4);
}

#[actix_web::test]
async fn the_logs_volume_query_counts_per_level_and_step() {
    let server = explore_server().await;
    let start = ns(T0);
    let end = ns(T0 + 10 * MINUTE);
    let answer = get(
        &server,
        "/loki/api/v1/query_range",
        &[
            (
                "query",
                r#"sum by (level, detected_level) (count_over_time({service_name="checkout"} |= "timeout" | drop __error__[1m]))"#,
            ),
            ("start", &start),
            ("end", &end),
            ("step", "60000ms"),
        ],
        &[
            ("X-Loki-Response-Encoding-Flags", "categorize-labels"),
            ("X-Query-Tags", "Source=logvolhist"),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["data"]["resultType"], "matrix");
    // Checkout's timeouts: n = 0 (info, at 0 s), 15 (debug, 150 s), 30
    // (error, 300 s), 45 (warn, 450 s), each 123 µs past the second.
    let mut got: Vec<(String, Vec<(f64, String)>)> = answer.json["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| {
            (
                series["metric"]["detected_level"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                series["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().to_string()))
                    .collect(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let t0 = (T0 / SECOND) as f64;
    // A log at t is counted by the step t' in (t, t + 60 s].
    let point = |seconds: f64| (t0 + seconds, "1".to_string());
    assert_eq!(
        got,
        vec![
            ("debug".to_string(), vec![point(180.0)]),
            ("error".to_string(), vec![point(360.0)]),
            ("info".to_string(), vec![point(60.0)]),
            ("warn".to_string(), vec![point(480.0)]),
        ],
        "{}",
        answer.text
    );
}

#[actix_web::test]
async fn infinite_scroll_pages_in_both_directions() {
    let server = explore_server().await;
    let query = r#"{service_name=~".+"} != "timeout""#;
    for direction in ["backward", "forward"] {
        let mut seen: Vec<i64> = Vec::new();
        let (mut start, mut end) = (T0, T0 + 10 * MINUTE);
        loop {
            let (s, e) = (ns(start), ns(end));
            let answer = get(
                &server,
                "/loki/api/v1/query_range",
                &[
                    ("query", query),
                    ("start", &s),
                    ("end", &e),
                    ("limit", "7"),
                    ("direction", direction),
                ],
                &[
                    ("X-Loki-Response-Encoding-Flags", "categorize-labels"),
                    ("X-Query-Tags", "Source=infinitescroll"),
                ],
            )
            .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
            let mut page: Vec<i64> = answer.json["data"]["result"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["values"].as_array().unwrap().clone())
                .map(|v| v[0].as_str().unwrap().parse().unwrap())
                .collect();
            assert!(page.len() <= 7);
            if page.is_empty() {
                break;
            }
            page.sort();
            if direction == "backward" {
                page.reverse();
                end = *page.last().unwrap();
            } else {
                start = page.last().unwrap() + 1;
            }
            seen.extend(page);
        }
        let mut expected: Vec<i64> = (0..60)
            .filter(|n| n % 5 != 0)
            .map(|n| T0 + n * 10 * SECOND + 123_000)
            .collect();
        if direction == "backward" {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{direction}: every line once, in order");
    }
}

#[actix_web::test]
async fn errors_answer_in_lokis_shape_never_500() {
    let server = explore_server().await;
    let parse = get(
        &server,
        "/loki/api/v1/query_range",
        &[("query", r#"{service_name="checkout"} |= "#)],
        GRAFANA,
    )
    .await;
    assert_eq!(parse.status, StatusCode::BAD_REQUEST);
    assert!(
        parse.text.starts_with("parse error at line 1, col "),
        "{}",
        parse.text
    );
    assert!(parse.content_type.starts_with("text/plain"));
    for (params, needle) in [
        (
            vec![("query", r#"{service_name="api"}"#), ("limit", "6000")],
            "max entries limit",
        ),
        (
            vec![("query", r#"{a="b"}"#), ("start", "yesterday")],
            "start",
        ),
        (
            vec![("query", r#"{a="b"}"#), ("direction", "sideways")],
            "direction",
        ),
        (
            vec![("query", "rate({a=\"b\"}[1m])"), ("step", "0")],
            "step",
        ),
        (vec![], "query"),
        (
            vec![
                ("query", "count_over_time({a=\"b\"}[1m])"),
                ("start", "0"),
                ("end", "1000000000000000000"),
                ("step", "1s"),
            ],
            "11,000 points",
        ),
    ] {
        let answer = get(&server, "/loki/api/v1/query_range", &params, GRAFANA).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{params:?}: {}",
            answer.text
        );
        assert!(answer.text.contains(needle), "{params:?}: {}", answer.text);
    }
    let unknown = get(&server, "/loki/api/v1/nothing", &[], &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    // A form-encoded POST answers as the GET.
    let form = post_form(
        &server,
        "/loki/api/v1/query",
        &[("query", "vector(1)+vector(1)"), ("time", "4000000000")],
        &[],
    )
    .await;
    assert_eq!(
        form.json["data"]["result"],
        json!([{"metric": {}, "value": [4, "2"]}])
    );
    let formatted = get(
        &server,
        "/loki/api/v1/format_query",
        &[("query", r#"{service_name="checkout"}|="timeout""#)],
        &[],
    )
    .await;
    assert_eq!(
        formatted.json,
        json!({"status": "success", "data": r#"{service_name="checkout"} |= "timeout""#})
    );
}

#[actix_web::test]
async fn read_keys_as_grafana_sends_them() {
    let key = "grafana-read-key-0123456789";
    let server = Server::launch(
        Launch::default()
            .env("OGLOGSTREAM_SECURITY__READ_KEYS", &format!("[\"{key}\"]"))
            .env(
                "OGLOGSTREAM_SECURITY__INGEST_KEYS",
                "[\"ingest-key-0123456789\"]",
            ),
    )
    .await;
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("grafana:{key}"))
    );
    let bearer = format!("Bearer {key}");
    let save_and_test = [("query", "vector(1)+vector(1)"), ("time", "4000000000")];
    let refused = get(&server, "/loki/api/v1/query", &save_and_test, &[]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let wrong = get(
        &server,
        "/loki/api/v1/query",
        &save_and_test,
        &[("Authorization", "Bearer not-the-key-0123456789")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    for authorization in [basic.as_str(), bearer.as_str()] {
        let answer = get(
            &server,
            "/loki/api/v1/query",
            &save_and_test,
            &[
                ("Authorization", authorization),
                ("X-Scope-OrgID", "team-a|team-b"),
            ],
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{authorization}: {}",
            answer.text
        );
        assert_eq!(answer.json["data"]["result"][0]["value"], json!([4, "2"]));
    }
    let labels = get(
        &server,
        "/loki/api/v1/labels",
        &[],
        &[("Authorization", &bearer)],
    )
    .await;
    assert_eq!(labels.status, StatusCode::OK, "{}", labels.text);
}
