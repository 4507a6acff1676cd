//! The label model: how a stored log looks to LogQL.
//!
//! - Stream (indexed) labels: `service_name` (the service) and the
//!   attributes named in `loki.stream_labels`, under their sanitized names.
//! - Structured metadata: `detected_level` (the level's name) and every
//!   other attribute under its sanitized name. When two keys sanitize
//!   alike (`http.status`, `http_status`), the first in key order gives the
//!   value here; pushed-down matchers test every such key (see
//!   `pushdown.rs`).
//! - Parsed labels: what `json`, `logfmt`, `regexp`, `pattern`, `unpack`
//!   and `label_format` add, plus `__error__` and `__error_details__`.
//!
//! A label a parser extracts under a stream label's name is renamed
//! `<name>_extracted`, as Loki does; the first parser to extract a name
//! wins over later ones; `label_format` overwrites. `level` reads as the
//! log's level name when no label of that name exists, so `level="error"`
//! works as Grafana users write it.

use crate::domain::{Level, LogRecord};

/// Loki's label name for an attribute key: every character other than an
/// ASCII letter, digit or `_` becomes `_`.
pub fn sanitize_label_name(key: &str) -> String {
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

/// Original attribute keys by sanitized label name, built from the keys a
/// store holds (its facets), for [`crate::domain::logql::AttributeKeys`]:
/// `let keys = AttributeKeyIndex::new(stored_keys); log.push_down(&|label|
/// keys.keys_for(label))`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttributeKeyIndex {
    by_label: std::collections::BTreeMap<String, Vec<String>>,
}

impl AttributeKeyIndex {
    pub fn new<I: IntoIterator<Item = String>>(keys: I) -> AttributeKeyIndex {
        let mut by_label: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for key in keys {
            let entry = by_label.entry(sanitize_label_name(&key)).or_default();
            if !entry.contains(&key) {
                entry.push(key);
            }
        }
        for keys in by_label.values_mut() {
            keys.sort();
        }
        AttributeKeyIndex { by_label }
    }

    /// The original keys of `label`, sorted; empty when none sanitizes to it.
    pub fn keys_for(&self, label: &str) -> Vec<String> {
        self.by_label.get(label).cloned().unwrap_or_default()
    }

    /// Every label name attributes give (for `labels`, `detected_fields`).
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.by_label.keys().map(String::as_str)
    }
}

pub const SERVICE_LABEL: &str = "service_name";
/// Whose a stream is, on a read over several tenants.
pub const TENANT_LABEL: &str = "__tenant_id__";
pub const LEVEL_LABEL: &str = "detected_level";
pub const LEVEL_ALIAS: &str = "level";
pub const ERROR_LABEL: &str = "__error__";
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";

/// The value `detected_level` has for a level; `fatal` also answers to
/// `critical` in matchers (see `pushdown.rs`).
pub fn level_label_value(level: Level) -> &'static str {
    level.as_str()
}

/// Which attributes are stream labels (`loki.stream_labels`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelModel {
    /// (label name, attribute key), in configuration order.
    stream_attributes: Vec<(String, String)>,
    /// A read over several tenants: streams carry `__tenant_id__`, as
    /// Loki's multi-tenant queries answer.
    tenant_label: bool,
}

impl LabelModel {
    /// `stream_label_keys`: attribute keys as stored (`k8s.namespace.name`).
    pub fn new(stream_label_keys: &[String]) -> LabelModel {
        LabelModel {
            stream_attributes: stream_label_keys
                .iter()
                .map(|key| (sanitize_label_name(key), key.clone()))
                .collect(),
            tenant_label: false,
        }
    }

    /// The same model for a read over several tenants.
    pub fn with_tenant_label(mut self, several_tenants: bool) -> LabelModel {
        self.tenant_label = several_tenants;
        self
    }

    /// Whether `label` is a stream label of every log (`service_name` or
    /// a configured one).
    pub fn is_stream_label(&self, label: &str) -> bool {
        label == SERVICE_LABEL || self.stream_attributes.iter().any(|(name, _)| name == label)
    }

