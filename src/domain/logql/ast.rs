//! The parsed LogQL query. Values are compiled as they are parsed (regexes
//! anchored where Loki anchors them, templates checked, durations in
//! nanoseconds), so evaluation never re-reads user text and never fails on
//! it. `Display` (in `display.rs`) writes a query back as canonical LogQL.

use super::ip::IpFilter;
use super::template::GoTemplate;
use crate::domain::patterns::Template;
use crate::domain::query::QueryRegex;

/// A whole query: lines (`{…} | …`) or samples (`rate(…)`, `sum(…)`, `1+1`).
#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    Log(LogExpr),
    Metric(MetricExpr),
}

/// A stream selector and the pipeline its lines go through.
#[derive(Clone, Debug, PartialEq)]
pub struct LogExpr {
    pub selector: Selector,
    pub pipeline: Vec<Stage>,
}

/// `{name="value", …}`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Selector {
    pub matchers: Vec<LabelMatcher>,
}

/// `name op "value"`: in a selector, a label filter, `drop` or `keep`.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    /// As written (a regex's source without the anchors).
    pub value: String,
    /// `=~` and `!~`: the value anchored at both ends (`^(?s:…)$`), as
    /// Prometheus and Loki compile label regexes.
    pub regex: Option<QueryRegex>,
}

