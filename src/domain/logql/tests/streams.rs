//! Log queries on rows: streams, entries, structured metadata and parsed
//! labels, limits, and Loki's JSON with and without `categorize-labels`.

use super::{T0, keys_of, log_query, record};
use crate::domain::logql::json::StreamsData;
use crate::domain::logql::*;
use crate::domain::{Level, LogRecord};

fn run(
    query: &str,
    records: &[LogRecord],
    options: LogQueryOptions,
    model: &LabelModel,
) -> Vec<Stream> {
    let keys = keys_of(records);
    let plan = log_query(query).push_down(&keys);
    let mut evaluator = LogQueryEvaluator::new(&plan.residual, model, options).unwrap();
    for record in records.iter().filter(|r| plan.expr.matches(r)) {
        if evaluator.push(record) == Progress::Full {
            break;
        }
    }
    evaluator.finish()
}

fn pairs(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

const CATEGORIZED: LogQueryOptions = LogQueryOptions {
    limit: 100,
    categorize_labels: true,
};
const PLAIN: LogQueryOptions = LogQueryOptions {
    limit: 100,
    categorize_labels: false,
};

#[test]
fn categorized_entries_carry_metadata_and_parsed_labels() {
    // Newest first, as a backward query reads them.
    let records = vec![
        record(
            "b",
            2,
            Level::Error,
            "checkout",
            r#"{"msg":"db down","code":7}"#,
            &[("k8s.namespace.name", "prod"), ("http.status", "500")],
        ),
        record(
            "a",
            1,
            Level::Info,
            "checkout",
            "plain text",
            &[("k8s.namespace.name", "dev")],
        ),
    ];
    let model = LabelModel::new(&["k8s.namespace.name".to_string()]);
    let streams = run(
        r#"{service_name="checkout"} | json"#,
        &records,
        CATEGORIZED,
        &model,
    );
    assert_eq!(streams.len(), 2, "one stream per stream label set");
    assert_eq!(
        streams[0].labels,
        pairs(&[("k8s_namespace_name", "dev"), ("service_name", "checkout")])
    );
    let plain = &streams[0].entries[0];
    assert_eq!(plain.timestamp_nanos, (T0 + 1_000_000) * 1000);
    assert_eq!(
        plain.structured_metadata,
        pairs(&[("detected_level", "info")])
    );
    assert_eq!(plain.parsed[1].0, "__error_details__");
    assert_eq!(
        plain.parsed[0],
        ("__error__".to_string(), "JSONParserErr".to_string())
    );
    let json = &streams[1].entries[0];
    assert_eq!(
        json.structured_metadata,
        pairs(&[("detected_level", "error"), ("http_status", "500")])
    );
    assert_eq!(json.parsed, pairs(&[("code", "7"), ("msg", "db down")]));
    let text = serde_json::to_string(&StreamsData {
        streams: &streams[1..],
        categorize_labels: true,
    })
    .unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"resultType":"streams","encodingFlags":["categorize-labels"],"result":[{{"stream":{{"k8s_namespace_name":"prod","service_name":"checkout"}},"values":[["{}","{{\"msg\":\"db down\",\"code\":7}}",{{"structuredMetadata":{{"detected_level":"error","http_status":"500"}},"parsed":{{"code":"7","msg":"db down"}}}}]]}}]}}"#,
            (T0 + 2_000_000) * 1000
        )
    );
}

