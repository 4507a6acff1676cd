//! Grafana Logs Drilldown's requests, as it sends them (RFC 3339 times with
//! milliseconds, `step` as a Grafana interval): the service list, the
//! per-service volume by level, the labels tab, the fields tab on JSON and
//! logfmt lines, a field's values, numeric fields' averages, the patterns
//! tab and the limits that turn it on.

use super::support::{GRAFANA, MINUTE, SECOND, T0, get, rfc3339, seed};
use crate::support::{Launch, Server};
use awc::http::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `api` logs alternating JSON and logfmt lines, over 20 minutes from T0,
/// with a stream label (`cluster`, configured as one) and structured
/// metadata (`pod`, and an id-like `trace_id`); `web` logs in plain text.
fn drilldown_logs() -> Vec<Value> {
    let mut logs = Vec::new();
    for n in 0..120i64 {
        let level = ["info", "error", "warn", "info"][n as usize % 4];
        let took_ms = 10 + n % 7 * 5;
        let message = if n % 2 == 0 {
            json!({"msg": "charged card", "user": {"id": n % 5}, "took": format!("{took_ms}ms"), "status": 200 + n % 3 * 100}).to_string()
        } else {
            format!(
                "method=GET path=/cart/{} status={} took={took_ms}ms",
                n % 4,
                200 + n % 3 * 100
            )
        };
        logs.push(json!({
            "ts_ns": T0 + n * 10 * SECOND + 7_000,
            "level": level,
            "service": "api",
            "message": message,
            "attributes": {
                "cluster": (["eu-1", "us-2"][n as usize % 2]),
                "pod": format!("api-{}", n % 3),
                "trace_id": format!("4bf92f3577b34da6a3ce929d0e0e{n:04}"),
            },
        }));
    }
    for n in 0..30i64 {
        logs.push(json!({
            "ts_ns": T0 + n * 40 * SECOND + 9_000,
            "level": (["info", "debug"][n as usize % 2]),
            "service": "web",
            "message": format!("GET /static/{n}.css served in {n}ms"),
        }));
    }
    logs
}

async fn drilldown_server() -> Server {
    let server =
        Server::launch(Launch::default().env("OGLOGSTREAM_LOKI__STREAM_LABELS", "[\"cluster\"]"))
            .await;
    seed(&server, &drilldown_logs()).await;
    server
}

