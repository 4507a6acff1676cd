//! Pushdown → `Expr`: the conditions produced, and that `expr` then the
//! residual keeps exactly the lines a direct evaluation keeps.

use super::{keys_of, log_query, record};
use crate::domain::logql::labels::LabelModel;
use crate::domain::logql::pipeline::{self, Line};
use crate::domain::logql::*;
use crate::domain::query::{self, Expr, Matcher, Pattern, Predicate, TextField};
use crate::domain::{Level, LevelSet, LogRecord};

fn rows() -> Vec<LogRecord> {
    vec![
        record(
            "a",
            1,
            Level::Error,
            "checkout",
            "payment timeout after 3s",
            &[("http.status", "500"), ("env", "prod")],
        ),
        record(
            "b",
            2,
            Level::Warn,
            "checkout",
            "Payment Timeout after 5s",
            &[("http.status", "503"), ("env", "staging")],
        ),
        record(
            "c",
            3,
            Level::Info,
            "Checkout",
            "payment ok",
            &[("http_status", "200")],
        ),
        record(
            "d",
            4,
            Level::Fatal,
            "search",
            "disk full: 100% used",
            &[("env", "")],
        ),
        record(
            "e",
            5,
            Level::Debug,
            "search",
            r#"{"status":"404","msg":"not found","took":"12ms"}"#,
            &[("env", "prod")],
        ),
        record(
            "f",
            6,
            Level::Error,
            "search",
            "level=error status=500 took=1.5s msg=\"upstream timeout\"",
            &[("env", "dev")],
        ),
        record(
            "g",
            7,
            Level::Info,
            "api",
            "GET /users/7 from 10.1.2.3 took 12ms",
            &[("http.status", "abc")],
        ),
        record(
            "h",
            8,
            Level::Warn,
            "api",
            "\u{1b}[31mred timeout\u{1b}[0m",
            &[],
        ),
    ]
}

/// The lines kept by evaluating everything on every row, `level` and
/// `detected_level` matching as the label model says.
fn reference_ids(query: &str, records: &[LogRecord]) -> String {
    let log = log_query(query);
    let model = LabelModel::default();
    records
        .iter()
        .filter(|record| {
            let mut line = Line::of(record, &model);
            let selected = log.selector.matchers.iter().all(|matcher| {
                if matches!(matcher.name.as_str(), "detected_level" | "level") {
                    let named = matcher.positive_matches(record.level.as_str())
                        || (record.level == Level::Fatal && matcher.positive_matches("critical"));
                    return named != matcher.op.is_negative();
                }
                matcher.matches(line.labels.get(&matcher.name).unwrap_or(""))
            });
            selected && pipeline::run(&log.pipeline, &mut line)
        })
        .map(|record| record.id.as_str())
        .collect()
}

/// The lines kept by `expr` (as a store would) and then the residual.
fn pushed_ids(query: &str, records: &[LogRecord]) -> (String, Pushdown) {
    let keys = keys_of(records);
    let plan = log_query(query).push_down(&keys);
    let model = LabelModel::default();
    let ids = records
        .iter()
        .filter(|record| plan.expr.matches(record))
        .filter(|record| pipeline::run(&plan.residual, &mut Line::of(record, &model)))
        .map(|record| record.id.as_str())
        .collect();
    (ids, plan)
}

