//! The parser stages on one line: `json`, `logfmt`, `regexp`, `pattern`,
//! `unpack`, and `decolorize`. Each adds what it finds to the line's
//! labels as Loki does (keys sanitized, nested JSON keys joined with `_`,
//! arrays skipped unless a path names them) and records a failure as
//! `__error__` (`JSONParserErr`, `LogfmtParserErr`) with details.

use super::ast::{JsonExtraction, JsonStep, LogfmtStage, PatternParser, PatternPart};
use super::json_text::{self, Json};
use super::labels::LineLabels;
use crate::domain::query::QueryRegex;

pub const JSON_ERROR: &str = "JSONParserErr";
pub const LOGFMT_ERROR: &str = "LogfmtParserErr";

/// A key as a label name: characters other than ASCII letters, digits and
/// `_` become `_`, and a leading digit gets a `_` in front.
pub fn sanitize_key(key: &str) -> String {
    let key = key.trim();
    let mut out = String::with_capacity(key.len() + 1);
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    out
}

/// `| json` and `| json a="x.y", …`.
pub fn json(line: &str, extractions: &[JsonExtraction], labels: &mut LineLabels) {
    let document = match json_text::parse(line) {
        Ok(document @ Json::Object(..)) => document,
        Ok(_) => {
            labels.set_error(
                JSON_ERROR,
                "Value looks like a JSON document but is not an object",
            );
            return;
        }
        Err(error) => {
            labels.set_error(JSON_ERROR, error);
            return;
        }
    };
    if extractions.is_empty() {
        if let Json::Object(members, _) = &document {
            flatten("", members, labels);
        }
        return;
    }
    for extraction in extractions {
        let value = follow(&document, &extraction.path.steps)
            .map(|found| found.label_value())
            .unwrap_or_default();
        labels.set_extracted(&extraction.label, &value);
    }
}

