//! The expression side of the grammar: binary operators by precedence
//! climbing (`^` right-associative, then `* / %`, `+ -`, comparisons,
//! `and unless`, `or`), range and vector aggregations, literals and
//! `vector()`. A node is a log query or a metric one; only the top may be
//! a log query.

use super::ParseError;
use super::ast::*;
use super::lexer::{Position, Symbol, Token};
use super::parser::Parser;

pub(super) enum Node {
    Log(LogExpr),
    Metric(MetricExpr),
}

impl Parser {
    /// The whole query.
    pub fn query(&mut self) -> Result<Query, ParseError> {
        let node = self.expr(0)?;
        if *self.peek() != Token::End {
            return Err(self.unexpected());
        }
        Ok(match node {
            Node::Log(log) => Query::Log(log),
            Node::Metric(metric) => Query::Metric(metric),
        })
    }

    fn expr(&mut self, min_precedence: u8) -> Result<Node, ParseError> {
        self.enter()?;
        let mut left = self.unary()?;
        while let Some(op) = self.binary_op() {
            let precedence = op.precedence();
            if precedence < min_precedence {
                break;
            }
            let op_position = self.position();
            let Node::Metric(left_metric) = left else {
                return Err(self.unexpected());
            };
            self.advance();
            let return_bool = self.peek_word("bool");
            if return_bool {
                self.advance();
            }
            let matching = self.vector_matching()?;
            let right_start = self.position();
            let next_min = if op == BinaryOp::Pow {
                precedence
            } else {
                precedence + 1
            };
            let Node::Metric(right) = self.expr(next_min)? else {
                return Err(ParseError::at(
                    right_start,
                    "syntax error: unexpected {, a log query cannot be an operand",
                ));
            };
            let binary = BinaryExpr {
                op,
                left: left_metric,
                right,
                return_bool,
                matching,
            };
            check_binary(&binary, op_position)?;
            left = Node::Metric(MetricExpr::Binary(Box::new(binary)));
        }
        self.leave();
        Ok(left)
    }

    fn binary_op(&self) -> Option<BinaryOp> {
        Some(match self.peek() {
            Token::Symbol(Symbol::Add) => BinaryOp::Add,
            Token::Symbol(Symbol::Sub) => BinaryOp::Sub,
            Token::Symbol(Symbol::Mul) => BinaryOp::Mul,
            Token::Symbol(Symbol::Div) => BinaryOp::Div,
            Token::Symbol(Symbol::Mod) => BinaryOp::Mod,
            Token::Symbol(Symbol::Pow) => BinaryOp::Pow,
            Token::Symbol(Symbol::CompareEqual) => BinaryOp::Equal,
            Token::Symbol(Symbol::NotEqual) => BinaryOp::NotEqual,
            Token::Symbol(Symbol::Greater) => BinaryOp::Greater,
            Token::Symbol(Symbol::GreaterOrEqual) => BinaryOp::GreaterOrEqual,
            Token::Symbol(Symbol::Less) => BinaryOp::Less,
            Token::Symbol(Symbol::LessOrEqual) => BinaryOp::LessOrEqual,
            Token::Identifier(word) => match word.as_str() {
                "and" => BinaryOp::And,
                "or" => BinaryOp::Or,
                "unless" => BinaryOp::Unless,
                _ => return None,
            },
            _ => return None,
        })
    }

    /// `on (a)` / `ignoring (a)`, then `group_left (b)` / `group_right`.
    fn vector_matching(&mut self) -> Result<Option<VectorMatching>, ParseError> {
        let on = match self.peek() {
            Token::Identifier(word) if word == "on" => true,
            Token::Identifier(word) if word == "ignoring" => false,
            _ => return Ok(None),
        };
        self.advance();
        let labels = self.label_list()?;
        let group = match self.peek() {
            Token::Identifier(word) if word == "group_left" || word == "group_right" => {
                let left = word == "group_left";
                self.advance();
                let include = if self.peek_symbol(Symbol::OpenParen) {
                    self.label_list()?
                } else {
                    Vec::new()
                };
                Some(if left {
                    GroupSide::Left(include)
                } else {
                    GroupSide::Right(include)
                })
            }
            _ => None,
        };
        Ok(Some(VectorMatching { on, labels, group }))
    }