#[test]
fn without_the_flag_all_labels_make_the_stream_and_values_have_two_elements() {
    let records = vec![
        record(
            "b",
            2,
            Level::Error,
            "checkout",
            "second",
            &[("trace_id", "t2")],
        ),
        record(
            "a",
            1,
            Level::Error,
            "checkout",
            "first",
            &[("trace_id", "t1")],
        ),
        record(
            "c",
            0,
            Level::Error,
            "checkout",
            "third",
            &[("trace_id", "t1")],
        ),
    ];
    let streams = run(
        r#"{service_name="checkout"} | line_format "{{.trace_id}}: {{__line__}}""#,
        &records,
        PLAIN,
        &LabelModel::default(),
    );
    assert_eq!(streams.len(), 2);
    assert_eq!(
        streams[0].labels,
        pairs(&[
            ("detected_level", "error"),
            ("service_name", "checkout"),
            ("trace_id", "t1")
        ])
    );
    let lines: Vec<&str> = streams[0].entries.iter().map(|e| e.line.as_str()).collect();
    assert_eq!(
        lines,
        ["t1: first", "t1: third"],
        "entries keep the feeding order"
    );
    let text = serde_json::to_string(&StreamsData {
        streams: &streams[1..],
        categorize_labels: false,
    })
    .unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"resultType":"streams","result":[{{"stream":{{"detected_level":"error","service_name":"checkout","trace_id":"t2"}},"values":[["{}","t2: second"]]}}]}}"#,
            (T0 + 2_000_000) * 1000
        )
    );
}

#[test]
fn limits_and_formatting_stages() {
    let records: Vec<LogRecord> = (0..10)
        .map(|i| {
            record(
                &i.to_string(),
                10 - i,
                Level::Warn,
                "api",
                &format!("n={i} user=u{}", i % 3),
                &[],
            )
        })
        .collect();
    let options = LogQueryOptions {
        limit: 4,
        categorize_labels: true,
    };
    let streams = run(
        r#"{service_name="api"} | logfmt | user="u1" or n < 2 | label_format who=user | keep who, service_name"#,
        &records,
        options,
        &LabelModel::default(),
    );
    let entries: Vec<(&str, &Labels)> = streams
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| (e.line.as_str(), &e.parsed)))
        .collect();
    assert_eq!(entries.len(), 4, "the limit stops the answer");
    assert_eq!(entries[0].0, "n=0 user=u0");
    assert_eq!(entries[0].1, &pairs(&[("who", "u0")]));
    assert!(entries.iter().all(|(_, parsed)| parsed.len() == 1));
    assert!(
        streams
            .iter()
            .all(|s| s.entries.iter().all(|e| e.structured_metadata.is_empty())),
        "keep dropped detected_level"
    );
    assert!(matches!(
        LogQueryEvaluator::new(
            &[],
            &LabelModel::default(),
            LogQueryOptions {
                limit: 5001,
                categorize_labels: false
            }
        ),
        Err(EvalError::TooManyEntries { requested: 5001 })
    ));
    assert_eq!(
        EvalError::TooManyEntries { requested: 5001 }.to_string(),
        "max entries limit per query exceeded, limit > max_entries_limit (5001 > 5000)"
    );
}

#[test]
fn parsers_on_rows() {
    let records = vec![
        record(
            "a",
            1,
            Level::Info,
            "web",
            r#"10.0.0.1 - - "GET /a HTTP/1.1" 200 512"#,
            &[],
        ),
        record(
            "b",
            2,
            Level::Info,
            "web",
            r#"10.0.0.2 - - "POST /b HTTP/1.1" 503 12"#,
            &[],
        ),
        record(
            "c",
            3,
            Level::Info,
            "web",
            r#"{"_entry":"packed line","pod":"p-1"}"#,
            &[],
        ),
    ];
    let model = LabelModel::default();
    let streams = run(
        r#"{service_name="web"} | pattern "<ip> - - \"<method> <path> <_>\" <status> <size>" | status >= 500 | line_format "{{.method}} {{.path}} {{.size | printf \"%5s\"}}""#,
        &records,
        CATEGORIZED,
        &model,
    );
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].entries.len(), 1);
    assert_eq!(streams[0].entries[0].line, "POST /b    12");
    let streams = run(
        r#"{service_name="web"} | regexp "^(?P<ip>\\S+) .*\" (?P<status>\\d+)" | ip = ip("10.0.0.0/31") | status="200""#,
        &records,
        CATEGORIZED,
        &model,
    );
    assert_eq!(streams[0].entries.len(), 1);
    assert_eq!(streams[0].entries[0].line, records[0].message);
    let streams = run(
        r#"{service_name="web"} | unpack | pod="p-1""#,
        &records,
        CATEGORIZED,
        &model,
    );
    assert_eq!(streams[0].entries[0].line, "packed line");
}