fn flatten(prefix: &str, members: &[(String, Json<'_>)], labels: &mut LineLabels) {
    for (key, value) in members {
        let name = if prefix.is_empty() {
            sanitize_key(key)
        } else {
            format!("{prefix}_{}", sanitize_key(key))
        };
        match value {
            Json::Object(inner, _) => flatten(&name, inner, labels),
            Json::Array(..) => {}
            scalar => {
                if !name.is_empty() {
                    labels.set_extracted(&name, &scalar.label_value());
                }
            }
        }
    }
}

fn follow<'d, 'a>(document: &'d Json<'a>, steps: &[JsonStep]) -> Option<&'d Json<'a>> {
    let mut current = document;
    for step in steps {
        current = match (current, step) {
            (Json::Object(members, _), JsonStep::Key(key)) => {
                &members.iter().rev().find(|(name, _)| name == key)?.1
            }
            (Json::Array(items, _), JsonStep::Index(index)) => items.get(*index)?,
            _ => return None,
        };
    }
    Some(current)
}

/// `| unpack`: the labels a `pack` stage wrote (string members), and the
/// original line from `_entry`.
pub fn unpack(line: &mut String, labels: &mut LineLabels) {
    let members = match json_text::parse(line) {
        Ok(Json::Object(members, _)) => members,
        Ok(_) => {
            labels.set_error(
                JSON_ERROR,
                "Value looks like a JSON document but is not an object",
            );
            return;
        }
        Err(error) => {
            labels.set_error(JSON_ERROR, error);
            return;
        }
    };
    let mut entry = None;
    for (key, value) in members {
        let Json::String(text) = value else { continue };
        if key == "_entry" {
            entry = Some(text);
        } else {
            labels.set_extracted(&sanitize_key(&key), &text);
        }
    }
    if let Some(entry) = entry {
        *line = entry;
    }
}

/// `| logfmt`, with `--strict`, `--keep-empty` and extractions.
pub fn logfmt(line: &str, stage: &LogfmtStage, labels: &mut LineLabels) {
    let mut decoder = LogfmtDecoder { text: line, at: 0 };
    let mut found: Vec<(String, String)> = Vec::new();
    loop {
        match decoder.next_pair() {
            None => break,
            Some(Ok((key, value))) => {
                let value = value.unwrap_or_default();
                if value.is_empty() && !stage.keep_empty {
                    continue;
                }
                found.push((key, value));
            }
            Some(Err(error)) => {
                if stage.strict {
                    labels.set_error(LOGFMT_ERROR, error);
                    return;
                }
                decoder.skip_token();
            }
        }
    }
    if stage.extractions.is_empty() {
        for (key, value) in found {
            let name = sanitize_key(&key);
            if !name.is_empty() {
                labels.set_extracted(&name, &value);
            }
        }
        return;
    }
    for extraction in &stage.extractions {
        let value = found
            .iter()
            .rev()
            .find(|(key, _)| *key == extraction.key)
            .map(|(_, value)| value.as_str())
            .unwrap_or("");
        labels.set_extracted(&extraction.label, value);
    }
}

/// go-logfmt's reading of `key=value key="quoted value" standalone`.
struct LogfmtDecoder<'a> {
    text: &'a str,
    at: usize,
}

impl LogfmtDecoder<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    fn skip_token(&mut self) {
        while self.peek().is_some_and(|c| c > ' ') {
            self.bump();
        }
    }

    /// The next `(key, value)`; `None` at the end.
    fn next_pair(&mut self) -> Option<Result<(String, Option<String>), String>> {
        while self.peek().is_some_and(|c| c <= ' ') {
            self.bump();
        }
        self.peek()?;
        let start = self.at;
        while let Some(c) = self.peek() {
            if c <= ' ' || c == '=' {
                break;
            }
            if c == '"' {
                return Some(Err(format!(
                    "logfmt syntax error at pos {}: unexpected '\"'",
                    self.at + 1
                )));
            }
            self.bump();
        }
        let key = self.text[start..self.at].to_string();
        if key.is_empty() {
            return Some(Err(format!(
                "logfmt syntax error at pos {}: unexpected '='",
                self.at + 1
            )));
        }
        if self.peek() != Some('=') {
            return Some(Ok((key, None)));
        }
        self.bump();
        if self.peek() == Some('"') {
            return Some(self.quoted().map(|value| (key, Some(value))));
        }
        let value_start = self.at;
        while let Some(c) = self.peek() {
            if c <= ' ' {
                break;
            }
            if c == '"' || c == '=' {
                return Some(Err(format!(
                    "logfmt syntax error at pos {}: unexpected '{c}'",
                    self.at + 1
                )));
            }
            self.bump();
        }
        Some(Ok((key, Some(self.text[value_start..self.at].to_string()))))
    }

    fn quoted(&mut self) -> Result<String, String> {
        let open = self.at;
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(format!(
                        "logfmt syntax error at pos {}: unterminated quoted value",
                        open + 1
                    ));
                }
                Some('"') => return Ok(value),
                Some('\\') => match self.bump() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some(other) => value.push(other),
                    None => {
                        return Err(format!(
                            "logfmt syntax error at pos {}: unterminated quoted value",
                            open + 1
                        ));
                    }
                },
                Some(c) => value.push(c),
            }
        }
    }
}

/// `| regexp "…"`: the named groups of the first match.
pub fn regexp(line: &str, regex: &QueryRegex, labels: &mut LineLabels) {
    let Some(captures) = regex.regex.captures(line) else {
        return;
    };
    for name in regex.regex.capture_names().flatten() {
        if let Some(found) = captures.name(name) {
            labels.set_extracted(name, found.as_str());
        }
    }
}

/// `| pattern "…"` as Loki's matcher walks it: a leading literal must
/// start the line; each capture runs to the next occurrence of the literal
/// after it (or, if that never occurs, to the end of the line); a capture
/// at the end takes the rest.
pub fn pattern(line: &str, parser: &PatternParser, labels: &mut LineLabels) {
    if line.is_empty() {
        return;
    }
    let mut rest = line;
    let mut parts = parser.parts.as_slice();
    if let Some((PatternPart::Literal(literal), tail)) = parts.split_first() {
        let Some(after) = rest.strip_prefix(literal.as_str()) else {
            return;
        };
        rest = after;
        parts = tail;
    }
    while let Some((PatternPart::Capture(name), tail)) = parts.split_first() {
        let Some((PatternPart::Literal(literal), after_literal)) = tail.split_first() else {
            if let Some(name) = name {
                labels.set_extracted(name, rest);
            }
            return;
        };
        match rest.find(literal.as_str()) {
            Some(at) => {
                if let Some(name) = name {
                    labels.set_extracted(name, &rest[..at]);
                }
                rest = &rest[at + literal.len()..];
            }
            None => {
                if let Some(name) = name {
                    labels.set_extracted(name, rest);
                }
                return;
            }
        }
        parts = after_literal;
    }
}