#[test]
fn pushdown_keeps_exactly_the_lines_of_a_direct_evaluation() {
    let records = rows();
    for (query, expected, residual_stages) in [
        (r#"{service_name="checkout"} |= "timeout""#, "a", 0),
        (r#"{service_name="checkout"} |~ "(?i)timeout""#, "ab", 0),
        (r#"{service_name=~"(?i)checkout"}"#, "abc", 0),
        (
            r#"{service_name=~".+", service_name!="checkout"} != "timeout""#,
            "cdeg",
            0,
        ),
        (r#"{http_status="500"}"#, "a", 0),
        (r#"{http_status=~"5.."}"#, "ab", 0),
        (r#"{http_status=~"2.."}"#, "c", 0),
        (r#"{service_name=~".+", env=""} |= "s""#, "dg", 0),
        (r#"{service_name=~".+", env!=""}"#, "abef", 0),
        (r#"{detected_level="fatal"}"#, "d", 0),
        (r#"{detected_level="critical"}"#, "d", 0),
        (r#"{level="error"}"#, "af", 0),
        (r#"{detected_level=~"err.*|warn"}"#, "abfh", 0),
        (
            r#"{detected_level!="info", service_name=~".+"}"#,
            "abdefh",
            0,
        ),
        (
            r#"{service_name=~".+"} | detected_level="error" or detected_level="warn""#,
            "abfh",
            0,
        ),
        (
            r#"{service_name=~".+"} | env="prod", service_name="checkout""#,
            "a",
            0,
        ),
        (r#"{service_name=~".+"} |= "payment" or "disk""#, "acd", 0),
        (r#"{service_name=~".+"} != "payment" or "disk""#, "befgh", 0),
        (r#"{service_name=~".+"} |> "payment <_> after <_>""#, "a", 0),
        (r#"{service_name=~".+"} !> "<_> timeout <_>""#, "bcdefgh", 0),
        (r#"{service_name=~".+"} |= """#, "abcdefgh", 0),
        (r#"{service_name=~".+"} != """#, "", 0),
        (r#"{service_name=~".+"} | http_status >= 500"#, "abg", 1),
        (
            r#"{service_name=~".+"} | http_status >= 500 | __error__="""#,
            "ab",
            2,
        ),
        (
            r#"{service_name=~".+"} | __error__="" | drop __error__, __error_details__"#,
            "abcdefgh",
            0,
        ),
        (r#"{service_name=~".+"} | json | status="404""#, "e", 2),
        (r#"{service_name=~".+"} | json |= "found""#, "e", 1),
        (r#"{service_name=~".+"} | logfmt | took > 1s"#, "f", 2),
        (r#"{service_name=~".+"} | logfmt | level="error""#, "af", 2),
        (r#"{service_name=~".+"} |= ip("10.0.0.0/8")"#, "g", 1),
        (
            r#"{service_name=~".+"} | decolorize |= "red timeout""#,
            "h",
            2,
        ),
        (
            r#"{service_name=~".+"} | line_format "{{.service_name}}" |= "api""#,
            "gh",
            2,
        ),
        (
            r#"{service_name=~".+"} | env="prod" or http_status > 499"#,
            "abeg",
            1,
        ),
    ] {
        let (ids, plan) = pushed_ids(query, &records);
        assert_eq!(ids, expected, "pushed: {query}");
        assert_eq!(
            reference_ids(query, &records),
            expected,
            "reference: {query}"
        );
        assert_eq!(
            plan.residual.len(),
            residual_stages,
            "residual of {query}: {:?}",
            plan.residual
        );
    }
}

fn service_exact(value: &str) -> Expr {
    Expr::Is(Predicate::Text {
        field: TextField::Service,
        matcher: Matcher::Exact(value.into()),
    })
}

#[test]
fn line_filters_become_the_languages_own_terms_plus_an_exact_check() {
    let keys = |_: &str| Vec::new();
    let plan = log_query(r#"{service_name="checkout"} |= "timeout""#).push_down(&keys);
    let Expr::And(terms) = &plan.expr else {
        panic!("{:?}", plan.expr)
    };
    assert_eq!(terms[0], service_exact("checkout"));
    // The same substring term `service:checkout timeout` produces.
    let language = query::parse("service:checkout timeout").unwrap();
    assert_eq!(terms[1], language.conjuncts()[1]);
    assert_eq!(
        terms[1],
        Expr::Is(Predicate::Text {
            field: TextField::Message,
            matcher: Matcher::Contains(Pattern::literal("timeout")),
        })
    );
    assert!(matches!(
        &terms[2],
        Expr::Is(Predicate::Text { field: TextField::Message, matcher: Matcher::Regex(r) }) if r.source == "timeout"
    ));
    assert_eq!(plan.text_hint.as_deref(), Some("timeout"));
    assert!(plan.residual_is_noop());
    let negated = log_query(r#"{service_name="checkout"} != "a.b""#).push_down(&keys);
    assert!(matches!(
        &negated.expr.conjuncts()[1],
        Expr::Not(inner) if matches!(inner.as_ref(), Expr::Is(Predicate::Text { matcher: Matcher::Regex(r), .. }) if r.source == "a\\.b")
    ));
    assert_eq!(negated.text_hint, None, "a negation gives no substring");
}

#[test]
fn labels_map_to_levels_services_and_every_matching_attribute_key() {
    let keys = |label: &str| match label {
        "http_status" => vec!["http.status".to_string(), "http_status".to_string()],
        _ => Vec::new(),
    };
    let plan = log_query(r#"{http_status="500"}"#).push_down(&keys);
    let attribute = |key: &str| {
        Expr::Is(Predicate::Text {
            field: TextField::Attribute(key.into()),
            matcher: Matcher::Exact("500".into()),
        })
    };
    assert_eq!(
        plan.expr,
        Expr::Or(vec![attribute("http.status"), attribute("http_status")])
    );
    let plan = log_query(r#"{detected_level="fatal"}"#).push_down(&keys);
    let mut fatal = LevelSet::default();
    fatal.insert(Level::Fatal);
    assert_eq!(plan.expr, Expr::Is(Predicate::Levels(fatal)));
    let plan = log_query(r#"{service_name=~".+"} | nothing_here="x""#).push_down(&keys);
    assert_eq!(
        plan.expr,
        Expr::Or(Vec::new()),
        "every service; no such key: no log"
    );
    let plan = log_query(r#"{service_name=~".+", env=~".*"}"#).push_down(&keys);
    assert!(plan.expr.is_everything(), "{:?}", plan.expr);
    let plan = log_query(r#"{service_name=~".+"} | http_status >= 500"#).push_down(&keys);
    assert_eq!(
        plan.expr,
        Expr::Or(vec![
            Expr::Is(Predicate::Present {
                key: "http.status".into()
            }),
            Expr::Is(Predicate::Present {
                key: "http_status".into()
            }),
        ]),
        "a numeric filter needs the label"
    );
    assert_eq!(plan.residual.len(), 1);
}

#[test]
fn two_keys_that_sanitize_alike_both_answer() {
    let records = vec![
        record("a", 1, Level::Info, "s", "m", &[("http.status", "500")]),
        record("b", 2, Level::Info, "s", "m", &[("http_status", "500")]),
        record("c", 3, Level::Info, "s", "m", &[("http-status", "404")]),
    ];
    let (ids, _) = pushed_ids(r#"{http_status="500"}"#, &records);
    assert_eq!(ids, "ab");
    let (ids, _) = pushed_ids(r#"{service_name="s"} | http_status!="500""#, &records);
    assert_eq!(ids, "c");
}
