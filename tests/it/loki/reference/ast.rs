//! The reference's query tree.

use regex::Regex;

pub enum Query {
    Log(LogQuery),
    Metric(Metric),
}

pub struct LogQuery {
    pub matchers: Vec<Matcher>,
    pub stages: Vec<Stage>,
}

#[derive(Clone, Copy, PartialEq)]
pub enum MatchOp {
    Eq,
    Ne,
    Re,
    Nre,
}

pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// Anchored, for `=~` and `!~`.
    pub regex: Option<Regex>,
}

impl Matcher {
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Eq => value == self.value,
            MatchOp::Ne => value != self.value,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::Nre => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum LineKind {
    Contains,
    Regex,
    Pattern,
}

pub enum Stage {
    Line {
        negate: bool,
        kind: LineKind,
        values: Vec<String>,
    },
    Filter(Filter),
    /// `json` with optional `label="a.b"` extractions.
    Json(Vec<(String, Vec<String>)>),
    Logfmt,
    Regexp(Regex),
    Pattern(String),
    Unpack,
    Decolorize,
    LineFormat(String),
    LabelFormat(Vec<(String, Format)>),
    Drop(Vec<Selection>),
    Keep(Vec<Selection>),
}

pub enum Format {
    Rename(String),
    Template(String),
}

pub enum Selection {
    Name(String),
    Matcher(Matcher),
}

#[derive(Clone, Copy, PartialEq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Cmp::Eq => left == right,
            Cmp::Ne => left != right,
            Cmp::Gt => left > right,
            Cmp::Ge => left >= right,
            Cmp::Lt => left < right,
            Cmp::Le => left <= right,
        }
    }
}

pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Text(Matcher),
    Number(String, Cmp, f64),
    /// Seconds.
    Duration(String, Cmp, f64),
    Bytes(String, Cmp, f64),
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum RangeOp {
    Count,
    Rate,
    Bytes,
    BytesRate,
    Absent,
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    Stddev,
    Stdvar,
    Quantile,
    RateCounter,
}

impl RangeOp {
    pub fn parse(name: &str) -> Option<RangeOp> {
        Some(match name {
            "count_over_time" => RangeOp::Count,
            "rate" => RangeOp::Rate,
            "bytes_over_time" => RangeOp::Bytes,
            "bytes_rate" => RangeOp::BytesRate,
            "absent_over_time" => RangeOp::Absent,
            "sum_over_time" => RangeOp::Sum,
            "avg_over_time" => RangeOp::Avg,
            "min_over_time" => RangeOp::Min,
            "max_over_time" => RangeOp::Max,
            "first_over_time" => RangeOp::First,
            "last_over_time" => RangeOp::Last,
            "stddev_over_time" => RangeOp::Stddev,
            "stdvar_over_time" => RangeOp::Stdvar,
            "quantile_over_time" => RangeOp::Quantile,
            "rate_counter" => RangeOp::RateCounter,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum VecOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
}

impl VecOp {
    pub fn parse(name: &str) -> Option<VecOp> {
        Some(match name {
            "sum" => VecOp::Sum,
            "avg" => VecOp::Avg,
            "min" => VecOp::Min,
            "max" => VecOp::Max,
            "count" => VecOp::Count,
            "stddev" => VecOp::Stddev,
            "stdvar" => VecOp::Stdvar,
            "topk" => VecOp::Topk,
            "bottomk" => VecOp::Bottomk,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Conversion {
    Float,
    Duration,
    Bytes,
}

pub struct Unwrap {
    pub label: String,
    pub conversion: Conversion,
    pub filters: Vec<Filter>,
}

pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

impl Grouping {
    pub fn apply(&self, labels: &[(String, String)]) -> Vec<(String, String)> {
        labels
            .iter()
            .filter(|(name, _)| self.labels.contains(name) != self.without)
            .cloned()
            .collect()
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Bin {
    Or,
    And,
    Unless,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl Bin {
    pub fn precedence(self) -> u8 {
        match self {
            Bin::Or => 1,
            Bin::And | Bin::Unless => 2,
            Bin::Eq | Bin::Ne | Bin::Gt | Bin::Ge | Bin::Lt | Bin::Le => 3,
            Bin::Add | Bin::Sub => 4,
            Bin::Mul | Bin::Div | Bin::Mod => 5,
            Bin::Pow => 6,
        }
    }

    pub fn comparison(self) -> Option<Cmp> {
        Some(match self {
            Bin::Eq => Cmp::Eq,
            Bin::Ne => Cmp::Ne,
            Bin::Gt => Cmp::Gt,
            Bin::Ge => Cmp::Ge,
            Bin::Lt => Cmp::Lt,
            Bin::Le => Cmp::Le,
            _ => return None,
        })
    }
}

pub struct Matching {
    pub on: bool,
    pub labels: Vec<String>,
    /// `group_left (include…)`.
    pub group_left: Option<Vec<String>>,
}

pub enum Metric {
    Range {
        op: RangeOp,
        parameter: Option<f64>,
        log: LogQuery,
        range: i64,
        offset: i64,
        unwrap: Option<Unwrap>,
        grouping: Option<Grouping>,
    },
    Vector {
        op: VecOp,
        parameter: Option<f64>,
        inner: Box<Metric>,
        grouping: Option<Grouping>,
    },
    Binary {
        op: Bin,
        left: Box<Metric>,
        right: Box<Metric>,
        return_bool: bool,
        matching: Option<Matching>,
    },
    Number(f64),
    VectorLit(f64),
}