/// `| decolorize`: the line without ANSI escape sequences.
pub fn decolorize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte.
            for next in chars.by_ref() {
                if ('@'..='~').contains(&next) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::logql::labels::LabelModel;
    use crate::domain::{Level, LogRecord};

    fn fresh() -> LineLabels {
        let record = LogRecord {
            id: "1".into(),
            timestamp: 0,
            level: Level::Info,
            service: "api".into(),
            message: String::new(),
            attributes: Default::default(),
            ..Default::default()
        };
        LabelModel::default().line_labels(&record)
    }

    #[test]
    fn json_flattens_and_extracts() {
        let mut labels = fresh();
        json(
            r#"{"msg":"hi","http":{"status":500,"path":"/a"},"tags":["x"],"1st":true,"service_name":"x"}"#,
            &[],
            &mut labels,
        );
        assert_eq!(labels.get("msg"), Some("hi"));
        assert_eq!(labels.get("http_status"), Some("500"));
        assert_eq!(labels.get("http_path"), Some("/a"));
        assert_eq!(labels.get("tags"), None);
        assert_eq!(labels.get("_1st"), Some("true"));
        assert_eq!(labels.get("service_name_extracted"), Some("x"));
        let mut labels = fresh();
        let path = |label: &str, source: &str| JsonExtraction {
            label: label.into(),
            path: crate::domain::logql::parser::parse_json_path(source).unwrap(),
        };
        json(
            r#"{"a":{"b":[{"c":1},{"c":2}]},"d e":"x"}"#,
            &[
                path("first", "a.b[1].c"),
                path("space", "[\"d e\"]"),
                path("none", "zz"),
                path("obj", "a.b[0]"),
            ],
            &mut labels,
        );
        assert_eq!(labels.get("first"), Some("2"));
        assert_eq!(labels.get("space"), Some("x"));
        assert_eq!(labels.get("none"), Some(""));
        assert_eq!(labels.get("obj"), Some(r#"{"c":1}"#));
        let mut labels = fresh();
        json("not json", &[], &mut labels);
        assert_eq!(labels.get("__error__"), Some("JSONParserErr"));
    }

    #[test]
    fn logfmt_modes() {
        let mut labels = fresh();
        let plain = LogfmtStage::default();
        logfmt(
            r#"level=info msg="a \"b\"" empty= alone dur=12ms bad"x ok=1"#,
            &plain,
            &mut labels,
        );
        assert_eq!(labels.get("level"), Some("info"));
        assert_eq!(labels.get("msg"), Some("a \"b\""));
        assert_eq!(labels.get("empty"), None);
        assert_eq!(labels.get("alone"), None);
        assert_eq!(labels.get("ok"), Some("1"));
        assert_eq!(labels.get("__error__"), None);
        let mut labels = fresh();
        let keep = LogfmtStage {
            keep_empty: true,
            ..LogfmtStage::default()
        };
        logfmt("a= b", &keep, &mut labels);
        assert_eq!((labels.get("a"), labels.get("b")), (Some(""), Some("")));
        let mut labels = fresh();
        let strict = LogfmtStage {
            strict: true,
            ..LogfmtStage::default()
        };
        logfmt("a=1 =2 c=3", &strict, &mut labels);
        assert_eq!(labels.get("__error__"), Some("LogfmtParserErr"));
    }

    #[test]
    fn pattern_walks_like_loki() {
        let parser = crate::domain::logql::parser::pattern_parser(
            "<ip> - <_> \"<method> <path> <_>\" <status>",
        )
        .unwrap();
        let mut labels = fresh();
        pattern(
            r#"1.2.3.4 - - "GET /a HTTP/1.1" 200 12"#,
            &parser,
            &mut labels,
        );
        assert_eq!(labels.get("ip"), Some("1.2.3.4"));
        assert_eq!(labels.get("method"), Some("GET"));
        assert_eq!(labels.get("path"), Some("/a"));
        assert_eq!(labels.get("status"), Some("200 12"));
    }

    #[test]
    fn unpack_and_decolorize() {
        let mut labels = fresh();
        let mut line = r#"{"_entry":"original","pod":"p1","n":3}"#.to_string();
        unpack(&mut line, &mut labels);
        assert_eq!(line, "original");
        assert_eq!(labels.get("pod"), Some("p1"));
        assert_eq!(labels.get("n"), None);
        assert_eq!(decolorize("\u{1b}[31merror\u{1b}[0m done"), "error done");
    }
}