    /// `(a, b)`, possibly empty.
    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect_symbol(Symbol::OpenParen)?;
        let mut labels = Vec::new();
        if self.peek_symbol(Symbol::CloseParen) {
            self.advance();
            return Ok(labels);
        }
        loop {
            labels.push(self.expect_identifier()?);
            if self.peek_symbol(Symbol::Comma) {
                self.advance();
                continue;
            }
            self.expect_symbol(Symbol::CloseParen)?;
            return Ok(labels);
        }
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        match self.peek() {
            Token::Symbol(Symbol::Sub | Symbol::Add) => {
                let value = self.signed_number()?;
                Ok(Node::Metric(MetricExpr::Literal(value)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let position = self.position();
        match self.peek().clone() {
            Token::Symbol(Symbol::OpenParen) => {
                self.advance();
                let inner = self.expr(0)?;
                self.expect_symbol(Symbol::CloseParen)?;
                Ok(inner)
            }
            Token::Symbol(Symbol::OpenBrace) => {
                let selector = self.selector(false)?;
                let (pipeline, _) = self.pipeline(false)?;
                Ok(Node::Log(LogExpr { selector, pipeline }))
            }
            Token::Number(value) => {
                self.advance();
                Ok(Node::Metric(MetricExpr::Literal(value)))
            }
            Token::Identifier(word) => {
                let call = matches!(self.peek_at(1), Token::Symbol(Symbol::OpenParen));
                if let Some(op) = RangeOp::parse(&word).filter(|_| call) {
                    return self.range_aggregation(op, position).map(Node::Metric);
                }
                if let Some(op) = VectorOp::parse(&word) {
                    let grouped = self.peek_at(1).is_identifier("by")
                        || self.peek_at(1).is_identifier("without");
                    if call || grouped {
                        return self.vector_aggregation(op, position).map(Node::Metric);
                    }
                }
                match word.as_str() {
                    "vector" if call => {
                        self.advance();
                        self.advance();
                        let value = self.signed_number()?;
                        self.expect_symbol(Symbol::CloseParen)?;
                        Ok(Node::Metric(MetricExpr::VectorLiteral(value)))
                    }
                    "label_replace" => Err(ParseError::at(
                        position,
                        "syntax error: unexpected label_replace: label_replace is not supported by this server",
                    )),
                    _ => Err(self.unexpected()),
                }
            }
            _ => Err(self.unexpected()),
        }
    }

    /// `op([parameter,] {…} | … [range] [offset d])` `[by (…)]`.
    fn range_aggregation(
        &mut self,
        op: RangeOp,
        position: Position,
    ) -> Result<MetricExpr, ParseError> {
        self.advance();
        self.expect_symbol(Symbol::OpenParen)?;
        let parameter = if matches!(self.peek(), Token::Number(_) | Token::Symbol(Symbol::Sub)) {
            let value = self.signed_number()?;
            self.expect_symbol(Symbol::Comma)?;
            Some(value)
        } else {
            None
        };
        let selector = self.selector(false)?;
        let mut range = self.range_and_offset()?;
        let (pipeline, unwrap) = self.pipeline(true)?;
        if range.is_none() {
            range = self.range_and_offset()?;
        } else if matches!(self.peek(), Token::Range(_)) {
            return Err(self.unexpected());
        }
        let Some((range_nanos, offset_nanos)) = range else {
            return Err(self.unexpected());
        };
        self.expect_symbol(Symbol::CloseParen)?;
        let grouping = self.grouping()?;
        let aggregation = RangeAggregation {
            op,
            parameter,
            log: LogExpr { selector, pipeline },
            range_nanos,
            offset_nanos,
            unwrap,
            grouping,
        };
        check_range(&aggregation, position)?;
        Ok(MetricExpr::Range(aggregation))
    }

    /// `[5m]` and an optional `offset 1h` after it.
    fn range_and_offset(&mut self) -> Result<Option<(i64, i64)>, ParseError> {
        let Token::Range(range) = *self.peek() else {
            return Ok(None);
        };
        self.advance();
        let mut offset = 0;
        if self.peek_word("offset") {
            self.advance();
            match *self.peek() {
                Token::Duration(nanos) => {
                    self.advance();
                    offset = nanos;
                }
                _ => return Err(self.expected("DURATION")),
            }
        }
        Ok(Some((range, offset)))
    }

    /// `by (…)` or `without (…)`, if there.
    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = match self.peek() {
            Token::Identifier(word) if word == "by" => false,
            Token::Identifier(word) if word == "without" => true,
            _ => return Ok(None),
        };
        self.advance();
        let labels = self.label_list()?;
        Ok(Some(Grouping { without, labels }))
    }

    /// `op [by (…)] ([k,] expr) [by (…)]`.
    fn vector_aggregation(
        &mut self,
        op: VectorOp,
        position: Position,
    ) -> Result<MetricExpr, ParseError> {
        self.advance();
        let mut grouping = self.grouping()?;
        self.expect_symbol(Symbol::OpenParen)?;
        let parameter = match op {
            VectorOp::Topk | VectorOp::Bottomk => {
                let value = self.signed_number()?;
                self.expect_symbol(Symbol::Comma)?;
                Some(value)
            }
            _ => None,
        };
        let inner_position = self.position();
        let Node::Metric(inner) = self.expr(0)? else {
            return Err(self.unexpected());
        };
        if inner.is_scalar() {
            return Err(ParseError::at(
                inner_position,
                format!(
                    "expected vector in aggregation expression, got scalar ({})",
                    op.as_str()
                ),
            ));
        }
        self.expect_symbol(Symbol::CloseParen)?;
        if let Some(after) = self.grouping()? {
            if grouping.is_some() {
                return Err(ParseError::at(
                    position,
                    "syntax error: unexpected by: grouping may come before or after the aggregation, not both",
                ));
            }
            grouping = Some(after);
        }
        if matches!(op, VectorOp::Sort | VectorOp::SortDesc) && grouping.is_some() {
            return Err(ParseError::at(
                position,
                format!("grouping not allowed for {} aggregation", op.as_str()),
            ));
        }
        if let Some(k) = parameter
            && (k.fract() != 0.0 || k < 0.0)
        {
            return Err(ParseError::at(
                position,
                format!(
                    "invalid parameter for operation {}: {k} is not a whole number",
                    op.as_str()
                ),
            ));
        }
        Ok(MetricExpr::Vector(VectorAggregation {
            op,
            parameter,
            inner: Box::new(inner),
            grouping,
        }))
    }
}

/// Loki's rules on which range aggregations take `unwrap`, a parameter
/// and grouping.
fn check_range(aggregation: &RangeAggregation, position: Position) -> Result<(), ParseError> {
    let op = aggregation.op;
    let name = op.as_str();
    let refuse = |message: String| Err(ParseError::at(position, message));
    match (&aggregation.unwrap, op.needs_unwrap(), op.refuses_unwrap()) {
        (None, true, _) => return refuse(format!("invalid aggregation {name} without unwrap")),
        (Some(_), _, true) => return refuse(format!("invalid aggregation {name} with unwrap")),
        _ => {}
    }
    if aggregation.grouping.is_some() && !op.takes_grouping() {
        return refuse(format!("grouping not allowed for {name} aggregation"));
    }
    match (op, aggregation.parameter) {
        (RangeOp::QuantileOverTime, None) => {
            refuse(format!("parameter required for operation {name}"))
        }
        (RangeOp::QuantileOverTime, Some(_)) | (_, None) => Ok(()),
        (_, Some(_)) => refuse(format!("unsupported parameter for operation {name}")),
    }
}

/// Prometheus' rules on operand types and modifiers.
fn check_binary(binary: &BinaryExpr, position: Position) -> Result<(), ParseError> {
    let op = binary.op;
    let refuse = |message: String| Err(ParseError::at(position, message));
    if binary.return_bool && !op.is_comparison() {
        return refuse("bool modifier can only be used on comparison operators".into());
    }
    let scalar = binary.left.is_scalar() || binary.right.is_scalar();
    if op.is_set_operator() && scalar {
        return refuse(format!(
            "set operator \"{}\" not allowed in binary scalar expression",
            op.as_str()
        ));
    }
    if op.is_comparison()
        && binary.left.is_scalar()
        && binary.right.is_scalar()
        && !binary.return_bool
    {
        return refuse("comparisons between scalars must use BOOL modifier".into());
    }
    if let Some(matching) = &binary.matching {
        if scalar {
            return refuse("vector matching only allowed between vectors".into());
        }
        if matching.group.is_some() && op.is_set_operator() {
            return refuse(format!(
                "no grouping allowed for \"{}\" operation",
                op.as_str()
            ));
        }
    }
    Ok(())
}
