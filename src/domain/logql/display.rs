//! A query written back as canonical LogQL (`format_query`, error
//! messages, tests): one line, strings quoted as Go quotes them, binary
//! operands in parentheses only where precedence needs them. Parsing the
//! text again gives the same tree.

use super::ast::*;
use super::units::{format_bytes, format_go_duration, format_range, format_value};
use std::fmt::{self, Display, Formatter, Write};

/// `text` as a Go double-quoted string.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Query::Log(log) => log.fmt(f),
            Query::Metric(metric) => metric.fmt(f),
        }
    }
}

impl Display for LogExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.selector.fmt(f)?;
        for stage in &self.pipeline {
            write!(f, " {stage}")?;
        }
        Ok(())
    }
}

impl Display for Selector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('{')?;
        for (index, matcher) in self.matchers.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            matcher.fmt(f)?;
        }
        f.write_char('}')
    }
}

impl Display for LabelMatcher {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), quote(&self.value))
    }
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter(filter) => filter.fmt(f),
            Stage::LabelFilter(filter) => write!(f, "| {filter}"),
            Stage::Json(extractions) => {
                f.write_str("| json")?;
                for (index, extraction) in extractions.iter().enumerate() {
                    let separator = if index == 0 { " " } else { ", " };
                    write!(
                        f,
                        "{separator}{}={}",
                        extraction.label,
                        quote(&extraction.path.source)
                    )?;
                }
                Ok(())
            }
            Stage::Logfmt(stage) => {
                f.write_str("| logfmt")?;
                if stage.strict {
                    f.write_str(" --strict")?;
                }
                if stage.keep_empty {
                    f.write_str(" --keep-empty")?;
                }
                for (index, extraction) in stage.extractions.iter().enumerate() {
                    let separator = if index == 0 { " " } else { ", " };
                    write!(
                        f,
                        "{separator}{}={}",
                        extraction.label,
                        quote(&extraction.key)
                    )?;
                }
                Ok(())
            }
            Stage::Regexp(regex) => write!(f, "| regexp {}", quote(&regex.source)),
            Stage::Pattern(pattern) => write!(f, "| pattern {}", quote(&pattern.source)),
            Stage::Unpack => f.write_str("| unpack"),
            Stage::LineFormat(template) => write!(f, "| line_format {}", quote(template.source())),
            Stage::LabelFormat(items) => {
                f.write_str("| label_format ")?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    match item {
                        LabelFormatItem::Rename { to, from } => write!(f, "{to}={from}")?,
                        LabelFormatItem::Template { to, template } => {
                            write!(f, "{to}={}", quote(template.source()))?
                        }
                    }
                }
                Ok(())
            }
            Stage::Drop(selections) => write_selections(f, "drop", selections),
            Stage::Keep(selections) => write_selections(f, "keep", selections),
            Stage::Decolorize => f.write_str("| decolorize"),
        }
    }
}

fn write_selections(
    f: &mut Formatter<'_>,
    word: &str,
    selections: &[LabelSelection],
) -> fmt::Result {
    write!(f, "| {word} ")?;
    for (index, selection) in selections.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        match selection {
            LabelSelection::Name(name) => f.write_str(name)?,
            LabelSelection::Matcher(matcher) => matcher.fmt(f)?,
        }
    }
    Ok(())
}

impl Display for LineFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        for (index, value) in self.alternatives.iter().enumerate() {
            f.write_str(if index == 0 { " " } else { " or " })?;
            match value {
                LineFilterValue::Literal(text) => f.write_str(&quote(text))?,
                LineFilterValue::Regex(regex) => f.write_str(&quote(&regex.source))?,
                LineFilterValue::Pattern(template) => f.write_str(&quote(template.source()))?,
                LineFilterValue::Ip(ip) => write!(f, "ip({})", quote(ip.source()))?,
            }
        }
        Ok(())
    }
}

impl Display for LabelFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let (left, right, word) = match self {
            LabelFilter::Test(test) => return test.fmt(f),
            LabelFilter::And(left, right) => (left, right, "and"),
            LabelFilter::Or(left, right) => (left, right, "or"),
        };
        for (index, side) in [left, right].into_iter().enumerate() {
            if index == 1 {
                write!(f, " {word} ")?;
            }
            match side.as_ref() {
                LabelFilter::Test(test) => test.fmt(f)?,
                nested => write!(f, "({nested})")?,
            }
        }
        Ok(())
    }
}

