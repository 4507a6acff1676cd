//! `line_format` and `label_format` templates: the part of Go's
//! `text/template` LogQL queries use. Text and `{{ … }}` actions (with
//! `{{-`/`-}}` trimming and `{{/* comments */}}`); an action is a pipeline
//! `a | f x | g` of field accesses (`.name`: a label, `""` when absent, as
//! Loki's `missingkey=zero`), literals, `__line__`, `__timestamp__` and the
//! functions of `template_funcs.rs`; `{{ if … }}…{{ else if … }}…{{ else
//! }}…{{ end }}`. `range`, `with`, variables and `define` are refused at
//! parse time, so a template that parses always evaluates.

use super::template_funcs::{Value, call, is_function};
use std::fmt;

/// What a template reads: labels by name, the line and its time.
pub trait TemplateData {
    fn label(&self, name: &str) -> Option<&str>;
    fn line(&self) -> &str;
    fn timestamp_nanos(&self) -> i64;
}

#[derive(Clone, Debug)]
pub struct GoTemplate {
    source: String,
    nodes: Vec<Node>,
}

impl PartialEq for GoTemplate {
    fn eq(&self, other: &GoTemplate) -> bool {
        self.source == other.source
    }
}

impl fmt::Display for GoTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[derive(Clone, Debug)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        condition: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// `a | b | c`: each command's result is the last argument of the next.
#[derive(Clone, Debug)]
struct Pipeline {
    commands: Vec<Command>,
}

#[derive(Clone, Debug)]
enum Command {
    Operand(Operand),
    Call {
        function: String,
        args: Vec<Operand>,
    },
}

#[derive(Clone, Debug)]
enum Operand {
    Field(String),
    Literal(Value),
    Line,
    Timestamp,
    Nested(Pipeline),
}

/// Deepest `if` and `( … )` nesting a template may have.
const MAX_TEMPLATE_DEPTH: usize = 16;

impl GoTemplate {
    /// Parses `source`; the error reads like Go's (`template: line:1: …`).
    pub fn parse(source: &str) -> Result<GoTemplate, String> {
        let items = split_actions(source)?;
        let mut reader = ItemReader { items, at: 0 };
        let (nodes, end) = reader.nodes(0)?;
        if let Some(end) = end {
            return Err(format!("template: line:1: unexpected {{{{{end}}}}}"));
        }
        Ok(GoTemplate {
            source: source.to_string(),
            nodes,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template is plain text (no action).
    pub fn is_constant(&self) -> bool {
        self.nodes.iter().all(|node| matches!(node, Node::Text(_)))
    }

    /// The labels the template reads (`.name`).
    pub fn fields(&self) -> Vec<String> {
        let mut fields = Vec::new();
        fn pipeline_fields(pipeline: &Pipeline, out: &mut Vec<String>) {
            for command in &pipeline.commands {
                let operands: Vec<&Operand> = match command {
                    Command::Operand(operand) => vec![operand],
                    Command::Call { args, .. } => args.iter().collect(),
                };
                for operand in operands {
                    match operand {
                        Operand::Field(name) => out.push(name.clone()),
                        Operand::Nested(inner) => pipeline_fields(inner, out),
                        _ => {}
                    }
                }
            }
        }
        fn node_fields(nodes: &[Node], out: &mut Vec<String>) {
            for node in nodes {
                match node {
                    Node::Text(_) => {}
                    Node::Action(pipeline) => pipeline_fields(pipeline, out),
                    Node::If {
                        condition,
                        then,
                        otherwise,
                    } => {
                        pipeline_fields(condition, out);
                        node_fields(then, out);
                        node_fields(otherwise, out);
                    }
                }
            }
        }
        node_fields(&self.nodes, &mut fields);
        fields
    }

    /// The text the template makes from `data`, or the error Loki reports
    /// as `TemplateFormatErr` (a function given arguments it cannot use).
    pub fn render(&self, data: &dyn TemplateData) -> Result<String, String> {
        let mut out = String::new();
        render_nodes(&self.nodes, data, &mut out)?;
        Ok(out)
    }
}

fn render_nodes(nodes: &[Node], data: &dyn TemplateData, out: &mut String) -> Result<(), String> {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Action(pipeline) => out.push_str(&evaluate(pipeline, data)?.to_text()),
            Node::If {
                condition,
                then,
                otherwise,
            } => {
                let branch = if evaluate(condition, data)?.is_true() {
                    then
                } else {
                    otherwise
                };
                render_nodes(branch, data, out)?;
            }
        }
    }
    Ok(())
}

fn evaluate(pipeline: &Pipeline, data: &dyn TemplateData) -> Result<Value, String> {
    let mut previous: Option<Value> = None;
    for command in &pipeline.commands {
        let value = match command {
            Command::Operand(operand) => {
                if previous.is_some() {
                    return Err("can't give argument to non-function".into());
                }
                operand_value(operand, data)?
            }
            Command::Call { function, args } => {
                let mut values = args
                    .iter()
                    .map(|arg| operand_value(arg, data))
                    .collect::<Result<Vec<_>, _>>()?;
                values.extend(previous.take());
                call(function, values)?
            }
        };
        previous = Some(value);
    }
    Ok(previous.unwrap_or(Value::Nil))
}

fn operand_value(operand: &Operand, data: &dyn TemplateData) -> Result<Value, String> {
    Ok(match operand {
        Operand::Field(name) => Value::Str(data.label(name).unwrap_or("").to_string()),
        Operand::Literal(value) => value.clone(),
        Operand::Line => Value::Str(data.line().to_string()),
        Operand::Timestamp => Value::Time(data.timestamp_nanos()),
        Operand::Nested(pipeline) => evaluate(pipeline, data)?,
    })
}

/// The template cut into text and the inside of each action.
#[derive(Debug)]
enum Item {
    Text(String),
    Action(String),
}

fn split_actions(source: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut rest = source;
    let mut trim_next_text = false;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next_text {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let trims_before = after.starts_with("- ") || after.starts_with("-\t");
        if trims_before {
            text = text.trim_end();
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let inner_start = if trims_before { 2 } else { 0 };
        let close =
            find_action_end(&after[inner_start..]).ok_or("template: line:1: unclosed action")?;
        let mut inner = &after[inner_start..inner_start + close];
        trim_next_text = inner.ends_with(" -") || inner.ends_with("\t-");
        if trim_next_text {
            inner = &inner[..inner.len() - 2];
        }
        items.push(Item::Action(inner.trim().to_string()));
        rest = &after[inner_start + close + 2..];
    }
    let text = if trim_next_text {
        rest.trim_start()
    } else {
        rest
    };
    if !text.is_empty() {
        items.push(Item::Text(text.to_string()));
    }
    Ok(items)
}

/// Where `}}` closes an action, skipping quoted strings inside it.
fn find_action_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'`' {
                    at += 1;
                }
            }
            b'}' if bytes.get(at + 1) == Some(&b'}') => return Some(at),
            _ => {}
        }
        at += 1;
    }
    None
}

