//! A log query's selector and leading stages as the store-neutral [`Expr`]
//! our own query language produces, so the stores read LogQL with the
//! conditions they already have; the stages that must run on rows are the
//! residual.
//!
//! What is pushed, exactly:
//! - selector matchers and string label filters on stored labels, before
//!   any stage that changes labels: `service_name` is the service,
//!   `detected_level` and `level` the level (`fatal` also answers to
//!   `critical`), any other name an attribute: every original key the
//!   caller's resolver gives for the sanitized name, ORed (an absent label
//!   reads as `""`, so `x=""` also matches logs without any of the keys);
//! - line filters (`|=`, `!=`, `|~`, `!~`, `|>`, `!>`), wherever they stand,
//!   as long as no earlier stage rewrote the line (`line_format`,
//!   `decolorize`, `unpack`): parsers leave the line alone, and filters
//!   commute with each other.
//!
//! LogQL compares case-sensitively where our `Matcher::Contains` ignores
//! case, so `|= "timeout"` becomes the language's own `timeout` term (a
//! case-insensitive substring, which the stores' substring indexes and
//! skip filters serve) ANDed with an exact, case-sensitive regex on the
//! escaped literal. The regex alone is the meaning; the substring term is
//! implied by it for ASCII text and is only there to narrow the rows
//! fast. No change to `Expr` or to the stores is needed.
//!
//! Numeric, duration and byte-size label filters stay in the residual
//! (Loki keeps lines whose value does not parse, marked with `__error__`);
//! a lone one before anything that can set an error pushes "the label is
//! present" as a prefilter, since Loki drops lines without the label.

use super::ast::*;
use super::labels::{ERROR_DETAILS_LABEL, ERROR_LABEL, LEVEL_ALIAS, LEVEL_LABEL, SERVICE_LABEL};
use crate::domain::query::{Expr, Matcher, Pattern, Predicate, TextField, compile_regex};
use crate::domain::{Level, LevelSet};

/// Gives the original attribute keys whose sanitized name is `label`
/// (`http_status` → `["http.status", "http_status"]`), from the keys the
/// store holds; empty when no attribute has that name.
pub type AttributeKeys<'a> = &'a dyn Fn(&str) -> Vec<String>;

/// A log query split between the store and the rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Pushdown {
    /// The logs the store must return: exactly those the selector and the
    /// pushed stages keep (plus, for a residual numeric filter, the
    /// necessary "label present" condition).
    pub expr: Expr,
    /// The stages to run on each returned row, in order.
    pub residual: Vec<Stage>,
    /// A lowercase substring every returned message holds (the longest
    /// pushed `|=` literal): a caller may also put it in
    /// `LogFilter::text` so the embedded store's skip index serves it.
    pub text_hint: Option<String>,
}

impl Pushdown {
    /// Whether the residual keeps every row and leaves labels alone, so
    /// counting the store's rows for `expr` counts the query's lines.
    pub fn residual_is_noop(&self) -> bool {
        self.residual.is_empty()
    }
}

impl LogExpr {
    /// Splits this query between the store (`expr`) and the rows
    /// (`residual`); see the module documentation for what moves.
    pub fn push_down(&self, attribute_keys: AttributeKeys<'_>) -> Pushdown {
        let mut conjuncts: Vec<Expr> = self
            .selector
            .matchers
            .iter()
            .map(|matcher| matcher_expr(matcher, attribute_keys))
            .collect();
        let mut residual = Vec::new();
        let mut line_unchanged = true;
        let mut labels_unchanged = true;
        let mut error_possible = false;
        for stage in &self.pipeline {
            match stage {
                Stage::LineFilter(filter) if line_unchanged => match line_filter_expr(filter) {
                    Some(expr) => conjuncts.push(expr),
                    None => residual.push(stage.clone()),
                },
                Stage::LabelFilter(filter) if labels_unchanged => {
                    if !error_possible && let Some(constant) = error_filter_constant(filter) {
                        if !constant {
                            conjuncts.push(nothing());
                        }
                        continue;
                    }
                    if let Some(expr) = label_filter_expr(filter, attribute_keys) {
                        conjuncts.push(expr);
                        continue;
                    }
                    if !error_possible && let LabelFilter::Test(test) = filter {
                        conjuncts.extend(presence_prefilter(test, attribute_keys));
                    }
                    error_possible |= can_set_error(filter);
                    residual.push(stage.clone());
                }
                Stage::Drop(selections)
                    if !error_possible
                        && selections.iter().all(
                            |s| matches!(s, LabelSelection::Name(name) if is_error_label(name)),
                        ) =>
                {
                    // Nothing has set an error yet: dropping the error
                    // labels changes nothing.
                }
                other => {
                    residual.push(other.clone());
                    match other {
                        Stage::LineFilter(_) => {}
                        Stage::LabelFilter(filter) => error_possible |= can_set_error(filter),
                        Stage::Regexp(_) | Stage::Pattern(_) | Stage::Drop(_) | Stage::Keep(_) => {
                            labels_unchanged = false;
                        }
                        Stage::Json(_) | Stage::Logfmt(_) | Stage::LabelFormat(_) => {
                            labels_unchanged = false;
                            error_possible = true;
                        }
                        Stage::Unpack => {
                            labels_unchanged = false;
                            line_unchanged = false;
                            error_possible = true;
                        }
                        Stage::LineFormat(_) => {
                            line_unchanged = false;
                            error_possible = true;
                        }
                        Stage::Decolorize => line_unchanged = false,
                    }
                }
            }
        }
        let expr = all_of(conjuncts);
        let text_hint = longest_substring_term(&expr);
        Pushdown {
            expr,
            residual,
            text_hint,
        }
    }
}

