//! Recursive descent over the grammar in `mod.rs`, one function per rule.
//! Every error carries the column of the fault and says how to fix it.

use super::ast::{CompareOp, Expr, Matcher, Number, Pattern, Predicate, QueryRegex, TextField};
use super::lexer::{Keyword, Lexer, is_name_char};
use super::{FieldName, MAX_DEPTH, MAX_QUERY_CHARS, MAX_REGEX_BYTES, PATTERN_KEY, QueryError};
use crate::domain::patterns::Template;
use crate::domain::{Level, LevelSet};

pub fn parse(text: &str) -> Result<Expr, QueryError> {
    let length = text.chars().count();
    if length > MAX_QUERY_CHARS {
        return Err(QueryError::new(
            MAX_QUERY_CHARS + 1,
            format!(
                "the query is {length} characters long; at most {MAX_QUERY_CHARS} are allowed: shorten it"
            ),
        ));
    }
    let mut parser = Parser {
        lexer: Lexer::new(text),
        depth: 0,
    };
    parser.lexer.skip_whitespace();
    if parser.lexer.at_end() {
        return Ok(Expr::everything());
    }
    let expr = parser.or()?;
    parser.lexer.skip_whitespace();
    match parser.lexer.peek() {
        None => Ok(expr),
        Some(')') => Err(parser.error("this ) has no ( to close: remove it or add the (")),
        Some(other) => Err(parser.error(format!("unexpected {other:?}"))),
    }
}

struct Parser {
    lexer: Lexer,
    /// Parentheses open around the current point.
    depth: usize,
}

impl Parser {
    fn error(&self, message: impl Into<String>) -> QueryError {
        QueryError::new(self.lexer.position(), message)
    }

