//! LogQL's tokens, read up front (queries are short and bounded). Loki's
//! lexer shapes the tokens: a range `[5m]` is one token, `10s` a duration,
//! `20MB` a byte size, `--strict` a parser flag; strings are Go strings
//! (double-quoted with escapes, or backquoted and raw). Keywords are plain
//! identifiers here: the parser decides from context, so a label may be
//! called `duration` or `bytes` as Drilldown's queries expect.
//!
//! Positions are 1-based lines and character columns of a token's start,
//! as Loki reports them.

use super::ParseError;
use super::units::{parse_bytes, parse_duration};

/// Where a token starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    Identifier(String),
    String(String),
    Number(f64),
    /// A duration such as `10s` or `1h30m`, in nanoseconds.
    Duration(i64),
    /// A byte size such as `20MB` or `1KiB`.
    Bytes(u64),
    /// `[5m]`: a range in nanoseconds.
    Range(i64),
    /// `--strict`, `--keep-empty`.
    Flag(String),
    Symbol(Symbol),
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Symbol {
    OpenBrace,
    CloseBrace,
    OpenParen,
    CloseParen,
    Comma,
    Equal,
    NotEqual,
    RegexMatch,
    RegexNotMatch,
    PipeExact,
    PipeMatch,
    PipePattern,
    NotPattern,
    Pipe,
    CompareEqual,
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

impl Symbol {
    pub fn as_str(self) -> &'static str {
        match self {
            Symbol::OpenBrace => "{",
            Symbol::CloseBrace => "}",
            Symbol::OpenParen => "(",
            Symbol::CloseParen => ")",
            Symbol::Comma => ",",
            Symbol::Equal => "=",
            Symbol::NotEqual => "!=",
            Symbol::RegexMatch => "=~",
            Symbol::RegexNotMatch => "!~",
            Symbol::PipeExact => "|=",
            Symbol::PipeMatch => "|~",
            Symbol::PipePattern => "|>",
            Symbol::NotPattern => "!>",
            Symbol::Pipe => "|",
            Symbol::CompareEqual => "==",
            Symbol::Greater => ">",
            Symbol::GreaterOrEqual => ">=",
            Symbol::Less => "<",
            Symbol::LessOrEqual => "<=",
            Symbol::Add => "+",
            Symbol::Sub => "-",
            Symbol::Mul => "*",
            Symbol::Div => "/",
            Symbol::Mod => "%",
            Symbol::Pow => "^",
        }
    }
}

/// The words Loki's lexer turns into their own tokens; an error names them
/// as written, any other identifier as `IDENTIFIER`.
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "and",
    "or",
    "unless",
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
    "ip",
    "vector",
    "label_replace",
    "duration",
    "duration_seconds",
    "bytes",
    "count_over_time",
    "rate",
    "rate_counter",
    "bytes_over_time",
    "bytes_rate",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "stdvar_over_time",
    "stddev_over_time",
    "quantile_over_time",
    "first_over_time",
    "last_over_time",
    "absent_over_time",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "sort",
    "sort_desc",
];

impl Token {
    /// How a syntax error names this token, the way Loki's parser does.
    pub fn describe(&self) -> String {
        match self {
            Token::Identifier(name) if KEYWORDS.contains(&name.as_str()) => name.clone(),
            Token::Identifier(_) => "IDENTIFIER".into(),
            Token::String(_) => "STRING".into(),
            Token::Number(_) => "NUMBER".into(),
            Token::Duration(_) => "DURATION".into(),
            Token::Bytes(_) => "BYTES".into(),
            Token::Range(_) => "RANGE".into(),
            Token::Flag(_) => "PARSER_FLAG".into(),
            Token::Symbol(symbol) => symbol.as_str().into(),
            Token::End => "$end".into(),
        }
    }

