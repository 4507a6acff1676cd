//! One table per grammar rule: each query against a small set of logs, and
//! each bad query with the column it must point at.

use super::*;
use crate::domain::{Level, LogRecord};

fn record(
    id: &str,
    level: Level,
    service: &str,
    message: &str,
    attributes: &[(&str, &str)],
) -> LogRecord {
    let mut attributes = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // As ingest keeps them: trace and span ids are fields, not attributes.
    let (trace_id, span_id) = crate::domain::log::take_trace_ids(&mut attributes);
    LogRecord {
        id: id.into(),
        timestamp: 1_735_689_600_000_000,
        level,
        service: service.into(),
        message: message.into(),
        attributes,
        trace_id,
        span_id,
        ..Default::default()
    }
}

fn logs() -> Vec<LogRecord> {
    vec![
        record(
            "a",
            Level::Error,
            "checkout",
            "Connection REFUSED by upstream",
            &[
                ("region", "eu-west-1"),
                ("http.status", "500"),
                ("k8s.pod.name", "api-7f9c"),
                ("level", "custom"),
            ],
        ),
        record(
            "b",
            Level::Warn,
            "Checkout-EU",
            "timeout after 3s",
            &[("region", "us-east-1"), ("http.status", "abc")],
        ),
        record("c", Level::Info, "payments", "healthcheck ok \\d+ x*y", &[]),
        record(
            "d",
            Level::Fatal,
            "pay",
            "disk full: 100% used",
            &[
                ("http.status", "503.5"),
                ("trace_id", "t-1"),
                ("region", "EU-WEST-2"),
            ],
        ),
        record(
            "e",
            Level::Debug,
            "search",
            "a \"quoted\" word and AND élan",
            &[("my key", "v"), ("n", "-3"), ("big", "10")],
        ),
    ]
}

/// The ids of the logs `query` matches.
fn ids(query: &str) -> String {
    let expr = parse(query).unwrap_or_else(|e| panic!("{query:?}: {e}"));
    logs()
        .iter()
        .filter(|r| expr.matches(r))
        .map(|r| r.id.as_str())
        .collect()
}

fn check(table: &[(&str, &str)]) {
    for (query, expected) in table {
        assert_eq!(ids(query), *expected, "query {query:?}");
    }
}

/// The column and message of a refused query.
fn refused(query: &str) -> (usize, String) {
    match parse(query) {
        Ok(expr) => panic!("{query:?} should be refused, parsed as {expr:?}"),
        Err(error) => (error.position, error.message),
    }
}

#[test]
fn blank_matches_everything() {
    check(&[("", "abcde"), ("   ", "abcde"), ("\t\n", "abcde")]);
    assert!(parse(" ").unwrap().is_everything());
}

#[test]
fn words_are_case_insensitive_substrings_of_the_message() {
    check(&[
        ("timeout", "b"),
        ("TIMEOUT", "b"),
        ("refused", "a"),
        ("conn*refused", "a"),
        ("conn*", "a"),
        ("x*y", "c"),
        ("*", "abcde"),
        ("ÉLAN", "e"),
        ("100%", "d"),
        ("and", "e"),
        ("\\d+", "c"),
        ("nothing-here", ""),
    ]);
}

