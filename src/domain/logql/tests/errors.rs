//! Refused queries: Loki's message shape, and the line and column of the
//! token at fault (1-based, in characters).

use crate::domain::logql::{MAX_QUERY_CHARS, parse, parse_selector};

fn refused(query: &str) -> String {
    match parse(query) {
        Ok(parsed) => panic!("{query:?} should be refused, parsed as {parsed}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn syntax_errors_name_the_token_and_its_column() {
    for (query, expected) in [
        (
            r#"{foo="bar""#,
            "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,",
        ),
        (
            "{foo}",
            "parse error at line 1, col 5: syntax error: unexpected }, expecting = or =~ or !~ or !=",
        ),
        (
            r#"{foo="bar"} |= bar"#,
            "parse error at line 1, col 16: syntax error: unexpected IDENTIFIER, expecting STRING",
        ),
        (
            r#"{foo=bar}"#,
            "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting STRING",
        ),
        (
            r#"sum(rate({a="b"}[5m])) by"#,
            "parse error at line 1, col 26: syntax error: unexpected $end, expecting (",
        ),
        (
            r#"count_over_time({a="b"})"#,
            "parse error at line 1, col 24: syntax error: unexpected )",
        ),
        (
            r#"rate({a="b"}[5m]) +"#,
            "parse error at line 1, col 20: syntax error: unexpected $end",
        ),
        (
            r#"{a="b"}[5m]"#,
            "parse error at line 1, col 8: syntax error: unexpected RANGE",
        ),
        (
            r#"{a="b"} | unwrap x"#,
            "parse error at line 1, col 11: syntax error: unexpected unwrap",
        ),
        (
            r#"topk(rate({a="b"}[5m]))"#,
            "parse error at line 1, col 6: syntax error: unexpected rate, expecting NUMBER",
        ),
        (
            "{a=\"b\"}\n| json\n| x >",
            "parse error at line 3, col 6: syntax error: unexpected $end, expecting NUMBER",
        ),
        (
            r#"{a="b"} | json | x > "5""#,
            "parse error at line 1, col 22: syntax error: unexpected STRING, expecting NUMBER",
        ),
        (
            r#"{a="b"} |= "x" or"#,
            "parse error at line 1, col 16: syntax error: unexpected or",
        ),
        (
            r#"{a="b"} + 1"#,
            "parse error at line 1, col 9: syntax error: unexpected +",
        ),
        (
            "{a=\"b\"} ; x",
            "parse error at line 1, col 9: syntax error: unexpected ;",
        ),
        (
            r#"sum by (a) (rate({a="b"}[5m])) by (b)"#,
            "parse error at line 1, col 1: syntax error: unexpected by: grouping may come before or after the aggregation, not both",
        ),
    ] {
        assert_eq!(refused(query), expected, "{query}");
    }
}

#[test]
fn meaning_errors_point_at_their_token() {
    for (query, column, starts) in [
        (
            r#"{a=""}"#,
            1,
            "queries require at least one regexp or equality matcher",
        ),
        (r#"{a=~".*", b!="x"}"#, 1, "queries require at least one"),
        (
            r#"sum_over_time({a="b"}[5m])"#,
            1,
            "invalid aggregation sum_over_time without unwrap",
        ),
        (
            r#"count_over_time({a="b"} | unwrap x [5m])"#,
            1,
            "invalid aggregation count_over_time with unwrap",
        ),
        (
            r#"count_over_time({a="b"}[5m]) by (x)"#,
            1,
            "grouping not allowed for count_over_time",
        ),
        (
            r#"quantile_over_time({a="b"} | unwrap x [5m])"#,
            1,
            "parameter required for operation quantile_over_time",
        ),
        (
            r#"rate(0.5, {a="b"}[5m])"#,
            1,
            "unsupported parameter for operation rate",
        ),
        (r#"{a="b"} |~ "((""#, 12, "invalid regular expression"),
        (r#"{a=~"(("}"#, 5, "invalid regular expression"),
        (
            r#"{a="b"} | line_format "{{.a""#,
            23,
            "invalid line template",
        ),
        (
            r#"{a="b"} | label_format x="{{ nope }}""#,
            26,
            "invalid label template",
        ),
        (
            r#"{a="b"} | label_format x=y, x="z""#,
            29,
            "multiple label name 'x'",
        ),
        (
            r#"{a="b"} | regexp "(\\d+)""#,
            18,
            "at least one named capture must be supplied",
        ),
        (
            r#"{a="b"} | pattern "<a><b>""#,
            19,
            "found consecutive capture",
        ),
        (
            r#"{a="b"} | pattern "plain""#,
            19,
            "at least one capture is required",
        ),
        (r#"{a="b"} | json x="a..b""#, 18, "invalid json path"),
        (r#"{a="b"} |= ip("nope")"#, 15, "invalid ip filter"),
        (
            r#"1 > 2"#,
            3,
            "comparisons between scalars must use BOOL modifier",
        ),
        (
            r#"1 + bool 2"#,
            3,
            "bool modifier can only be used on comparison operators",
        ),
        (
            r#"vector(1) and 1"#,
            11,
            "set operator \"and\" not allowed in binary scalar expression",
        ),
        (
            r#"topk(2.5, vector(1))"#,
            1,
            "invalid parameter for operation topk",
        ),
        (
            r#"topk(2, 1)"#,
            9,
            "expected vector in aggregation expression, got scalar",
        ),
        (
            r#"label_replace(vector(1), "a", "b", "c", "d")"#,
            1,
            "syntax error: unexpected label_replace",
        ),
        (r#"{a="b"} |= "\q""#, 13, "invalid char escape"),
        (r#"{a="b"} |= "x"#, 12, "literal not terminated"),
        (
            r#"count_over_time({a="b"} [$__auto])"#,
            25,
            "not a valid duration string",
        ),
        (
            r#"{a="b"} | x > 5y5"#,
            15,
            "syntax error: unexpected IDENTIFIER",
        ),
    ] {
        let error = parse(query).expect_err(query);
        assert_eq!(error.column, column, "{query}: {error}");
        assert_eq!(error.line, 1, "{query}");
        assert!(
            error.message.starts_with(starts),
            "{query}: {:?} should start with {starts:?}",
            error.message
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("parse error at line 1, col {column}: "))
        );
    }
}

#[test]
fn limits() {
    let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    let error = parse(&deep).expect_err("too deep");
    assert!(error.message.contains("nests deeper"), "{error}");
    let long = format!("{{a=\"{}\"}}", "x".repeat(MAX_QUERY_CHARS));
    let error = parse(&long).expect_err("too long");
    assert_eq!(error.column, MAX_QUERY_CHARS + 1);
    assert!(parse_selector("{a=\"b\"} x").is_err());
    assert!(parse_selector("").is_err());
    let deep_filters = format!(
        "{{a=\"b\"}} | {}x=\"1\"{}",
        "(".repeat(100),
        ")".repeat(100)
    );
    assert!(parse(&deep_filters).is_err());
    let powers = format!("1{}", " ^ 1".repeat(200));
    assert!(
        parse(&powers).is_err(),
        "right-associative chains are bounded too"
    );
    let sums = format!("1{}", " + 1".repeat(2000));
    assert!(parse(&sums).is_ok(), "left-associative chains do not nest");
}
