//! Running pipeline stages on one line, with Loki's semantics: line
//! filters test the current line (after any `line_format`); label filters
//! read `""` for an absent label; a numeric, duration or byte-size filter
//! drops a line without the label, marks a value that does not parse with
//! `__error__="LabelFilterErr"` and keeps it, and lets every line that
//! already has an error through; `and` evaluates both sides.

use super::ast::*;
use super::labels::{LabelModel, LineLabels};
use super::parsers;
use super::template::TemplateData;
use super::units::{duration_seconds, parse_bytes, parse_float};
use crate::domain::LogRecord;

pub const LABEL_FILTER_ERROR: &str = "LabelFilterErr";
pub const TEMPLATE_ERROR: &str = "TemplateFormatErr";

/// A line on its way through a pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub timestamp_nanos: i64,
    pub text: String,
    pub labels: LineLabels,
}

impl Line {
    /// A stored log as a line: the message, its labels per `model`.
    pub fn of(record: &LogRecord, model: &LabelModel) -> Line {
        Line {
            timestamp_nanos: record.timestamp.saturating_mul(1000),
            text: record.message.clone(),
            labels: model.line_labels(record),
        }
    }
}

struct LineData<'a> {
    labels: &'a LineLabels,
    text: &'a str,
    timestamp_nanos: i64,
}

impl TemplateData for LineData<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name)
    }
    fn line(&self) -> &str {
        self.text
    }
    fn timestamp_nanos(&self) -> i64 {
        self.timestamp_nanos
    }
}

/// Runs `stages` on `line`; `false` when a filter drops it.
pub fn run(stages: &[Stage], line: &mut Line) -> bool {
    stages.iter().all(|stage| run_stage(stage, line))
}

fn run_stage(stage: &Stage, line: &mut Line) -> bool {
    match stage {
        Stage::LineFilter(filter) => line_filter_passes(filter, &line.text),
        Stage::LabelFilter(filter) => label_filter_passes(filter, &mut line.labels),
        Stage::Json(extractions) => {
            parsers::json(&line.text, extractions, &mut line.labels);
            true
        }
        Stage::Logfmt(logfmt) => {
            parsers::logfmt(&line.text, logfmt, &mut line.labels);
            true
        }
        Stage::Regexp(regex) => {
            parsers::regexp(&line.text, regex, &mut line.labels);
            true
        }
        Stage::Pattern(pattern) => {
            parsers::pattern(&line.text, pattern, &mut line.labels);
            true
        }
        Stage::Unpack => {
            parsers::unpack(&mut line.text, &mut line.labels);
            true
        }
        Stage::Decolorize => {
            line.text = parsers::decolorize(&line.text);
            true
        }
        Stage::LineFormat(template) => {
            let rendered = template.render(&LineData {
                labels: &line.labels,
                text: &line.text,
                timestamp_nanos: line.timestamp_nanos,
            });
            match rendered {
                Ok(text) => line.text = text,
                Err(error) => line.labels.set_error(TEMPLATE_ERROR, error),
            }
            true
        }
        Stage::LabelFormat(items) => {
            label_format(items, line);
            true
        }
        Stage::Drop(selections) => {
            for selection in selections {
                let drops = match selection {
                    LabelSelection::Name(_) => line.labels.get(selection.name()).is_some(),
                    LabelSelection::Matcher(matcher) => line
                        .labels
                        .get(&matcher.name)
                        .is_some_and(|value| matcher.matches(value)),
                };
                if drops {
                    line.labels.remove(selection.name());
                }
            }
            true
        }
        Stage::Keep(selections) => {
            line.labels.retain(|name, value| {
                selections.iter().any(|selection| match selection {
                    LabelSelection::Name(kept) => kept == name,
                    LabelSelection::Matcher(matcher) => {
                        matcher.name == name && matcher.matches(value)
                    }
                })
            });
            true
        }
    }
}

/// Every template reads the labels as they were before the stage; renames
/// move a label's value and remove the source.
fn label_format(items: &[LabelFormatItem], line: &mut Line) {
    let before = line.labels.clone();
    let data = LineData {
        labels: &before,
        text: &line.text,
        timestamp_nanos: line.timestamp_nanos,
    };
    let mut renamed_away = Vec::new();
    for item in items {
        match item {
            LabelFormatItem::Rename { to, from } => {
                if let Some(value) = before.get(from) {
                    line.labels.set_formatted(to, value.to_string());
                    if from != to {
                        renamed_away.push(from.clone());
                    }
                }
            }
            LabelFormatItem::Template { to, template } => match template.render(&data) {
                Ok(value) => line.labels.set_formatted(to, value),
                Err(error) => line.labels.set_error(TEMPLATE_ERROR, error),
            },
        }
    }
    let targets: Vec<&str> = items
        .iter()
        .map(|item| match item {
            LabelFormatItem::Rename { to, .. } | LabelFormatItem::Template { to, .. } => {
                to.as_str()
            }
        })
        .collect();
    for name in renamed_away {
        if !targets.contains(&name.as_str()) {
            line.labels.remove(&name);
        }
    }
}

pub fn line_filter_passes(filter: &LineFilter, text: &str) -> bool {
    let any = filter.alternatives.iter().any(|value| match value {
        LineFilterValue::Literal(literal) => text.contains(literal.as_str()),
        LineFilterValue::Regex(regex) => regex.regex.is_match(text),
        LineFilterValue::Pattern(template) => template.matches(text),
        LineFilterValue::Ip(ip) => ip.matches_line(text),
    });
    any != filter.op.is_negative()
}