#[test]
fn phrases_are_literal_and_case_insensitive() {
    check(&[
        ("\"connection refused\"", "a"),
        ("\"conn*refused\"", ""),
        ("\"x*y\"", "c"),
        ("\"after 3S\"", "b"),
        (r#""a \"quoted\" word""#, "e"),
        (r#""\d+""#, "c"),
        ("\"\"", "abcde"),
    ]);
}

#[test]
fn terms_side_by_side_are_anded() {
    check(&[
        ("timeout after", "b"),
        ("timeout refused", ""),
        ("timeout AND after", "b"),
        ("level:error region:eu-west-1", "a"),
    ]);
}

#[test]
fn or_not_and_minus() {
    check(&[
        ("timeout OR refused", "ab"),
        ("NOT timeout", "acde"),
        ("-timeout", "acde"),
        ("--timeout", "b"),
        ("NOT NOT timeout", "b"),
        ("-(timeout OR refused)", "cde"),
        ("NOT(timeout OR refused)", "cde"),
        ("a or b", ""),
        ("level:warn OR -level:warn", "abcde"),
    ]);
}

#[test]
fn lower_case_keywords_are_words() {
    check(&[("and", "e"), ("AND:x", ""), ("Not", "")]);
    // `and` is searched for, so the query needs both words.
    check(&[("word and", "e"), ("timeout and", "")]);
}

#[test]
fn precedence_is_not_then_and_then_or() {
    // a OR (b AND c), not (a OR b) AND c.
    check(&[
        ("refused OR timeout level:info", "a"),
        ("(refused OR timeout) level:warn", "b"),
        ("refused OR timeout AND level:warn", "ab"),
        ("-level:error level:>=error", "d"),
        ("NOT level:error OR level:error", "abcde"),
    ]);
}

#[test]
fn parentheses_group() {
    check(&[
        ("(timeout)", "b"),
        ("((timeout OR refused) (level:error OR level:warn))", "ab"),
        ("( timeout )", "b"),
    ]);
}

#[test]
fn levels_take_aliases_and_comparisons() {
    check(&[
        ("level:error", "a"),
        ("level:ERROR", "a"),
        ("level:err", "a"),
        ("level:warning", "b"),
        ("level:critical", "d"),
        ("level:crit", "d"),
        ("level:\"warn\"", "b"),
        ("level:>=warn", "abd"),
        ("level:>warn", "ad"),
        ("level:<=info", "ce"),
        ("level:<info", "e"),
        ("level:>=warning", "abd"),
        ("level:(info OR debug)", "ce"),
        ("level:(>=error OR debug)", "ade"),
        ("level:*", "abcde"),
        ("-level:*", ""),
    ]);
}

#[test]
fn services_are_case_insensitive_equality_with_wildcards() {
    check(&[
        ("service:checkout", "a"),
        ("service:CHECKOUT", "a"),
        ("service:checkout*", "ab"),
        ("service:pay*", "cd"),
        ("service:*pay*", "cd"),
        ("service:*out", "a"),
        ("service:\"pay*\"", ""),
        ("service:\"Checkout-EU\"", "b"),
        ("service:check", ""),
        ("service:(pay OR search)", "de"),
        ("service:~\"^pay\"", "cd"),
        ("service:~\"^PAY\"", ""),
        ("service:~\"(?i)^PAY\"", "cd"),
        ("service:*", "abcde"),
    ]);
}

#[test]
fn message_and_id_fields() {
    check(&[
        ("message:timeout", "b"),
        ("message:\"after 3s\"", "b"),
        ("message:conn*refused", "a"),
        ("id:a", "a"),
        ("id:A", ""),
        ("id:(a OR e)", "ae"),
        ("id:*", "abcde"),
        ("id:~\"^[ab]$\"", "ab"),
    ]);
}

#[test]
fn attributes_by_key() {
    check(&[
        ("region:eu-west-1", "a"),
        ("region:EU-WEST-1", "a"),
        ("region:eu-*", "ad"),
        ("-region:eu-*", "bce"),
        ("region:*", "abd"),
        ("-region:*", "ce"),
        ("k8s.pod.name:api-7f*", "a"),
        ("trace_id:t-1", "d"),
        ("\"my key\":v", "e"),
        ("\"my key\":V", "e"),
        ("region:\"eu-*\"", ""),
        ("region:(us-east-1 OR eu-west-2)", "bd"),
        ("region:~\"west-\\d\"", "a"),
        ("region:~\"(?i)WEST\"", "ad"),
        ("missing:*", ""),
        ("-missing:x", "abcde"),
    ]);
}

#[test]
fn at_always_means_an_attribute() {
    check(&[
        ("@level:custom", "a"),
        ("@level:error", ""),
        ("@level:*", "a"),
        ("@\"my key\":v", "e"),
        ("@region:eu-west-1", "a"),
    ]);
    assert!(parse("level:custom").is_err(), "custom is not a level");
}

#[test]
fn numeric_comparisons_on_attributes() {
    check(&[
        ("http.status:>=500", "ad"),
        ("http.status:>500", "d"),
        ("http.status:<500", ""),
        ("http.status:<=500", "a"),
        ("http.status:>=503.5", "d"),
        ("http.status:>503.49", "d"),
        // A value that is not a number never matches; its negation does.
        ("-http.status:>=500", "bce"),
        ("n:<-2", "e"),
        ("n:>=-3", "e"),
        ("big:>9", "e"),
        ("big:>=10.0", "e"),
        ("http.status:(>=503 OR abc)", "bd"),
    ]);
}

#[test]
fn regex_on_the_message() {
    check(&[
        ("~\"time(d)?out\"", "b"),
        ("~\"REFUSED\"", "a"),
        ("~\"refused\"", ""),
        ("~\"(?i)refused\"", "a"),
        (r#"~"\d+s""#, "b"),
        (r#"~"\\d""#, "bd"),
        (r#"~"\\\\d""#, "c"),
        ("message:~\"^disk\"", "d"),
        ("-~\"e\"", ""),
    ]);
}

#[test]
fn quotes_take_only_two_escapes() {
    let Expr::Is(Predicate::Text {
        matcher: Matcher::Contains(pattern),
        ..
    }) = parse(r#""a\"b\\c\d\n""#).unwrap()
    else {
        panic!("a phrase");
    };
    assert_eq!(pattern.pieces, [r#"a"b\c\d\n"#]);
    let Expr::Is(Predicate::Text {
        matcher: Matcher::Regex(regex),
        ..
    }) = parse(r#"~"\d+""#).unwrap()
    else {
        panic!("a regex");
    };
    assert_eq!(regex.source, r"\d+");
}

#[test]
fn keys_are_names_or_quoted() {
    for key in [
        "region",
        "http.status",
        "k8s.pod.name",
        "a_b",
        "a-b",
        "a/b",
        "région",
        "9",
    ] {
        let query = format!("{key}:x");
        assert!(parse(&query).is_ok(), "{query}");
    }
    let Expr::Is(Predicate::Text { field, .. }) = parse("\"weird key!\":x").unwrap() else {
        panic!("a field");
    };
    assert_eq!(field, TextField::Attribute("weird key!".into()));
    assert_eq!(
        parse("\"level\":error").unwrap(),
        parse("level:error").unwrap(),
        "quoting a key does not change what it names"
    );
}

#[test]
fn values_may_hold_colons() {
    let Expr::Is(Predicate::Text {
        matcher: Matcher::Equals(pattern),
        ..
    }) = parse("url:http://x/y").unwrap()
    else {
        panic!("a field");
    };
    assert_eq!(pattern.pieces, ["http://x/y"]);
}

#[test]
fn limits_are_inclusive() {
    let longest = "a".repeat(MAX_QUERY_CHARS);
    assert!(parse(&longest).is_ok());
    let (position, message) = refused(&format!("{longest}a"));
    assert_eq!(position, MAX_QUERY_CHARS + 1);
    assert!(message.contains("4000"), "{message}");
    // Characters, not bytes: 4000 two-byte characters are fine.
    assert!(parse(&"é".repeat(MAX_QUERY_CHARS)).is_ok());

    let nested = |depth: usize| format!("{}x{}", "(".repeat(depth), ")".repeat(depth));
    assert!(parse(&nested(MAX_DEPTH)).is_ok());
    let (position, message) = refused(&nested(MAX_DEPTH + 1));
    assert_eq!(position, MAX_DEPTH + 1, "{message}");
    assert!(message.contains("32"), "{message}");
    // Negations do not nest the tree; thousands are fine.
    assert!(parse(&format!("{}x", "-".repeat(MAX_QUERY_CHARS - 1))).is_ok());
}

#[test]
fn errors_point_at_the_fault() {
    for (query, position, says) in [
        ("level:loud", 7, "unknown level"),
        ("level:>=loud", 9, "unknown level"),
        ("a level:nope", 9, "unknown level"),
        ("timeout AND", 12, "after AND"),
        ("timeout OR", 11, "after OR"),
        ("NOT", 4, "after NOT"),
        ("AND timeout", 1, "AND joins"),
        ("a OR OR b", 6, "after OR"),
        ("a AND OR b", 7, "after AND"),
        ("(timeout", 9, "close the ( at column 1"),
        ("timeout)", 8, "no ("),
        ("()", 2, "empty parentheses"),
        ("\"open", 1, "never closed"),
        ("a \"open", 3, "never closed"),
        ("region:", 8, "expected a value"),
        ("region: x", 8, "no space"),
        ("region:(a b)", 11, "expected OR or )"),
        ("region:(a", 10, "close the list"),
        ("region:()", 9, "empty list"),
        ("region:((a))", 9, "do not nest"),
        ("http.status:>=abc", 15, "expected a number"),
        ("http.status:>=", 15, "expected a number"),
        ("service:>a", 9, "comparisons apply"),
        ("level:~\"e\"", 7, "not regular expressions"),
        ("~\"(\"", 1, "invalid regular expression"),
        ("x ~\"[a\"", 3, "invalid regular expression"),
        ("~abc", 2, "quoted regular expression"),
        ("- x", 2, "right after -"),
        ("x -", 4, "right after -"),
        (":x", 1, "field name before"),
        ("foo*:bar", 5, "not a field name"),
        ("@:x", 2, "attribute name"),
        ("@region x", 8, "attribute name"),
        ("a\"b\"", 2, "expected a space"),
        ("abc(d)", 4, "expected a space"),
        ("\"a\"b", 4, "expected a space"),
        ("é é level:nope", 11, "unknown level"),
    ] {
        let (got, message) = refused(query);
        assert_eq!(got, position, "{query:?}: {message}");
        assert!(message.contains(says), "{query:?}: {message}");
    }
}

#[test]
fn regexes_are_bounded() {
    let (position, message) = refused("x ~\"(\\w{100}){100}\"");
    assert_eq!(position, 3);
    assert!(message.contains("too large"), "{message}");
    let deep = format!("~\"{}a{}\"", "(".repeat(100), ")".repeat(100));
    let (_, message) = refused(&deep);
    assert!(message.contains("invalid regular expression"), "{message}");
}

#[test]
fn field_names_display_as_queries_write_them() {
    for (name, shown) in [
        ("level", "level"),
        ("@level", "@level"),
        ("region", "region"),
        ("@region", "region"),
        ("my key", "\"my key\""),
        ("@id", "@id"),
    ] {
        assert_eq!(FieldName::parse_reference(name).display(), shown, "{name}");
    }
    // What display writes parses back to the same field.
    assert_eq!(FieldName::parse_reference("-x").display(), "\"-x\"");
    for name in ["@level", "my key", "a\"b", "region", "-x", "@-id"] {
        let field = FieldName::parse_reference(name);
        let query = format!("{}:*", field.display());
        let expr = parse(&query).unwrap();
        if let FieldName::Text(TextField::Attribute(key)) = &field {
            assert_eq!(
                expr,
                Expr::Is(Predicate::Present { key: key.clone() }),
                "{query}"
            );
        }
    }
}

/// SplitMix64: random inputs without a crate.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_input_never_panics_and_errors_point_inside() {
    const PIECES: &[&str] = &[
        " ",
        "(",
        ")",
        "\"",
        "\\",
        ":",
        "@",
        "-",
        "~",
        "*",
        ">",
        ">=",
        "<",
        "<=",
        "AND",
        "OR",
        "NOT",
        "and",
        "level",
        "service",
        "message",
        "id",
        "region",
        "http.status",
        "error",
        "warn",
        "500",
        "-3.5",
        "é",
        "日本",
        "\u{0}",
        "\t",
        "[",
        "?",
        "(?i)",
        "+",
        "{2}",
        "\\d",
        "x",
        "é\u{301}",
    ];
    let mut random = Random(12345);
    let records = logs();
    for round in 0..20_000 {
        let mut query = String::new();
        for _ in 0..random.below(16) {
            if random.below(10) == 0 {
                query.push(char::from_u32(random.below(0x3000) as u32).unwrap_or('?'));
            } else {
                query.push_str(PIECES[random.below(PIECES.len())]);
            }
        }
        match parse(&query) {
            Ok(expr) => {
                // Evaluating never panics either.
                for record in &records {
                    let _ = expr.matches(record);
                }
            }
            Err(error) => {
                let length = query.chars().count();
                assert!(
                    (1..=length + 1).contains(&error.position),
                    "round {round}: {query:?}: {error}"
                );
                assert!(!error.message.is_empty());
            }
        }
    }
}

#[test]
fn pattern_terms_match_whole_messages_case_sensitively() {
    check(&[
        (r#"pattern:"Connection REFUSED by <_>""#, "a"),
        (r#"pattern:"connection refused by <_>""#, ""),
        (r#"pattern:"<_> after <_>""#, "b"),
        (r#"pattern:"disk full: <_>" level:fatal"#, "d"),
        (r#"-pattern:"<_>ok<_>""#, "abde"),
        (r#"pattern:"<_>ok<_>" OR pattern:"<_>3s""#, "bc"),
        ("pattern:timeout<_>", "b"),
        ("pattern:timeout", ""),
        ("@pattern:x", ""),
    ]);
    // The same template filters the same way in LogQL's `|>`.
    let template = crate::domain::patterns::Template::parse("Connection REFUSED by <_>").unwrap();
    assert_eq!(
        parse(r#"pattern:"Connection REFUSED by <_>""#).unwrap(),
        template.to_expr().unwrap()
    );
    for (query, column) in [
        ("pattern:", 9),
        ("pattern: x", 9),
        ("pattern:\"\"", 9),
        ("pattern:\"a\"x", 12),
    ] {
        assert_eq!(refused(query).0, column, "{query}");
    }
    let attribute = FieldName::Text(TextField::Attribute("pattern".into()));
    assert_eq!(attribute.display(), "@pattern");
    assert_eq!(
        FieldName::parse_reference("pattern"),
        attribute,
        "lists keep their meaning"
    );
}