struct ItemReader {
    items: Vec<Item>,
    at: usize,
}

impl ItemReader {
    /// Nodes up to `{{else…}}`/`{{end}}` (returned as the second value,
    /// the action's text) or the end.
    fn nodes(&mut self, depth: usize) -> Result<(Vec<Node>, Option<String>), String> {
        if depth > MAX_TEMPLATE_DEPTH {
            return Err("template: line:1: nested too deeply".into());
        }
        let mut nodes = Vec::new();
        while self.at < self.items.len() {
            let item = &self.items[self.at];
            self.at += 1;
            let action = match item {
                Item::Text(text) => {
                    nodes.push(Node::Text(text.clone()));
                    continue;
                }
                Item::Action(action) => action.clone(),
            };
            if action.starts_with("/*") {
                if !action.ends_with("*/") {
                    return Err("template: line:1: unclosed comment".into());
                }
                continue;
            }
            let first_word = action.split_whitespace().next().unwrap_or("");
            match first_word {
                "end" | "else" => return Ok((nodes, Some(action))),
                "if" => nodes.push(self.if_node(&action["if".len()..], depth)?),
                "range" | "with" | "define" | "template" | "block" | "break" | "continue" => {
                    return Err(format!(
                        "template: line:1: {{{{{first_word}}}}} is not supported in LogQL templates here"
                    ));
                }
                _ => nodes.push(Node::Action(parse_pipeline(&action, depth)?)),
            }
        }
        Ok((nodes, None))
    }

