//! The parsed query: a store-neutral tree of predicates joined by AND, OR and
//! NOT. Every value is already normalised the way it is compared (patterns
//! lowercased, levels resolved, numbers parsed, regexes compiled), so a store
//! only translates, it never re-interprets user text.

use crate::domain::LevelSet;
use std::fmt;

/// A boolean expression over one log.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Every child holds; empty means "every log" (the blank query).
    And(Vec<Expr>),
    /// Some child holds; empty means "no log" (the parser never builds it).
    Or(Vec<Expr>),
    /// The plain complement: a log lacking the field matches `Not`.
    Not(Box<Expr>),
    Is(Predicate),
}

/// The blank query.
impl Default for Expr {
    fn default() -> Expr {
        Expr::everything()
    }
}

impl Expr {
    /// The expression that matches every log.
    pub fn everything() -> Expr {
        Expr::And(Vec::new())
    }

    pub fn is_everything(&self) -> bool {
        matches!(self, Expr::And(children) if children.is_empty())
    }

    /// The terms ANDed at the top: a store can check simple ones (levels,
    /// services) in an index and the rest on the row.
    pub fn conjuncts(&self) -> &[Expr] {
        match self {
            Expr::And(children) => children,
            other => std::slice::from_ref(other),
        }
    }

    /// `a AND b`, flattening nested ANDs and dropping "everything".
    pub fn and(self, other: Expr) -> Expr {
        let mut children = Vec::new();
        for expr in [self, other] {
            match expr {
                Expr::And(inner) => children.extend(inner),
                other => children.push(other),
            }
        }
        if children.len() == 1 {
            children.pop().unwrap_or_else(Expr::everything)
        } else {
            Expr::And(children)
        }
    }

    /// Calls `each` with every predicate in the tree (attribute keys for
    /// facets, regexes for limits).
    pub fn for_each_predicate<'a>(&'a self, each: &mut impl FnMut(&'a Predicate)) {
        match self {
            Expr::And(children) | Expr::Or(children) => {
                children.iter().for_each(|c| c.for_each_predicate(each))
            }
            Expr::Not(inner) => inner.for_each_predicate(each),
            Expr::Is(predicate) => each(predicate),
        }
    }
}

/// One test on one field of a log.
#[derive(Clone, Debug, PartialEq)]
pub enum Predicate {
    /// `level:error`, `level:>=warn`, `level:(info OR debug)`: the set of
    /// levels that match.
    Levels(LevelSet),
    /// A test on the text of the message, the service, the id or an
    /// attribute's value (an absent attribute never matches).
    Text { field: TextField, matcher: Matcher },
    /// `key:*`: the attribute is present, whatever its value.
    Present { key: String },
    /// `key:>=500`: the attribute's value is a number (`-?[0-9]+(.[0-9]+)?`)
    /// and compares so; any other value, or none, does not match.
    Compare {
        key: String,
        op: CompareOp,
        number: Number,
    },
}

/// The text fields a [`Matcher`] applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TextField {
    Message,
    Service,
    Id,
    /// The OpenTelemetry trace and span ids (a log without one never
    /// matches).
    TraceId,
    SpanId,
    /// An attribute by key, exactly as written (keys are case-sensitive).
    Attribute(String),
}

/// How a text field is compared.
#[derive(Clone, Debug, PartialEq)]
pub enum Matcher {
    /// Case-insensitive, unanchored: the pattern occurs somewhere (messages).
    Contains(Pattern),
    /// Case-insensitive, anchored: the whole value matches (services,
    /// attribute values).
    Equals(Pattern),
    /// Byte for byte (ids).
    Exact(String),
    /// Unanchored regular expression, case-sensitive unless it says `(?i)`.
    Regex(QueryRegex),
}

/// Lowercased literal pieces with a wildcard (`*`, any run of characters,
/// none included) between each two: `pay*` is `["pay", ""]`, a quoted value
/// or one without `*` is a single piece.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    pub pieces: Vec<String>,
}

impl Pattern {
    /// A literal: `*` in it is an ordinary character.
    pub fn literal(text: &str) -> Pattern {
        Pattern {
            pieces: vec![text.to_lowercase()],
        }
    }

