//! LogQL, Loki's query language, as Grafana sends it: parsed into an AST,
//! pushed down into the store-neutral [`Expr`](crate::domain::query::Expr)
//! of our own query language where the meaning is the same, and evaluated
//! on the rows a store returns. Pure: no I/O, no async, no HTTP.
//!
//! # Map
//! - `lexer.rs`, `parser.rs`, `parser_metric.rs`: text to [`Query`]
//!   (`ast.rs`); `display.rs` writes it back (for `format_query`).
//! - `units.rs`: durations, byte sizes, Go's float syntax; `ip.rs`: `ip()`;
//!   `template.rs` and `template_funcs.rs`: `line_format`/`label_format`.
//! - `labels.rs`: the label model (stream labels, structured metadata,
//!   parsed labels) and Loki's label-name sanitizing.
//! - `pushdown.rs`: a log query's selector and leading filters as an
//!   `Expr`, plus the residual pipeline.
//! - `pipeline.rs` with `parsers.rs`: stages run on one row.
//! - `streams.rs`: a log query's answer (streams of entries).
//! - `metric/`: range and vector aggregations, binary operations, the
//!   step grid, and folding pre-aggregated counts.
//! - `json.rs`: the answers in Loki's JSON shapes.
//!
//! # How the HTTP layer uses it
//! ```text
//! let query = logql::parse(text)?;                  // ParseError: 400, Loki's message
//! let keys = AttributeKeyIndex::new(store_attribute_keys);
//! let resolve = |label: &str| keys.keys_for(label);  // sanitized name -> stored keys
//! let model = LabelModel::new(&config.loki.stream_labels);
//! match query {
//!     Query::Log(log) => {
//!         let plan = log.push_down(&resolve);       // Pushdown { expr, residual, text_hint }
//!         // LogFilter { expr: plan.expr, from, to, text: plan.text_hint (optional), .. }
//!         let options = LogQueryOptions { limit, categorize_labels };
//!         let mut answer = LogQueryEvaluator::new(&plan.residual, &model, options)?;
//!         // Rows in the query's direction, page after page (keyset), until
//!         // `push` says Full or the store has no more:
//!         for row in rows { if answer.push(&row) == Progress::Full { break } }
//!         let streams = answer.finish();
//!         // data = json::StreamsData { streams: &streams, categorize_labels }
//!     }
//!     Query::Metric(metric) => {
//!         let plan = MetricPlan::new(&metric, &resolve);
//!         let grid = StepGrid::range(start, end, step)?; // or StepGrid::instant(time)
//!         let mut evaluation = plan.evaluator(grid, &model);
//!         for (index, leaf) in plan.leaves().iter().enumerate() {
//!             match leaf.countable(&grid) {
//!                 // Rollups when counting.accepts_buckets_of(60 s), else
//!                 // GROUP BY buckets of counting.width_nanos from origin_nanos:
//!                 Some(counting) => evaluation.push_counts(index, width, &count_rows)?,
//!                 // Rows of leaf.pushdown.expr with from < t <= to:
//!                 None => for row in rows(leaf.fetch_range(&grid)) { evaluation.push_row(index, &row)? },
//!             }
//!         }
//!         let result = evaluation.finish()?;         // EvalError: 400 (limits, pipeline errors)
//!         // data = json::MetricData(&result)
//!     }
//! }
//! ```
//! `parse_selector` reads the `match[]`/`query` selectors of `series`,
//! `labels` and `index/*` (`{}` allowed); `Query`'s `Display` is
//! `format_query`.
//!
//! Every LogQL string the tests use is in [`examples::EXAMPLE_QUERIES`], for
//! the Node test that checks them against Grafana's own grammar
//! (`@grafana/lezer-logql`).

mod ast;
mod display;
pub mod examples;
mod ip;
pub mod json;
mod json_text;
mod labels;
mod lexer;
pub mod metric;
mod parser;
mod parser_metric;
mod parsers;
mod pipeline;
mod pushdown;
mod streams;
mod template;
mod template_funcs;
mod units;

pub use ast::*;
pub use display::quote;
pub use ip::IpFilter;
pub use labels::{AttributeKeyIndex, LabelModel, LineLabels, sanitize_label_name};
pub use metric::{
    CountDimensions, CountRow, Counting, Leaf, MetricEvaluator, MetricPlan, MetricResult, Sample,
    Series, StepGrid,
};
pub use pipeline::Line;
pub use pushdown::{AttributeKeys, Pushdown};
pub use streams::{
    Entry, EvalError, Labels, LogQueryEvaluator, LogQueryOptions, MAX_ENTRIES, MAX_SERIES,
    Progress, Stream,
};
pub use template::{GoTemplate, TemplateData};
pub use units::{format_value, parse_bytes, parse_duration};

use lexer::Position;

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 16 * 1024;
/// Deepest nesting of parentheses and operators accepted.
pub const MAX_DEPTH: usize = 64;

/// A query that cannot be parsed, in Loki's words and shape:
/// `parse error at line 1, col 12: syntax error: unexpected IDENTIFIER`.
/// The HTTP layer answers it with 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("parse error at line {line}, col {column}: {message}")]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    /// 1-based character column within the line.
    pub column: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn at(position: Position, message: impl Into<String>) -> ParseError {
        ParseError {
            line: position.line,
            column: position.column,
            message: message.into(),
        }
    }
}

fn check_length(text: &str) -> Result<(), ParseError> {
    let length = text.chars().count();
    if length > MAX_QUERY_CHARS {
        return Err(ParseError {
            line: 1,
            column: MAX_QUERY_CHARS + 1,
            message: format!(
                "the query is {length} characters long; at most {MAX_QUERY_CHARS} are allowed"
            ),
        });
    }
    Ok(())
}

/// Parses a LogQL query (a log query or a metric query).
pub fn parse(text: &str) -> Result<Query, ParseError> {
    check_length(text)?;
    let tokens = lexer::tokenize(text)?;
    parser::Parser::new(tokens).query()
}

/// Parses a bare stream selector, `{}` included (the `match[]` of
/// `series`, the `query` of `labels` and `index/*`).
pub fn parse_selector(text: &str) -> Result<Selector, ParseError> {
    check_length(text)?;
    let tokens = lexer::tokenize(text)?;
    let mut parser = parser::Parser::new(tokens);
    let selector = parser.selector(true)?;
    if *parser.peek() != lexer::Token::End {
        return Err(parser.unexpected());
    }
    Ok(selector)
}

#[cfg(test)]
mod tests;