impl Display for LabelTest {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            LabelTest::Text(matcher) => matcher.fmt(f),
            LabelTest::Ip {
                name,
                negated,
                filter,
            } => {
                let op = if *negated { "!=" } else { "=" };
                write!(f, "{name}{op}ip({})", quote(filter.source()))
            }
            LabelTest::Number { name, op, value } => {
                write!(f, "{name}{}{}", op.as_str(), format_value(*value))
            }
            LabelTest::Duration { name, op, nanos } => {
                write!(f, "{name}{}{}", op.as_str(), format_go_duration(*nanos))
            }
            LabelTest::Bytes { name, op, bytes } => {
                write!(f, "{name}{}{}", op.as_str(), format_bytes(*bytes))
            }
        }
    }
}

impl Display for MetricExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            MetricExpr::Range(range) => range.fmt(f),
            MetricExpr::Vector(vector) => vector.fmt(f),
            MetricExpr::Binary(binary) => binary.fmt(f),
            MetricExpr::Literal(value) => f.write_str(&format_value(*value)),
            MetricExpr::VectorLiteral(value) => write!(f, "vector({})", format_value(*value)),
        }
    }
}

fn write_grouping(f: &mut Formatter<'_>, grouping: &Option<Grouping>) -> fmt::Result {
    if let Some(grouping) = grouping {
        let word = if grouping.without { "without" } else { "by" };
        write!(f, " {word} ({})", grouping.labels.join(", "))?;
    }
    Ok(())
}

impl Display for RangeAggregation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.op.as_str())?;
        if let Some(parameter) = self.parameter {
            write!(f, "{}, ", format_value(parameter))?;
        }
        self.log.fmt(f)?;
        if let Some(unwrap) = &self.unwrap {
            f.write_str(" | unwrap ")?;
            match unwrap.conversion {
                Conversion::Float => f.write_str(&unwrap.label)?,
                Conversion::Duration => write!(f, "duration({})", unwrap.label)?,
                Conversion::DurationSeconds => write!(f, "duration_seconds({})", unwrap.label)?,
                Conversion::Bytes => write!(f, "bytes({})", unwrap.label)?,
            }
            for filter in &unwrap.filters {
                write!(f, " | {filter}")?;
            }
        }
        write!(f, " [{}]", format_range(self.range_nanos))?;
        if self.offset_nanos != 0 {
            write!(f, " offset {}", format_range(self.offset_nanos))?;
        }
        f.write_char(')')?;
        write_grouping(f, &self.grouping)
    }
}

impl Display for VectorAggregation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        write_grouping(f, &self.grouping)?;
        f.write_str(if self.grouping.is_some() { " (" } else { "(" })?;
        if let Some(parameter) = self.parameter {
            write!(f, "{}, ", format_value(parameter))?;
        }
        write!(f, "{})", self.inner)
    }
}

impl Display for BinaryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let precedence = self.op.precedence();
        let right_associative = self.op == BinaryOp::Pow;
        let needs_parens = |side: &MetricExpr, is_right: bool| match side {
            MetricExpr::Binary(inner) => {
                let inner_precedence = inner.op.precedence();
                inner_precedence < precedence
                    || (inner_precedence == precedence && (is_right != right_associative))
            }
            MetricExpr::Literal(value) => is_right && *value < 0.0,
            _ => false,
        };
        let write_side = |f: &mut Formatter<'_>, side: &MetricExpr, is_right: bool| {
            if needs_parens(side, is_right) {
                write!(f, "({side})")
            } else {
                side.fmt(f)
            }
        };
        write_side(f, &self.left, false)?;
        write!(f, " {}", self.op.as_str())?;
        if self.return_bool {
            f.write_str(" bool")?;
        }
        if let Some(matching) = &self.matching {
            let word = if matching.on { "on" } else { "ignoring" };
            write!(f, " {word} ({})", matching.labels.join(", "))?;
            match &matching.group {
                Some(GroupSide::Left(labels)) => write!(f, " group_left ({})", labels.join(", "))?,
                Some(GroupSide::Right(labels)) => {
                    write!(f, " group_right ({})", labels.join(", "))?
                }
                None => {}
            }
        }
        f.write_char(' ')?;
        write_side(f, &self.right, true)
    }
}