    /// The stream labels of a log, sorted by name.
    pub fn stream_labels(&self, record: &LogRecord) -> Vec<(String, String)> {
        let mut labels = vec![(SERVICE_LABEL.to_string(), record.service.clone())];
        if self.tenant_label {
            labels.push((TENANT_LABEL.to_string(), record.tenant.to_string()));
        }
        for (name, key) in &self.stream_attributes {
            if let Some(value) = record.attributes.get(key)
                && !labels.iter().any(|(existing, _)| existing == name)
            {
                labels.push((name.clone(), value.clone()));
            }
        }
        labels.sort();
        labels
    }

    /// Every label of a log before any pipeline stage.
    pub fn line_labels(&self, record: &LogRecord) -> LineLabels {
        let stream = self.stream_labels(record);
        let mut metadata = vec![(
            LEVEL_LABEL.to_string(),
            level_label_value(record.level).to_string(),
        )];
        let is_stream_key = |key: &str| self.stream_attributes.iter().any(|(_, k)| k == key);
        for (key, value) in &record.attributes {
            if is_stream_key(key) {
                continue;
            }
            let name = sanitize_label_name(key);
            let taken = name == LEVEL_LABEL
                || stream.iter().any(|(existing, _)| *existing == name)
                || metadata.iter().any(|(existing, _)| *existing == name);
            if !taken {
                metadata.push((name, value.clone()));
            }
        }
        metadata.sort();
        LineLabels {
            stream,
            metadata,
            parsed: Vec::new(),
            error: None,
            error_details: None,
            level: record.level,
        }
    }
}

/// One line's labels while its pipeline runs.
#[derive(Clone, Debug, PartialEq)]
pub struct LineLabels {
    stream: Vec<(String, String)>,
    metadata: Vec<(String, String)>,
    parsed: Vec<(String, String)>,
    error: Option<String>,
    error_details: Option<String>,
    level: Level,
}

fn find<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(existing, _)| existing == name)
        .map(|(_, value)| value.as_str())
}

fn remove(labels: &mut Vec<(String, String)>, name: &str) {
    labels.retain(|(existing, _)| existing != name);
}