    fn if_node(&mut self, condition: &str, depth: usize) -> Result<Node, String> {
        let condition = parse_pipeline(condition, depth)?;
        let (then, end) = self.nodes(depth + 1)?;
        let end = end.ok_or("template: line:1: unexpected EOF")?;
        let otherwise = if end == "end" {
            Vec::new()
        } else if let Some(rest) = end.strip_prefix("else") {
            let rest = rest.trim();
            if let Some(inner) = rest.strip_prefix("if ") {
                vec![self.if_node(inner, depth + 1)?]
            } else if rest.is_empty() {
                let (otherwise, end) = self.nodes(depth + 1)?;
                if end.as_deref() != Some("end") {
                    return Err("template: line:1: expected {{end}}".into());
                }
                otherwise
            } else {
                return Err(format!("template: line:1: unexpected {{{{{end}}}}}"));
            }
        } else {
            return Err(format!("template: line:1: unexpected {{{{{end}}}}}"));
        };
        Ok(Node::If {
            condition,
            then,
            otherwise,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Word {
    Field(String),
    Identifier(String),
    Literal(Value),
    Pipe,
    Open,
    Close,
}

fn parse_pipeline(text: &str, depth: usize) -> Result<Pipeline, String> {
    let words = action_words(text)?;
    let mut at = 0;
    let pipeline = pipeline_of(&words, &mut at, depth)?;
    if at != words.len() {
        return Err(format!(
            "template: line:1: unexpected {:?} in operand",
            words[at]
        ));
    }
    Ok(pipeline)
}

fn pipeline_of(words: &[Word], at: &mut usize, depth: usize) -> Result<Pipeline, String> {
    if depth > MAX_TEMPLATE_DEPTH {
        return Err("template: line:1: nested too deeply".into());
    }
    let mut commands = Vec::new();
    loop {
        let mut operands = Vec::new();
        let mut function = None;
        while let Some(word) = words.get(*at) {
            match word {
                Word::Pipe | Word::Close => break,
                Word::Identifier(name) if operands.is_empty() && function.is_none() => {
                    *at += 1;
                    match name.as_str() {
                        "__line__" => operands.push(Operand::Line),
                        "__timestamp__" => operands.push(Operand::Timestamp),
                        "true" => operands.push(Operand::Literal(Value::Bool(true))),
                        "false" => operands.push(Operand::Literal(Value::Bool(false))),
                        "nil" => operands.push(Operand::Literal(Value::Nil)),
                        _ if is_function(name) => function = Some(name.clone()),
                        _ => {
                            return Err(format!("template: line:1: function {name:?} not defined"));
                        }
                    }
                }
                _ => operands.push(operand_of(words, at, depth)?),
            }
        }
        let command = match function {
            Some(function) => Command::Call {
                function,
                args: operands,
            },
            None => match operands.len() {
                1 => Command::Operand(operands.remove(0)),
                0 => return Err("template: line:1: missing value for command".into()),
                _ => {
                    return Err("template: line:1: can't give argument to non-function".into());
                }
            },
        };
        commands.push(command);
        if words.get(*at) == Some(&Word::Pipe) {
            *at += 1;
            continue;
        }
        return Ok(Pipeline { commands });
    }
}

fn operand_of(words: &[Word], at: &mut usize, depth: usize) -> Result<Operand, String> {
    let word = words[*at].clone();
    *at += 1;
    match word {
        Word::Field(name) => Ok(Operand::Field(name)),
        Word::Literal(value) => Ok(Operand::Literal(value)),
        Word::Identifier(name) => match name.as_str() {
            "__line__" => Ok(Operand::Line),
            "__timestamp__" => Ok(Operand::Timestamp),
            "true" => Ok(Operand::Literal(Value::Bool(true))),
            "false" => Ok(Operand::Literal(Value::Bool(false))),
            "nil" => Ok(Operand::Literal(Value::Nil)),
            _ => Err(format!(
                "template: line:1: function {name:?} must come first in a command, or be in parentheses"
            )),
        },
        Word::Open => {
            let inner = pipeline_of(words, at, depth + 1)?;
            if words.get(*at) != Some(&Word::Close) {
                return Err("template: line:1: unclosed left paren".into());
            }
            *at += 1;
            Ok(Operand::Nested(inner))
        }
        Word::Pipe | Word::Close => Err("template: line:1: unexpected token".into()),
    }
}

fn action_words(text: &str) -> Result<Vec<Word>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if c.is_whitespace() {
            at += 1;
            continue;
        }
        let start = at;
        match c {
            '|' => {
                words.push(Word::Pipe);
                at += 1;
            }
            '(' => {
                words.push(Word::Open);
                at += 1;
            }
            ')' => {
                words.push(Word::Close);
                at += 1;
            }
            '.' => {
                at += 1;
                while at < chars.len() && (chars[at].is_alphanumeric() || chars[at] == '_') {
                    at += 1;
                }
                let name: String = chars[start + 1..at].iter().collect();
                if name.is_empty() || (at < chars.len() && chars[at] == '.') {
                    return Err(
                        "template: line:1: only label fields (.name) are supported, not . or .a.b"
                            .into(),
                    );
                }
                words.push(Word::Field(name));
            }
            '"' => {
                at += 1;
                let mut value = String::new();
                loop {
                    match chars.get(at) {
                        None => return Err("template: line:1: unterminated quoted string".into()),
                        Some('"') => break,
                        Some('\\') => {
                            let escaped = match chars.get(at + 1) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('r') => '\r',
                                Some('\\') => '\\',
                                Some('"') => '"',
                                _ => return Err("template: line:1: invalid syntax".into()),
                            };
                            value.push(escaped);
                            at += 2;
                        }
                        Some(other) => {
                            value.push(*other);
                            at += 1;
                        }
                    }
                }
                at += 1;
                words.push(Word::Literal(Value::Str(value)));
            }
            '`' => {
                at += 1;
                while at < chars.len() && chars[at] != '`' {
                    at += 1;
                }
                if at >= chars.len() {
                    return Err("template: line:1: unterminated raw quoted string".into());
                }
                words.push(Word::Literal(Value::Str(
                    chars[start + 1..at].iter().collect(),
                )));
                at += 1;
            }
            '$' => return Err("template: line:1: variables are not supported".into()),
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                at += 1;
                while at < chars.len()
                    && (chars[at].is_ascii_alphanumeric() || chars[at] == '.' || chars[at] == '_')
                {
                    at += 1;
                }
                let text: String = chars[start..at].iter().collect();
                let value = if let Ok(int) = text.parse::<i64>() {
                    Value::Int(int)
                } else if let Ok(float) = text.parse::<f64>() {
                    Value::Float(float)
                } else {
                    return Err(format!("template: line:1: bad number syntax: {text:?}"));
                };
                words.push(Word::Literal(value));
            }
            c if c.is_alphabetic() || c == '_' => {
                while at < chars.len() && (chars[at].is_alphanumeric() || chars[at] == '_') {
                    at += 1;
                }
                words.push(Word::Identifier(chars[start..at].iter().collect()));
            }
            other => return Err(format!("template: line:1: unexpected {other:?} in command")),
        }
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Data {
        labels: BTreeMap<&'static str, &'static str>,
    }

    impl TemplateData for Data {
        fn label(&self, name: &str) -> Option<&str> {
            self.labels.get(name).copied()
        }
        fn line(&self) -> &str {
            "the line"
        }
        fn timestamp_nanos(&self) -> i64 {
            1_735_689_600_123_000_000
        }
    }

    fn render(source: &str) -> String {
        let data = Data {
            labels: [("status", "500"), ("method", "get"), ("empty", "")].into(),
        };
        GoTemplate::parse(source)
            .unwrap_or_else(|e| panic!("{source}: {e}"))
            .render(&data)
            .unwrap_or_else(|e| panic!("{source}: {e}"))
    }

    #[test]
    fn fields_functions_and_pipelines() {
        for (source, expected) in [
            ("{{.status}} {{.method}}", "500 get"),
            ("{{ .missing }}|", "|"),
            ("{{ .method | ToUpper }}", "GET"),
            ("{{ ToUpper .method }}", "GET"),
            ("{{ __line__ }}", "the line"),
            ("{{ __timestamp__ }}", "2025-01-01 00:00:00.123 +0000 UTC"),
            ("{{ .empty | default \"none\" }}", "none"),
            ("{{ default \"none\" .status }}", "500"),
            (
                "{{ printf \"%s-%05d|%-4s|%.2f\" .method 42 \"a\" 3.14159 }}",
                "get-00042|a   |3.14",
            ),
            ("{{ trunc 2 .status }}", "50"),
            ("{{ trunc -2 .status }}", "00"),
            ("{{ substr 1 3 __line__ }}", "he"),
            ("{{ replace \"e\" \"E\" __line__ }}", "thE linE"),
            ("{{ Replace __line__ \"e\" \"E\" 1 }}", "thE line"),
            ("{{ if eq .status \"500\" }}bad{{ else }}ok{{ end }}", "bad"),
            ("{{ if .missing }}x{{ else if .method }}y{{ end }}", "y"),
            ("a {{- \" b \" -}} c", "a b c"),
            ("{{/* note */}}x", "x"),
            ("{{ add 1 2 | mul 3 }}", "9"),
            ("{{ (ToUpper .method) | lower }}", "get"),
            (
                "{{ date \"2006-01-02T15:04:05Z07:00\" __timestamp__ }}",
                "2025-01-01T00:00:00Z",
            ),
            ("{{ unixEpoch __timestamp__ }}", "1735689600"),
            ("{{ .status | b64enc }}", "NTAw"),
            (
                "{{ regexReplaceAll \"(\\\\d)\" .status \"<$1>\" }}",
                "<5><0><0>",
            ),
            ("{{ len .method }}", "3"),
            ("{{ title \"hello world\" }}", "Hello World"),
            ("{{ alignRight 5 .status }}", "  500"),
        ] {
            assert_eq!(render(source), expected, "{source}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        for bad in [
            "{{ .a",
            "{{ nope .a }}",
            "{{ range .a }}{{ end }}",
            "{{ if .a }}x",
            "{{ end }}",
            "{{ $x := 1 }}",
            "{{ .a.b }}",
            "{{ .a .b }}",
            "{{ (ToUpper .a }}",
        ] {
            assert!(GoTemplate::parse(bad).is_err(), "{bad}");
        }
        let data = Data {
            labels: BTreeMap::new(),
        };
        let runtime = GoTemplate::parse("{{ div 1 0 }}").unwrap();
        assert!(runtime.render(&data).is_err());
        assert_eq!(
            GoTemplate::parse("{{.a}} {{ ToUpper .b }}")
                .unwrap()
                .fields(),
            ["a", "b"]
        );
    }
}