    pub fn is_identifier(&self, word: &str) -> bool {
        matches!(self, Token::Identifier(name) if name == word)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Spanned {
    pub token: Token,
    pub position: Position,
}

/// Every token of `text`, ending with [`Token::End`].
pub fn tokenize(text: &str) -> Result<Vec<Spanned>, ParseError> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        at: 0,
        line: 1,
        line_start: 0,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_blanks_and_comments();
        let position = lexer.position();
        let Some(c) = lexer.peek(0) else {
            tokens.push(Spanned {
                token: Token::End,
                position,
            });
            return Ok(tokens);
        };
        let token = lexer.token(c, position)?;
        tokens.push(Spanned { token, position });
    }
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    line: usize,
    line_start: usize,
}

fn is_identifier_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn position(&self) -> Position {
        Position {
            line: self.line,
            column: self.at - self.line_start + 1,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
            self.line_start = self.at;
        }
        Some(c)
    }

    fn skip_blanks_and_comments(&mut self) {
        while let Some(c) = self.peek(0) {
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                // A comment runs to the end of the line, as in Loki.
                while self.peek(0).is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    fn token(&mut self, c: char, position: Position) -> Result<Token, ParseError> {
        let error = |message: String| ParseError::at(position, message);
        if is_identifier_start(c) {
            let start = self.at;
            while self.peek(0).is_some_and(is_identifier_char) {
                self.bump();
            }
            return Ok(Token::Identifier(
                self.chars[start..self.at].iter().collect(),
            ));
        }
        if c.is_ascii_digit() {
            return self.number_like(position);
        }
        match c {
            '"' => return self.double_quoted(position),
            '`' => return self.backquoted(position),
            '[' => return self.range(position),
            _ => {}
        }
        if c == '-' && self.peek(1) == Some('-') && self.peek(2).is_some_and(is_identifier_start) {
            self.bump();
            self.bump();
            let start = self.at;
            while self
                .peek(0)
                .is_some_and(|c| is_identifier_char(c) || c == '-')
            {
                self.bump();
            }
            let name: String = self.chars[start..self.at].iter().collect();
            return Ok(Token::Flag(format!("--{name}")));
        }
        let two = self.peek(1);
        let (symbol, length) = match (c, two) {
            ('|', Some('=')) => (Symbol::PipeExact, 2),
            ('|', Some('~')) => (Symbol::PipeMatch, 2),
            ('|', Some('>')) => (Symbol::PipePattern, 2),
            ('|', _) => (Symbol::Pipe, 1),
            ('!', Some('=')) => (Symbol::NotEqual, 2),
            ('!', Some('~')) => (Symbol::RegexNotMatch, 2),
            ('!', Some('>')) => (Symbol::NotPattern, 2),
            ('=', Some('=')) => (Symbol::CompareEqual, 2),
            ('=', Some('~')) => (Symbol::RegexMatch, 2),
            ('=', _) => (Symbol::Equal, 1),
            ('>', Some('=')) => (Symbol::GreaterOrEqual, 2),
            ('>', _) => (Symbol::Greater, 1),
            ('<', Some('=')) => (Symbol::LessOrEqual, 2),
            ('<', _) => (Symbol::Less, 1),
            ('{', _) => (Symbol::OpenBrace, 1),
            ('}', _) => (Symbol::CloseBrace, 1),
            ('(', _) => (Symbol::OpenParen, 1),
            (')', _) => (Symbol::CloseParen, 1),
            (',', _) => (Symbol::Comma, 1),
            ('+', _) => (Symbol::Add, 1),
            ('-', _) => (Symbol::Sub, 1),
            ('*', _) => (Symbol::Mul, 1),
            ('/', _) => (Symbol::Div, 1),
            ('%', _) => (Symbol::Mod, 1),
            ('^', _) => (Symbol::Pow, 1),
            (other, _) => return Err(error(format!("syntax error: unexpected {other}"))),
        };
        for _ in 0..length {
            self.bump();
        }
        Ok(Token::Symbol(symbol))
    }

    /// A number, or a duration (`1h30m`, `1.5s`) or byte size (`20MB`) when
    /// letters follow the digits.
    fn number_like(&mut self, position: Position) -> Result<Token, ParseError> {
        let start = self.at;
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        let exponent_digits = match (self.peek(1), self.peek(2)) {
            (Some(d), _) if d.is_ascii_digit() => Some(1),
            (Some('+' | '-'), Some(d)) if d.is_ascii_digit() => Some(2),
            _ => None,
        };
        if matches!(self.peek(0), Some('e' | 'E')) && exponent_digits.is_some() {
            self.bump();
            if matches!(self.peek(0), Some('+' | '-')) {
                self.bump();
            }
            while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        if !self
            .peek(0)
            .is_some_and(|c| c.is_alphabetic() || c == 'µ' || c == 'μ')
        {
            let text: String = self.chars[start..self.at].iter().collect();
            return text
                .parse()
                .map(Token::Number)
                .map_err(|_| ParseError::at(position, format!("invalid number {text:?}")));
        }
        // Units and further number/unit pairs (`1h30m`).
        while self
            .peek(0)
            .is_some_and(|c| c.is_alphanumeric() || c == '.' || c == 'µ' || c == 'μ')
        {
            self.bump();
        }
        let text: String = self.chars[start..self.at].iter().collect();
        if let Some(nanos) = parse_duration(&text) {
            return Ok(Token::Duration(nanos));
        }
        if let Some(bytes) = parse_bytes(&text) {
            return Ok(Token::Bytes(bytes));
        }
        Err(ParseError::at(
            position,
            format!(
                "syntax error: unexpected IDENTIFIER: {text:?} is neither a number, a duration (10s, 1h30m) nor a byte size (20MB, 1KiB)"
            ),
        ))
    }

    /// `"…"` with Go's escapes.
    fn double_quoted(&mut self, position: Position) -> Result<Token, ParseError> {
        self.bump();
        let mut text = String::new();
        loop {
            let here = self.position();
            match self.bump() {
                None | Some('\n') => {
                    return Err(ParseError::at(position, "literal not terminated"));
                }
                Some('"') => return Ok(Token::String(text)),
                Some('\\') => {
                    let c = self
                        .bump()
                        .ok_or_else(|| ParseError::at(position, "literal not terminated"))?;
                    let decoded = match c {
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'v' => '\u{b}',
                        '\\' => '\\',
                        '"' => '"',
                        'x' => self.hex_escape(2, here)?,
                        'u' => self.hex_escape(4, here)?,
                        'U' => self.hex_escape(8, here)?,
                        '0'..='7' => self.octal_escape(c, here)?,
                        _ => return Err(ParseError::at(here, "invalid char escape")),
                    };
                    text.push(decoded);
                }
                Some(c) => text.push(c),
            }
        }
    }

    fn hex_escape(&mut self, digits: usize, here: Position) -> Result<char, ParseError> {
        let mut value = 0u32;
        for _ in 0..digits {
            let digit = self
                .bump()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| ParseError::at(here, "invalid char escape"))?;
            value = value * 16 + digit;
        }
        char::from_u32(value).ok_or_else(|| ParseError::at(here, "invalid char escape"))
    }

    fn octal_escape(&mut self, first: char, here: Position) -> Result<char, ParseError> {
        let mut value = first.to_digit(8).unwrap_or(0);
        for _ in 0..2 {
            let digit = self
                .bump()
                .and_then(|c| c.to_digit(8))
                .ok_or_else(|| ParseError::at(here, "invalid char escape"))?;
            value = value * 8 + digit;
        }
        if value > 255 {
            return Err(ParseError::at(here, "invalid char escape"));
        }
        char::from_u32(value).ok_or_else(|| ParseError::at(here, "invalid char escape"))
    }

    /// `` `…` ``: raw, may span lines.
    fn backquoted(&mut self, position: Position) -> Result<Token, ParseError> {
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err(ParseError::at(position, "literal not terminated")),
                Some('`') => return Ok(Token::String(text)),
                Some(c) => text.push(c),
            }
        }
    }

    /// `[5m]`, `[1h30m]`.
    fn range(&mut self, position: Position) -> Result<Token, ParseError> {
        self.bump();
        let start = self.at;
        while self.peek(0).is_some_and(|c| c != ']' && c != '\n') {
            self.bump();
        }
        let inner: String = self.chars[start..self.at].iter().collect();
        if self.bump() != Some(']') {
            return Err(ParseError::at(
                position,
                "syntax error: unexpected [: a range is written like [5m]",
            ));
        }
        match parse_duration(inner.trim()) {
            Some(nanos) if nanos > 0 => Ok(Token::Range(nanos)),
            _ => Err(ParseError::at(
                position,
                format!("not a valid duration string: {:?}", inner.trim()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Token> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|spanned| spanned.token)
            .collect()
    }

    #[test]
    fn reads_loki_tokens() {
        assert_eq!(
            tokens(r#"{a="b\n"} |= `x\y` [1h30m] 10s 20MB 1KiB 2.5 --strict"#),
            vec![
                Token::Symbol(Symbol::OpenBrace),
                Token::Identifier("a".into()),
                Token::Symbol(Symbol::Equal),
                Token::String("b\n".into()),
                Token::Symbol(Symbol::CloseBrace),
                Token::Symbol(Symbol::PipeExact),
                Token::String("x\\y".into()),
                Token::Range(5_400_000_000_000),
                Token::Duration(10_000_000_000),
                Token::Bytes(20_000_000),
                Token::Bytes(1024),
                Token::Number(2.5),
                Token::Flag("--strict".into()),
                Token::End,
            ]
        );
        assert_eq!(
            tokens("a!=b!~c!>d|>e==f>=g<=h # comment\n^"),
            vec![
                Token::Identifier("a".into()),
                Token::Symbol(Symbol::NotEqual),
                Token::Identifier("b".into()),
                Token::Symbol(Symbol::RegexNotMatch),
                Token::Identifier("c".into()),
                Token::Symbol(Symbol::NotPattern),
                Token::Identifier("d".into()),
                Token::Symbol(Symbol::PipePattern),
                Token::Identifier("e".into()),
                Token::Symbol(Symbol::CompareEqual),
                Token::Identifier("f".into()),
                Token::Symbol(Symbol::GreaterOrEqual),
                Token::Identifier("g".into()),
                Token::Symbol(Symbol::LessOrEqual),
                Token::Identifier("h".into()),
                Token::Symbol(Symbol::Pow),
                Token::End,
            ]
        );
        assert_eq!(tokens("1e3"), vec![Token::Number(1000.0), Token::End]);
        assert_eq!(
            tokens(r#""\u00e9\x41\101""#),
            vec![Token::String("éAA".into()), Token::End]
        );
    }

    #[test]
    fn positions_are_lines_and_character_columns() {
        let spanned = tokenize("{a=\"é\"}\n  |= \"y\"").unwrap();
        assert_eq!(spanned[1].position, Position { line: 1, column: 2 });
        assert_eq!(spanned[4].position, Position { line: 1, column: 7 });
        assert_eq!(spanned[5].position, Position { line: 2, column: 3 });
        assert_eq!(spanned[6].position, Position { line: 2, column: 6 });
        assert_eq!(spanned[7].position, Position { line: 2, column: 9 });
    }

    #[test]
    fn refuses_bad_tokens_with_their_column() {
        for (text, column) in [
            ("{a=\"b}", 4),
            ("{a=\"\\q\"}", 5),
            ("x [$__auto]", 3),
            ("x [5m", 3),
            ("x 5mx", 3),
            ("a ; b", 3),
        ] {
            let error = tokenize(text).unwrap_err();
            assert_eq!(error.column, column, "{text}: {error}");
        }
    }
}
