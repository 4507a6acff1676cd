//! One line through a pipeline, as Loki documents it: labels in three
//! categories (stream, structured metadata, parsed), parsers adding
//! `<name>_extracted` when a stream label has the name, numeric label
//! filters marking values that do not parse with `__error__`.

use super::ast::*;
use super::parse::{bytes, go_duration_seconds};
use super::{Labels, Model, Record};
use regex::Regex;

fn sanitize(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A parsed key's label name (a leading digit gets `_`).
fn parsed_name(key: &str) -> String {
    let name = sanitize(key.trim());
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

pub struct Line {
    pub text: String,
    pub stream: Labels,
    pub metadata: Labels,
    pub parsed: Labels,
    /// `__error__` and `__error_details__`, each droppable on its own.
    pub error: Option<String>,
    pub details: Option<String>,
    level: &'static str,
}

fn find<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

impl Line {
    pub fn of(record: &Record, model: &Model) -> Line {
        let mut stream = vec![("service_name".to_string(), record.service.clone())];
        for key in &model.stream_keys {
            if let Some(value) = record.attributes.get(key) {
                stream.push((sanitize(key), value.clone()));
            }
        }
        stream.sort();
        let mut metadata = vec![("detected_level".to_string(), record.level.to_string())];
        for (key, value) in &record.attributes {
            if model.stream_keys.contains(key) {
                continue;
            }
            let name = sanitize(key);
            if find(&stream, &name).is_none() && find(&metadata, &name).is_none() {
                metadata.push((name, value.clone()));
            }
        }
        Line {
            text: record.message.clone(),
            stream,
            metadata,
            parsed: Vec::new(),
            error: None,
            details: None,
            level: record.level,
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            "__error__" => return self.error.as_deref(),
            "__error_details__" => return self.details.as_deref(),
            _ => {}
        }
        find(&self.parsed, name)
            .or_else(|| find(&self.metadata, name))
            .or_else(|| find(&self.stream, name))
            .or_else(|| (name == "level").then_some(self.level))
    }

    /// The first error stays. Details are the implementation's words: the
    /// comparison looks only at whether they are there.
    fn set_error(&mut self, error: &str) {
        if self.error.is_none() {
            self.error = Some(error.to_string());
            self.details = Some(String::new());
        }
    }

    fn extract(&mut self, name: &str, value: &str) {
        let name = if find(&self.stream, name).is_some() {
            format!("{name}_extracted")
        } else {
            name.to_string()
        };
        if find(&self.parsed, &name).is_some() {
            return;
        }
        self.metadata.retain(|(n, _)| *n != name);
        self.parsed.push((name, value.to_string()));
    }

    fn set(&mut self, name: &str, value: String) {
        match name {
            "__error__" => self.error = Some(value),
            "__error_details__" => self.details = Some(value),
            _ => {
                self.remove(name);
                self.parsed.push((name.to_string(), value));
            }
        }
    }

    fn remove(&mut self, name: &str) {
        match name {
            "__error__" => self.error = None,
            "__error_details__" => self.details = None,
            _ => {
                self.stream.retain(|(n, _)| n != name);
                self.metadata.retain(|(n, _)| n != name);
                self.parsed.retain(|(n, _)| n != name);
            }
        }
    }

    pub fn parsed_with_errors(&self) -> Labels {
        let mut parsed = self.parsed.clone();
        if let Some(error) = &self.error {
            parsed.push(("__error__".into(), error.clone()));
        }
        if let Some(details) = &self.details {
            parsed.push(("__error_details__".into(), details.clone()));
        }
        parsed.sort();
        parsed
    }

    /// Every label, a later category winning a name.
    pub fn merged(&self) -> Labels {
        let mut merged: std::collections::BTreeMap<String, String> = Default::default();
        for (name, value) in self
            .stream
            .iter()
            .chain(&self.metadata)
            .cloned()
            .chain(self.parsed_with_errors())
        {
            merged.insert(name, value);
        }
        merged.into_iter().collect()
    }
}

/// Whether `text` is the template with each `<_>` standing for any run of
/// characters.
pub fn template_matches(template: &str, text: &str) -> bool {
    let pieces: Vec<&str> = template.split("<_>").collect();
    let source: Vec<String> = pieces.iter().map(|p| regex::escape(p)).collect();
    Regex::new(&format!("^(?s:{})$", source.join(".*")))
        .expect("a template")
        .is_match(text)
}

pub fn run(stages: &[Stage], line: &mut Line) -> bool {
    stages.iter().all(|stage| run_stage(stage, line))
}

fn run_stage(stage: &Stage, line: &mut Line) -> bool {
    match stage {
        Stage::Line {
            negate,
            kind,
            values,
        } => {
            let any = values.iter().any(|value| match kind {
                LineKind::Contains => line.text.contains(value.as_str()),
                LineKind::Regex => Regex::new(value).expect("a regex").is_match(&line.text),
                LineKind::Pattern => template_matches(value, &line.text),
            });
            any != *negate
        }
        Stage::Filter(filter) => filter_passes(filter, line),
        Stage::Json(extractions) => {
            json(line, extractions);
            true
        }
        Stage::Logfmt => {
            logfmt(line);
            true
        }
        Stage::Regexp(regex) => {
            if let Some(captures) = regex.captures(&line.text.clone()) {
                for name in regex.capture_names().flatten() {
                    if let Some(found) = captures.name(name) {
                        line.extract(name, found.as_str());
                    }
                }
            }
            true
        }
        Stage::Pattern(pattern) => {
            pattern_parser(line, pattern);
            true
        }
        Stage::Unpack => {
            unpack(line);
            true
        }
        Stage::Decolorize => {
            let ansi = Regex::new("\u{1b}\\[[0-9;]*[@-~]").expect("a regex");
            line.text = ansi.replace_all(&line.text, "").into_owned();
            true
        }
        Stage::LineFormat(template) => {
            line.text = render(template, line);
            true
        }
        Stage::LabelFormat(items) => {
            let mut values = Vec::new();
            for (to, format) in items {
                match format {
                    Format::Rename(from) => {
                        if let Some(value) = line.get(from) {
                            values.push((to.clone(), value.to_string(), Some(from.clone())));
                        }
                    }
                    Format::Template(template) => {
                        values.push((to.clone(), render(template, line), None));
                    }
                }
            }
            let targets: Vec<String> = items.iter().map(|(to, _)| to.clone()).collect();
            for (to, value, from) in values {
                line.set(&to, value);
                if let Some(from) = from
                    && from != to
                    && !targets.contains(&from)
                {
                    line.remove(&from);
                }
            }
            true
        }
        Stage::Drop(selections) => {
            for selection in selections {
                let (name, drops) = match selection {
                    Selection::Name(name) => (name, line.get(name).is_some()),
                    Selection::Matcher(m) => {
                        (&m.name, line.get(&m.name).is_some_and(|v| m.matches(v)))
                    }
                };
                if drops {
                    let name = name.clone();
                    line.remove(&name);
                }
            }
            true
        }
        Stage::Keep(selections) => {
            let keeps = |name: &str, value: &str| {
                selections.iter().any(|selection| match selection {
                    Selection::Name(kept) => kept == name,
                    Selection::Matcher(m) => m.name == name && m.matches(value),
                })
            };
            line.stream.retain(|(n, v)| keeps(n, v));
            line.metadata.retain(|(n, v)| keeps(n, v));
            line.parsed.retain(|(n, v)| keeps(n, v));
            if line.error.as_ref().is_some_and(|e| !keeps("__error__", e)) {
                line.error = None;
            }
            if line
                .details
                .as_ref()
                .is_some_and(|d| !keeps("__error_details__", d))
            {
                line.details = None;
            }
            true
        }
    }
}

/// `{{.name}}` and `{{__line__}}` only (what the corpus writes).
fn render(template: &str, line: &Line) -> String {
    let placeholder =
        Regex::new(r"\{\{\s*(\.[A-Za-z_][A-Za-z0-9_]*|__line__)\s*\}\}").expect("a regex");
    placeholder
        .replace_all(template, |captures: &regex::Captures| {
            let name = &captures[1];
            if name == "__line__" {
                line.text.clone()
            } else {
                line.get(&name[1..]).unwrap_or("").to_string()
            }
        })
        .into_owned()
}

fn filter_passes(filter: &Filter, line: &mut Line) -> bool {
    match filter {
        Filter::And(left, right) => {
            let left = filter_passes(left, line);
            let right = filter_passes(right, line);
            left && right
        }
        Filter::Or(left, right) => filter_passes(left, line) || filter_passes(right, line),
        Filter::Text(matcher) => {
            let value = line.get(&matcher.name).unwrap_or("").to_string();
            matcher.matches(&value)
        }
        Filter::Number(name, cmp, wanted) => numeric(line, name, *cmp, *wanted, |v| {
            let v = v.trim();
            if v != v.trim() || v.is_empty() {
                None
            } else {
                v.parse::<f64>().ok()
            }
        }),
        Filter::Duration(name, cmp, wanted) => {
            numeric(line, name, *cmp, *wanted, go_duration_seconds)
        }
        Filter::Bytes(name, cmp, wanted) => numeric(line, name, *cmp, *wanted, bytes),
    }
}

/// Loki's numeric filters: a line with an error passes, one without the
/// label does not, one whose value does not read gets `LabelFilterErr`
/// and passes.
fn numeric(
    line: &mut Line,
    name: &str,
    cmp: Cmp,
    wanted: f64,
    read: impl Fn(&str) -> Option<f64>,
) -> bool {
    if line.error.is_some() {
        return true;
    }
    let Some(value) = line.get(name).map(str::to_string) else {
        return false;
    };
    match read(&value) {
        Some(number) => cmp.holds(number, wanted),
        None => {
            line.set_error("LabelFilterErr");
            true
        }
    }
}

fn json_scalar(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        serde_json::Value::Bool(flag) => Some(flag.to_string()),
        serde_json::Value::Null => Some(String::new()),
        serde_json::Value::Object(_) | serde_json::Value::Array(_) => None,
    }
}

fn json(line: &mut Line, extractions: &[(String, Vec<String>)]) {
    let document: serde_json::Value = match serde_json::from_str(&line.text) {
        Ok(document @ serde_json::Value::Object(_)) => document,
        _ => {
            line.set_error("JSONParserErr");
            return;
        }
    };
    if !extractions.is_empty() {
        for (label, path) in extractions {
            let mut at = &document;
            let mut found = true;
            for step in path {
                match at.get(step) {
                    Some(next) => at = next,
                    None => found = false,
                }
            }
            let value = if found {
                json_scalar(at).unwrap_or_else(|| at.to_string())
            } else {
                String::new()
            };
            line.extract(label, &value);
        }
        return;
    }
    fn flatten(prefix: &str, value: &serde_json::Value, line: &mut Line) {
        let serde_json::Value::Object(members) = value else {
            return;
        };
        for (key, inner) in members {
            let name = if prefix.is_empty() {
                parsed_name(key)
            } else {
                format!("{prefix}_{}", parsed_name(key))
            };
            match inner {
                serde_json::Value::Object(_) => flatten(&name, inner, line),
                serde_json::Value::Array(_) => {}
                scalar => {
                    if let Some(text) = json_scalar(scalar) {
                        line.extract(&name, &text);
                    }
                }
            }
        }
    }
    flatten("", &document, line);
}

/// `key=value` and `key="quoted value"` pairs separated by spaces; pairs
/// without a value are left out (the corpus writes no malformed ones).
fn logfmt(line: &mut Line) {
    let text = line.text.clone();
    let chars: Vec<char> = text.chars().collect();
    let mut at = 0;
    while at < chars.len() {
        while at < chars.len() && chars[at] == ' ' {
            at += 1;
        }
        let start = at;
        while at < chars.len() && chars[at] != '=' && chars[at] != ' ' {
            at += 1;
        }
        let key: String = chars[start..at].iter().collect();
        if at >= chars.len() || chars[at] != '=' {
            continue;
        }
        at += 1;
        let mut value = String::new();
        if at < chars.len() && chars[at] == '"' {
            at += 1;
            while at < chars.len() && chars[at] != '"' {
                if chars[at] == '\\' && at + 1 < chars.len() {
                    at += 1;
                }
                value.push(chars[at]);
                at += 1;
            }
            at += 1;
        } else {
            while at < chars.len() && chars[at] != ' ' {
                value.push(chars[at]);
                at += 1;
            }
        }
        if !value.is_empty() && !key.is_empty() {
            line.extract(&parsed_name(&key), &value);
        }
    }
}

/// Loki's pattern parser: literals in order, each capture up to the next
/// literal (or the end).
fn pattern_parser(line: &mut Line, pattern: &str) {
    let token = Regex::new(r"<([A-Za-z_][A-Za-z0-9_]*)>").expect("a regex");
    let mut parts: Vec<(bool, String)> = Vec::new();
    let mut last = 0;
    for found in token.captures_iter(pattern) {
        let whole = found.get(0).expect("a match");
        if whole.start() > last {
            parts.push((false, pattern[last..whole.start()].to_string()));
        }
        parts.push((true, found[1].to_string()));
        last = whole.end();
    }
    if last < pattern.len() {
        parts.push((false, pattern[last..].to_string()));
    }
    let text = line.text.clone();
    if text.is_empty() {
        return;
    }
    let mut rest = text.as_str();
    let mut index = 0;
    if let Some((false, literal)) = parts.first() {
        let Some(after) = rest.strip_prefix(literal.as_str()) else {
            return;
        };
        rest = after;
        index = 1;
    }
    while index < parts.len() {
        let name = parts[index].1.clone();
        let keep = name != "_";
        match parts.get(index + 1) {
            None => {
                if keep {
                    line.extract(&name, rest);
                }
                return;
            }
            Some((_, literal)) => match rest.find(literal.as_str()) {
                Some(at) => {
                    if keep {
                        line.extract(&name, &rest[..at]);
                    }
                    rest = &rest[at + literal.len()..];
                }
                None => {
                    if keep {
                        line.extract(&name, rest);
                    }
                    return;
                }
            },
        }
        index += 2;
    }
}

fn unpack(line: &mut Line) {
    let Ok(serde_json::Value::Object(members)) = serde_json::from_str(&line.text) else {
        line.set_error("JSONParserErr");
        return;
    };
    let mut entry = None;
    for (key, value) in members {
        let serde_json::Value::String(text) = value else {
            continue;
        };
        if key == "_entry" {
            entry = Some(text);
        } else {
            line.extract(&parsed_name(&key), &text);
        }
    }
    if let Some(entry) = entry {
        line.text = entry;
    }
}