    /// `*` is a wildcard; runs of `*` collapse into one.
    pub fn wildcard(text: &str) -> Pattern {
        let split: Vec<&str> = text.split('*').collect();
        let last = split.len() - 1;
        // An empty piece between two stars (`a**b`) adds nothing; the first
        // and last stay, empty or not, to say whether the ends are anchored.
        let pieces = split
            .iter()
            .enumerate()
            .filter(|(index, piece)| !piece.is_empty() || *index == 0 || *index == last)
            .map(|(_, piece)| piece.to_lowercase())
            .collect();
        Pattern { pieces }
    }

    /// No wildcard: one literal piece.
    pub fn as_literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }

    /// Anchored match against an already lowercased value.
    pub fn matches_whole(&self, lowered: &str) -> bool {
        let Some((first, rest)) = self.pieces.split_first() else {
            return lowered.is_empty();
        };
        let Some(mut remaining) = lowered.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return remaining.is_empty();
        };
        for piece in middle {
            match remaining.find(piece.as_str()) {
                Some(at) => remaining = &remaining[at + piece.len()..],
                None => return false,
            }
        }
        remaining.len() >= last.len() && remaining.ends_with(last.as_str())
    }

    /// Unanchored match against an already lowercased value.
    pub fn matches_within(&self, lowered: &str) -> bool {
        let mut remaining = lowered;
        for piece in &self.pieces {
            match remaining.find(piece.as_str()) {
                Some(at) => remaining = &remaining[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

/// `>`, `>=`, `<`, `<=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Greater => ">",
            CompareOp::GreaterOrEqual => ">=",
            CompareOp::Less => "<",
            CompareOp::LessOrEqual => "<=",
        }
    }

    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            CompareOp::Greater => left > right,
            CompareOp::GreaterOrEqual => left >= right,
            CompareOp::Less => left < right,
            CompareOp::LessOrEqual => left <= right,
        }
    }
}

/// A number as the language writes it, `-?[0-9]+(.[0-9]+)?`: its text (safe
/// to splice into SQL, it holds only digits, `-` and `.`) and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Number {
    pub text: String,
    pub value: f64,
}

impl Number {
    /// `Some` only for the language's number syntax; an attribute value that
    /// is not one never matches a comparison.
    pub fn parse(text: &str) -> Option<Number> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = match digits.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (digits, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || !fraction.is_none_or(all_digits) {
            return None;
        }
        Some(Number {
            text: text.to_string(),
            value: text.parse().ok()?,
        })
    }
}

/// A compiled regular expression (Rust `regex` syntax) and its source.
#[derive(Clone, Debug)]
pub struct QueryRegex {
    pub source: String,
    pub regex: regex::Regex,
}

impl PartialEq for QueryRegex {
    fn eq(&self, other: &QueryRegex) -> bool {
        self.source == other.source
    }
}

impl fmt::Display for QueryRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_any_run_including_none() {
        let p = Pattern::wildcard("checkout*");
        assert_eq!(p.pieces, ["checkout", ""]);
        assert!(p.matches_whole("checkout"));
        assert!(p.matches_whole("checkout-eu"));
        assert!(!p.matches_whole("my-checkout"));
        let p = Pattern::wildcard("*pay*");
        assert!(p.matches_whole("pay") && p.matches_whole("repayments"));
        let p = Pattern::wildcard("a*b*a");
        assert!(p.matches_whole("aba") && p.matches_whole("a-b-a"));
        assert!(!p.matches_whole("ab") && !p.matches_whole("a"));
        let p = Pattern::wildcard("**");
        assert!(p.matches_whole("") && p.matches_whole("x"));
        assert_eq!(Pattern::wildcard("a**b").pieces, ["a", "b"]);
        assert_eq!(Pattern::wildcard("*").pieces, ["", ""]);
        assert_eq!(Pattern::wildcard("Pay").pieces, ["pay"]);
        assert!(Pattern::wildcard("a**b").matches_whole("ab"));
        let p = Pattern::wildcard("conn*refused");
        assert!(p.matches_within("tcp conn was refused here"));
        assert!(!p.matches_within("refused conn"));
        assert!(Pattern::literal("A*B").matches_whole("a*b"));
        assert!(!Pattern::literal("a*b").matches_whole("axb"));
    }

    #[test]
    fn numbers_follow_the_language() {
        for ok in ["0", "500", "-3", "2.5", "-0.25", "007"] {
            assert!(Number::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "-", "1.", ".5", "1e3", "+1", " 1", "1 ", "0x10", "1.2.3", "--1",
        ] {
            assert!(Number::parse(bad).is_none(), "{bad}");
        }
    }
}