pub fn label_filter_passes(filter: &LabelFilter, labels: &mut LineLabels) -> bool {
    match filter {
        LabelFilter::And(left, right) => {
            let left = label_filter_passes(left, labels);
            let right = label_filter_passes(right, labels);
            left && right
        }
        LabelFilter::Or(left, right) => {
            label_filter_passes(left, labels) || label_filter_passes(right, labels)
        }
        LabelFilter::Test(test) => label_test_passes(test, labels),
    }
}

/// Reads a label's value as a number, or says why it cannot.
type ValueReader = fn(&str) -> Result<f64, String>;

fn label_test_passes(test: &LabelTest, labels: &mut LineLabels) -> bool {
    let (name, op, wanted, read): (&str, NumberOp, f64, ValueReader) = match test {
        LabelTest::Text(matcher) => {
            return matcher.matches(labels.get(&matcher.name).unwrap_or(""));
        }
        LabelTest::Ip {
            name,
            negated,
            filter,
        } => {
            if labels.has_error() {
                return true;
            }
            return match labels.get(name) {
                Some(value) => filter.matches_value(value) != *negated,
                None => false,
            };
        }
        LabelTest::Number { name, op, value } => (name, *op, *value, |text| {
            parse_float(text)
                .ok_or_else(|| format!("strconv.ParseFloat: parsing {text:?}: invalid syntax"))
        }),
        LabelTest::Duration { name, op, nanos } => (name, *op, *nanos as f64 / 1e9, |text| {
            duration_seconds(text).ok_or_else(|| format!("time: invalid duration {text:?}"))
        }),
        LabelTest::Bytes { name, op, bytes } => (name, *op, *bytes as f64, |text| {
            parse_bytes(text)
                .map(|bytes| bytes as f64)
                .ok_or_else(|| format!("unhandled size name: {text:?}"))
        }),
    };
    if labels.has_error() {
        return true;
    }
    let Some(value) = labels.get(name) else {
        return false;
    };
    match read(value) {
        Ok(number) => op.holds(number, wanted),
        Err(details) => {
            labels.set_error(LABEL_FILTER_ERROR, details);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Level;
    use crate::domain::logql::{Query, parse};

    fn stages(query: &str) -> Vec<Stage> {
        match parse(crate::domain::logql::tests::listed(query)).unwrap() {
            Query::Log(log) => log.pipeline,
            Query::Metric(_) => panic!("not a log query"),
        }
    }

    fn line(message: &str, attributes: &[(&str, &str)]) -> Line {
        let record = LogRecord {
            id: "1".into(),
            timestamp: 1_000,
            level: Level::Warn,
            service: "api".into(),
            message: message.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        Line::of(&record, &LabelModel::default())
    }

    #[test]
    fn numeric_filters_follow_loki_on_missing_and_bad_values() {
        let filter = stages(r#"{a="b"} | status >= 500"#);
        assert!(run(&filter, &mut line("", &[("status", "503")])));
        assert!(!run(&filter, &mut line("", &[("status", "200")])));
        assert!(!run(&filter, &mut line("", &[])), "missing label: dropped");
        let mut bad = line("", &[("status", "abc")]);
        assert!(run(&filter, &mut bad), "bad value: kept");
        assert_eq!(bad.labels.get("__error__"), Some("LabelFilterErr"));
        let then_clean = stages(r#"{a="b"} | status >= 500 | __error__="""#);
        assert!(!run(&then_clean, &mut line("", &[("status", "abc")])));
        let durations = stages(r#"{a="b"} | took > 1s and size <= 1KiB"#);
        assert!(run(
            &durations,
            &mut line("", &[("took", "1.5s"), ("size", "1000")])
        ));
        assert!(!run(
            &durations,
            &mut line("", &[("took", "900ms"), ("size", "10")])
        ));
    }

    #[test]
    fn formatting_stages() {
        let mut formatted = line("hello", &[("user", "ann")]);
        let pipeline = stages(
            r#"{a="b"} | label_format who=user, greeting="{{.user}}!" | line_format "{{.greeting}} {{__line__}}" | drop who | keep greeting, service_name"#,
        );
        assert!(run(&pipeline, &mut formatted));
        assert_eq!(formatted.text, "ann! hello");
        assert_eq!(formatted.labels.get("greeting"), Some("ann!"));
        assert_eq!(formatted.labels.get("user"), None);
        assert_eq!(formatted.labels.get("who"), None);
        assert_eq!(formatted.labels.names().len(), 2);
        let mut filtered = line("a TIMEOUT here", &[]);
        assert!(!run(&stages(r#"{a="b"} |= "timeout""#), &mut filtered));
        assert!(run(
            &stages(r#"{a="b"} |~ "(?i)timeout" != "x""#),
            &mut filtered
        ));
        assert!(run(&stages(r#"{a="b"} |> "a <_> here""#), &mut filtered));
        assert!(run(
            &stages(r#"{a="b"} |= "nope" or "TIME""#),
            &mut filtered
        ));
        assert!(!run(
            &stages(r#"{a="b"} != "nope" or "TIME""#),
            &mut filtered
        ));
        assert!(run(
            &stages(r#"{a="b"} | level="warn" | detected_level=~"w.*""#),
            &mut filtered
        ));
    }
}