impl LabelMatcher {
    /// Whether a label's value (`""` when the label is absent) satisfies
    /// the matcher; Loki compares byte for byte.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.regex_matches(value),
            MatchOp::NotRegex => !self.regex_matches(value),
        }
    }

    /// The positive form's test (`=` for `!=`, `=~` for `!~`).
    pub fn positive_matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal | MatchOp::NotEqual => value == self.value,
            MatchOp::Regex | MatchOp::NotRegex => self.regex_matches(value),
        }
    }

    fn regex_matches(&self, value: &str) -> bool {
        self.regex.as_ref().is_some_and(|r| r.regex.is_match(value))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn is_negative(self) -> bool {
        matches!(self, MatchOp::NotEqual | MatchOp::NotRegex)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One stage after the selector.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    LineFilter(LineFilter),
    LabelFilter(LabelFilter),
    /// `json` or `json a="x.y", b` (the label and its path).
    Json(Vec<JsonExtraction>),
    Logfmt(LogfmtStage),
    /// `regexp "…"`: named groups become labels.
    Regexp(QueryRegex),
    /// `pattern "<ip> - <_> <status>"`.
    Pattern(PatternParser),
    Unpack,
    LineFormat(GoTemplate),
    LabelFormat(Vec<LabelFormatItem>),
    Drop(Vec<LabelSelection>),
    Keep(Vec<LabelSelection>),
    Decolorize,
}

/// `|= "a" or "b"`: the line passes one of the alternatives (or, negated,
/// none of them).
#[derive(Clone, Debug, PartialEq)]
pub struct LineFilter {
    pub op: LineFilterOp,
    pub alternatives: Vec<LineFilterValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFilterOp {
    Contains,
    NotContains,
    Match,
    NotMatch,
    Pattern,
    NotPattern,
}

impl LineFilterOp {
    pub fn is_negative(self) -> bool {
        matches!(
            self,
            LineFilterOp::NotContains | LineFilterOp::NotMatch | LineFilterOp::NotPattern
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LineFilterOp::Contains => "|=",
            LineFilterOp::NotContains => "!=",
            LineFilterOp::Match => "|~",
            LineFilterOp::NotMatch => "!~",
            LineFilterOp::Pattern => "|>",
            LineFilterOp::NotPattern => "!>",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum LineFilterValue {
    /// Case-sensitive substring (`|=`, `!=`).
    Literal(String),
    /// Unanchored regex (`|~`, `!~`).
    Regex(QueryRegex),
    /// Whole-line template (`|>`, `!>`).
    Pattern(Template),
    /// `ip("…")`: some IP address in the line is in the range.
    Ip(IpFilter),
}

/// Label filters joined by `and` (also `,` or a space) and `or`.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelFilter {
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
    Test(LabelTest),
}

impl LabelFilter {
    /// Calls `each` with every test in the tree.
    pub fn for_each_test<'a>(&'a self, each: &mut impl FnMut(&'a LabelTest)) {
        match self {
            LabelFilter::And(left, right) | LabelFilter::Or(left, right) => {
                left.for_each_test(each);
                right.for_each_test(each);
            }
            LabelFilter::Test(test) => each(test),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum LabelTest {
    /// `name = "v"`, `!=`, `=~`, `!~`.
    Text(LabelMatcher),
    /// `name = ip("…")`, `name != ip("…")`.
    Ip {
        name: String,
        negated: bool,
        filter: IpFilter,
    },
    /// `status >= 500`: the value read as a float.
    Number {
        name: String,
        op: NumberOp,
        value: f64,
    },
    /// `duration > 10s`: the value read as a Go duration.
    Duration {
        name: String,
        op: NumberOp,
        nanos: i64,
    },
    /// `size > 20MB`: the value read as a byte size.
    Bytes {
        name: String,
        op: NumberOp,
        bytes: u64,
    },
}

impl LabelTest {
    pub fn label_name(&self) -> &str {
        match self {
            LabelTest::Text(matcher) => &matcher.name,
            LabelTest::Ip { name, .. }
            | LabelTest::Number { name, .. }
            | LabelTest::Duration { name, .. }
            | LabelTest::Bytes { name, .. } => name,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberOp {
    Equal,
    NotEqual,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl NumberOp {
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            NumberOp::Equal => left == right,
            NumberOp::NotEqual => left != right,
            NumberOp::Greater => left > right,
            NumberOp::GreaterOrEqual => left >= right,
            NumberOp::Less => left < right,
            NumberOp::LessOrEqual => left <= right,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NumberOp::Equal => "==",
            NumberOp::NotEqual => "!=",
            NumberOp::Greater => ">",
            NumberOp::GreaterOrEqual => ">=",
            NumberOp::Less => "<",
            NumberOp::LessOrEqual => "<=",
        }
    }
}

/// `name="path"` (or just `name`, the path being the name) after `json`.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonExtraction {
    pub label: String,
    pub path: JsonPath,
}

/// `a.b[0]["c d"]`: keys and array indexes from the top of the document.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath {
    pub source: String,
    pub steps: Vec<JsonStep>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum JsonStep {
    Key(String),
    Index(usize),
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct LogfmtStage {
    /// `--strict`: stop at the first malformed pair with an error.
    pub strict: bool,
    /// `--keep-empty`: keep keys without a value as empty labels.
    pub keep_empty: bool,
    /// `logfmt a, b="key"`: only these keys, renamed; empty means all.
    pub extractions: Vec<LogfmtExtraction>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LogfmtExtraction {
    pub label: String,
    pub key: String,
}

/// `pattern "<ip> - <_> <status>"` as Loki's pattern parser reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct PatternParser {
    pub source: String,
    pub parts: Vec<PatternPart>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PatternPart {
    Literal(String),
    /// `<name>`; `None` for `<_>`.
    Capture(Option<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum LabelFormatItem {
    /// `to=from`.
    Rename { to: String, from: String },
    /// `to="{{.x}}"`.
    Template { to: String, template: GoTemplate },
}

/// An item of `drop` or `keep`: a name, or a name and a value test.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelSelection {
    Name(String),
    Matcher(LabelMatcher),
}

impl LabelSelection {
    pub fn name(&self) -> &str {
        match self {
            LabelSelection::Name(name) => name,
            LabelSelection::Matcher(matcher) => &matcher.name,
        }
    }
}

/// An expression whose value is samples.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricExpr {
    Range(RangeAggregation),
    Vector(VectorAggregation),
    Binary(Box<BinaryExpr>),
    /// A number: a scalar.
    Literal(f64),
    /// `vector(n)`: one sample without labels at every step.
    VectorLiteral(f64),
}

impl MetricExpr {
    /// Calls `each` with every range aggregation, left to right: the
    /// leaves whose rows (or counts) a caller must supply.
    pub fn for_each_range<'a>(&'a self, each: &mut impl FnMut(&'a RangeAggregation)) {
        match self {
            MetricExpr::Range(range) => each(range),
            MetricExpr::Vector(vector) => vector.inner.for_each_range(each),
            MetricExpr::Binary(binary) => {
                binary.left.for_each_range(each);
                binary.right.for_each_range(each);
            }
            MetricExpr::Literal(_) | MetricExpr::VectorLiteral(_) => {}
        }
    }

    /// Whether the value is a scalar (literals and arithmetic on them).
    pub fn is_scalar(&self) -> bool {
        match self {
            MetricExpr::Literal(_) => true,
            MetricExpr::Binary(binary) => binary.left.is_scalar() && binary.right.is_scalar(),
            _ => false,
        }
    }
}

/// `count_over_time({…} | … [5m] offset 1h)` and friends.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeAggregation {
    pub op: RangeOp,
    /// The quantile of `quantile_over_time(0.99, …)`.
    pub parameter: Option<f64>,
    pub log: LogExpr,
    pub range_nanos: i64,
    pub offset_nanos: i64,
    pub unwrap: Option<Unwrap>,
    pub grouping: Option<Grouping>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOp {
    CountOverTime,
    Rate,
    RateCounter,
    BytesOverTime,
    BytesRate,
    AbsentOverTime,
    SumOverTime,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    FirstOverTime,
    LastOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
}

impl RangeOp {
    pub const ALL: [RangeOp; 15] = [
        RangeOp::CountOverTime,
        RangeOp::Rate,
        RangeOp::RateCounter,
        RangeOp::BytesOverTime,
        RangeOp::BytesRate,
        RangeOp::AbsentOverTime,
        RangeOp::SumOverTime,
        RangeOp::AvgOverTime,
        RangeOp::MinOverTime,
        RangeOp::MaxOverTime,
        RangeOp::FirstOverTime,
        RangeOp::LastOverTime,
        RangeOp::StddevOverTime,
        RangeOp::StdvarOverTime,
        RangeOp::QuantileOverTime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RangeOp::CountOverTime => "count_over_time",
            RangeOp::Rate => "rate",
            RangeOp::RateCounter => "rate_counter",
            RangeOp::BytesOverTime => "bytes_over_time",
            RangeOp::BytesRate => "bytes_rate",
            RangeOp::AbsentOverTime => "absent_over_time",
            RangeOp::SumOverTime => "sum_over_time",
            RangeOp::AvgOverTime => "avg_over_time",
            RangeOp::MinOverTime => "min_over_time",
            RangeOp::MaxOverTime => "max_over_time",
            RangeOp::FirstOverTime => "first_over_time",
            RangeOp::LastOverTime => "last_over_time",
            RangeOp::StddevOverTime => "stddev_over_time",
            RangeOp::StdvarOverTime => "stdvar_over_time",
            RangeOp::QuantileOverTime => "quantile_over_time",
        }
    }

    pub fn parse(name: &str) -> Option<RangeOp> {
        RangeOp::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// Loki takes these with `unwrap` only.
    pub fn needs_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::AbsentOverTime
        )
    }

    /// Loki refuses `unwrap` with these.
    pub fn refuses_unwrap(self) -> bool {
        matches!(
            self,
            RangeOp::CountOverTime | RangeOp::BytesOverTime | RangeOp::BytesRate
        )
    }

    /// Loki takes `by`/`without` after these only.
    pub fn takes_grouping(self) -> bool {
        !matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::SumOverTime
        )
    }
}

/// `| unwrap latency`, `| unwrap duration(took)`, then label filters.
#[derive(Clone, Debug, PartialEq)]
pub struct Unwrap {
    pub label: String,
    pub conversion: Conversion,
    /// Filters after the unwrap (`| __error__=""`).
    pub filters: Vec<LabelFilter>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    Float,
    Duration,
    DurationSeconds,
    Bytes,
}

/// `by (a, b)` or `without (c)`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

/// `sum by (a) (…)`, `topk(5, …)`, `sort(…)`.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorAggregation {
    pub op: VectorOp,
    /// The k of `topk`/`bottomk`.
    pub parameter: Option<f64>,
    pub inner: Box<MetricExpr>,
    pub grouping: Option<Grouping>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Sort,
    SortDesc,
}

impl VectorOp {
    pub const ALL: [VectorOp; 11] = [
        VectorOp::Sum,
        VectorOp::Avg,
        VectorOp::Min,
        VectorOp::Max,
        VectorOp::Count,
        VectorOp::Stddev,
        VectorOp::Stdvar,
        VectorOp::Topk,
        VectorOp::Bottomk,
        VectorOp::Sort,
        VectorOp::SortDesc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VectorOp::Sum => "sum",
            VectorOp::Avg => "avg",
            VectorOp::Min => "min",
            VectorOp::Max => "max",
            VectorOp::Count => "count",
            VectorOp::Stddev => "stddev",
            VectorOp::Stdvar => "stdvar",
            VectorOp::Topk => "topk",
            VectorOp::Bottomk => "bottomk",
            VectorOp::Sort => "sort",
            VectorOp::SortDesc => "sort_desc",
        }
    }

    pub fn parse(name: &str) -> Option<VectorOp> {
        VectorOp::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

/// `left op right` with its modifiers.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryExpr {
    pub op: BinaryOp,
    pub left: MetricExpr,
    pub right: MetricExpr,
    /// `bool`: comparisons answer 0 or 1 instead of filtering.
    pub return_bool: bool,
    pub matching: Option<VectorMatching>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Unless,
    Equal,
    NotEqual,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl BinaryOp {
    /// Loki's (Prometheus') precedence, loosest first.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            BinaryOp::Equal
            | BinaryOp::NotEqual
            | BinaryOp::Greater
            | BinaryOp::GreaterOrEqual
            | BinaryOp::Less
            | BinaryOp::LessOrEqual => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 5,
            BinaryOp::Pow => 6,
        }
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    pub fn is_set_operator(self) -> bool {
        matches!(self, BinaryOp::Or | BinaryOp::And | BinaryOp::Unless)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Unless => "unless",
            BinaryOp::Equal => "==",
            BinaryOp::NotEqual => "!=",
            BinaryOp::Greater => ">",
            BinaryOp::GreaterOrEqual => ">=",
            BinaryOp::Less => "<",
            BinaryOp::LessOrEqual => "<=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
        }
    }
}

/// `on (a)` / `ignoring (b)`, optionally `group_left (c)` / `group_right`.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorMatching {
    pub on: bool,
    pub labels: Vec<String>,
    pub group: Option<GroupSide>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum GroupSide {
    /// Many on the left to one on the right; the labels copied from the one.
    Left(Vec<String>),
    Right(Vec<String>),
}
