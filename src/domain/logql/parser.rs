//! Recursive descent over LogQL, one function per rule. This file holds the
//! token cursor and the log side (selectors, pipelines, label filters);
//! `parser_metric.rs` the expressions over samples. Errors name the
//! unexpected token the way Loki's parser does (`syntax error: unexpected
//! IDENTIFIER, expecting STRING`) at the token's line and column.

use super::ast::*;
use super::ip::IpFilter;
use super::lexer::{Position, Spanned, Symbol, Token};
use super::template::GoTemplate;
use super::{MAX_DEPTH, ParseError};
use crate::domain::patterns::Template;
use crate::domain::query::{QueryRegex, compile_regex};

pub(super) struct Parser {
    tokens: Vec<Spanned>,
    at: usize,
    depth: usize,
}

/// Words that start a pipeline stage after `|` (unless a comparison
/// follows, which makes them a label's name).
const STAGE_WORDS: &[&str] = &[
    "json",
    "logfmt",
    "regexp",
    "pattern",
    "unpack",
    "line_format",
    "label_format",
    "drop",
    "keep",
    "decolorize",
    "unwrap",
];

impl Parser {
    pub fn new(tokens: Vec<Spanned>) -> Parser {
        Parser {
            tokens,
            at: 0,
            depth: 0,
        }
    }