impl LineLabels {
    /// A label's value; `None` when the line has no such label.
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            ERROR_LABEL => return self.error.as_deref(),
            ERROR_DETAILS_LABEL => return self.error_details.as_deref(),
            _ => {}
        }
        find(&self.parsed, name)
            .or_else(|| find(&self.metadata, name))
            .or_else(|| find(&self.stream, name))
            .or_else(|| (name == LEVEL_ALIAS).then(|| level_label_value(self.level)))
    }

    pub fn has_error(&self) -> bool {
        self.error.is_some()
    }

    /// Records a stage's failure; the first error stays (Loki keeps one).
    pub fn set_error(&mut self, error: &str, details: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(error.to_string());
            self.error_details = Some(details.into());
        }
    }

    /// A label found by a parser: renamed `<name>_extracted` when a stream
    /// label has the name; ignored when an earlier parser found it.
    pub fn set_extracted(&mut self, name: &str, value: &str) {
        let name = if find(&self.stream, name).is_some() {
            format!("{name}_extracted")
        } else {
            name.to_string()
        };
        if find(&self.parsed, &name).is_some() {
            return;
        }
        remove(&mut self.metadata, &name);
        self.parsed.push((name, value.to_string()));
    }

    /// A label set by `label_format`: replaces the label wherever it was.
    pub fn set_formatted(&mut self, name: &str, value: String) {
        match name {
            ERROR_LABEL => self.error = Some(value),
            ERROR_DETAILS_LABEL => self.error_details = Some(value),
            _ => {
                remove(&mut self.stream, name);
                remove(&mut self.metadata, name);
                match self
                    .parsed
                    .iter_mut()
                    .find(|(existing, _)| existing == name)
                {
                    Some((_, existing)) => *existing = value,
                    None => self.parsed.push((name.to_string(), value)),
                }
            }
        }
    }

    pub fn remove(&mut self, name: &str) {
        match name {
            ERROR_LABEL => self.error = None,
            ERROR_DETAILS_LABEL => self.error_details = None,
            _ => {
                remove(&mut self.stream, name);
                remove(&mut self.metadata, name);
                remove(&mut self.parsed, name);
            }
        }
    }

    /// Keeps only the labels `keep` says yes to.
    pub fn retain(&mut self, keep: impl Fn(&str, &str) -> bool) {
        self.stream.retain(|(name, value)| keep(name, value));
        self.metadata.retain(|(name, value)| keep(name, value));
        self.parsed.retain(|(name, value)| keep(name, value));
        if let Some(error) = &self.error
            && !keep(ERROR_LABEL, error)
        {
            self.error = None;
        }
        if let Some(details) = &self.error_details
            && !keep(ERROR_DETAILS_LABEL, details)
        {
            self.error_details = None;
        }
    }

    /// Every name and value the line has (for templates and `keep`).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .stream
            .iter()
            .chain(&self.metadata)
            .chain(&self.parsed)
            .map(|(name, _)| name.clone())
            .collect();
        names.extend(self.error.as_ref().map(|_| ERROR_LABEL.to_string()));
        names.extend(
            self.error_details
                .as_ref()
                .map(|_| ERROR_DETAILS_LABEL.to_string()),
        );
        names
    }

    pub fn stream(&self) -> &[(String, String)] {
        &self.stream
    }

    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    /// Parsed labels with the error labels, sorted.
    pub fn parsed_sorted(&self) -> Vec<(String, String)> {
        let mut parsed = self.parsed.clone();
        if let Some(error) = &self.error {
            parsed.push((ERROR_LABEL.into(), error.clone()));
        }
        if let Some(details) = &self.error_details {
            parsed.push((ERROR_DETAILS_LABEL.into(), details.clone()));
        }
        parsed.sort();
        parsed
    }

    /// All labels as one sorted set (a later category wins a name).
    pub fn merged(&self) -> Vec<(String, String)> {
        let mut merged: Vec<(String, String)> = Vec::new();
        for (name, value) in self
            .stream
            .iter()
            .chain(&self.metadata)
            .cloned()
            .chain(self.parsed_sorted())
        {
            match merged.iter_mut().find(|(existing, _)| *existing == name) {
                Some((_, existing)) => *existing = value,
                None => merged.push((name, value)),
            }
        }
        merged.sort();
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LogRecord {
        LogRecord {
            id: "1".into(),
            timestamp: 0,
            level: Level::Error,
            service: "checkout".into(),
            message: "m".into(),
            attributes: [
                ("http.status", "500"),
                ("http_status", "501"),
                ("k8s.namespace.name", "prod"),
                ("detected_level", "x"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn key_index_groups_keys_by_label() {
        let index = AttributeKeyIndex::new(
            ["http_status", "http.status", "env", "http.status"].map(String::from),
        );
        assert_eq!(
            index.keys_for("http_status"),
            ["http.status", "http_status"]
        );
        assert_eq!(index.keys_for("env"), ["env"]);
        assert!(index.keys_for("nope").is_empty());
        assert_eq!(index.labels().collect::<Vec<_>>(), ["env", "http_status"]);
    }

    #[test]
    fn stream_labels_metadata_and_parsed() {
        assert_eq!(
            sanitize_label_name("k8s.namespace-name/x"),
            "k8s_namespace_name_x"
        );
        let model = LabelModel::new(&["k8s.namespace.name".into()]);
        let mut labels = model.line_labels(&record());
        assert_eq!(
            labels.stream(),
            [
                ("k8s_namespace_name".to_string(), "prod".to_string()),
                ("service_name".into(), "checkout".into())
            ]
        );
        assert_eq!(
            labels.metadata(),
            [
                ("detected_level".to_string(), "error".to_string()),
                ("http_status".into(), "500".into())
            ]
        );
        assert_eq!(labels.get("level"), Some("error"));
        labels.set_extracted("service_name", "other");
        labels.set_extracted("level", "warn");
        labels.set_extracted("level", "info");
        assert_eq!(labels.get("service_name_extracted"), Some("other"));
        assert_eq!(labels.get("level"), Some("warn"), "the first parser wins");
        labels.set_extracted("http_status", "200");
        assert_eq!(labels.get("http_status"), Some("200"));
        assert!(
            labels
                .metadata()
                .iter()
                .all(|(name, _)| name != "http_status")
        );
        labels.set_error("JSONParserErr", "bad");
        labels.set_error("LogfmtParserErr", "worse");
        assert_eq!(labels.get("__error__"), Some("JSONParserErr"));
        labels.set_formatted("level", "x".into());
        assert_eq!(labels.get("level"), Some("x"));
        labels.remove("__error__");
        assert_eq!(labels.get("__error__"), None);
        assert!(
            labels
                .merged()
                .iter()
                .any(|(n, v)| n == "__error_details__" && v == "bad")
        );
    }
}