fn is_error_label(name: &str) -> bool {
    name == ERROR_LABEL || name == ERROR_DETAILS_LABEL
}

fn nothing() -> Expr {
    Expr::Or(Vec::new())
}

fn all_of(children: Vec<Expr>) -> Expr {
    children.into_iter().fold(Expr::everything(), Expr::and)
}

fn any_of(mut children: Vec<Expr>) -> Expr {
    if children.iter().any(Expr::is_everything) {
        return Expr::everything();
    }
    let mut flat = Vec::new();
    for child in children.drain(..) {
        match child {
            Expr::Or(inner) => flat.extend(inner),
            other => flat.push(other),
        }
    }
    if flat.len() == 1 {
        flat.pop().unwrap_or_else(nothing)
    } else {
        Expr::Or(flat)
    }
}

fn negate(expr: Expr) -> Expr {
    if expr.is_everything() {
        return nothing();
    }
    match expr {
        Expr::Or(children) if children.is_empty() => Expr::everything(),
        Expr::Not(inner) => *inner,
        other => Expr::Not(Box::new(other)),
    }
}

fn text(field: TextField, matcher: Matcher) -> Expr {
    Expr::Is(Predicate::Text { field, matcher })
}

/// `__error__` tests before anything can set an error: the label is
/// absent (`""`), so the filter is a constant.
fn error_filter_constant(filter: &LabelFilter) -> Option<bool> {
    match filter {
        LabelFilter::Test(LabelTest::Text(matcher)) if is_error_label(&matcher.name) => {
            Some(matcher.matches(""))
        }
        _ => None,
    }
}

/// Whether a residual label filter may set `__error__` (a numeric,
/// duration or byte-size test on a value that does not parse).
fn can_set_error(filter: &LabelFilter) -> bool {
    let mut numeric = false;
    filter.for_each_test(&mut |test| {
        numeric |= matches!(
            test,
            LabelTest::Number { .. } | LabelTest::Duration { .. } | LabelTest::Bytes { .. }
        );
    });
    numeric
}

/// The positive matcher's test on a stored value (Loki compares byte for
/// byte; regexes are already anchored).
fn value_matcher(matcher: &LabelMatcher) -> Option<Matcher> {
    match matcher.op {
        MatchOp::Equal | MatchOp::NotEqual => Some(Matcher::Exact(matcher.value.clone())),
        MatchOp::Regex | MatchOp::NotRegex => matcher.regex.clone().map(Matcher::Regex),
    }
}

/// A selector matcher or string label filter on a stored label.
pub(super) fn matcher_expr(matcher: &LabelMatcher, attribute_keys: AttributeKeys<'_>) -> Expr {
    let regex = matches!(matcher.op, MatchOp::Regex | MatchOp::NotRegex);
    // `=~".*"` holds for every value, and `service_name=~".+"` (Drilldown's
    // service list) for every log: a service is never empty. Saying so
    // keeps such queries on the rollups and out of per-row regexes.
    let always = regex
        && (matcher.value == ".*" || (matcher.value == ".+" && matcher.name == SERVICE_LABEL));
    let positive = match matcher.name.as_str() {
        _ if always => Expr::everything(),
        LEVEL_LABEL | LEVEL_ALIAS => {
            let mut levels = LevelSet::default();
            for level in Level::ALL {
                let named = matcher.positive_matches(level.as_str())
                    || (level == Level::Fatal && matcher.positive_matches("critical"));
                if named {
                    levels.insert(level);
                }
            }
            levels_expr(levels)
        }
        SERVICE_LABEL => match value_matcher(matcher) {
            Some(value) => text(TextField::Service, value),
            None => nothing(),
        },
        name => {
            let keys = attribute_keys(name);
            let mut alternatives: Vec<Expr> = match value_matcher(matcher) {
                Some(value) => keys
                    .iter()
                    .map(|key| text(TextField::Attribute(key.clone()), value.clone()))
                    .collect(),
                None => Vec::new(),
            };
            if matcher.positive_matches("") {
                // Without any of the keys the label reads as "".
                alternatives.push(all_of(
                    keys.iter()
                        .map(|key| negate(Expr::Is(Predicate::Present { key: key.clone() })))
                        .collect(),
                ));
            }
            any_of(alternatives)
        }
    };
    if matcher.op.is_negative() {
        negate(positive)
    } else {
        positive
    }
}

