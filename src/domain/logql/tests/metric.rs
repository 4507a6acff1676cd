//! Metric queries on rows and on counts: windows `(t - range, t]`,
//! `offset`, every range function, vector aggregations, binary operations,
//! series order and limits, pipeline errors, and Loki's JSON.

use super::{T0, keys_of, metric_query, record};
use crate::domain::logql::json::MetricData;
use crate::domain::logql::*;
use crate::domain::{Level, LogRecord};

const MINUTE: i64 = 60_000_000_000;
const T0_NANOS: i64 = T0 * 1000;

fn evaluate(query: &str, records: &[LogRecord], grid: StepGrid) -> Result<MetricResult, EvalError> {
    let metric = metric_query(query);
    let keys = keys_of(records);
    let plan = MetricPlan::new(&metric, &keys);
    let model = LabelModel::default();
    let mut evaluator = plan.evaluator(grid, &model);
    for (index, leaf) in plan.leaves().iter().enumerate() {
        for record in records.iter().filter(|r| leaf.pushdown.expr.matches(r)) {
            evaluator.push_row(index, record)?;
        }
    }
    evaluator.finish()
}

/// Series as `{labels}` and (seconds after T0, value) points.
fn series(result: MetricResult) -> Vec<(String, Vec<(i64, f64)>)> {
    let MetricResult::Matrix(series) = result else {
        panic!("not a matrix: {result:?}")
    };
    series
        .into_iter()
        .map(|s| {
            let points = s
                .points
                .iter()
                .map(|(ms, v)| ((ms - T0 / 1000) / 1000, *v))
                .collect();
            (streams_labels(&s.labels), points)
        })
        .collect()
}

fn streams_labels(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v}")).collect();
    pairs.join(",")
}

fn minutes(from: i64, to: i64) -> StepGrid {
    StepGrid::range(T0_NANOS + from * MINUTE, T0_NANOS + to * MINUTE, MINUTE).unwrap()
}

fn info(
    id: &str,
    seconds: i64,
    service: &str,
    message: &str,
    attributes: &[(&str, &str)],
) -> LogRecord {
    record(id, seconds, Level::Info, service, message, attributes)
}