    pub fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    pub fn peek_at(&self, ahead: usize) -> &Token {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.at + ahead).min(last)].token
    }

    pub fn position(&self) -> Position {
        let last = self.tokens.len() - 1;
        self.tokens[self.at.min(last)].position
    }

    pub fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        token
    }

    pub fn peek_symbol(&self, symbol: Symbol) -> bool {
        *self.peek() == Token::Symbol(symbol)
    }

    pub fn peek_word(&self, word: &str) -> bool {
        self.peek().is_identifier(word)
    }

    /// `syntax error: unexpected <this token>`.
    pub fn unexpected(&self) -> ParseError {
        ParseError::at(
            self.position(),
            format!("syntax error: unexpected {}", self.peek().describe()),
        )
    }

    /// `syntax error: unexpected <this token>, expecting <expected>`.
    pub fn expected(&self, expected: &str) -> ParseError {
        ParseError::at(
            self.position(),
            format!(
                "syntax error: unexpected {}, expecting {expected}",
                self.peek().describe()
            ),
        )
    }

    pub fn expect_symbol(&mut self, symbol: Symbol) -> Result<(), ParseError> {
        if self.peek_symbol(symbol) {
            self.advance();
            Ok(())
        } else {
            Err(self.expected(symbol.as_str()))
        }
    }

    pub fn expect_string(&mut self) -> Result<(String, Position), ParseError> {
        let position = self.position();
        match self.peek() {
            Token::String(text) => {
                let text = text.clone();
                self.advance();
                Ok((text, position))
            }
            _ => Err(self.expected("STRING")),
        }
    }

    pub fn expect_identifier(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Token::Identifier(name) => {
                let name = name.clone();
                self.advance();
                Ok(name)
            }
            _ => Err(self.expected("IDENTIFIER")),
        }
    }

    /// One level deeper into parentheses or recursion, refused past
    /// `MAX_DEPTH` so no input can exhaust the stack.
    pub fn enter(&mut self) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(ParseError::at(
                self.position(),
                format!("the query nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `{name op "value", …}`; `{}` only when `allow_empty`.
    pub fn selector(&mut self, allow_empty: bool) -> Result<Selector, ParseError> {
        let open = self.position();
        self.expect_symbol(Symbol::OpenBrace)?;
        let mut matchers = Vec::new();
        if !self.peek_symbol(Symbol::CloseBrace) {
            loop {
                matchers.push(self.label_matcher()?);
                if self.peek_symbol(Symbol::Comma) {
                    self.advance();
                    continue;
                }
                if self.peek_symbol(Symbol::CloseBrace) {
                    break;
                }
                return Err(self.expected("} or ,"));
            }
        }
        self.advance();
        let selector = Selector { matchers };
        if !allow_empty && !selector.matchers.iter().any(selects_something) {
            return Err(ParseError::at(
                open,
                "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will",
            ));
        }
        Ok(selector)
    }

    /// `name op "value"`.
    fn label_matcher(&mut self) -> Result<LabelMatcher, ParseError> {
        let name = self.expect_identifier()?;
        let op = match self.peek() {
            Token::Symbol(Symbol::Equal) => MatchOp::Equal,
            Token::Symbol(Symbol::NotEqual) => MatchOp::NotEqual,
            Token::Symbol(Symbol::RegexMatch) => MatchOp::Regex,
            Token::Symbol(Symbol::RegexNotMatch) => MatchOp::NotRegex,
            _ => return Err(self.expected("= or =~ or !~ or !=")),
        };
        self.advance();
        let (value, position) = self.expect_string()?;
        label_matcher(name, op, value, position)
    }

    /// Stages after a selector. With `allow_unwrap` (inside a range
    /// aggregation), `| unwrap …` ends the stages and is returned apart.
    pub fn pipeline(
        &mut self,
        allow_unwrap: bool,
    ) -> Result<(Vec<Stage>, Option<Unwrap>), ParseError> {
        let mut stages = Vec::new();
        loop {
            let op = match self.peek() {
                Token::Symbol(Symbol::PipeExact) => LineFilterOp::Contains,
                Token::Symbol(Symbol::NotEqual) => LineFilterOp::NotContains,
                Token::Symbol(Symbol::PipeMatch) => LineFilterOp::Match,
                Token::Symbol(Symbol::RegexNotMatch) => LineFilterOp::NotMatch,
                Token::Symbol(Symbol::PipePattern) => LineFilterOp::Pattern,
                Token::Symbol(Symbol::NotPattern) => LineFilterOp::NotPattern,
                Token::Symbol(Symbol::Pipe) => {
                    self.advance();
                    if self.peek_word("unwrap") && !self.starts_comparison(1) {
                        if !allow_unwrap {
                            return Err(self.unexpected());
                        }
                        let unwrap = self.unwrap()?;
                        return Ok((stages, Some(unwrap)));
                    }
                    stages.push(self.stage_after_pipe()?);
                    continue;
                }
                _ => return Ok((stages, None)),
            };
            self.advance();
            stages.push(Stage::LineFilter(self.line_filter(op)?));
        }
    }

    /// Whether the token `ahead` is an operator that makes the word before
    /// it a label name (`| duration > 10s`).
    fn starts_comparison(&self, ahead: usize) -> bool {
        matches!(
            self.peek_at(ahead),
            Token::Symbol(
                Symbol::Equal
                    | Symbol::NotEqual
                    | Symbol::RegexMatch
                    | Symbol::RegexNotMatch
                    | Symbol::CompareEqual
                    | Symbol::Greater
                    | Symbol::GreaterOrEqual
                    | Symbol::Less
                    | Symbol::LessOrEqual
            )
        )
    }

    /// After the operator: `"a" or "b" or ip("…")`.
    fn line_filter(&mut self, op: LineFilterOp) -> Result<LineFilter, ParseError> {
        let mut alternatives = vec![self.line_filter_value(op)?];
        while self.peek_word("or")
            && (matches!(self.peek_at(1), Token::String(_)) || self.peek_at(1).is_identifier("ip"))
        {
            self.advance();
            alternatives.push(self.line_filter_value(op)?);
        }
        Ok(LineFilter { op, alternatives })
    }

    fn line_filter_value(&mut self, op: LineFilterOp) -> Result<LineFilterValue, ParseError> {
        if self.peek_word("ip") && matches!(op, LineFilterOp::Contains | LineFilterOp::NotContains)
        {
            return Ok(LineFilterValue::Ip(self.ip_call()?));
        }
        let (text, position) = self.expect_string()?;
        Ok(match op {
            LineFilterOp::Contains | LineFilterOp::NotContains => LineFilterValue::Literal(text),
            LineFilterOp::Match | LineFilterOp::NotMatch => {
                LineFilterValue::Regex(regex_at(&text, position)?)
            }
            LineFilterOp::Pattern | LineFilterOp::NotPattern => LineFilterValue::Pattern(
                Template::parse_logql(&text).map_err(|e| ParseError::at(position, e))?,
            ),
        })
    }

    /// `ip("…")`, the cursor on `ip`.
    fn ip_call(&mut self) -> Result<IpFilter, ParseError> {
        self.advance();
        self.expect_symbol(Symbol::OpenParen)?;
        let (text, position) = self.expect_string()?;
        self.expect_symbol(Symbol::CloseParen)?;
        IpFilter::parse(&text).map_err(|e| ParseError::at(position, e))
    }

    /// A stage after `|`: a parser, a formatter or a label filter.
    fn stage_after_pipe(&mut self) -> Result<Stage, ParseError> {
        let word = match self.peek() {
            Token::Identifier(word) => word.clone(),
            Token::Symbol(Symbol::OpenParen) => {
                return Ok(Stage::LabelFilter(self.label_filter(0)?));
            }
            _ => return Err(self.unexpected()),
        };
        if !STAGE_WORDS.contains(&word.as_str()) || self.starts_comparison(1) {
            return Ok(Stage::LabelFilter(self.label_filter(0)?));
        }
        self.advance();
        match word.as_str() {
            "json" => Ok(Stage::Json(self.json_extractions()?)),
            "logfmt" => self.logfmt(),
            "regexp" => {
                let (text, position) = self.expect_string()?;
                Ok(Stage::Regexp(regexp_parser(&text, position)?))
            }
            "pattern" => {
                let (text, position) = self.expect_string()?;
                Ok(Stage::Pattern(
                    pattern_parser(&text).map_err(|e| ParseError::at(position, e))?,
                ))
            }
            "unpack" => Ok(Stage::Unpack),
            "decolorize" => Ok(Stage::Decolorize),
            "line_format" => {
                let (text, position) = self.expect_string()?;
                let template = GoTemplate::parse(&text)
                    .map_err(|e| ParseError::at(position, format!("invalid line template: {e}")))?;
                Ok(Stage::LineFormat(template))
            }
            "label_format" => self.label_format(),
            "drop" => Ok(Stage::Drop(self.label_selections()?)),
            "keep" => Ok(Stage::Keep(self.label_selections()?)),
            _ => Err(self.unexpected()),
        }
    }

    /// `json` arguments: `a="path", b`.
    fn json_extractions(&mut self) -> Result<Vec<JsonExtraction>, ParseError> {
        let mut extractions = Vec::new();
        while matches!(self.peek(), Token::Identifier(_)) {
            let label = self.expect_identifier()?;
            let path = if self.peek_symbol(Symbol::Equal) {
                self.advance();
                let (text, position) = self.expect_string()?;
                parse_json_path(&text).map_err(|e| ParseError::at(position, e))?
            } else {
                JsonPath {
                    source: label.clone(),
                    steps: vec![JsonStep::Key(label.clone())],
                }
            };
            extractions.push(JsonExtraction { label, path });
            if !self.peek_symbol(Symbol::Comma) {
                break;
            }
            self.advance();
        }
        Ok(extractions)
    }

    fn logfmt(&mut self) -> Result<Stage, ParseError> {
        let mut stage = LogfmtStage::default();
        while let Token::Flag(flag) = self.peek() {
            match flag.as_str() {
                "--strict" => stage.strict = true,
                "--keep-empty" => stage.keep_empty = true,
                _ => return Err(self.unexpected()),
            }
            self.advance();
        }
        while matches!(self.peek(), Token::Identifier(_)) {
            let label = self.expect_identifier()?;
            let key = if self.peek_symbol(Symbol::Equal) {
                self.advance();
                self.expect_string()?.0
            } else {
                label.clone()
            };
            stage.extractions.push(LogfmtExtraction { label, key });
            if !self.peek_symbol(Symbol::Comma) {
                break;
            }
            self.advance();
        }
        Ok(Stage::Logfmt(stage))
    }

    /// `label_format a=b, c="{{.x}}"`.
    fn label_format(&mut self) -> Result<Stage, ParseError> {
        let mut items: Vec<LabelFormatItem> = Vec::new();
        loop {
            let position = self.position();
            let to = self.expect_identifier()?;
            self.expect_symbol(Symbol::Equal)?;
            let item = match self.peek().clone() {
                Token::Identifier(from) => {
                    self.advance();
                    LabelFormatItem::Rename {
                        to: to.clone(),
                        from,
                    }
                }
                Token::String(text) => {
                    let at = self.position();
                    self.advance();
                    let template = GoTemplate::parse(&text)
                        .map_err(|e| ParseError::at(at, format!("invalid label template: {e}")))?;
                    LabelFormatItem::Template {
                        to: to.clone(),
                        template,
                    }
                }
                _ => return Err(self.expected("IDENTIFIER or STRING")),
            };
            let duplicate = items.iter().any(|existing| match existing {
                LabelFormatItem::Rename { to: other, .. }
                | LabelFormatItem::Template { to: other, .. } => *other == to,
            });
            if duplicate {
                return Err(ParseError::at(
                    position,
                    format!("multiple label name '{to}' not allowed in a single format operation"),
                ));
            }
            items.push(item);
            if !self.peek_symbol(Symbol::Comma) {
                return Ok(Stage::LabelFormat(items));
            }
            self.advance();
        }
    }

    /// `drop a, b="v"` / `keep …`.
    fn label_selections(&mut self) -> Result<Vec<LabelSelection>, ParseError> {
        let mut selections = Vec::new();
        loop {
            let name = self.expect_identifier()?;
            let op = match self.peek() {
                Token::Symbol(Symbol::Equal) => Some(MatchOp::Equal),
                Token::Symbol(Symbol::NotEqual) => Some(MatchOp::NotEqual),
                Token::Symbol(Symbol::RegexMatch) => Some(MatchOp::Regex),
                Token::Symbol(Symbol::RegexNotMatch) => Some(MatchOp::NotRegex),
                _ => None,
            };
            selections.push(match op {
                None => LabelSelection::Name(name),
                Some(op) => {
                    self.advance();
                    let (value, position) = self.expect_string()?;
                    LabelSelection::Matcher(label_matcher(name, op, value, position)?)
                }
            });
            if !self.peek_symbol(Symbol::Comma) {
                return Ok(selections);
            }
            self.advance();
        }
    }

    /// `unwrap x`, `unwrap duration(x)`, `unwrap bytes(x)`, then `| filter`s.
    fn unwrap(&mut self) -> Result<Unwrap, ParseError> {
        self.advance();
        let conversion = match self.peek() {
            Token::Identifier(word) if self.peek_at(1) == &Token::Symbol(Symbol::OpenParen) => {
                match word.as_str() {
                    "duration" => Some(Conversion::Duration),
                    "duration_seconds" => Some(Conversion::DurationSeconds),
                    "bytes" => Some(Conversion::Bytes),
                    _ => return Err(self.unexpected()),
                }
            }
            _ => None,
        };
        let label = match conversion {
            Some(_) => {
                self.advance();
                self.advance();
                let label = self.expect_identifier()?;
                self.expect_symbol(Symbol::CloseParen)?;
                label
            }
            None => self.expect_identifier()?,
        };
        let mut filters = Vec::new();
        while self.peek_symbol(Symbol::Pipe)
            && (matches!(self.peek_at(1), Token::Identifier(_))
                || self.peek_at(1) == &Token::Symbol(Symbol::OpenParen))
        {
            self.advance();
            filters.push(self.label_filter(0)?);
        }
        Ok(Unwrap {
            label,
            conversion: conversion.unwrap_or(Conversion::Float),
            filters,
        })
    }

    /// Label filters joined as Loki's grammar joins them: `and` binds
    /// tighter than `or`; `,` and plain juxtaposition mean `and` and take
    /// everything to their right (Loki's parser shifts on them).
    pub fn label_filter(&mut self, min_precedence: u8) -> Result<LabelFilter, ParseError> {
        self.enter()?;
        let mut left = self.label_filter_primary()?;
        loop {
            let juxtaposed = match self.peek() {
                Token::Identifier(word) => word != "and" && word != "or",
                Token::Symbol(Symbol::OpenParen) => true,
                _ => false,
            };
            if self.peek_symbol(Symbol::Comma) || juxtaposed {
                if self.peek_symbol(Symbol::Comma) {
                    self.advance();
                }
                let right = self.label_filter(0)?;
                left = LabelFilter::And(Box::new(left), Box::new(right));
            } else if self.peek_word("or") && min_precedence <= 1 {
                self.advance();
                let right = self.label_filter(2)?;
                left = LabelFilter::Or(Box::new(left), Box::new(right));
            } else if self.peek_word("and") && min_precedence <= 2 {
                self.advance();
                let right = self.label_filter(3)?;
                left = LabelFilter::And(Box::new(left), Box::new(right));
            } else {
                break;
            }
        }
        self.leave();
        Ok(left)
    }

    fn label_filter_primary(&mut self) -> Result<LabelFilter, ParseError> {
        if self.peek_symbol(Symbol::OpenParen) {
            self.advance();
            let inner = self.label_filter(0)?;
            self.expect_symbol(Symbol::CloseParen)?;
            return Ok(inner);
        }
        let name = self.expect_identifier()?;
        let symbol = match self.peek() {
            Token::Symbol(symbol) => *symbol,
            _ => return Err(self.unexpected()),
        };
        let number_op = match symbol {
            Symbol::Equal | Symbol::CompareEqual => NumberOp::Equal,
            Symbol::NotEqual => NumberOp::NotEqual,
            Symbol::Greater => NumberOp::Greater,
            Symbol::GreaterOrEqual => NumberOp::GreaterOrEqual,
            Symbol::Less => NumberOp::Less,
            Symbol::LessOrEqual => NumberOp::LessOrEqual,
            Symbol::RegexMatch | Symbol::RegexNotMatch => {
                self.advance();
                let op = if symbol == Symbol::RegexMatch {
                    MatchOp::Regex
                } else {
                    MatchOp::NotRegex
                };
                let (value, position) = self.expect_string()?;
                return Ok(LabelFilter::Test(LabelTest::Text(label_matcher(
                    name, op, value, position,
                )?)));
            }
            _ => return Err(self.unexpected()),
        };
        self.advance();
        let text_op = match symbol {
            Symbol::Equal => Some(MatchOp::Equal),
            Symbol::NotEqual => Some(MatchOp::NotEqual),
            _ => None,
        };
        let test = match (self.peek().clone(), text_op) {
            (Token::String(value), Some(op)) => {
                let position = self.position();
                self.advance();
                LabelTest::Text(label_matcher(name, op, value, position)?)
            }
            (Token::Identifier(word), Some(op))
                if word == "ip" && self.peek_at(1) == &Token::Symbol(Symbol::OpenParen) =>
            {
                LabelTest::Ip {
                    name,
                    negated: op == MatchOp::NotEqual,
                    filter: self.ip_call()?,
                }
            }
            (Token::Duration(nanos), _) => {
                self.advance();
                LabelTest::Duration {
                    name,
                    op: number_op,
                    nanos,
                }
            }
            (Token::Bytes(bytes), _) => {
                self.advance();
                LabelTest::Bytes {
                    name,
                    op: number_op,
                    bytes,
                }
            }
            _ => LabelTest::Number {
                name,
                op: number_op,
                value: self.signed_number()?,
            },
        };
        Ok(LabelFilter::Test(test))
    }

    /// `5`, `-5`, `+2.5`.
    pub fn signed_number(&mut self) -> Result<f64, ParseError> {
        let sign = match self.peek() {
            Token::Symbol(Symbol::Sub) => -1.0,
            Token::Symbol(Symbol::Add) => 1.0,
            _ => 0.0,
        };
        if sign != 0.0 {
            self.advance();
        }
        match self.peek() {
            Token::Number(value) => {
                let value = *value;
                self.advance();
                Ok(if sign < 0.0 { -value } else { value })
            }
            _ => Err(self.expected("NUMBER")),
        }
    }
}

/// Whether a selector matcher narrows the streams (Loki wants one).
fn selects_something(matcher: &LabelMatcher) -> bool {
    !matcher.op.is_negative() && !matcher.matches("")
}

/// A matcher with its regex compiled anchored.
pub(super) fn label_matcher(
    name: String,
    op: MatchOp,
    value: String,
    position: Position,
) -> Result<LabelMatcher, ParseError> {
    let regex = match op {
        MatchOp::Regex | MatchOp::NotRegex => {
            // Checked unanchored first, so an error names the user's regex.
            regex_at(&value, position)?;
            Some(regex_at(&format!("^(?s:{value})$"), position)?)
        }
        _ => None,
    };
    Ok(LabelMatcher {
        name,
        op,
        value,
        regex,
    })
}

pub(super) fn regex_at(source: &str, position: Position) -> Result<QueryRegex, ParseError> {
    compile_regex(source).map_err(|e| ParseError::at(position, e))
}

/// `regexp "…"`: at least one named group, each a valid label name.
fn regexp_parser(source: &str, position: Position) -> Result<QueryRegex, ParseError> {
    let regex = regex_at(source, position)?;
    let mut named = 0;
    for name in regex.regex.capture_names().flatten() {
        if !is_label_name(name) {
            return Err(ParseError::at(
                position,
                format!("invalid extracted label name '{name}'"),
            ));
        }
        named += 1;
    }
    if named == 0 {
        return Err(ParseError::at(
            position,
            "at least one named capture must be supplied",
        ));
    }
    Ok(regex)
}

pub(super) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `pattern "<ip> - <_> <status>"`: captures and literals; at least one
/// named capture, never two captures side by side, no name twice.
pub(super) fn pattern_parser(source: &str) -> Result<PatternParser, String> {
    let mut parts: Vec<PatternPart> = Vec::new();
    let mut rest = source;
    let mut literal = String::new();
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let name_end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_end];
        let is_capture = after[name_end..].starts_with('>') && is_label_name(name);
        if !is_capture {
            literal.push_str(&rest[..=open]);
            rest = after;
            continue;
        }
        literal.push_str(&rest[..open]);
        if literal.is_empty() && matches!(parts.last(), Some(PatternPart::Capture(_))) {
            return Err(format!("found consecutive capture '<{name}>'"));
        }
        if !literal.is_empty() {
            parts.push(PatternPart::Literal(std::mem::take(&mut literal)));
        }
        let capture = (name != "_").then(|| name.to_string());
        if let Some(name) = &capture {
            let duplicate = parts
                .iter()
                .any(|part| matches!(part, PatternPart::Capture(Some(other)) if other == name));
            if duplicate {
                return Err(format!("duplicate capture name ({name})"));
            }
        }
        parts.push(PatternPart::Capture(capture));
        rest = &after[name_end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(PatternPart::Literal(literal));
    }
    if !parts
        .iter()
        .any(|part| matches!(part, PatternPart::Capture(Some(_))))
    {
        return Err("at least one capture is required".into());
    }
    Ok(PatternParser {
        source: source.to_string(),
        parts,
    })
}

/// A JSON path as `json` takes it: `a.b[0]["c d"]`.
pub(super) fn parse_json_path(source: &str) -> Result<JsonPath, String> {
    let invalid = || format!("invalid json path {source:?}: expected a path such as a.b[0][\"c\"]");
    let chars: Vec<char> = source.chars().collect();
    let mut steps = Vec::new();
    let mut at = 0;
    let mut expect_field = true;
    while at < chars.len() {
        match chars[at] {
            '[' => {
                at += 1;
                if chars.get(at) == Some(&'"') {
                    at += 1;
                    let start = at;
                    while at < chars.len() && chars[at] != '"' {
                        at += 1;
                    }
                    let key: String = chars[start..at].iter().collect();
                    if chars.get(at + 1) != Some(&']') {
                        return Err(invalid());
                    }
                    at += 2;
                    steps.push(JsonStep::Key(key));
                } else {
                    let start = at;
                    while at < chars.len() && chars[at].is_ascii_digit() {
                        at += 1;
                    }
                    let index: usize = chars[start..at]
                        .iter()
                        .collect::<String>()
                        .parse()
                        .map_err(|_| invalid())?;
                    if chars.get(at) != Some(&']') {
                        return Err(invalid());
                    }
                    at += 1;
                    steps.push(JsonStep::Index(index));
                }
                expect_field = false;
            }
            '.' if !expect_field => {
                at += 1;
                expect_field = true;
            }
            c if expect_field && !matches!(c, '.' | ']' | '"') => {
                let start = at;
                while at < chars.len() && !matches!(chars[at], '.' | '[' | ']' | '"') {
                    at += 1;
                }
                steps.push(JsonStep::Key(chars[start..at].iter().collect()));
                expect_field = false;
            }
            _ => return Err(invalid()),
        }
    }
    if steps.is_empty() || (expect_field && !chars.is_empty() && chars[chars.len() - 1] == '.') {
        return Err(invalid());
    }
    Ok(JsonPath {
        source: source.to_string(),
        steps,
    })
}
