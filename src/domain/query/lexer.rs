//! The query's tokens, read on demand. The language is context-sensitive in
//! small ways (`-` starts a negation before a term but belongs to the word
//! `eu-west-1`; `:` ends a field name but may sit inside a value such as
//! `url:http://x`), so the parser asks for the token it expects at each
//! point rather than tokenising the whole text up front.
//!
//! Positions are 1-based character columns, as the API reports them.

use super::QueryError;

/// The upper-case words that join terms; in any other case they are words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyword {
    And,
    Or,
    Not,
}

impl Keyword {
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::And => "AND",
            Keyword::Or => "OR",
            Keyword::Not => "NOT",
        }
    }
}

pub struct Lexer {
    chars: Vec<char>,
    at: usize,
}

/// A field name: letters, digits and `_ . - /`.
pub fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

/// What ends a bare word or value.
fn ends_bare(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"')
}

impl Lexer {
    pub fn new(text: &str) -> Lexer {
        Lexer {
            chars: text.chars().collect(),
            at: 0,
        }
    }

    /// The 1-based column of the next character (one past the end at EOF).
    pub fn position(&self) -> usize {
        self.at + 1
    }

    pub fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    pub fn peek_second(&self) -> Option<char> {
        self.chars.get(self.at + 1).copied()
    }

    pub fn bump(&mut self) {
        self.at = (self.at + 1).min(self.chars.len());
    }

    pub fn at_end(&self) -> bool {
        self.at >= self.chars.len()
    }

    pub fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    /// True at the end, before whitespace or a parenthesis: where a term may
    /// end. A quote directly after a term is not a boundary.
    pub fn at_boundary(&self) -> bool {
        self.peek()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | ')'))
    }

    /// A keyword spelled here and standing alone (followed by the end,
    /// whitespace, a parenthesis or a quote; `NOT:x` names a field).
    pub fn keyword(&self) -> Option<Keyword> {
        [Keyword::And, Keyword::Or, Keyword::Not]
            .into_iter()
            .find(|keyword| {
                let word = keyword.as_str();
                let len = word.chars().count();
                self.chars.len() >= self.at + len
                    && self.chars[self.at..self.at + len]
                        .iter()
                        .copied()
                        .eq(word.chars())
                    && self
                        .chars
                        .get(self.at + len)
                        .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | ')' | '"'))
            })
    }

    pub fn take_keyword(&mut self, keyword: Keyword) {
        self.at += keyword.as_str().len();
    }

    /// A run of field-name characters (possibly empty); does not move past
    /// anything else.
    pub fn name(&mut self) -> String {
        let start = self.at;
        while self.peek().is_some_and(is_name_char) {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    /// A bare word or value: everything up to whitespace, a parenthesis or a
    /// quote.
    pub fn bare(&mut self) -> String {
        let start = self.at;
        while self.peek().is_some_and(|c| !ends_bare(c)) {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    /// Moves back to `position` (a value of [`Lexer::position`]).
    pub fn rewind(&mut self, position: usize) {
        self.at = position.saturating_sub(1).min(self.chars.len());
    }

    /// A quoted string, the cursor on its opening quote. Only `\"` and `\\`
    /// are escapes; any other backslash is kept, so `~"\d+"` reaches the
    /// regex as written.
    pub fn quoted(&mut self) -> Result<String, QueryError> {
        let open = self.position();
        self.bump();
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(QueryError::new(
                        open,
                        "this quote is never closed: end the quoted text with \" (write \\\" for a quote inside it)",
                    ));
                }
                Some('"') => {
                    self.bump();
                    return Ok(text);
                }
                Some('\\') if matches!(self.peek_second(), Some('"' | '\\')) => {
                    self.bump();
                    text.extend(self.peek());
                    self.bump();
                }
                Some(c) => {
                    text.push(c);
                    self.bump();
                }
            }
        }
    }
}