#[test]
fn windows_are_left_open_and_offset_shifts_them() {
    let records: Vec<LogRecord> = [0, 30, 60, 61, 120]
        .iter()
        .map(|s| info(&s.to_string(), *s, "a", "x", &[]))
        .collect();
    let labels = "detected_level=info,service_name=a".to_string();
    let result = evaluate(
        r#"count_over_time({service_name="a"}[1m])"#,
        &records,
        minutes(1, 2),
    )
    .unwrap();
    assert_eq!(
        series(result),
        [(labels.clone(), vec![(60, 2.0), (120, 2.0)])]
    );
    let result = evaluate(
        r#"count_over_time({service_name="a"}[1m] offset 1m)"#,
        &records,
        minutes(1, 2),
    )
    .unwrap();
    assert_eq!(
        series(result),
        [(labels.clone(), vec![(60, 1.0), (120, 2.0)])]
    );
    let result = evaluate(r#"rate({service_name="a"}[2m])"#, &records, minutes(2, 2)).unwrap();
    assert_eq!(series(result), [(labels.clone(), vec![(120, 4.0 / 120.0)])]);
    let result = evaluate(
        r#"bytes_over_time({service_name="a"} | line_format "abc" [1m])"#,
        &records,
        minutes(1, 1),
    )
    .unwrap();
    assert_eq!(series(result), [(labels.clone(), vec![(60, 6.0)])]);
    let result = evaluate(
        r#"bytes_rate({service_name="a"}[1m])"#,
        &records,
        minutes(1, 1),
    )
    .unwrap();
    assert_eq!(series(result), [(labels, vec![(60, 2.0 / 60.0)])]);
    let result = evaluate(
        r#"absent_over_time({service_name="a", env=~".*"}[1m])"#,
        &records,
        minutes(1, 4),
    )
    .unwrap();
    assert_eq!(
        series(result),
        [("service_name=a".to_string(), vec![(180, 1.0), (240, 1.0)])]
    );
}

#[test]
fn unwrapped_range_functions() {
    let values = [
        ("1", "4"),
        ("2", "2"),
        ("3", "9"),
        ("4", "oops"),
        ("5", "1"),
    ];
    let records: Vec<LogRecord> = values
        .iter()
        .enumerate()
        .map(|(i, (id, latency))| info(id, 10 * i as i64 + 1, "a", "x", &[("latency", latency)]))
        .collect();
    let grid = minutes(1, 1);
    let check = |query: &str, expected: f64| {
        let result = series(evaluate(query, &records, grid).unwrap());
        assert_eq!(result.len(), 1, "{query}: {result:?}");
        let value = result[0].1[0].1;
        assert!(
            (value - expected).abs() < 1e-9,
            "{query}: {value} != {expected}"
        );
    };
    check(
        r#"sum_over_time({service_name="a"} | unwrap latency | __error__="" [1m])"#,
        16.0,
    );
    check(
        r#"avg_over_time({service_name="a"} | unwrap latency | __error__="" [1m])"#,
        4.0,
    );
    check(
        r#"min_over_time({service_name="a"} | unwrap latency | __error__="" [1m])"#,
        1.0,
    );
    check(
        r#"max_over_time({service_name="a"} | unwrap latency | __error__="" [1m])"#,
        9.0,
    );
    check(
        r#"first_over_time({service_name="a"} | unwrap latency | __error__="" [1m])"#,
        4.0,
    );
    check(
        r#"last_over_time({service_name="a"} | unwrap latency | __error__="" [1m])"#,
        1.0,
    );
    check(
        r#"stdvar_over_time({service_name="a"} | unwrap latency | __error__="" [1m])"#,
        9.5,
    );
    check(
        r#"stddev_over_time({service_name="a"} | unwrap latency | __error__="" [1m])"#,
        9.5f64.sqrt(),
    );
    check(
        r#"quantile_over_time(0.5, {service_name="a"} | unwrap latency | __error__="" [1m])"#,
        3.0,
    );
    check(
        r#"rate({service_name="a"} | unwrap latency | __error__="" [1m])"#,
        16.0 / 60.0,
    );
    let error = evaluate(
        r#"sum_over_time({service_name="a"} | unwrap latency [1m])"#,
        &records,
        grid,
    )
    .unwrap_err();
    assert!(
        matches!(&error, EvalError::Pipeline { error, .. } if error == "SampleExtractionErr"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("pipeline error: 'SampleExtractionErr' for series: '{")
    );
    let durations = [
        info("a", 1, "d", "took=1.5s", &[]),
        info("b", 2, "d", "took=500ms", &[]),
    ];
    let result = evaluate(
        r#"avg_over_time({service_name="d"} | logfmt | unwrap duration(took) [1m]) by ()"#,
        &durations,
        grid,
    )
    .unwrap();
    assert_eq!(series(result), [(String::new(), vec![(60, 1.0)])]);
    let sizes = [
        info("a", 1, "s", "m", &[("size", "1KiB")]),
        info("b", 2, "s", "m", &[("size", "2kB")]),
    ];
    let result = evaluate(
        r#"sum_over_time({service_name="s"} | unwrap bytes(size) [1m])"#,
        &sizes,
        grid,
    )
    .unwrap();
    assert_eq!(series(result)[0].1, [(60, 3024.0)]);
    let counter = [
        info("a", 10, "c", "m", &[("n", "10")]),
        info("b", 20, "c", "m", &[("n", "20")]),
        info("c", 30, "c", "m", &[("n", "30")]),
        info("d", 40, "c", "m", &[("n", "40")]),
    ];
    let result = evaluate(
        r#"rate_counter({service_name="c"} | unwrap n [1m])"#,
        &counter,
        grid,
    )
    .unwrap();
    assert!((series(result)[0].1[0].1 - 0.75).abs() < 1e-9);
}

fn mixed() -> Vec<LogRecord> {
    vec![
        record("1", 10, Level::Error, "api", "e1", &[("pod", "p1")]),
        record("2", 20, Level::Error, "api", "e2", &[("pod", "p2")]),
        record("3", 30, Level::Warn, "api", "w1", &[("pod", "p1")]),
        record("4", 40, Level::Error, "web", "e3", &[("pod", "p3")]),
        record("5", 50, Level::Info, "web", "i1", &[("pod", "p3")]),
        record("6", 55, Level::Info, "web", "i2", &[("pod", "p3")]),
    ]
}

#[test]
fn vector_aggregations() {
    let records = mixed();
    let grid = minutes(1, 1);
    let run = |query: &str| series(evaluate(query, &records, grid).unwrap());
    assert_eq!(
        run(r#"sum by (detected_level) (count_over_time({service_name=~".+"}[1m]))"#),
        [
            ("detected_level=error".to_string(), vec![(60, 3.0)]),
            ("detected_level=info".to_string(), vec![(60, 2.0)]),
            ("detected_level=warn".to_string(), vec![(60, 1.0)]),
        ]
    );
    assert_eq!(
        run(r#"sum(count_over_time({service_name=~".+"}[1m])) by (service_name)"#),
        [
            ("service_name=api".to_string(), vec![(60, 3.0)]),
            ("service_name=web".to_string(), vec![(60, 3.0)])
        ]
    );
    assert_eq!(
        run(r#"count(count_over_time({service_name=~".+"}[1m]))"#),
        [(String::new(), vec![(60, 5.0)])]
    );
    assert_eq!(
        run(r#"max without (pod, detected_level) (count_over_time({service_name=~".+"}[1m]))"#),
        [
            ("service_name=api".to_string(), vec![(60, 1.0)]),
            ("service_name=web".to_string(), vec![(60, 2.0)])
        ]
    );
    assert_eq!(
        run(r#"avg by (service_name) (count_over_time({service_name=~".+"}[1m]))"#),
        [
            ("service_name=api".to_string(), vec![(60, 1.0)]),
            ("service_name=web".to_string(), vec![(60, 1.5)])
        ]
    );
    assert_eq!(
        run(r#"min(count_over_time({service_name=~".+"}[1m]))"#)[0].1,
        [(60, 1.0)]
    );
    assert_eq!(
        run(r#"stdvar(sum by (service_name) (count_over_time({service_name=~".+"}[1m])))"#)[0].1,
        [(60, 0.0)]
    );
    let stddev = run(r#"stddev(count_over_time({service_name=~".+"}[1m]))"#)[0].1[0].1;
    assert!((stddev - 0.4).abs() < 1e-9, "{stddev}");
    let top = run(r#"topk(1, sum by (pod) (count_over_time({service_name=~".+"}[1m])))"#);
    assert_eq!(top, [("pod=p3".to_string(), vec![(60, 3.0)])]);
    let bottom = run(
        r#"bottomk by (service_name) (1, sum by (service_name, pod) (count_over_time({service_name=~".+"}[1m])))"#,
    );
    assert_eq!(
        bottom,
        [
            ("pod=p2,service_name=api".to_string(), vec![(60, 1.0)]),
            ("pod=p3,service_name=web".to_string(), vec![(60, 3.0)])
        ]
    );
    // An instant topk keeps its own order: largest first.
    let instant = evaluate(
        r#"topk(2, sum by (pod) (count_over_time({service_name=~".+"}[1m])))"#,
        &records,
        StepGrid::instant(T0_NANOS + MINUTE),
    )
    .unwrap();
    let MetricResult::Vector(samples) = instant else {
        panic!()
    };
    let order: Vec<&str> = samples.iter().map(|s| s.labels[0].1.as_str()).collect();
    assert_eq!(order, ["p3", "p1"]);
    let sorted = evaluate(
        r#"sort_desc(sum by (pod) (count_over_time({service_name=~".+"}[1m])))"#,
        &records,
        StepGrid::instant(T0_NANOS + MINUTE),
    )
    .unwrap();
    let MetricResult::Vector(samples) = sorted else {
        panic!()
    };
    let values: Vec<f64> = samples.iter().map(|s| s.value).collect();
    assert_eq!(values, [3.0, 2.0, 1.0]);
}

#[test]
fn binary_operations() {
    let records = mixed();
    let grid = minutes(1, 1);
    let run = |query: &str| series(evaluate(query, &records, grid).unwrap());
    let by_service = |a: f64, b: f64| {
        vec![
            ("service_name=api".to_string(), vec![(60, a)]),
            ("service_name=web".to_string(), vec![(60, b)]),
        ]
    };
    assert_eq!(
        run(r#"sum by (service_name) (count_over_time({service_name=~".+"}[1m])) * 2 + 1"#),
        by_service(7.0, 7.0)
    );
    assert_eq!(
        run(r#"10 - sum by (service_name) (count_over_time({service_name=~".+"}[1m])) ^ 2"#),
        by_service(1.0, 1.0)
    );
    assert_eq!(
        run(
            r#"sum by (service_name) (count_over_time({service_name=~".+"} | detected_level="error" [1m])) / sum by (service_name) (count_over_time({service_name=~".+"}[1m]))"#
        ),
        by_service(2.0 / 3.0, 1.0 / 3.0)
    );
    assert_eq!(
        run(
            r#"sum by (service_name) (count_over_time({service_name=~".+"} | detected_level="error" [1m])) > 1"#
        ),
        [("service_name=api".to_string(), vec![(60, 2.0)])]
    );
    assert_eq!(
        run(
            r#"sum by (service_name) (count_over_time({service_name=~".+"} | detected_level="error" [1m])) > bool 1"#
        ),
        by_service(1.0, 0.0)
    );
    assert_eq!(
        run(
            r#"1 < bool sum by (service_name) (count_over_time({service_name=~".+"} | detected_level="error" [1m]))"#
        ),
        by_service(1.0, 0.0)
    );
    assert_eq!(
        run(
            r#"sum by (service_name, pod) (count_over_time({service_name=~".+"}[1m])) / on (service_name) group_left sum by (service_name) (count_over_time({service_name=~".+"}[1m]))"#
        ),
        [
            ("pod=p1,service_name=api".to_string(), vec![(60, 2.0 / 3.0)]),
            ("pod=p2,service_name=api".to_string(), vec![(60, 1.0 / 3.0)]),
            ("pod=p3,service_name=web".to_string(), vec![(60, 1.0)]),
        ]
    );
    assert_eq!(
        run(
            r#"sum by (service_name, pod) (count_over_time({service_name=~".+"}[1m])) - ignoring (pod) group_left sum by (service_name) (count_over_time({service_name=~".+"} | detected_level="error" [1m]))"#
        ),
        [
            ("pod=p1,service_name=api".to_string(), vec![(60, 0.0)]),
            ("pod=p2,service_name=api".to_string(), vec![(60, -1.0)]),
            ("pod=p3,service_name=web".to_string(), vec![(60, 2.0)]),
        ]
    );
    let error = evaluate(
        r#"sum by (service_name, pod) (count_over_time({service_name=~".+"}[1m])) / on (service_name) sum by (service_name) (count_over_time({service_name=~".+"}[1m]))"#,
        &records,
        grid,
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("many-to-one matching must be explicit"),
        "{error}"
    );
    assert_eq!(
        run(
            r#"sum by (service_name) (count_over_time({service_name=~".+"}[1m])) and sum by (service_name) (count_over_time({service_name="web"}[1m]))"#
        ),
        [("service_name=web".to_string(), vec![(60, 3.0)])]
    );
    assert_eq!(
        run(
            r#"sum by (service_name) (count_over_time({service_name=~".+"}[1m])) unless sum by (service_name) (count_over_time({service_name="web"}[1m]))"#
        ),
        [("service_name=api".to_string(), vec![(60, 3.0)])]
    );
    assert_eq!(
        run(
            r#"sum by (service_name) (count_over_time({service_name="nothing"}[1m])) or vector(0)"#
        ),
        [(String::new(), vec![(60, 0.0)])]
    );
}

#[test]
fn grafanas_save_and_test_answer() {
    let result = evaluate("vector(1)+vector(1)", &[], StepGrid::instant(4_000_000_000)).unwrap();
    assert_eq!(
        serde_json::to_string(&MetricData(&result)).unwrap(),
        r#"{"resultType":"vector","result":[{"metric":{},"value":[4,"2"]}]}"#
    );
    let scalar = evaluate("1 + 2 * 3 ^ 2 ^ 2", &[], StepGrid::instant(1_500_000_000)).unwrap();
    assert_eq!(
        serde_json::to_string(&MetricData(&scalar)).unwrap(),
        r#"{"resultType":"scalar","result":[1.5,"163"]}"#
    );
    let matrix = evaluate(
        r#"-2.5"#,
        &[],
        StepGrid::range(0, 2_000_000_000, 1_000_000_000).unwrap(),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&MetricData(&matrix)).unwrap(),
        r#"{"resultType":"matrix","result":[{"metric":{},"values":[[0,"-2.5"],[1,"-2.5"],[2,"-2.5"]]}]}"#
    );
}

#[test]
fn errors_and_limits() {
    let records = vec![info("1", 1, "a", "not json", &[])];
    let error = evaluate(
        r#"count_over_time({service_name="a"} | json [1m])"#,
        &records,
        minutes(1, 1),
    )
    .unwrap_err();
    assert!(matches!(&error, EvalError::Pipeline { error, .. } if error == "JSONParserErr"));
    let fine = evaluate(
        r#"count_over_time({service_name="a"} | json | drop __error__, __error_details__ [1m])"#,
        &records,
        minutes(1, 1),
    );
    assert!(fine.is_ok());
    let many: Vec<LogRecord> = (0..501)
        .map(|i| info(&i.to_string(), 1, "a", "m", &[("trace", &i.to_string())]))
        .collect();
    let error = evaluate(
        r#"count_over_time({service_name="a"}[1m])"#,
        &many,
        minutes(1, 1),
    )
    .unwrap_err();
    assert_eq!(error, EvalError::TooManySeries);
    let summed = evaluate(
        r#"sum by (detected_level) (count_over_time({service_name="a"}[1m]))"#,
        &many,
        minutes(1, 1),
    )
    .unwrap();
    assert_eq!(
        series(summed)[0].1,
        [(60, 501.0)],
        "sum by groups while it counts"
    );
    assert_eq!(StepGrid::range(0, 11_000, 1), Err(EvalError::TooManyPoints));
    assert!(StepGrid::range(0, 10, 0).is_err() && StepGrid::range(10, 0, 1).is_err());
}

/// Counts per (bucket, level, service[, attribute]) as a store would
/// return them, in buckets of `width` starting at multiples of `width`.
fn count_rows(records: &[LogRecord], counting: &Counting, width: i64) -> Vec<CountRow> {
    let mut rows: Vec<CountRow> = Vec::new();
    for record in records {
        let nanos = record.timestamp * 1000;
        if nanos <= counting.from_nanos || nanos > counting.to_nanos {
            continue;
        }
        // From the counting's origin, as the store is asked to bucket.
        let origin = counting.origin_nanos;
        let bucket = origin + (nanos - 1 - origin).div_euclid(width) * width;
        let attribute = counting
            .dimensions
            .attribute
            .as_ref()
            .and_then(|(_, keys)| {
                keys.iter()
                    .find_map(|key| record.attributes.get(key).cloned())
            });
        let found = rows.iter_mut().find(|row| {
            row.bucket_start_nanos == bucket
                && row.level == record.level
                && row.service == record.service
                && row.attribute == attribute
        });
        match found {
            Some(row) => row.count += 1,
            None => rows.push(CountRow {
                bucket_start_nanos: bucket,
                level: record.level,
                service: record.service.clone(),
                attribute,
                count: 1,
            }),
        }
    }
    rows
}

/// Grafana's instant queries end at `now`, never on a bucket of the epoch:
/// counts bucketed from the windows' own origin answer as rows do.
#[test]
fn an_instant_off_the_epochs_grid_is_counted_from_its_own_origin() {
    let records: Vec<LogRecord> = (0..300)
        .map(|i| {
            let service = ["api", "web", "db"][i % 3];
            record(
                &i.to_string(),
                (i as i64) * 4111 + 7,
                Level::Info,
                service,
                "m",
                &[],
            )
        })
        .collect();
    let keys = keys_of(&records);
    let model = LabelModel::default();
    let query =
        r#"sum by (service_name, detected_level) (count_over_time({service_name=~".+"}[1m]))"#;
    let grid = StepGrid::instant(T0_NANOS + 14 * MINUTE + 17_123_456_000);
    let from_rows = evaluate(query, &records, grid).unwrap();
    let plan = MetricPlan::new(&metric_query(query), &keys);
    let counting = plan.leaves()[0].countable(&grid).expect("countable");
    assert_ne!(counting.origin_nanos, 0, "off the epoch's grid");
    assert!(!counting.accepts_buckets_of(MINUTE), "no rollups here");
    let mut evaluator = plan.evaluator(grid, &model);
    let width = counting.width_nanos;
    evaluator
        .push_counts(0, width, &count_rows(&records, &counting, width))
        .unwrap();
    assert_eq!(evaluator.finish().unwrap(), from_rows, "{query}");
}

#[test]
fn counts_fold_to_the_same_answer_as_rows() {
    let records: Vec<LogRecord> = (0..400)
        .map(|i| {
            let level = [Level::Error, Level::Info, Level::Warn][i % 3];
            let service = ["api", "web"][i % 2];
            let pod = ["p1", "p2", "p3", "p4"][i % 4];
            record(
                &i.to_string(),
                (i as i64) * 37 + 1,
                level,
                service,
                "m",
                &[("k8s.pod", pod)],
            )
        })
        .collect();
    let keys = keys_of(&records);
    let model = LabelModel::default();
    for (query, grid, width) in [
        (
            r#"sum by (service_name, detected_level) (count_over_time({service_name=~".+"}[1m]))"#,
            minutes(1, 240),
            MINUTE,
        ),
        (
            r#"sum by (service_name) (rate({service_name=~".+"} | detected_level="error" [5m]))"#,
            StepGrid::range(T0_NANOS + 60 * MINUTE, T0_NANOS + 240 * MINUTE, 60 * MINUTE).unwrap(),
            MINUTE,
        ),
        (
            r#"sum(count_over_time({service_name="api"} [10m])) by (k8s_pod)"#,
            StepGrid::range(T0_NANOS + 10 * MINUTE, T0_NANOS + 240 * MINUTE, 5 * MINUTE).unwrap(),
            5 * MINUTE,
        ),
        (
            r#"sum(count_over_time({service_name="api"}[1m]))"#,
            StepGrid::instant(T0_NANOS + 100 * MINUTE),
            MINUTE,
        ),
    ] {
        let from_rows = evaluate(query, &records, grid).unwrap();
        let metric = metric_query(query);
        let plan = MetricPlan::new(&metric, &keys);
        let counting = plan.leaves()[0]
            .countable(&grid)
            .unwrap_or_else(|| panic!("{query} is countable"));
        assert!(counting.accepts_buckets_of(width), "{query}: {counting:?}");
        let mut evaluator = plan.evaluator(grid, &model);
        let matching: Vec<LogRecord> = records
            .iter()
            .filter(|r| plan.leaves()[0].pushdown.expr.matches(r))
            .cloned()
            .collect();
        evaluator
            .push_counts(0, width, &count_rows(&matching, &counting, width))
            .unwrap();
        assert_eq!(evaluator.finish().unwrap(), from_rows, "{query}");
    }
    for query in [
        r#"count_over_time({service_name="api"}[1m])"#,
        r#"sum by (service_name) (count_over_time({service_name="api"} | json [1m]))"#,
        r#"sum by (service_name) (bytes_over_time({service_name="api"}[1m]))"#,
        r#"sum by (k8s_pod, pod_b) (count_over_time({service_name="api"}[1m]))"#,
    ] {
        let keys = |label: &str| match label {
            "k8s_pod" | "pod_b" => vec![label.to_string()],
            _ => Vec::new(),
        };
        let plan = MetricPlan::new(&metric_query(query), &keys);
        assert_eq!(plan.leaves()[0].countable(&minutes(1, 2)), None, "{query}");
    }
    let grid = StepGrid::range(
        T0_NANOS + 30_000_000_000,
        T0_NANOS + 5 * MINUTE,
        90_000_000_000,
    )
    .unwrap();
    let plan = MetricPlan::new(
        &metric_query(r#"sum(count_over_time({service_name="api"}[1m]))"#),
        &keys,
    );
    let counting = plan.leaves()[0].countable(&grid).unwrap();
    assert_eq!(counting.width_nanos, 30_000_000_000);
    assert!(
        !counting.accepts_buckets_of(MINUTE),
        "minute rollups do not tile 30 s windows"
    );
    assert_eq!(counting.bucket_of(T0_NANOS + 30_000_000_000), T0_NANOS);
    assert_eq!(
        counting.bucket_of(T0_NANOS + 30_000_000_001),
        T0_NANOS + 30_000_000_000
    );
}

#[test]
fn grafanas_logs_volume_query_is_countable_by_level() {
    let query = r#"sum by (level, detected_level) (count_over_time({service_name="checkout"} |= "timeout" | drop __error__[1m]))"#;
    let keys = |_: &str| Vec::new();
    let plan = MetricPlan::new(&metric_query(query), &keys);
    let leaf = &plan.leaves()[0];
    assert!(
        leaf.pushdown.residual_is_noop(),
        "{:?}",
        leaf.pushdown.residual
    );
    let counting = leaf.countable(&minutes(1, 60)).unwrap();
    assert_eq!(
        counting.dimensions,
        CountDimensions {
            level: true,
            service: false,
            attribute: None
        }
    );
    assert!(counting.accepts_buckets_of(MINUTE));
    assert_eq!(
        (counting.from_nanos, counting.to_nanos),
        (T0_NANOS, T0_NANOS + 60 * MINUTE)
    );
}
