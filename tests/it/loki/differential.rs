//! The differential test: a corpus of LogQL queries (log and metric, every
//! construct the engine supports) answered by the server and by the
//! reference evaluator (`reference/`, written here from Loki's documented
//! semantics), compared exactly: streams, lines, structured metadata and
//! parsed labels; series and samples (values to 1e-9 relative). On the
//! embedded store, on ClickHouse, and through split roles.

use super::reference::{self, MetricAnswer, Model, Record, Streams};
use super::support::{MINUTE, SECOND, T0, get, ns, seed};
use crate::split::deps::{ClickHouse, Nats};
use crate::support::{Launch, Server};
use awc::http::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The attribute keys that are stream labels in every server here.
const STREAM_KEYS: &str = "[\"env\"]";
const RECORDS: i64 = 600;
/// The range every query reads: the records' 30 minutes.
const START: i64 = T0;
const END: i64 = T0 + 30 * MINUTE;

/// Log queries: (query, limit, backward).
pub const LOG_QUERIES: &[(&str, usize, bool)] = &[
    (r#"{service_name="checkout"}"#, 1000, true),
    (r#"{service_name=~"check.*|api", env="prod"}"#, 1000, true),
    (
        r#"{service_name=~".+", service_name!="web", env!~"prod"}"#,
        1000,
        true,
    ),
    (r#"{service_name=~".+"} |= "timeout""#, 1000, true),
    (
        r#"{service_name=~".+"} |= "timeout" or "TIMEOUT" != "red""#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} |~ "(?i)timeout" !~ "worker [12]""#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} |> "payment timeout after <_> from <_>""#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} !> "<_> - - <_>" |= "1""#,
        1000,
        true,
    ),
    (r#"{detected_level="error"}"#, 1000, true),
    (r#"{detected_level=~"warn|fatal"}"#, 1000, true),
    (r#"{level="warn", service_name="api"}"#, 1000, true),
    (r#"{service_name=~".+"} | http_status="500""#, 1000, true),
    (r#"{http_status=~"5.."}"#, 1000, true),
    (r#"{service_name=~".+"} | http_status >= 500"#, 1000, true),
    (
        r#"{service_name=~".+"} | http_status >= 500 | __error__="""#,
        1000,
        true,
    ),
    (r#"{service_name="checkout"} | json"#, 1000, true),
    (
        r#"{service_name="checkout"} | json | status="404""#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} |= "order" | json first="user.name", code="status""#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} | logfmt | method="GET" | took > 30ms"#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} | logfmt | size <= 3KiB | __error__="""#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} | regexp "from (?P<ip>\\d+\\.\\d+\\.\\d+\\.\\d+)" | ip=~"10.0.1.*""#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} | pattern "<ip> - - \"<method> <path> <_>\" <status> <size>" | status="404""#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} |= "_entry" | unpack | pod="p-2""#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} | decolorize |= "red timeout""#,
        1000,
        true,
    ),
    (
        r#"{service_name="api"} | logfmt | method!="" | line_format "{{.method}} {{.path}}: {{__line__}}""#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} | logfmt | method!="" | label_format verb=method, where="{{.path}}/x" | keep verb, where, service_name"#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} | logfmt | drop took, size, msg"#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} | pod="p-1" or user="bob""#,
        1000,
        true,
    ),
    (
        r#"{service_name=~".+"} | (pod="p-1" or pod="p-2") and env="prod""#,
        1000,
        true,
    ),
    (r#"{service_name=~".+"} | took > 200ms"#, 1000, true),
    (r#"{service_name=~".+"} | size > 1KB"#, 1000, true),
    (r#"{service_name=~".+"} | latency > 2.5"#, 1000, true),
    (
        r#"{service_name=~".+"} | json | logfmt | drop __error__, __error_details__ | status="500""#,
        1000,
        true,
    ),
    (r#"{service_name=~".+"} |= "1""#, 15, false),
    (r#"{service_name=~".+"} |= "1""#, 25, true),
    (r#"{service_name=~".+"} | __error__="""#, 1000, false),
    (r#"{service_name=~".+", env=""} |= "line""#, 1000, true),
];

/// Metric queries, run over the range at `step` seconds.
pub const METRIC_QUERIES: &[(&str, i64)] = &[
    (r#"count_over_time({service_name="checkout"}[1m])"#, 60),
    (
        r#"sum by (service_name) (count_over_time({service_name=~".+"}[1m]))"#,
        60,
    ),
    (
        r#"sum by (detected_level) (rate({service_name=~".+"} |= "timeout" [2m]))"#,
        60,
    ),
    (
        r#"sum by (service_name, detected_level) (count_over_time({env="prod"}[5m]))"#,
        120,
    ),
    (
        r#"sum(count_over_time({service_name="api", env != ""} [1m])) by (env)"#,
        60,
    ),
    (
        r#"sum by (pod) (count_over_time({service_name=~".+"} | pod!="" [1m]))"#,
        60,
    ),
    (r#"bytes_over_time({service_name="web"}[2m])"#, 60),
    (r#"bytes_rate({service_name="web"}[2m])"#, 60),
    (
        r#"sum by (service_name) (sum_over_time({service_name=~".+"} | latency!="" | unwrap latency [3m]))"#,
        60,
    ),
    (
        r#"avg_over_time({service_name=~".+"} | unwrap latency | __error__="" [3m]) by (service_name)"#,
        60,
    ),
    (
        r#"max_over_time({service_name=~".+"} | unwrap duration(took) | __error__="" [5m]) by (service_name)"#,
        120,
    ),
    (
        r#"min_over_time({service_name=~".+"} | unwrap bytes(size) | __error__="" [5m]) by (service_name)"#,
        120,
    ),
    (
        r#"first_over_time({service_name="api"} | unwrap latency | __error__="" [5m])"#,
        120,
    ),
    (
        r#"last_over_time({service_name="api"} | unwrap latency | __error__="" [5m])"#,
        120,
    ),
    (
        r#"stddev_over_time({service_name=~".+"} | unwrap latency | __error__="" [5m]) by (service_name)"#,
        120,
    ),
    (
        r#"stdvar_over_time({service_name=~".+"} | unwrap latency | __error__="" [5m]) by (service_name)"#,
        120,
    ),
    (
        r#"quantile_over_time(0.9, {service_name=~".+"} | unwrap latency | __error__="" [5m]) by (service_name)"#,
        120,
    ),
    (
        r#"rate_counter({service_name=~".+"} | unwrap requests | __error__="" [5m]) by (pod)"#,
        120,
    ),
    (r#"absent_over_time({service_name="nothing"}[1m])"#, 60),
    (r#"absent_over_time({service_name="api"}[1m])"#, 60),
    (r#"count_over_time({service_name="api"}[2m] offset 1m)"#, 60),
    (
        r#"sum by (service_name) (count_over_time({service_name=~".+"}[1m])) * 2 + 1"#,
        60,
    ),
    (
        r#"sum by (service_name) (count_over_time({service_name=~".+"} | detected_level="error" [5m])) / sum by (service_name) (count_over_time({service_name=~".+"}[5m]))"#,
        120,
    ),
    (
        r#"sum by (service_name) (count_over_time({service_name=~".+"}[1m])) > 4"#,
        60,
    ),
    (
        r#"sum by (service_name) (count_over_time({service_name=~".+"}[1m])) > bool 4"#,
        60,
    ),
    (
        r#"topk(2, sum by (pod) (count_over_time({service_name=~".+"} | pod!="" [5m])))"#,
        120,
    ),
    (
        r#"bottomk(1, sum by (service_name) (count_over_time({service_name=~".+"}[5m])))"#,
        120,
    ),
    (r#"avg(count_over_time({service_name=~".+"}[1m]))"#, 60),
    (r#"min(count_over_time({service_name=~".+"}[1m]))"#, 60),
    (r#"max(count_over_time({service_name=~".+"}[1m]))"#, 60),
    (r#"count(count_over_time({service_name=~".+"}[1m]))"#, 60),
    (r#"stddev(count_over_time({service_name=~".+"}[1m]))"#, 60),
    (
        r#"stdvar(sum by (service_name) (count_over_time({service_name=~".+"}[1m])))"#,
        60,
    ),
    (
        r#"max without (detected_level, env) (count_over_time({service_name=~".+"}[2m]))"#,
        120,
    ),
    (
        r#"sum by (service_name) (count_over_time({service_name=~".+"}[1m])) and sum by (service_name) (count_over_time({service_name="web"}[1m]))"#,
        60,
    ),
    (
        r#"sum by (service_name) (count_over_time({service_name=~".+"}[1m])) unless sum by (service_name) (count_over_time({service_name="web"}[1m]))"#,
        60,
    ),
    (
        r#"sum by (service_name) (count_over_time({service_name="nothing"}[1m])) or vector(0)"#,
        60,
    ),
    (
        r#"sum by (service_name, pod) (count_over_time({service_name=~".+"} | pod!="" [5m])) / on (service_name) group_left sum by (service_name) (count_over_time({service_name=~".+"}[5m]))"#,
        120,
    ),
    (
        r#"sum by (service_name) (count_over_time({service_name=~".+"} | json | status="404" | drop __error__, __error_details__ [5m]))"#,
        120,
    ),
    (
        r#"sum by (method) (count_over_time({service_name=~".+"} | logfmt | method!="" [5m]))"#,
        120,
    ),
    (r#"vector(1)+vector(1)"#, 300),
    (
        r#"sum by (service_name) (count_over_time({service_name=~".+"} | http_status >= 500 [5m]))"#,
        120,
    ),
    (r#"count_over_time({service_name=~".+"} | json [5m])"#, 120),
];

/// 600 records over 30 minutes, one every 3 s (never on a whole second):
/// JSON, logfmt, plain, access-log, colored and packed lines; a stream
/// label (`env`), structured metadata of every kind (two keys that
/// sanitize alike, numbers, durations, sizes, a counter with a reset).
pub fn records() -> Vec<Record> {
    (0..RECORDS)
        .map(|n| {
            let service = ["checkout", "api", "web", "worker"][(n % 4) as usize];
            let level = ["info", "warn", "error", "debug", "info", "fatal"][(n % 6) as usize];
            let mut attributes = BTreeMap::new();
            let mut set = |k: &str, v: String| {
                attributes.insert(k.to_string(), v);
            };
            if n % 5 != 4 {
                set("env", ["prod", "staging"][(n % 2) as usize].to_string());
            }
            if n % 3 == 0 {
                set("http.status", ["200", "404", "500", "abc"][(n / 3 % 4) as usize].to_string());
            } else if n % 11 == 5 {
                set("http_status", "503".to_string());
            }
            if n % 2 == 0 {
                set("pod", format!("p-{}", n % 3 + 1));
                set("requests", ((n % 300) / 2 * 3).to_string());
            }
            if n % 4 == 0 {
                set("took", ["15ms", "1.5s", "250ms", "bad", "2m"][(n / 4 % 5) as usize].to_string());
            }
            if n % 5 == 1 {
                set("size", ["512", "2KiB", "3MB", "1kB", "x"][(n / 5 % 5) as usize].to_string());
            }
            if n % 2 == 1 {
                set("latency", format!("{:.2}", (n % 17) as f64 * 0.25));
            }
            if n % 4 == 2 {
                set("user", ["ann", "bob", "cid"][(n % 3) as usize].to_string());
            }
            let status = [200, 404, 500][(n / 6 % 3) as usize];
            let message = match n % 6 {
                0 => json!({"msg": "order placed", "status": status, "user": {"id": n % 5, "name": (["ann", "bob"][(n % 2) as usize])}, "took": format!("{}ms", n % 9 * 10), "items": [1, 2]}).to_string(),
                1 => format!(
                    "method=GET path=/api/cart/{} status={status} took={}ms size={}KiB msg=\"cart viewed\"",
                    n % 4,
                    n % 9 * 10,
                    n % 7
                ),
                2 if n % 12 == 2 => format!("payment TIMEOUT after {}s from 10.0.{}.{}", n % 5, n / 6 % 3, n % 250),
                2 => format!("payment timeout after {}s from 10.0.{}.{}", n % 5, n / 6 % 3, n % 250),
                3 => format!(
                    "10.1.{}.{} - - \"GET /index/{}.html HTTP/1.1\" {} {}",
                    n % 4,
                    n % 200,
                    n % 5,
                    [200, 404][(n % 2) as usize],
                    n * 7 % 1000
                ),
                4 => format!("\u{1b}[31mred timeout\u{1b}[0m on worker {}", n % 3),
                _ => json!({"_entry": format!("original line {n}"), "pod": format!("p-{}", n % 3), "user": (["ann", "bob", "cid"][(n % 3) as usize])}).to_string(),
            };
            Record {
                ts_ns: T0 + n * 3 * SECOND + 1_234_000 + (n % 7) * 13_000,
                level,
                service: service.to_string(),
                message,
                attributes,
            }
        })
        .collect()
}

fn as_logs(records: &[Record]) -> Vec<Value> {
    records
        .iter()
        .map(|r| {
            json!({
                "ts_ns": r.ts_ns,
                "level": r.level,
                "service": r.service,
                "message": r.message,
                "attributes": r.attributes,
            })
        })
        .collect()
}

/// `__error_details__` holds each implementation's own words: compared by
/// presence only.
fn without_details(labels: Vec<(String, String)>) -> Vec<(String, String)> {
    labels
        .into_iter()
        .map(|(name, value)| {
            if name == "__error_details__" {
                (name, String::new())
            } else {
                (name, value)
            }
        })
        .collect()
}

fn label_pairs(object: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = object
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    without_details(pairs)
}

fn streams_of(answer: &Value, categorize: bool) -> Streams {
    let mut streams: Streams = BTreeMap::new();
    for stream in answer["data"]["result"].as_array().into_iter().flatten() {
        let labels = label_pairs(&stream["stream"]);
        let entries = streams.entry(labels).or_default();
        for value in stream["values"].as_array().into_iter().flatten() {
            entries.push(reference::Entry {
                ts_ns: value[0].as_str().and_then(|t| t.parse().ok()).unwrap_or(-1),
                line: value[1].as_str().unwrap_or("").to_string(),
                metadata: if categorize {
                    label_pairs(&value[2]["structuredMetadata"])
                } else {
                    Vec::new()
                },
                parsed: if categorize {
                    label_pairs(&value[2]["parsed"])
                } else {
                    Vec::new()
                },
            });
        }
    }
    streams
}

fn normalized(streams: Streams) -> Streams {
    streams
        .into_iter()
        .map(|(labels, entries)| {
            (
                without_details(labels),
                entries
                    .into_iter()
                    .map(|e| reference::Entry {
                        metadata: without_details(e.metadata),
                        parsed: without_details(e.parsed),
                        ..e
                    })
                    .collect(),
            )
        })
        .collect()
}

/// Series by labels: (milliseconds, value) points.
type Matrix = BTreeMap<Vec<(String, String)>, Vec<(i64, f64)>>;

fn matrix_of(answer: &Value) -> Matrix {
    answer["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|series| {
            let points = series["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let ms = (p[0].as_f64().unwrap_or(-1.0) * 1000.0).round() as i64;
                    let value = match p[1].as_str().unwrap_or("") {
                        "+Inf" => f64::INFINITY,
                        "-Inf" => f64::NEG_INFINITY,
                        text => text.parse().unwrap_or(f64::NAN),
                    };
                    (ms, value)
                })
                .collect();
            (label_pairs(&series["metric"]), points)
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn same_matrix(got: &Matrix, wanted: &Matrix) -> bool {
    got.len() == wanted.len()
        && got.iter().zip(wanted).all(|((gl, gp), (wl, wp))| {
            gl == wl
                && gp.len() == wp.len()
                && gp
                    .iter()
                    .zip(wp)
                    .all(|((gt, gv), (wt, wv))| gt == wt && close(*gv, *wv))
        })
}

/// Runs the corpus against `server`; every difference, described.
async fn differences(server: &Server, records: &[Record]) -> Vec<String> {
    let model = Model {
        stream_keys: vec!["env".to_string()],
    };
    let (start, end) = (ns(START), ns(END));
    let mut differences = Vec::new();
    for (query, limit, backward) in LOG_QUERIES {
        let parsed = reference::parse(query);
        let limit_text = limit.to_string();
        for categorize in [true, false] {
            let headers: &[(&str, &str)] = if categorize {
                &[("X-Loki-Response-Encoding-Flags", "categorize-labels")]
            } else {
                &[]
            };
            let answer = get(
                server,
                "/loki/api/v1/query_range",
                &[
                    ("query", query),
                    ("start", &start),
                    ("end", &end),
                    ("limit", &limit_text),
                    ("direction", if *backward { "backward" } else { "forward" }),
                ],
                headers,
            )
            .await;
            if answer.status != StatusCode::OK {
                differences.push(format!("{query}: {} {}", answer.status, answer.text));
                continue;
            }
            let got = streams_of(&answer.json, categorize);
            let wanted = normalized(reference::log_query(
                records,
                &model,
                &parsed,
                (START, END),
                *limit,
                *backward,
                categorize,
            ));
            if got != wanted {
                differences.push(describe_streams(query, categorize, &got, &wanted));
            }
        }
    }
    for (query, step) in METRIC_QUERIES {
        let parsed = reference::parse(query);
        let step_text = format!("{step}s");
        let answer = get(
            server,
            "/loki/api/v1/query_range",
            &[
                ("query", query),
                ("start", &start),
                ("end", &end),
                ("step", &step_text),
            ],
            &[("X-Loki-Response-Encoding-Flags", "categorize-labels")],
        )
        .await;
        let wanted = reference::metric_range(records, &model, &parsed, START, END, step * SECOND);
        match (answer.status, wanted) {
            (StatusCode::BAD_REQUEST, MetricAnswer::Fails) => {}
            (StatusCode::OK, MetricAnswer::Matrix(wanted)) => {
                let got = matrix_of(&answer.json);
                if !same_matrix(&got, &wanted) {
                    differences.push(format!(
                        "{query}:\n  server    {got:?}\n  reference {wanted:?}"
                    ));
                }
            }
            (status, wanted) => differences.push(format!(
                "{query}: the server answered {status} {}, the reference {wanted:?}",
                answer.text.chars().take(300).collect::<String>()
            )),
        }
    }
    // Instant queries: the reference's single step.
    let time = T0 + 20 * MINUTE;
    for query in [
        r#"sum by (service_name) (count_over_time({service_name=~".+"}[10m]))"#,
        r#"topk(1, sum by (pod) (rate({service_name=~".+"} | pod!="" [5m])))"#,
    ] {
        let answer = get(
            server,
            "/loki/api/v1/query",
            &[("query", query), ("time", &ns(time))],
            &[],
        )
        .await;
        let wanted = reference::metric_range(
            records,
            &model,
            &reference::parse(query),
            time,
            time,
            SECOND,
        );
        let MetricAnswer::Matrix(wanted) = wanted else {
            differences.push(format!("{query}: the reference fails"));
            continue;
        };
        let got: Matrix = answer.json["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|sample| {
                let ms = (sample["value"][0].as_f64().unwrap_or(-1.0) * 1000.0).round() as i64;
                let value = sample["value"][1]
                    .as_str()
                    .unwrap_or("")
                    .parse()
                    .unwrap_or(f64::NAN);
                (label_pairs(&sample["metric"]), vec![(ms, value)])
            })
            .collect();
        if !same_matrix(&got, &wanted) {
            differences.push(format!(
                "instant {query}:\n  server    {got:?}\n  reference {wanted:?}"
            ));
        }
    }
    differences
}

fn describe_streams(query: &str, categorize: bool, got: &Streams, wanted: &Streams) -> String {
    let mut text = format!("{query} (categorize-labels: {categorize}):");
    for (labels, entries) in wanted {
        match got.get(labels) {
            None => text.push_str(&format!(
                "\n  missing stream {labels:?} ({} entries)",
                entries.len()
            )),
            Some(found) if found != entries => {
                let first = found
                    .iter()
                    .zip(entries)
                    .position(|(a, b)| a != b)
                    .unwrap_or(found.len().min(entries.len()));
                text.push_str(&format!(
                    "\n  stream {labels:?}: {} entries vs {}; first difference at {first}: server {:?} reference {:?}",
                    found.len(),
                    entries.len(),
                    found.get(first),
                    entries.get(first)
                ));
            }
            Some(_) => {}
        }
    }
    for labels in got.keys().filter(|l| !wanted.contains_key(*l)) {
        text.push_str(&format!(
            "\n  extra stream {labels:?} ({} entries)",
            got[labels].len()
        ));
    }
    text
}

/// The corpus means something: every query but those meant to find
/// nothing (or to fail) finds lines or samples in the reference.
#[test]
fn the_reference_finds_something_for_every_query() {
    let records = records();
    let model = Model {
        stream_keys: vec!["env".to_string()],
    };
    let mut empty = Vec::new();
    for (query, limit, backward) in LOG_QUERIES {
        let streams = reference::log_query(
            &records,
            &model,
            &reference::parse(query),
            (START, END),
            *limit,
            *backward,
            true,
        );
        if streams.values().all(Vec::is_empty) {
            empty.push(query.to_string());
        }
    }
    for (query, step) in METRIC_QUERIES {
        match reference::metric_range(
            &records,
            &model,
            &reference::parse(query),
            START,
            END,
            step * SECOND,
        ) {
            MetricAnswer::Matrix(series) if series.is_empty() => empty.push(query.to_string()),
            _ => {}
        }
    }
    assert!(empty.is_empty(), "queries finding nothing: {empty:#?}");
}

fn assert_no_differences(store: &str, differences: Vec<String>) {
    assert!(
        differences.is_empty(),
        "{store}: {} of {} queries differ from the reference:\n{}",
        differences.len(),
        LOG_QUERIES.len() * 2 + METRIC_QUERIES.len() + 2,
        differences.join("\n")
    );
}

#[actix_web::test]
async fn logql_answers_as_the_reference_on_the_embedded_store() {
    let records = records();
    let server =
        Server::launch(Launch::default().env("OGLOGSTREAM_LOKI__STREAM_LABELS", STREAM_KEYS)).await;
    seed(&server, &as_logs(&records)).await;
    assert_no_differences("embedded", differences(&server, &records).await);
}

#[actix_web::test]
async fn logql_answers_as_the_reference_on_clickhouse() {
    let records = records();
    let clickhouse = ClickHouse::start().await;
    let server = Server::launch(
        Launch::default()
            .env("OGLOGSTREAM_LOKI__STREAM_LABELS", STREAM_KEYS)
            .env("CLICKHOUSE_DSN", &clickhouse.dsn("loki_differential")),
    )
    .await;
    seed(&server, &as_logs(&records)).await;
    assert_no_differences("clickhouse", differences(&server, &records).await);
}

#[actix_web::test]
async fn logql_answers_as_the_reference_through_split_roles() {
    let records = records();
    let nats = Nats::start().await;
    let clickhouse = ClickHouse::start().await;
    let role = |role: &str, store: bool| {
        let mut launch = Launch::default()
            .arg("--role")
            .arg(role)
            .env("NATS_URL", &nats.url())
            .env("FLUSH_TIMEOUT", "100ms")
            .env("OGLOGSTREAM_LOKI__STREAM_LABELS", STREAM_KEYS);
        if store {
            launch = launch.env("CLICKHOUSE_DSN", &clickhouse.dsn("loki_split"));
        }
        launch
    };
    let _process = Server::launch(role("process", true)).await;
    let ingest = Server::launch(role("ingest", false)).await;
    let query = Server::launch(role("query", true)).await;
    for chunk in as_logs(&records).chunks(200) {
        let body: Vec<Value> = chunk
            .iter()
            .map(|log| {
                let mut log = log.clone();
                let nanos = log["ts_ns"].as_i64().unwrap_or(0);
                log["timestamp"] = Value::String(super::support::rfc3339(nanos));
                log.as_object_mut().map(|o| o.remove("ts_ns"));
                log
            })
            .collect();
        let (status, answer) = ingest
            .post(
                "/log/bulk",
                Some("application/json"),
                Value::Array(body).to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    super::support::wait_stored(&query, records.len() as u64).await;
    assert_no_differences("split roles", differences(&query, &records).await);
}