    /// `or = and { "OR" and }`
    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut children = vec![self.and()?];
        loop {
            self.lexer.skip_whitespace();
            if self.lexer.keyword() != Some(Keyword::Or) {
                break;
            }
            self.lexer.take_keyword(Keyword::Or);
            self.expect_term_after("OR")?;
            children.push(self.and()?);
        }
        Ok(any_of(children))
    }

    /// `and = unary { ["AND"] unary }`: terms side by side are ANDed.
    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut children = vec![self.unary()?];
        loop {
            self.lexer.skip_whitespace();
            match self.lexer.peek() {
                None | Some(')') => break,
                _ => {}
            }
            match self.lexer.keyword() {
                Some(Keyword::Or) => break,
                Some(Keyword::And) => {
                    self.lexer.take_keyword(Keyword::And);
                    self.expect_term_after("AND")?;
                }
                _ => {}
            }
            children.push(self.unary()?);
        }
        Ok(all_of(children))
    }

    /// After `AND`, `OR` or `NOT`: whitespace, then something that can start
    /// a term.
    fn expect_term_after(&mut self, keyword: &str) -> Result<(), QueryError> {
        self.lexer.skip_whitespace();
        let found = match (self.lexer.peek(), self.lexer.keyword()) {
            (None, _) => "the end of the query".to_string(),
            (Some(')'), _) => "')'".to_string(),
            (_, Some(keyword @ (Keyword::And | Keyword::Or))) => keyword.as_str().to_string(),
            _ => return Ok(()),
        };
        Err(self.error(format!(
            "expected a search term after {keyword}, found {found}: put a term such as timeout or level:error after it, or remove {keyword}"
        )))
    }

    /// `unary = { "NOT" | "-" } primary`. Negations are counted in a loop,
    /// not by recursion, so a long run of them cannot exhaust the stack.
    fn unary(&mut self) -> Result<Expr, QueryError> {
        let mut negated = false;
        loop {
            if self.lexer.peek() == Some('-') {
                self.lexer.bump();
                if self.lexer.at_boundary() && self.lexer.peek() != Some('(') {
                    return Err(self.error(
                        "expected a term right after - (it negates what follows: -healthcheck, -level:debug)",
                    ));
                }
                negated = !negated;
            } else if self.lexer.keyword() == Some(Keyword::Not) {
                self.lexer.take_keyword(Keyword::Not);
                self.expect_term_after("NOT")?;
                negated = !negated;
            } else {
                break;
            }
        }
        let term = self.primary()?;
        Ok(if negated {
            Expr::Not(Box::new(term))
        } else {
            term
        })
    }

    /// A group, a message regex, a field term, a phrase or a word.
    fn primary(&mut self) -> Result<Expr, QueryError> {
        let start = self.lexer.position();
        match self.lexer.peek() {
            None => Err(self.error("expected a search term, found the end of the query")),
            Some('(') => self.group(),
            Some(')') => {
                Err(self
                    .error("expected a search term, found ')': remove it or put a term before it"))
            }
            Some('~') => {
                let regex = self.regex()?;
                self.end_of_term()?;
                Ok(text(TextField::Message, Matcher::Regex(regex)))
            }
            Some('"') => {
                let quoted = self.lexer.quoted()?;
                if self.lexer.peek() == Some(':') {
                    return self.field_value(FieldName::parse(&quoted), start);
                }
                self.end_of_term()?;
                Ok(text(
                    TextField::Message,
                    Matcher::Contains(Pattern::literal(&quoted)),
                ))
            }
            Some('@') => {
                self.lexer.bump();
                let key = match self.lexer.peek() {
                    Some('"') => self.lexer.quoted()?,
                    _ => self.lexer.name(),
                };
                if key.is_empty() || self.lexer.peek() != Some(':') {
                    return Err(self.error(
                        "expected an attribute name and ':' after @, like @level:warn or @\"my key\":value",
                    ));
                }
                self.field_value(FieldName::Text(TextField::Attribute(key)), start)
            }
            Some(_) => {
                if let Some(keyword) = self.lexer.keyword() {
                    return Err(self.error(format!(
                        "expected a search term, found {}: {} joins two terms (write it between them), quote it (\"{}\") to search for the word",
                        keyword.as_str(),
                        keyword.as_str(),
                        keyword.as_str()
                    )));
                }
                let name = self.lexer.name();
                if name == PATTERN_KEY && self.lexer.peek() == Some(':') {
                    return self.pattern_value();
                }
                if !name.is_empty() && self.lexer.peek() == Some(':') {
                    return self.field_value(FieldName::parse(&name), start);
                }
                self.lexer.rewind(start);
                let word = self.lexer.bare();
                if let Some(colon) = word.find(':') {
                    let column = start + word[..colon].chars().count();
                    let before = &word[..colon];
                    return Err(QueryError::new(
                        column,
                        if before.is_empty() {
                            "expected a field name before ':', like region:eu-west-1".to_string()
                        } else {
                            format!(
                                "{before:?} is not a field name (letters, digits, _ . - /): quote the name (\"{before}\":value) or the whole word (\"{word}\")"
                            )
                        },
                    ));
                }
                self.end_of_term()?;
                Ok(text(
                    TextField::Message,
                    Matcher::Contains(Pattern::wildcard(&word)),
                ))
            }
        }
    }

    /// A term must end at whitespace, a parenthesis or the end: `a"b"` and
    /// `a(b)` are more likely typos than two terms.
    fn end_of_term(&self) -> Result<(), QueryError> {
        if self
            .lexer
            .peek()
            .is_none_or(|c| c.is_whitespace() || c == ')')
        {
            return Ok(());
        }
        Err(self.error(
            "expected a space here: quote the whole value if it holds quotes or parentheses",
        ))
    }

    /// `"(" or ")"`, at most `MAX_DEPTH` deep.
    fn group(&mut self) -> Result<Expr, QueryError> {
        let open = self.lexer.position();
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!(
                "parentheses nested deeper than {MAX_DEPTH} levels: simplify the query"
            )));
        }
        self.lexer.bump();
        self.lexer.skip_whitespace();
        if self.lexer.peek() == Some(')') {
            return Err(self.error("empty parentheses: put a term inside or remove them"));
        }
        self.depth += 1;
        let inner = self.or()?;
        self.depth -= 1;
        self.lexer.skip_whitespace();
        if self.lexer.peek() != Some(')') {
            return Err(self.error(format!("expected ) to close the ( at column {open}")));
        }
        self.lexer.bump();
        self.end_of_term()?;
        Ok(inner)
    }

    /// `pattern:"…"` (or a bare template), the cursor on `:`: the message
    /// is the template, `<_>` standing for any run of characters.
    fn pattern_value(&mut self) -> Result<Expr, QueryError> {
        self.lexer.bump();
        let position = self.lexer.position();
        let template = match self.lexer.peek() {
            Some('"') => self.lexer.quoted()?,
            Some(c) if !c.is_whitespace() && c != '(' && c != ')' => self.lexer.bare(),
            _ => {
                return Err(self.error(
                    "expected a template after pattern:, like pattern:\"connection reset by peer (pool <_>)\"",
                ));
            }
        };
        self.end_of_term()?;
        Template::parse(&template)
            .and_then(|template| template.to_expr())
            .map_err(|message| QueryError::new(position, message))
    }

    /// `~"regex"`, the cursor on `~`.
    fn regex(&mut self) -> Result<QueryRegex, QueryError> {
        let tilde = self.lexer.position();
        self.lexer.bump();
        if self.lexer.peek() != Some('"') {
            return Err(
                self.error("expected a quoted regular expression after ~, like ~\"time(d)? ?out\"")
            );
        }
        let source = self.lexer.quoted()?;
        compile_regex(&source).map_err(|message| QueryError::new(tilde, message))
    }

    /// After `key`, the cursor on `:`: `*`, a list of values in parentheses,
    /// or one value.
    fn field_value(&mut self, field: FieldName, start: usize) -> Result<Expr, QueryError> {
        self.lexer.bump();
        match self.lexer.peek() {
            None => Err(self.error(format!(
                "expected a value after {}:, like {}:value",
                field.display(),
                field.display()
            ))),
            Some(c) if c.is_whitespace() || c == ')' => Err(self.error(format!(
                "expected a value right after {}: (no space), like {}:value; quote a value that holds spaces",
                field.display(),
                field.display()
            ))),
            Some('(') => self.value_list(&field, start),
            Some(_) => {
                let value = self.value(&field)?;
                self.end_of_term()?;
                Ok(value)
            }
        }
    }

    /// `field:(a OR b OR c)`: any of the values.
    fn value_list(&mut self, field: &FieldName, start: usize) -> Result<Expr, QueryError> {
        let open = self.lexer.position();
        self.lexer.bump();
        let mut alternatives = Vec::new();
        loop {
            self.lexer.skip_whitespace();
            match self.lexer.peek() {
                None => {
                    return Err(self.error(format!(
                        "expected ) to close the list of values at column {open}"
                    )));
                }
                Some(')') if alternatives.is_empty() => {
                    return Err(self.error(format!(
                        "empty list of values: write {}:(a OR b)",
                        field.display()
                    )));
                }
                Some('(') => {
                    return Err(
                        self.error("lists of values do not nest: write field:(a OR b OR c)")
                    );
                }
                _ => {}
            }
            if self.lexer.keyword().is_some() {
                return Err(self.error(format!(
                    "expected a value in the list for {} (only OR may join them): field:(a OR b OR c)",
                    field.display()
                )));
            }
            alternatives.push(self.value(field)?);
            self.lexer.skip_whitespace();
            if self.lexer.keyword() == Some(Keyword::Or) {
                self.lexer.take_keyword(Keyword::Or);
                continue;
            }
            match self.lexer.peek() {
                Some(')') => {
                    self.lexer.bump();
                    break;
                }
                None => {
                    return Err(self.error(format!(
                        "expected ) to close the list of values at column {open}"
                    )));
                }
                _ => {}
            }
            return Err(self.error(format!(
                "expected OR or ) in the list of values for {} that starts at column {start}",
                field.display()
            )));
        }
        self.end_of_term()?;
        Ok(any_of(alternatives))
    }

    /// One value for `field`: a comparison, a regex, a quoted literal or a
    /// bare value (`*` wildcards; `*` alone means "present").
    fn value(&mut self, field: &FieldName) -> Result<Expr, QueryError> {
        let position = self.lexer.position();
        match self.lexer.peek() {
            Some('>' | '<') => self.comparison(field),
            Some('~') => {
                let FieldName::Text(field) = field else {
                    return Err(self.error(
                        "level takes names, not regular expressions: level:error, level:>=warn or level:(info OR debug)",
                    ));
                };
                let regex = self.regex()?;
                Ok(text(field.clone(), Matcher::Regex(regex)))
            }
            Some('"') => {
                let quoted = self.lexer.quoted()?;
                literal_value(field, &quoted, false, position)
            }
            _ => {
                let bare = self.lexer.bare();
                if bare.is_empty() {
                    return Err(self.error(format!("expected a value for {}", field.display())));
                }
                literal_value(field, &bare, true, position)
            }
        }
    }

    /// `>N`, `>=N`, `<N`, `<=N` on an attribute; `>=warn` and so on on level.
    fn comparison(&mut self, field: &FieldName) -> Result<Expr, QueryError> {
        let op_position = self.lexer.position();
        let greater = self.lexer.peek() == Some('>');
        self.lexer.bump();
        let or_equal = self.lexer.peek() == Some('=');
        if or_equal {
            self.lexer.bump();
        }
        let op = match (greater, or_equal) {
            (true, false) => CompareOp::Greater,
            (true, true) => CompareOp::GreaterOrEqual,
            (false, false) => CompareOp::Less,
            (false, true) => CompareOp::LessOrEqual,
        };
        let operand_position = self.lexer.position();
        let operand = if self.lexer.peek() == Some('"') {
            self.lexer.quoted()?
        } else {
            self.lexer.bare()
        };
        match field {
            FieldName::Level => {
                let Some(level) = Level::parse_alias(&operand) else {
                    return Err(unknown_level(&operand, operand_position));
                };
                let mut set = LevelSet::default();
                Level::ALL
                    .into_iter()
                    .filter(|candidate| {
                        op.holds(f64::from(candidate.code()), f64::from(level.code()))
                    })
                    .for_each(|l| set.insert(l));
                Ok(Expr::Is(Predicate::Levels(set)))
            }
            FieldName::Text(TextField::Attribute(key)) => {
                let Some(number) = Number::parse(&operand) else {
                    return Err(QueryError::new(
                        operand_position,
                        format!(
                            "expected a number after {} (like 500, -3 or 0.25), found {:?}",
                            op.as_str(),
                            operand
                        ),
                    ));
                };
                Ok(Expr::Is(Predicate::Compare {
                    key: key.clone(),
                    op,
                    number,
                }))
            }
            other => Err(QueryError::new(
                op_position,
                format!(
                    "{} cannot be compared with {}: comparisons apply to level (level:>=warn) and attributes (http.status:>=500)",
                    other.display(),
                    op.as_str()
                ),
            )),
        }
    }
}

