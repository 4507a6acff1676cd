//! No input makes the parser (or the evaluation of what it accepts)
//! panic: every prefix of every example, random edits of them, and random
//! soups of LogQL's tokens. A small xorshift generator keeps it
//! deterministic without a property-testing dependency.

use crate::domain::logql::examples::EXAMPLE_QUERIES;
use crate::domain::logql::{
    LabelModel, LogQueryEvaluator, LogQueryOptions, MetricPlan, Query, StepGrid, parse,
};
use crate::domain::{Level, LogRecord};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[5m]",
    "[",
    "]",
    ",",
    "=",
    "!=",
    "=~",
    "!~",
    "|=",
    "|~",
    "|>",
    "!>",
    "|",
    "==",
    ">",
    ">=",
    "<",
    "<=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "\"x\"",
    "`y`",
    "\"",
    "`",
    "5",
    "1.5",
    "10s",
    "20MB",
    "a",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "json",
    "logfmt",
    "--strict",
    "regexp",
    "pattern",
    "unpack",
    "line_format",
    "label_format",
    "drop",
    "keep",
    "decolorize",
    "unwrap",
    "duration",
    "bytes",
    "ip",
    "vector",
    "sum",
    "topk",
    "rate",
    "count_over_time",
    "quantile_over_time",
    "\"<_>\"",
    "\"{{.a}}\"",
    "#",
    "\n",
    " ",
    "é",
    "\\",
    "$",
    "__error__",
];

fn check(text: &str) {
    let Ok(query) = parse(text) else {
        return;
    };
    // Whatever parses is written back as something that parses the same.
    let written = query.to_string();
    let again = parse(&written).unwrap_or_else(|e| panic!("{text:?} -> {written:?}: {e}"));
    assert_eq!(again, query, "{text:?} -> {written:?}");
    // And runs on a row without panicking.
    let row = LogRecord {
        id: "1".into(),
        timestamp: 1_000_000,
        level: Level::Error,
        service: "a".into(),
        message: r#"{"a":"1","x":2} level=info a=b"#.into(),
        attributes: [("a".to_string(), "x".to_string())].into(),
        ..Default::default()
    };
    let keys = |label: &str| vec![label.to_string()];
    let model = LabelModel::default();
    match query {
        Query::Log(log) => {
            let plan = log.push_down(&keys);
            let options = LogQueryOptions {
                limit: 10,
                categorize_labels: true,
            };
            let mut evaluator = LogQueryEvaluator::new(&plan.residual, &model, options).unwrap();
            evaluator.push(&row);
            evaluator.finish();
        }
        Query::Metric(metric) => {
            let plan = MetricPlan::new(&metric, &keys);
            let grid = StepGrid::range(0, 10_000_000_000, 1_000_000_000).unwrap();
            let mut evaluator = plan.evaluator(grid, &model);
            for leaf in 0..plan.leaves().len() {
                let _ = evaluator.push_row(leaf, &row);
            }
            let _ = evaluator.finish();
        }
    }
}

#[test]
fn truncated_examples_never_panic() {
    for query in EXAMPLE_QUERIES {
        let chars: Vec<char> = query.chars().collect();
        for end in 0..=chars.len() {
            check(&chars[..end].iter().collect::<String>());
            check(&chars[end..].iter().collect::<String>());
        }
    }
}

#[test]
fn edited_examples_never_panic() {
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    for query in EXAMPLE_QUERIES {
        for _ in 0..40 {
            let mut chars: Vec<char> = query.chars().collect();
            for _ in 0..1 + random.below(3) {
                let at = random.below(chars.len() + 1);
                match random.below(3) {
                    0 if at < chars.len() => {
                        chars.remove(at);
                    }
                    1 => {
                        let piece = PIECES[random.below(PIECES.len())];
                        for (offset, c) in piece.chars().enumerate() {
                            chars.insert(at + offset, c);
                        }
                    }
                    _ if at < chars.len() => {
                        let other = random.below(chars.len());
                        chars.swap(at, other);
                    }
                    _ => {}
                }
            }
            check(&chars.into_iter().collect::<String>());
        }
    }
}

#[test]
fn token_soup_never_panics() {
    let mut random = XorShift(42);
    for _ in 0..5000 {
        let length = random.below(24);
        let text: String = (0..length)
            .map(|_| PIECES[random.below(PIECES.len())])
            .collect::<Vec<_>>()
            .join(if random.below(2) == 0 { " " } else { "" });
        check(&text);
    }
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..random.below(40)).map(|_| random.next() as u8).collect();
        check(&String::from_utf8_lossy(&bytes));
    }
}
