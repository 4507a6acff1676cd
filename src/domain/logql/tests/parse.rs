//! Parse → AST: every construct, checked through the tree and through the
//! canonical text it writes back.

use super::{listed, log_query, metric_query};
use crate::domain::logql::examples::{BEYOND_GRAFANA_GRAMMAR, EXAMPLE_QUERIES};
use crate::domain::logql::*;

#[test]
fn every_example_parses_and_round_trips() {
    for query in EXAMPLE_QUERIES.iter().chain(BEYOND_GRAFANA_GRAMMAR) {
        let parsed = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        let written = parsed.to_string();
        let again = parse(&written).unwrap_or_else(|e| panic!("{query} -> {written}: {e}"));
        assert_eq!(again, parsed, "{query} -> {written}");
        assert_eq!(
            again.to_string(),
            written,
            "canonical text is stable: {query}"
        );
    }
}

#[test]
fn canonical_text() {
    for (query, canonical) in [
        (
            r#"{service_name="checkout"}|="timeout""#,
            r#"{service_name="checkout"} |= "timeout""#,
        ),
        (
            "{app=`a\\b`} |~ `(?i)err` or \"warn\"",
            r#"{app="a\\b"} |~ "(?i)err" or "warn""#,
        ),
        (
            r#"sum(rate({a="b"}[5m])) by (x)"#,
            r#"sum by (x) (rate({a="b"} [5m]))"#,
        ),
        (
            r#"count_over_time({a="b"}[1h30m] offset 5m | json)"#,
            r#"count_over_time({a="b"} | json [1h30m] offset 5m)"#,
        ),
        (
            r#"{a="b"} | duration > 1m30s | size <= 1KiB | n == 2.5"#,
            r#"{a="b"} | duration>1m30s | size<=1KiB | n==2.5"#,
        ),
        (r#"1 + 2 * 3 ^ 2 ^ 2"#, "1 + 2 * 3 ^ 2 ^ 2"),
        (r#"(1 + 2) * 3"#, "(1 + 2) * 3"),
        (r#"(2 ^ 3) ^ 2"#, "(2 ^ 3) ^ 2"),
        (r#"vector(1)+vector(1)"#, "vector(1) + vector(1)"),
    ] {
        let parsed = parse(listed(query)).unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!(parsed.to_string(), canonical, "{query}");
    }
}

#[test]
fn stream_selectors() {
    let log = log_query(
        r#"{service_name="checkout", env=~"prod|staging", team!="x", k!~"(?i)y", q=`a"b`}"#,
    );
    let ops: Vec<(&str, MatchOp, &str)> = log
        .selector
        .matchers
        .iter()
        .map(|m| (m.name.as_str(), m.op, m.value.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            ("service_name", MatchOp::Equal, "checkout"),
            ("env", MatchOp::Regex, "prod|staging"),
            ("team", MatchOp::NotEqual, "x"),
            ("k", MatchOp::NotRegex, "(?i)y"),
            ("q", MatchOp::Equal, "a\"b"),
        ]
    );
    let env = &log.selector.matchers[1];
    assert_eq!(env.regex.as_ref().unwrap().source, "^(?s:prod|staging)$");
    assert!(
        env.matches("prod") && !env.matches("production"),
        "anchored"
    );
    assert!(log.selector.matchers[3].matches("x") && !log.selector.matchers[3].matches("Y"));
    assert!(log.pipeline.is_empty());
    assert_eq!(
        parse_selector("{}").unwrap(),
        Selector::default(),
        "series match[] may be empty"
    );
}

#[test]
fn line_filters() {
    let log = log_query(
        r#"{a="b"} |= "x" != "y" |~ "z+" !~ "w" |> "<_> took <_>" !> "GET <_>" |= "p" or "q" |= ip("10.0.0.0/8")"#,
    );
    let summary: Vec<(LineFilterOp, usize)> = log
        .pipeline
        .iter()
        .map(|stage| match stage {
            Stage::LineFilter(filter) => (filter.op, filter.alternatives.len()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            (LineFilterOp::Contains, 1),
            (LineFilterOp::NotContains, 1),
            (LineFilterOp::Match, 1),
            (LineFilterOp::NotMatch, 1),
            (LineFilterOp::Pattern, 1),
            (LineFilterOp::NotPattern, 1),
            (LineFilterOp::Contains, 2),
            (LineFilterOp::Contains, 1),
        ]
    );
    let Stage::LineFilter(ip) = &log.pipeline[7] else {
        unreachable!()
    };
    assert!(matches!(&ip.alternatives[0], LineFilterValue::Ip(f) if f.source() == "10.0.0.0/8"));
}

#[test]
fn parsers_and_formatters() {
    let log = log_query(
        r#"{a="b"} | json | json first="items[0].name", status, raw="[\"odd key\"]" | logfmt --strict --keep-empty level, msg="message" | regexp "(?P<method>\\w+) (?P<path>\\S+)" | pattern "<ip> - <_> <status>" | unpack | line_format "{{.method | ToUpper}} {{ __line__ }}" | label_format dst=src, upper="{{ ToUpper .x }}" | drop a, b="v", c=~"x.*" | keep d, e!="" | decolorize"#,
    );
    let stages = &log.pipeline;
    assert_eq!(stages.len(), 11);
    assert!(matches!(&stages[0], Stage::Json(extractions) if extractions.is_empty()));
    let Stage::Json(extractions) = &stages[1] else {
        unreachable!()
    };
    assert_eq!(
        extractions[0].path.steps,
        [
            JsonStep::Key("items".into()),
            JsonStep::Index(0),
            JsonStep::Key("name".into())
        ]
    );
    assert_eq!(extractions[1].path.steps, [JsonStep::Key("status".into())]);
    assert_eq!(extractions[2].path.steps, [JsonStep::Key("odd key".into())]);
    let Stage::Logfmt(logfmt) = &stages[2] else {
        unreachable!()
    };
    assert!(logfmt.strict && logfmt.keep_empty);
    assert_eq!(logfmt.extractions[1].key, "message");
    assert!(
        matches!(&stages[3], Stage::Regexp(r) if r.regex.capture_names().flatten().count() == 2)
    );
    let Stage::Pattern(pattern) = &stages[4] else {
        unreachable!()
    };
    assert_eq!(
        pattern.parts,
        [
            PatternPart::Capture(Some("ip".into())),
            PatternPart::Literal(" - ".into()),
            PatternPart::Capture(None),
            PatternPart::Literal(" ".into()),
            PatternPart::Capture(Some("status".into())),
        ]
    );
    assert_eq!(stages[5], Stage::Unpack);
    assert!(matches!(&stages[6], Stage::LineFormat(t) if t.fields() == ["method"]));
    let Stage::LabelFormat(items) = &stages[7] else {
        unreachable!()
    };
    assert!(
        matches!(&items[0], LabelFormatItem::Rename { to, from } if to == "dst" && from == "src")
    );
    assert!(matches!(&items[1], LabelFormatItem::Template { to, .. } if to == "upper"));
    let Stage::Drop(drops) = &stages[8] else {
        unreachable!()
    };
    assert_eq!(
        drops.iter().map(LabelSelection::name).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert!(matches!(&drops[2], LabelSelection::Matcher(m) if m.op == MatchOp::Regex));
    assert!(matches!(&stages[9], Stage::Keep(keeps) if keeps.len() == 2));
    assert_eq!(stages[10], Stage::Decolorize);
}

fn filter_of(query: &str) -> LabelFilter {
    match log_query(query).pipeline.into_iter().next() {
        Some(Stage::LabelFilter(filter)) => filter,
        other => panic!("{other:?}"),
    }
}

fn shape(filter: &LabelFilter) -> String {
    match filter {
        LabelFilter::And(l, r) => format!("and({},{})", shape(l), shape(r)),
        LabelFilter::Or(l, r) => format!("or({},{})", shape(l), shape(r)),
        LabelFilter::Test(test) => test.label_name().to_string(),
    }
}

#[test]
fn label_filters_join_as_lokis_grammar() {
    for (query, expected) in [
        (r#"{a="b"} | x="1" or y="2" and z="3""#, "or(x,and(y,z))"),
        (r#"{a="b"} | x="1" and y="2" or z="3""#, "or(and(x,y),z)"),
        (r#"{a="b"} | x="1", y="2" or z="3""#, "and(x,or(y,z))"),
        (r#"{a="b"} | x="1" or y="2", z="3""#, "or(x,and(y,z))"),
        (r#"{a="b"} | x="1" y="2""#, "and(x,y)"),
        (r#"{a="b"} | (x="1" or y="2") and z="3""#, "and(or(x,y),z)"),
        (r#"{a="b"} | x="1" or y="2" or z="3""#, "or(or(x,y),z)"),
    ] {
        assert_eq!(shape(&filter_of(query)), expected, "{query}");
    }
    let tests = [
        (r#"{a="b"} | status >= 500"#, "Number"),
        (r#"{a="b"} | status = 200"#, "Number"),
        (r#"{a="b"} | status != -1"#, "Number"),
        (r#"{a="b"} | duration > 10s"#, "Duration"),
        (r#"{a="b"} | size > 20MB"#, "Bytes"),
        (r#"{a="b"} | addr = ip("192.168.0.0/16")"#, "Ip"),
        (r#"{a="b"} | __error__ = """#, "Text"),
        (r#"{a="b"} | json = "x""#, "Text"),
    ];
    for (query, kind) in tests {
        let LabelFilter::Test(test) = filter_of(query) else {
            panic!("{query}")
        };
        let found = match test {
            LabelTest::Text(_) => "Text",
            LabelTest::Ip { .. } => "Ip",
            LabelTest::Number { .. } => "Number",
            LabelTest::Duration { .. } => "Duration",
            LabelTest::Bytes { .. } => "Bytes",
        };
        assert_eq!(found, kind, "{query}");
    }
    let LabelFilter::Test(LabelTest::Duration { nanos, op, .. }) =
        filter_of(r#"{a="b"} | duration > 10s"#)
    else {
        unreachable!()
    };
    assert_eq!((nanos, op), (10_000_000_000, NumberOp::Greater));
    let LabelFilter::Test(LabelTest::Bytes { bytes, .. }) = filter_of(r#"{a="b"} | size > 20MB"#)
    else {
        unreachable!()
    };
    assert_eq!(bytes, 20_000_000);
}

#[test]
fn range_aggregations() {
    let MetricExpr::Range(range) = metric_query(
        r#"quantile_over_time(0.99, {a="b"} | logfmt | unwrap duration(took) | __error__="" [1h30m] offset 5m) by (service_name)"#,
    ) else {
        panic!()
    };
    assert_eq!(range.op, RangeOp::QuantileOverTime);
    assert_eq!(range.parameter, Some(0.99));
    assert_eq!(range.range_nanos, 5_400_000_000_000);
    assert_eq!(range.offset_nanos, 300_000_000_000);
    let unwrap = range.unwrap.as_ref().unwrap();
    assert_eq!(
        (unwrap.label.as_str(), unwrap.conversion),
        ("took", Conversion::Duration)
    );
    assert_eq!(unwrap.filters.len(), 1);
    assert_eq!(range.grouping.as_ref().unwrap().labels, ["service_name"]);
    for query in [
        r#"count_over_time({a="b"}[5m])"#,
        r#"rate({a="b"} |= "x" [5m])"#,
        r#"bytes_over_time({a="b"}[5m])"#,
        r#"bytes_rate({a="b"}[5m])"#,
        r#"absent_over_time({a="b"}[5m])"#,
        r#"sum_over_time({a="b"} | unwrap bytes(size) [5m])"#,
        r#"avg_over_time({a="b"} | unwrap latency [5m]) by (x)"#,
        r#"min_over_time({a="b"} | unwrap latency [5m]) without (x)"#,
        r#"max_over_time({a="b"} | unwrap duration_seconds(took) [5m])"#,
        r#"first_over_time({a="b"} | unwrap latency [5m])"#,
        r#"last_over_time({a="b"} | unwrap latency [5m])"#,
        r#"stddev_over_time({a="b"} | unwrap latency [5m])"#,
        r#"stdvar_over_time({a="b"} | unwrap latency [5m])"#,
        r#"rate_counter({a="b"} | unwrap requests [5m])"#,
        r#"rate({a="b"} | unwrap latency [5m])"#,
        r#"count_over_time({a="b"}[5m] | json | x="y")"#,
    ] {
        assert!(
            matches!(metric_query(query), MetricExpr::Range(_)),
            "{query}"
        );
    }
}

#[test]
fn vector_aggregations_and_binary_operations() {
    let MetricExpr::Vector(vector) = metric_query(r#"topk by (x) (5, rate({a="b"}[5m]))"#) else {
        panic!()
    };
    assert_eq!((vector.op, vector.parameter), (VectorOp::Topk, Some(5.0)));
    for (query, op) in [
        (r#"sum(count_over_time({a="b"}[5m]))"#, VectorOp::Sum),
        (
            r#"avg without (x) (count_over_time({a="b"}[5m]))"#,
            VectorOp::Avg,
        ),
        (r#"min(count_over_time({a="b"}[5m])) by (x)"#, VectorOp::Min),
        (r#"max(count_over_time({a="b"}[5m]))"#, VectorOp::Max),
        (r#"count(count_over_time({a="b"}[5m]))"#, VectorOp::Count),
        (r#"stddev(count_over_time({a="b"}[5m]))"#, VectorOp::Stddev),
        (r#"stdvar(count_over_time({a="b"}[5m]))"#, VectorOp::Stdvar),
        (
            r#"bottomk(2, count_over_time({a="b"}[5m]))"#,
            VectorOp::Bottomk,
        ),
        (
            r#"sort_desc(count_over_time({a="b"}[5m]))"#,
            VectorOp::SortDesc,
        ),
    ] {
        let MetricExpr::Vector(vector) = metric_query(query) else {
            panic!("{query}")
        };
        assert_eq!(vector.op, op, "{query}");
    }
    let MetricExpr::Binary(binary) =
        metric_query(r#"rate({a="b"}[5m]) > bool on (x) group_left (y) rate({a="c"}[5m])"#)
    else {
        panic!()
    };
    assert_eq!(binary.op, BinaryOp::Greater);
    assert!(binary.return_bool);
    let matching = binary.matching.as_ref().unwrap();
    assert!(matching.on && matching.labels == ["x"]);
    assert_eq!(matching.group, Some(GroupSide::Left(vec!["y".into()])));
    // `*` binds tighter than `+`, comparisons looser, `^` to the right.
    let MetricExpr::Binary(sum) = metric_query(r#"1 + 2 * 3 ^ 2 ^ 2"#) else {
        panic!()
    };
    assert_eq!(sum.op, BinaryOp::Add);
    let MetricExpr::Binary(product) = &sum.right else {
        panic!()
    };
    assert_eq!(product.op, BinaryOp::Mul);
    let MetricExpr::Binary(power) = &product.right else {
        panic!()
    };
    assert!(matches!(&power.right, MetricExpr::Binary(inner) if inner.op == BinaryOp::Pow));
    for query in [
        r#"sum(rate({a="b"}[5m])) or vector(0)"#,
        r#"rate({a="b"}[5m]) and ignoring (x) rate({a="c"}[5m])"#,
        r#"rate({a="b"}[5m]) unless rate({a="c"}[5m])"#,
        r#"-1 + vector(2) % 3 - -4 / 2"#,
        r#"1 == bool 1"#,
    ] {
        assert!(
            matches!(metric_query(query), MetricExpr::Binary(_)),
            "{query}"
        );
    }
    assert!(matches!(metric_query("vector(1)"), MetricExpr::VectorLiteral(v) if v == 1.0));
    assert!(matches!(metric_query("-2.5"), MetricExpr::Literal(v) if v == -2.5));
}

#[test]
fn grafana_and_drilldown_queries_parse() {
    // The shapes Grafana and Logs Drilldown send (see the reference file);
    // `[$__auto]` is resolved by the caller before parsing.
    for query in [
        r#"sum by (level, detected_level) (count_over_time({service_name="checkout"} |= "timeout" | drop __error__[1m]))"#,
        r#"sum by (detected_level) (count_over_time({service_name="api"} [1m]))"#,
        r#"{service_name="api"} | detected_level="error" or detected_level="warn" | pod="x" |> "a <_> b" !> "c" |= "t" |~ "(?i)t" | json | logfmt | drop __error__, __error_details__ | status>=500 | duration>10s | line_format "{{.msg}}""#,
        r#"sum(count_over_time({service_name="api", cluster != ""} [1m])) by (cluster)"#,
        r#"sum by (f) (count_over_time({service_name="api"} | json | logfmt | drop __error__, __error_details__ | f!="" [1m]))"#,
        r#"avg_over_time({service_name="api"} | logfmt | unwrap duration(f) | __error__="" [1m]) by ()"#,
        r#"sum by (service_name) (rate({service_name=~".+"} | detected_level="error" [5m]))"#,
        r#"vector(1)+vector(1)"#,
    ] {
        parse(listed(query)).unwrap_or_else(|e| panic!("{query}: {e}"));
    }
}