/// `a AND b AND …`, flattening nested ANDs (same meaning, shallower tree).
fn all_of(children: Vec<Expr>) -> Expr {
    let mut flat = Vec::with_capacity(children.len());
    for child in children {
        match child {
            Expr::And(inner) if !inner.is_empty() => flat.extend(inner),
            other => flat.push(other),
        }
    }
    single_or(flat, Expr::And)
}

/// `a OR b OR …`, flattening nested ORs.
fn any_of(children: Vec<Expr>) -> Expr {
    let mut flat = Vec::with_capacity(children.len());
    for child in children {
        match child {
            Expr::Or(inner) if !inner.is_empty() => flat.extend(inner),
            other => flat.push(other),
        }
    }
    single_or(flat, Expr::Or)
}

fn single_or(mut children: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
    match children.len() {
        1 => children.pop().unwrap_or_else(Expr::everything),
        _ => join(children),
    }
}

fn text(field: TextField, matcher: Matcher) -> Expr {
    Expr::Is(Predicate::Text { field, matcher })
}

fn unknown_level(text: &str, position: usize) -> QueryError {
    QueryError::new(
        position,
        format!(
            "unknown level {text:?}: use debug, info, warn, error or fatal (warning, err, critical and crit are accepted too)"
        ),
    )
}