/// Drilldown's time range: the 20 minutes, in RFC 3339 with milliseconds.
fn range() -> [(&'static str, String); 2] {
    [("start", rfc3339(T0)), ("end", rfc3339(T0 + 20 * MINUTE))]
}

async fn drilldown_get(
    server: &Server,
    path: &str,
    extra: &[(&str, &str)],
) -> super::support::Answer {
    let range = range();
    let mut params: Vec<(&str, &str)> = range.iter().map(|(k, v)| (*k, v.as_str())).collect();
    params.extend_from_slice(extra);
    let answer = get(
        server,
        path,
        &params,
        &[("X-Query-Tags", "Source=grafana-lokiexplore-app")],
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{path} {extra:?}: {}",
        answer.text
    );
    answer
}

/// A matrix answer as label set -> summed values.
fn matrix_totals(answer: &Value, label: &str) -> BTreeMap<String, f64> {
    answer["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("not a matrix: {answer}"))
        .iter()
        .map(|series| {
            let key = series["metric"][label].as_str().unwrap_or("").to_string();
            let sum: f64 = series["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p[1].as_str().unwrap().parse::<f64>().unwrap())
                .sum();
            (key, sum)
        })
        .collect()
}

#[actix_web::test]
async fn limits_service_list_and_levels() {
    let server = drilldown_server().await;
    let limits = drilldown_get(&server, "/loki/api/v1/drilldown-limits", &[]).await;
    assert_eq!(limits.json["pattern_ingester_enabled"], true);
    assert_eq!(limits.json["limits"]["max_entries_limit_per_query"], 5000);
    assert!(limits.json["limits"]["max_query_series"].is_number());
    assert!(limits.json["limits"]["retention_period"].is_string());

    let services = drilldown_get(
        &server,
        "/loki/api/v1/index/volume",
        &[("query", r#"{service_name=~".+"}"#), ("limit", "5000")],
    )
    .await;
    assert_eq!(services.json["data"]["resultType"], "vector");
    let list: Vec<(String, String)> = services.json["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["service_name"].as_str().unwrap().to_string(),
                s["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        list,
        [
            ("api".to_string(), "120".to_string()),
            ("web".into(), "30".into())
        ],
        "largest first: {}",
        services.text
    );
    let time = services.json["data"]["result"][0]["value"][0]
        .as_f64()
        .unwrap();
    assert_eq!(time, ((T0 + 20 * MINUTE) / SECOND) as f64);

    let levels = drilldown_get(
        &server,
        "/loki/api/v1/query_range",
        &[
            (
                "query",
                r#"sum by (detected_level) (count_over_time({service_name="api"} [30s]))"#,
            ),
            ("step", "30s"),
        ],
    )
    .await;
    assert_eq!(
        matrix_totals(&levels.json, "detected_level"),
        BTreeMap::from([
            ("error".to_string(), 30.0),
            ("info".into(), 60.0),
            ("warn".into(), 30.0)
        ]),
        "{}",
        levels.text
    );
    let by_level = drilldown_get(
        &server,
        "/loki/api/v1/index/volume_range",
        &[
            ("query", r#"{service_name="api"}"#),
            ("targetLabels", "detected_level"),
            ("step", "300s"),
        ],
    )
    .await;
    assert_eq!(
        matrix_totals(&by_level.json, "detected_level"),
        BTreeMap::from([
            ("error".to_string(), 30.0),
            ("info".into(), 60.0),
            ("warn".into(), 30.0)
        ])
    );
    // Drilldown's logs panel with a level filter.
    let errors = drilldown_get(
        &server,
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{service_name="api"} | detected_level="error" or detected_level="warn" | pod="api-1""#),
            ("limit", "1000"),
            ("direction", "backward"),
        ],
    )
    .await;
    let total: usize = errors.json["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    // error or warn: n % 4 in {1, 2}; pod api-1: n % 3 == 1.
    let expected = (0..120)
        .filter(|n| [1, 2].contains(&(n % 4)) && n % 3 == 1)
        .count();
    assert_eq!(total, expected);
}

#[actix_web::test]
async fn labels_tab() {
    let server = drilldown_server().await;
    let labels = drilldown_get(
        &server,
        "/loki/api/v1/labels",
        &[("query", r#"{service_name="api"}"#)],
    )
    .await;
    assert_eq!(
        labels.json,
        json!({"status": "success", "data": ["cluster", "service_name"]})
    );
    let detected = drilldown_get(
        &server,
        "/loki/api/v1/detected_labels",
        &[("query", r#"{service_name="api"}"#)],
    )
    .await;
    assert_eq!(
        detected.json,
        json!({"detectedLabels": [
            {"label": "service_name", "cardinality": 1},
            {"label": "cluster", "cardinality": 2}
        ]})
    );
    let values = drilldown_get(&server, "/loki/api/v1/label/cluster/values", &[]).await;
    assert_eq!(values.json["data"], json!(["eu-1", "us-2"]));
    let services = drilldown_get(&server, "/loki/api/v1/label/service_name/values", &[]).await;
    assert_eq!(services.json["data"], json!(["api", "web"]));
    let breakdown = drilldown_get(
        &server,
        "/loki/api/v1/query_range",
        &[
            (
                "query",
                r#"sum(count_over_time({service_name="api", cluster != ""} [30s])) by (cluster)"#,
            ),
            ("step", "30s"),
        ],
    )
    .await;
    assert_eq!(
        matrix_totals(&breakdown.json, "cluster"),
        BTreeMap::from([("eu-1".to_string(), 60.0), ("us-2".into(), 60.0)])
    );
    let series = drilldown_get(&server, "/loki/api/v1/series", &[("match[]", "{}")]).await;
    assert_eq!(
        series.json["data"],
        json!([
            {"cluster": "eu-1", "service_name": "api"},
            {"cluster": "us-2", "service_name": "api"},
            {"service_name": "web"}
        ])
    );
    // In the streams, cluster is a stream label, pod structured metadata.
    let lines = get(
        &server,
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{service_name="api", cluster="eu-1"}"#),
            ("limit", "1"),
            ("start", &super::support::ns(T0)),
            ("end", &super::support::ns(T0 + 20 * MINUTE)),
        ],
        GRAFANA,
    )
    .await;
    let stream = &lines.json["data"]["result"][0];
    assert_eq!(
        stream["stream"],
        json!({"cluster": "eu-1", "service_name": "api"})
    );
    let metadata = &stream["values"][0][2]["structuredMetadata"];
    assert!(
        metadata["pod"].is_string() && metadata.get("cluster").is_none(),
        "{metadata}"
    );
}

#[actix_web::test]
async fn fields_tab_on_json_and_logfmt_lines() {
    let server = drilldown_server().await;
    let fields = drilldown_get(
        &server,
        "/loki/api/v1/detected_fields",
        &[("query", r#"{service_name="api"}"#), ("line_limit", "1000")],
    )
    .await;
    assert!(
        fields.json.get("data").is_none(),
        "no wrapper: {}",
        fields.text
    );
    let by_label: BTreeMap<String, Value> = fields.json["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| (field["label"].as_str().unwrap().to_string(), field.clone()))
        .collect();
    let names: Vec<&str> = by_label.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "detected_level",
            "method",
            "msg",
            "path",
            "pod",
            "status",
            "took",
            "user_id"
        ],
        "stream labels and ids kept out: {}",
        fields.text
    );
    assert_eq!(by_label["pod"]["parsers"], Value::Null);
    assert_eq!(by_label["pod"]["cardinality"], 3);
    assert_eq!(by_label["detected_level"]["parsers"], Value::Null);
    assert_eq!(by_label["method"]["parsers"], json!(["logfmt"]));
    assert_eq!(by_label["msg"]["parsers"], json!(["json"]));
    assert_eq!(by_label["user_id"]["jsonPath"], json!(["user", "id"]));
    assert_eq!(by_label["user_id"]["type"], "int");
    assert_eq!(by_label["status"]["parsers"], json!(["json", "logfmt"]));
    assert_eq!(by_label["status"]["type"], "int");
    assert_eq!(by_label["status"]["cardinality"], 3);
    assert_eq!(by_label["took"]["type"], "duration");
    // Logfmt lines are the odd ones: paths /cart/1 and /cart/3.
    assert_eq!(by_label["path"]["cardinality"], 2);

    let values = drilldown_get(
        &server,
        "/loki/api/v1/detected_field/path/values",
        &[("query", r#"{service_name="api"}"#)],
    )
    .await;
    assert_eq!(values.json["values"], json!(["/cart/1", "/cart/3"]));
    let pods = drilldown_get(
        &server,
        "/loki/api/v1/detected_field/pod/values",
        &[("query", r#"{service_name="api"}"#)],
    )
    .await;
    assert_eq!(pods.json["values"], json!(["api-0", "api-1", "api-2"]));
    let levels = drilldown_get(
        &server,
        "/loki/api/v1/detected_field/detected_level/values",
        &[("query", r#"{service_name="api"}"#)],
    )
    .await;
    assert_eq!(levels.json["values"], json!(["info", "warn", "error"]));

    let breakdown = drilldown_get(
        &server,
        "/loki/api/v1/query_range",
        &[
            ("query", r#"sum by (status) (count_over_time({service_name="api"} | json | logfmt | drop __error__, __error_details__ | status!="" [30s]))"#),
            ("step", "30s"),
        ],
    )
    .await;
    assert_eq!(
        matrix_totals(&breakdown.json, "status"),
        BTreeMap::from([
            ("200".to_string(), 40.0),
            ("300".into(), 40.0),
            ("400".into(), 40.0)
        ]),
        "{}",
        breakdown.text
    );
    let average = drilldown_get(
        &server,
        "/loki/api/v1/query_range",
        &[
            ("query", r#"avg_over_time({service_name="api"} | logfmt | unwrap duration(took) | __error__="" [60s]) by ()"#),
            ("step", "60s"),
        ],
    )
    .await;
    let series = average.json["data"]["result"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{}", average.text);
    assert_eq!(series[0]["metric"], json!({}));
    // The first minute's logfmt lines are n = 1, 3, 5 (t = 10, 30, 50 s):
    // took 15, 25, 35 ms, averaging 25 ms, at the step one minute on.
    let first = &series[0]["values"][0];
    assert_eq!(first[0].as_f64().unwrap(), (T0 / SECOND + 60) as f64);
    let average: f64 = first[1].as_str().unwrap().parse().unwrap();
    assert!((average - 0.025).abs() < 1e-12, "{first}");
}

#[actix_web::test]
async fn patterns_tab() {
    let server = drilldown_server().await;
    let patterns = drilldown_get(
        &server,
        "/loki/api/v1/patterns",
        &[("query", r#"{service_name="web"}"#), ("step", "60s")],
    )
    .await;
    assert_eq!(patterns.json["status"], "success");
    let items = patterns.json["data"].as_array().unwrap();
    let mut by_level: BTreeMap<String, u64> = BTreeMap::new();
    for item in items {
        // Paths vary like numbers: the miner takes them as a variable.
        assert_eq!(item["pattern"], "GET <_> served in <_>", "{item}");
        let count: u64 = item["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s[1].as_u64().unwrap())
            .sum();
        by_level.insert(item["level"].as_str().unwrap().to_string(), count);
        for sample in item["samples"].as_array().unwrap() {
            let seconds = sample[0].as_i64().unwrap();
            assert_eq!(seconds % 60, 0, "samples on the step: {item}");
        }
    }
    assert_eq!(
        by_level,
        BTreeMap::from([("debug".to_string(), 15), ("info".into(), 15)])
    );
}
