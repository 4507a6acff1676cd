//! The query language of the `query` parameter (and of alert rules): a
//! hand-written lexer and recursive-descent parser into a store-neutral
//! [`Expr`]. Pure: no I/O, no store, no HTTP.
//!
//! ```text
//! query    = blank | or
//! or       = and { "OR" and }
//! and      = unary { ["AND"] unary }          terms side by side are ANDed
//! unary    = { "NOT" | "-" } primary           NOT > AND > OR
//! primary  = "(" or ")"                        at most 32 deep
//!          | "~" quoted                        regex on the message
//!          | "pattern:" (quoted | bare)        the message is the template
//!                                              (`<_>` any run, the rest literal,
//!                                              case-sensitive)
//!          | key ":" value                     a field
//!          | quoted                            phrase: substring of the message
//!          | word                              substring of the message, * = any run
//! key      = ["@"] (name | quoted)             @ always means an attribute
//! name     = 1*(letter | digit | "_" | "." | "-" | "/")
//! value    = "*"                               present
//!          | "(" alt { "OR" alt } ")"          any of
//!          | alt
//! alt      = (">" | ">=" | "<" | "<=") operand  numbers on attributes, names on level
//!          | "~" quoted                        regex
//!          | quoted                            literal (still case-insensitive)
//!          | bare                              * = any run of characters
//! quoted   = '"' { char | '\"' | '\\' } '"'    other backslashes are kept
//! ```
//!
//! Fields: `level`, `service`, `message`, `id`, and `pattern` (a
//! template, see [`crate::domain::patterns::Template`]); any other key is
//! an attribute (`@pattern:x` for an attribute called `pattern`). Keywords are upper case only (`and` is a word). Positions in
//! errors are 1-based character columns. Use [`parse`]; the result's
//! [`Expr::matches`] is the definition the stores' SQL must agree with.

mod ast;
mod eval;
mod lexer;
mod parser;

pub use ast::{CompareOp, Expr, Matcher, Number, Pattern, Predicate, QueryRegex, TextField};
pub use eval::{contains_ignore_case, lowercase};
pub use parser::{compile_regex, is_bare_name, parse};

/// The key of the `pattern:"…"` term; an attribute of that name is
/// written `@pattern`.
pub const PATTERN_KEY: &str = "pattern";
/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 4000;
/// Deepest nesting of parentheses accepted.
pub const MAX_DEPTH: usize = 32;
/// Compiled size limit of one regular expression, which bounds the time to
/// compile it and the memory to run it.
pub const MAX_REGEX_BYTES: usize = 1 << 20;

/// A query that cannot be used: what is wrong, how to fix it, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at column {position})")]
pub struct QueryError {
    /// 1-based character column of the fault (one past the end when the
    /// query ended too early).
    pub position: usize,
    pub message: String,
}

impl QueryError {
    pub fn new(position: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            position,
            message: message.into(),
        }
    }
}

/// A field as a query, a facet list or an export column names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldName {
    Level,
    Text(TextField),
}

impl FieldName {
    /// A key as written before `:` (without `@`): the built-in fields by
    /// name, anything else an attribute.
    pub fn parse(key: &str) -> FieldName {
        match key {
            "level" => FieldName::Level,
            "service" => FieldName::Text(TextField::Service),
            "message" => FieldName::Text(TextField::Message),
            "id" => FieldName::Text(TextField::Id),
            "trace_id" => FieldName::Text(TextField::TraceId),
            "span_id" => FieldName::Text(TextField::SpanId),
            other => FieldName::Text(TextField::Attribute(other.to_string())),
        }
    }

    /// A name in a list such as `fields=level,@level,region`: `@` forces an
    /// attribute, as in queries.
    pub fn parse_reference(name: &str) -> FieldName {
        match name.strip_prefix('@') {
            Some(key) => FieldName::Text(TextField::Attribute(key.to_string())),
            None => FieldName::parse(name),
        }
    }

    /// How a list such as `fields=` names this field: the key as it is,
    /// with `@` in front when it would otherwise name a built-in field.
    pub fn reference(&self) -> String {
        match self {
            FieldName::Text(TextField::Attribute(key)) if FieldName::parse(key) != *self => {
                format!("@{key}")
            }
            FieldName::Text(TextField::Attribute(key)) => key.clone(),
            builtin => builtin.display(),
        }
    }

    /// How to write this field in a query: `level`, `region`, `@level` for
    /// an attribute named like a built-in field, quoted when needed.
    pub fn display(&self) -> String {
        match self {
            FieldName::Level => "level".into(),
            FieldName::Text(TextField::Service) => "service".into(),
            FieldName::Text(TextField::Message) => "message".into(),
            FieldName::Text(TextField::Id) => "id".into(),
            FieldName::Text(TextField::TraceId) => "trace_id".into(),
            FieldName::Text(TextField::SpanId) => "span_id".into(),
            FieldName::Text(TextField::Attribute(key)) => {
                let shadowed = FieldName::parse(key) != *self || key == PATTERN_KEY;
                let bare = is_bare_name(key);
                match (shadowed, bare) {
                    (false, true) => key.clone(),
                    (true, true) => format!("@{key}"),
                    (false, false) => quote(key),
                    (true, false) => format!("@{}", quote(key)),
                }
            }
        }
    }
}

/// `text` as a quoted string of the language.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