/// A quoted (`wildcards` false) or bare value for `field`.
fn literal_value(
    field: &FieldName,
    value: &str,
    wildcards: bool,
    position: usize,
) -> Result<Expr, QueryError> {
    let present = wildcards && value == "*";
    Ok(match field {
        FieldName::Level => {
            if present {
                return Ok(Expr::everything());
            }
            let level = Level::parse_alias(value).ok_or_else(|| unknown_level(value, position))?;
            let mut set = LevelSet::default();
            set.insert(level);
            Expr::Is(Predicate::Levels(set))
        }
        FieldName::Text(TextField::Attribute(key)) if present => {
            Expr::Is(Predicate::Present { key: key.clone() })
        }
        // Every log has a message, a service and an id.
        // Not every log has a trace: `trace_id:*` is "has one", as a
        // pattern that matches any value.
        FieldName::Text(id @ (TextField::TraceId | TextField::SpanId)) if present => {
            text(id.clone(), Matcher::Equals(Pattern::wildcard("*")))
        }
        FieldName::Text(_) if present => Expr::everything(),
        FieldName::Text(TextField::Id) => text(TextField::Id, Matcher::Exact(value.to_string())),
        // Ids as stored: hex lowercased, as ingest keeps them.
        FieldName::Text(id @ (TextField::TraceId | TextField::SpanId)) => {
            let value = if value.bytes().all(|b| b.is_ascii_hexdigit()) {
                value.to_ascii_lowercase()
            } else {
                value.to_string()
            };
            text(id.clone(), Matcher::Exact(value))
        }
        FieldName::Text(TextField::Message) => text(
            TextField::Message,
            Matcher::Contains(pattern(value, wildcards)),
        ),
        FieldName::Text(other) => text(other.clone(), Matcher::Equals(pattern(value, wildcards))),
    })
}

