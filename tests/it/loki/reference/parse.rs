//! The reference's own reading of LogQL: a tokenizer and a recursive
//! descent over the subset the differential corpus uses. Written for the
//! test from Loki's documentation, sharing nothing with `domain::logql`.

use super::ast::*;
use regex::Regex;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    /// `[5m]`'s content and `offset 5m`'s duration, in nanoseconds.
    Dur(i64),
    /// `1KiB`: a byte size.
    Bytes(f64),
    Sym(&'static str),
    End,
}

const SYMBOLS: [&str; 22] = [
    "|=", "|~", "|>", "!=", "!~", "!>", "=~", "==", ">=", "<=", "{", "}", "(", ")", "[", "]", ",",
    "|", "=", ">", "<", "+",
];
const MORE_SYMBOLS: [&str; 5] = ["-", "*", "/", "%", "^"];

fn duration(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            "w" => 604_800e9,
            "y" => 365.0 * 86_400e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += (number * unit).round() as i64;
    }
    Some(total)
}

/// go-humanize's sizes: `10KB` is 10·10³, `1KiB` 1024, a bare number bytes.
pub fn bytes(text: &str) -> Option<f64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let number: f64 = text[..split].parse().ok()?;
    let factor = match text[split..].to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" | "ki" => 1024.0,
        "mib" | "mi" => 1024.0 * 1024.0,
        "gib" | "gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * factor).floor())
}

pub fn go_duration_seconds(text: &str) -> Option<f64> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text),
    };
    if body == "0" {
        return Some(0.0);
    }
    let nanos = duration(body)? as f64 / 1e9;
    Some(if negative { -nanos } else { nanos })
}