fn levels_expr(levels: LevelSet) -> Expr {
    if Level::ALL.iter().all(|level| levels.contains(*level)) {
        Expr::everything()
    } else if levels.is_empty() {
        nothing()
    } else {
        Expr::Is(Predicate::Levels(levels))
    }
}

/// A label filter made only of string tests on stored labels.
fn label_filter_expr(filter: &LabelFilter, attribute_keys: AttributeKeys<'_>) -> Option<Expr> {
    match filter {
        LabelFilter::And(left, right) => Some(all_of(vec![
            label_filter_expr(left, attribute_keys)?,
            label_filter_expr(right, attribute_keys)?,
        ])),
        LabelFilter::Or(left, right) => Some(any_of(vec![
            label_filter_expr(left, attribute_keys)?,
            label_filter_expr(right, attribute_keys)?,
        ])),
        LabelFilter::Test(LabelTest::Text(matcher)) if !is_error_label(&matcher.name) => {
            Some(matcher_expr(matcher, attribute_keys))
        }
        LabelFilter::Test(_) => None,
    }
}

/// "The label is present", which a numeric test needs before any error.
fn presence_prefilter(test: &LabelTest, attribute_keys: AttributeKeys<'_>) -> Option<Expr> {
    if matches!(test, LabelTest::Text(_) | LabelTest::Ip { .. }) {
        return None;
    }
    let name = test.label_name();
    if matches!(name, SERVICE_LABEL | LEVEL_LABEL | LEVEL_ALIAS) || is_error_label(name) {
        return None;
    }
    Some(any_of(
        attribute_keys(name)
            .into_iter()
            .map(|key| Expr::Is(Predicate::Present { key }))
            .collect(),
    ))
}

/// `|= "x"`: the exact, case-sensitive test (an escaped-literal regex),
/// after the case-insensitive substring term that narrows rows fast.
fn literal_expr(literal: &str) -> Option<Expr> {
    if literal.is_empty() {
        return Some(Expr::everything());
    }
    let exact = text(
        TextField::Message,
        Matcher::Regex(compile_regex(&regex::escape(literal)).ok()?),
    );
    Some(if literal.is_ascii() {
        all_of(vec![
            text(
                TextField::Message,
                Matcher::Contains(Pattern::literal(literal)),
            ),
            exact,
        ])
    } else {
        exact
    })
}

/// The positive test of one alternative; `exact_only` leaves out the
/// narrowing substring term (a negation must not carry it).
fn alternative_expr(value: &LineFilterValue, exact_only: bool) -> Option<Expr> {
    match value {
        LineFilterValue::Literal(literal) => {
            let expr = literal_expr(literal)?;
            Some(if exact_only { exact_part(expr) } else { expr })
        }
        LineFilterValue::Regex(regex) => {
            Some(text(TextField::Message, Matcher::Regex(regex.clone())))
        }
        LineFilterValue::Pattern(template) => {
            let expr = template.to_expr().ok()?;
            Some(if exact_only { exact_part(expr) } else { expr })
        }
        LineFilterValue::Ip(_) => None,
    }
}

/// The regex of an `And[substring, regex]` pair.
fn exact_part(expr: Expr) -> Expr {
    match expr {
        Expr::And(mut children) if children.len() == 2 => children.pop().unwrap_or_else(nothing),
        other => other,
    }
}

fn line_filter_expr(filter: &LineFilter) -> Option<Expr> {
    let negative = filter.op.is_negative();
    let alternatives = filter
        .alternatives
        .iter()
        .map(|value| alternative_expr(value, negative))
        .collect::<Option<Vec<_>>>()?;
    let positive = any_of(alternatives);
    Some(if negative { negate(positive) } else { positive })
}

/// The longest case-insensitive message substring among the top-level
/// conjuncts.
fn longest_substring_term(expr: &Expr) -> Option<String> {
    expr.conjuncts()
        .iter()
        .filter_map(|term| match term {
            Expr::Is(Predicate::Text {
                field: TextField::Message,
                matcher: Matcher::Contains(pattern),
            }) => pattern.as_literal().map(str::to_string),
            _ => None,
        })
        .max_by_key(String::len)
}