fn pattern(value: &str, wildcards: bool) -> Pattern {
    if wildcards {
        Pattern::wildcard(value)
    } else {
        Pattern::literal(value)
    }
}

/// Compiles a regex with bounded size, so neither compiling nor matching it
/// can take unbounded time or memory.
pub fn compile_regex(source: &str) -> Result<QueryRegex, String> {
    let regex = regex::RegexBuilder::new(source)
        .size_limit(MAX_REGEX_BYTES)
        .dfa_size_limit(2 * MAX_REGEX_BYTES)
        .nest_limit(64)
        .build()
        .map_err(|error| match error {
            regex::Error::CompiledTooBig(limit) => format!(
                "the regular expression is too large (over {limit} bytes compiled): simplify it, for instance with fewer or smaller repetitions"
            ),
            regex::Error::Syntax(text) => {
                // The crate's message spans several lines with a caret
                // diagram; its last line says what is wrong.
                let reason = text
                    .lines()
                    .rev()
                    .find_map(|line| line.trim().strip_prefix("error: "))
                    .unwrap_or("syntax error")
                    .to_string();
                format!("invalid regular expression: {reason} (Rust regex syntax)")
            }
            other => format!("invalid regular expression: {other}"),
        })?;
    Ok(QueryRegex {
        source: source.to_string(),
        regex,
    })
}

/// Whether `name` can be written unquoted before `:` in a query: name
/// characters only, and not starting with `-` (`-x:v` negates `x:v`).
pub fn is_bare_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('-') && name.chars().all(is_name_char)
}