fn tokenize(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if c.is_whitespace() {
            at += 1;
            continue;
        }
        if c == '"' || c == '`' {
            let mut value = String::new();
            at += 1;
            while at < chars.len() && chars[at] != c {
                if c == '"' && chars[at] == '\\' && at + 1 < chars.len() {
                    at += 1;
                    value.push(match chars[at] {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    value.push(chars[at]);
                }
                at += 1;
            }
            at += 1;
            tokens.push(Tok::Str(value));
            continue;
        }
        if c == '[' {
            let close = (at..chars.len())
                .find(|&i| chars[i] == ']')
                .expect("a closing ]");
            let inside: String = chars[at + 1..close].iter().collect();
            if let Some(nanos) = duration(inside.trim()) {
                tokens.push(Tok::Dur(nanos));
                at = close + 1;
                continue;
            }
        }
        if c.is_ascii_digit() {
            let start = at;
            while at < chars.len() && (chars[at].is_ascii_alphanumeric() || chars[at] == '.') {
                at += 1;
            }
            let word: String = chars[start..at].iter().collect();
            match (word.parse::<f64>(), duration(&word), bytes(&word)) {
                (Ok(number), _, _) => tokens.push(Tok::Num(number)),
                (_, Some(nanos), _) => tokens.push(Tok::Dur(nanos)),
                (_, _, Some(size)) => tokens.push(Tok::Bytes(size)),
                _ => panic!("the reference reads no {word}"),
            }
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = at;
            while at < chars.len() && (chars[at].is_alphanumeric() || chars[at] == '_') {
                at += 1;
            }
            tokens.push(Tok::Ident(chars[start..at].iter().collect()));
            continue;
        }
        let rest: String = chars[at..chars.len().min(at + 2)].iter().collect();
        let symbol = SYMBOLS
            .iter()
            .chain(MORE_SYMBOLS.iter())
            .find(|s| rest.starts_with(**s))
            .unwrap_or_else(|| panic!("the reference reads no {c:?}"));
        tokens.push(Tok::Sym(symbol));
        at += symbol.chars().count();
    }
    tokens.push(Tok::End);
    tokens
}

pub fn parse(text: &str) -> Query {
    let mut parser = Parser {
        tokens: tokenize(text),
        at: 0,
    };
    let query = if parser.peek() == &Tok::Sym("{") {
        Query::Log(parser.log())
    } else {
        Query::Metric(parser.expr(0))
    };
    assert_eq!(
        parser.peek(),
        &Tok::End,
        "the reference stopped early in {text}"
    );
    query
}

struct Parser {
    tokens: Vec<Tok>,
    at: usize,
}

fn anchored(source: &str) -> Regex {
    Regex::new(&format!("^(?s:{source})$")).expect("a regex")
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.at]
    }

    fn next(&mut self) -> Tok {
        let token = self.tokens[self.at].clone();
        self.at += 1;
        token
    }

    fn eat(&mut self, symbol: &str) -> bool {
        if matches!(self.peek(), Tok::Sym(s) if *s == symbol) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, symbol: &str) {
        assert!(self.eat(symbol), "expected {symbol}, got {:?}", self.peek());
    }

    fn ident(&mut self) -> String {
        match self.next() {
            Tok::Ident(name) => name,
            other => panic!("expected a name, got {other:?}"),
        }
    }

    fn string(&mut self) -> String {
        match self.next() {
            Tok::Str(text) => text,
            other => panic!("expected a string, got {other:?}"),
        }
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(name) if name == word)
    }

    fn matcher(&mut self) -> Matcher {
        let name = self.ident();
        let op = match self.next() {
            Tok::Sym("=") => MatchOp::Eq,
            Tok::Sym("!=") => MatchOp::Ne,
            Tok::Sym("=~") => MatchOp::Re,
            Tok::Sym("!~") => MatchOp::Nre,
            other => panic!("expected a match operator, got {other:?}"),
        };
        let value = self.string();
        let regex = matches!(op, MatchOp::Re | MatchOp::Nre).then(|| anchored(&value));
        Matcher {
            name,
            op,
            value,
            regex,
        }
    }

    fn log(&mut self) -> LogQuery {
        self.expect("{");
        let mut matchers = Vec::new();
        while !self.eat("}") {
            matchers.push(self.matcher());
            self.eat(",");
        }
        let mut stages = Vec::new();
        loop {
            let kind = match self.peek() {
                Tok::Sym("|=") => Some((false, LineKind::Contains)),
                Tok::Sym("!=") => Some((true, LineKind::Contains)),
                Tok::Sym("|~") => Some((false, LineKind::Regex)),
                Tok::Sym("!~") => Some((true, LineKind::Regex)),
                Tok::Sym("|>") => Some((false, LineKind::Pattern)),
                Tok::Sym("!>") => Some((true, LineKind::Pattern)),
                _ => None,
            };
            if let Some((negate, kind)) = kind {
                self.next();
                let mut values = vec![self.string()];
                while self.is_word("or") {
                    self.next();
                    values.push(self.string());
                }
                stages.push(Stage::Line {
                    negate,
                    kind,
                    values,
                });
                continue;
            }
            if self.peek() != &Tok::Sym("|") || self.is_unwrap_next() {
                return LogQuery { matchers, stages };
            }
            self.next();
            stages.push(self.stage());
        }
    }

    fn is_unwrap_next(&self) -> bool {
        matches!(&self.tokens[self.at + 1], Tok::Ident(name) if name == "unwrap")
    }

    fn stage(&mut self) -> Stage {
        let followed_by_comparison = matches!(
            &self.tokens[self.at + 1],
            Tok::Sym("=" | "!=" | "=~" | "!~" | ">" | ">=" | "<" | "<=" | "==")
        );
        if let Tok::Ident(word) = self.peek().clone()
            && !followed_by_comparison
        {
            match word.as_str() {
                "json" => {
                    self.next();
                    let mut extractions = Vec::new();
                    while let Tok::Ident(_) = self.peek() {
                        let label = self.ident();
                        self.expect("=");
                        let path = self.string();
                        extractions.push((label, path.split('.').map(str::to_string).collect()));
                        if !self.eat(",") {
                            break;
                        }
                    }
                    return Stage::Json(extractions);
                }
                "logfmt" => {
                    self.next();
                    return Stage::Logfmt;
                }
                "regexp" => {
                    self.next();
                    return Stage::Regexp(Regex::new(&self.string()).expect("a regex"));
                }
                "pattern" => {
                    self.next();
                    return Stage::Pattern(self.string());
                }
                "unpack" => {
                    self.next();
                    return Stage::Unpack;
                }
                "decolorize" => {
                    self.next();
                    return Stage::Decolorize;
                }
                "line_format" => {
                    self.next();
                    return Stage::LineFormat(self.string());
                }
                "label_format" => {
                    self.next();
                    let mut items = Vec::new();
                    loop {
                        let to = self.ident();
                        self.expect("=");
                        match self.next() {
                            Tok::Ident(from) => items.push((to, Format::Rename(from))),
                            Tok::Str(template) => items.push((to, Format::Template(template))),
                            other => panic!("label_format with {other:?}"),
                        }
                        if !self.eat(",") {
                            break;
                        }
                    }
                    return Stage::LabelFormat(items);
                }
                "drop" | "keep" => {
                    self.next();
                    let mut selections = Vec::new();
                    loop {
                        let is_matcher = matches!(
                            &self.tokens[self.at + 1],
                            Tok::Sym("=" | "!=" | "=~" | "!~")
                        );
                        if is_matcher {
                            selections.push(Selection::Matcher(self.matcher()));
                        } else {
                            selections.push(Selection::Name(self.ident()));
                        }
                        if !self.eat(",") {
                            break;
                        }
                    }
                    return if word == "drop" {
                        Stage::Drop(selections)
                    } else {
                        Stage::Keep(selections)
                    };
                }
                _ => {}
            }
        }
        Stage::Filter(self.filter_or())
    }

    fn filter_or(&mut self) -> Filter {
        let mut left = self.filter_and();
        while self.is_word("or") {
            self.next();
            let right = self.filter_and();
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        left
    }

    fn filter_and(&mut self) -> Filter {
        let mut left = self.filter_test();
        loop {
            if self.is_word("and") || self.peek() == &Tok::Sym(",") {
                self.next();
            } else if !matches!(self.peek(), Tok::Ident(name) if name != "or")
                || self.is_word("unwrap")
            {
                return left;
            }
            let right = self.filter_test();
            left = Filter::And(Box::new(left), Box::new(right));
        }
    }

    fn filter_test(&mut self) -> Filter {
        if self.eat("(") {
            let inner = self.filter_or();
            self.expect(")");
            return inner;
        }
        let name = self.ident();
        let op = match self.next() {
            Tok::Sym(symbol) => symbol,
            other => panic!("expected an operator, got {other:?}"),
        };
        match self.next() {
            Tok::Str(value) => {
                let op = match op {
                    "=" => MatchOp::Eq,
                    "!=" => MatchOp::Ne,
                    "=~" => MatchOp::Re,
                    "!~" => MatchOp::Nre,
                    other => panic!("{other} on a string"),
                };
                let regex = matches!(op, MatchOp::Re | MatchOp::Nre).then(|| anchored(&value));
                Filter::Text(Matcher {
                    name,
                    op,
                    value,
                    regex,
                })
            }
            Tok::Num(number) => Filter::Number(name, compare(op), number),
            Tok::Dur(nanos) => Filter::Duration(name, compare(op), nanos as f64 / 1e9),
            Tok::Bytes(size) => Filter::Bytes(name, compare(op), size),
            other => panic!("a filter value {other:?}"),
        }
    }

    fn grouping(&mut self) -> Option<Grouping> {
        let without = if self.is_word("by") {
            false
        } else if self.is_word("without") {
            true
        } else {
            return None;
        };
        self.next();
        self.expect("(");
        let mut labels = Vec::new();
        while !self.eat(")") {
            labels.push(self.ident());
            self.eat(",");
        }
        Some(Grouping { without, labels })
    }

    fn expr(&mut self, min_precedence: u8) -> Metric {
        let mut left = self.unary();
        loop {
            let op = match self.peek() {
                Tok::Sym(symbol) => match *symbol {
                    "+" => Bin::Add,
                    "-" => Bin::Sub,
                    "*" => Bin::Mul,
                    "/" => Bin::Div,
                    "%" => Bin::Mod,
                    "^" => Bin::Pow,
                    "==" => Bin::Eq,
                    "!=" => Bin::Ne,
                    ">" => Bin::Gt,
                    ">=" => Bin::Ge,
                    "<" => Bin::Lt,
                    "<=" => Bin::Le,
                    _ => return left,
                },
                Tok::Ident(word) => match word.as_str() {
                    "and" => Bin::And,
                    "or" => Bin::Or,
                    "unless" => Bin::Unless,
                    _ => return left,
                },
                _ => return left,
            };
            let precedence = op.precedence();
            if precedence < min_precedence {
                return left;
            }
            self.next();
            let return_bool = self.is_word("bool");
            if return_bool {
                self.next();
            }
            let matching = self.matching();
            // `^` is right-associative, the rest left.
            let next_min = if op == Bin::Pow {
                precedence
            } else {
                precedence + 1
            };
            let right = self.expr(next_min);
            left = Metric::Binary {
                op,
                left: Box::new(left),
                right: Box::new(right),
                return_bool,
                matching,
            };
        }
    }

    fn matching(&mut self) -> Option<Matching> {
        let on = if self.is_word("on") {
            true
        } else if self.is_word("ignoring") {
            false
        } else {
            return None;
        };
        self.next();
        let labels = self.label_list();
        let group_left = if self.is_word("group_left") {
            self.next();
            let include = if self.peek() == &Tok::Sym("(") {
                self.label_list()
            } else {
                Vec::new()
            };
            Some(include)
        } else {
            None
        };
        Some(Matching {
            on,
            labels,
            group_left,
        })
    }

    fn label_list(&mut self) -> Vec<String> {
        self.expect("(");
        let mut labels = Vec::new();
        while !self.eat(")") {
            labels.push(self.ident());
            self.eat(",");
        }
        labels
    }

    fn unary(&mut self) -> Metric {
        if self.eat("-") {
            return match self.unary() {
                Metric::Number(n) => Metric::Number(-n),
                other => Metric::Binary {
                    op: Bin::Mul,
                    left: Box::new(Metric::Number(-1.0)),
                    right: Box::new(other),
                    return_bool: false,
                    matching: None,
                },
            };
        }
        self.primary()
    }

    fn primary(&mut self) -> Metric {
        match self.next() {
            Tok::Num(number) => Metric::Number(number),
            Tok::Sym("(") => {
                let inner = self.expr(0);
                self.expect(")");
                inner
            }
            Tok::Ident(name) if name == "vector" => {
                self.expect("(");
                let Tok::Num(value) = self.next() else {
                    panic!("vector(number)")
                };
                self.expect(")");
                Metric::VectorLit(value)
            }
            Tok::Ident(name) => {
                if let Some(op) = RangeOp::parse(&name) {
                    return self.range(op);
                }
                let op = VecOp::parse(&name).unwrap_or_else(|| panic!("unknown function {name}"));
                let mut grouping = self.grouping();
                self.expect("(");
                let parameter = if matches!(op, VecOp::Topk | VecOp::Bottomk) {
                    let Tok::Num(k) = self.next() else {
                        panic!("topk(k, …)")
                    };
                    self.expect(",");
                    Some(k)
                } else {
                    None
                };
                let inner = self.expr(0);
                self.expect(")");
                if grouping.is_none() {
                    grouping = self.grouping();
                }
                Metric::Vector {
                    op,
                    parameter,
                    inner: Box::new(inner),
                    grouping,
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn range(&mut self, op: RangeOp) -> Metric {
        self.expect("(");
        let parameter = if op == RangeOp::Quantile {
            let Tok::Num(phi) = self.next() else {
                panic!("quantile_over_time(φ, …)")
            };
            self.expect(",");
            Some(phi)
        } else {
            None
        };
        let log = self.log();
        let mut unwrap = None;
        if self.peek() == &Tok::Sym("|") && self.is_unwrap_next() {
            self.next();
            self.next();
            let (label, conversion) = match self.ident().as_str() {
                "duration" | "duration_seconds" => {
                    self.expect("(");
                    let label = self.ident();
                    self.expect(")");
                    (label, Conversion::Duration)
                }
                "bytes" => {
                    self.expect("(");
                    let label = self.ident();
                    self.expect(")");
                    (label, Conversion::Bytes)
                }
                label => (label.to_string(), Conversion::Float),
            };
            let mut filters = Vec::new();
            while self.eat("|") {
                filters.push(self.filter_or());
            }
            unwrap = Some(Unwrap {
                label,
                conversion,
                filters,
            });
        }
        let Tok::Dur(range) = self.next() else {
            panic!("a range")
        };
        let offset = if self.is_word("offset") {
            self.next();
            let Tok::Dur(offset) = self.next() else {
                panic!("an offset")
            };
            offset
        } else {
            0
        };
        self.expect(")");
        let grouping = self.grouping();
        Metric::Range {
            op,
            parameter,
            log,
            range,
            offset,
            unwrap,
            grouping,
        }
    }
}

fn compare(op: &str) -> Cmp {
    match op {
        "==" | "=" => Cmp::Eq,
        "!=" => Cmp::Ne,
        ">" => Cmp::Gt,
        ">=" => Cmp::Ge,
        "<" => Cmp::Lt,
        "<=" => Cmp::Le,
        other => panic!("{other} on a number"),
    }
}
