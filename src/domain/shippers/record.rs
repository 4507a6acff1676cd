//! One of our logs from a shipper's record, within `LogLimits`.
//!
//! `/log` refuses a log that breaks a limit, and so does a protocol that can
//! refuse one record of a batch (Elasticsearch's per-item errors):
//! [`Oversize::Reject`]. Where a protocol has no per-record error (Loki,
//! syslog, OTLP apart from a missing body), refusing would lose the log
//! without anyone noticing, so the value is cut to the limit instead and the
//! attribute [`TRUNCATED_ATTRIBUTE`] lists what was cut: [`Oversize::Truncate`].

use crate::domain::attributes::Attributes;
use crate::domain::level::Level;
use crate::domain::parse::{LogLimits, NewLog};
use crate::domain::time::Micros;

/// The service of a record that names none (OpenTelemetry's convention).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Lists what was cut to fit the limits: `message`, `service`,
/// `attributes.<key>` (a value), `attribute_keys`, `attributes` (some
/// dropped over the count), comma-separated.
pub const TRUNCATED_ATTRIBUTE: &str = "oglogstream.truncated";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oversize {
    /// Cut the value to the limit and say so in an attribute.
    Truncate,
    /// Refuse the record with the same error `/log` gives.
    Reject,
}

/// Collects a record's attributes, then checks the whole log in `finish`.
pub struct RecordBuilder<'l> {
    limits: &'l LogLimits,
    oversize: Oversize,
    attributes: Attributes,
    cut: Vec<String>,
    /// The first limit a `Reject` record broke.
    error: Option<String>,
}

/// The fields every protocol supplies once it has found them.
pub struct Fields {
    pub level: Level,
    /// `None` or blank: [`UNKNOWN_SERVICE`].
    pub service: Option<String>,
    pub message: String,
    pub timestamp: Option<Micros>,
}

impl<'l> RecordBuilder<'l> {
    pub fn new(limits: &'l LogLimits, oversize: Oversize) -> RecordBuilder<'l> {
        RecordBuilder {
            limits,
            oversize,
            attributes: Attributes::new(),
            cut: Vec::new(),
            error: None,
        }
    }

    /// Adds (or replaces: later sources override earlier ones) an attribute.
    pub fn attribute(&mut self, key: &str, value: &str) {
        self.attribute_owned(key.to_string(), value.to_string());
    }

    pub fn attribute_owned(&mut self, mut key: String, mut value: String) {
        if self.error.is_some() {
            return;
        }
        if let Some(error) = self.limits.attribute_key_error(&key) {
            if self.oversize == Oversize::Reject || key.is_empty() {
                self.refuse_or_note(error, "attribute_keys");
                return;
            }
            truncate_bytes(&mut key, self.limits.max_attribute_key_bytes);
            self.note("attribute_keys");
        }
        if let Some(error) = self.limits.attribute_value_error(&value) {
            if self.oversize == Oversize::Reject {
                self.error = Some(format!("attribute {key}: {error}"));
                return;
            }
            truncate_bytes(&mut value, self.limits.max_attribute_value_bytes);
            self.note(&format!("attributes.{key}"));
        }
        let full = self.limits.attribute_count_error(self.attributes.len());
        match full {
            // A full set still takes a new value for a key it has.
            Some(error) if !self.attributes.contains_key(&key) => {
                self.refuse_or_note(error, "attributes")
            }
            _ => {
                self.attributes.insert(key, value);
            }
        }
    }

    pub fn has_attribute(&self, key: &str) -> bool {
        self.attributes.contains_key(key)
    }

    fn refuse_or_note(&mut self, error: String, what: &str) {
        match self.oversize {
            Oversize::Reject => self.error = Some(error),
            Oversize::Truncate => self.note(what),
        }
    }

    fn note(&mut self, what: &str) {
        if !self.cut.iter().any(|noted| noted == what) {
            self.cut.push(what.to_string());
        }
    }

    /// The log, or why it is refused (a limit under `Reject`, or no message).
    pub fn finish(mut self, fields: Fields) -> Result<NewLog, String> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        let Fields {
            level,
            service,
            mut message,
            timestamp,
        } = fields;
        if message.trim().is_empty() {
            return Err("the record has no message".into());
        }
        if let Some(error) = self.limits.message_error(&message) {
            if self.oversize == Oversize::Reject {
                return Err(error);
            }
            truncate_bytes(&mut message, self.limits.max_message_bytes);
            self.note("message");
        }
        let mut service = service
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| UNKNOWN_SERVICE.to_string());
        // Refused under every protocol, truncating or not: a record the
        // audit log would show as its own must never be stored.
        if crate::domain::audit::is_reserved_service(&service) {
            return Err(crate::domain::audit::RESERVED_SERVICE_ERROR.to_string());
        }
        if let Some(error) = self.limits.service_error(&service) {
            if self.oversize == Oversize::Reject {
                return Err(error);
            }
            truncate_chars(&mut service, self.limits.max_service_chars);
            self.note("service");
            // What a cut leaves must not be the reserved name either.
            if crate::domain::audit::is_reserved_service(&service) {
                return Err(crate::domain::audit::RESERVED_SERVICE_ERROR.to_string());
            }
        }
        if !self.cut.is_empty() && self.limits.max_attributes > 0 {
            if self.attributes.len() >= self.limits.max_attributes {
                // Room for the note: the last key goes (the order is the
                // map's, so which one is deterministic).
                self.attributes.pop_last();
                self.note("attributes");
            }
            let mut note = self.cut.join(",");
            truncate_bytes(&mut note, self.limits.max_attribute_value_bytes);
            // Our own key: not cut, so it can always be searched for.
            self.attributes
                .insert(TRUNCATED_ATTRIBUTE.to_string(), note);
        }
        Ok(NewLog {
            level,
            message,
            service,
            timestamp,
            attributes: self.attributes,
        })
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
pub fn truncate_bytes(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

fn truncate_chars(text: &mut String, max: usize) {
    if let Some((end, _)) = text.char_indices().nth(max) {
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_limits() -> LogLimits {
        LogLimits {
            max_message_bytes: 8,
            max_service_chars: 3,
            max_attributes: 3,
            max_attribute_key_bytes: 4,
            max_attribute_value_bytes: 50,
        }
    }

    fn fields(message: &str, service: Option<&str>) -> Fields {
        Fields {
            level: Level::Info,
            service: service.map(str::to_string),
            message: message.into(),
            timestamp: None,
        }
    }

    #[test]
    fn truncates_with_a_note_where_records_cannot_be_refused() {
        let limits = small_limits();
        let mut builder = RecordBuilder::new(&limits, Oversize::Truncate);
        builder.attribute("a", "1");
        builder.attribute("b", &"v".repeat(60));
        builder.attribute("c", "3");
        builder.attribute("d", "dropped: over the count");
        let log = builder
            .finish(fields("héllo wörld", Some("servicé")))
            .unwrap();
        assert_eq!(log.message, "héllo w", "cut at a character boundary");
        assert_eq!(log.service, "ser");
        assert_eq!(log.attributes.get("a").map(String::as_str), Some("1"));
        assert_eq!(log.attributes.get("b"), Some(&"v".repeat(50)));
        assert!(!log.attributes.contains_key("c"), "made room for the note");
        assert_eq!(log.attributes.len(), 3, "{:?}", log.attributes);
        assert_eq!(
            log.attributes.get(TRUNCATED_ATTRIBUTE).map(String::as_str),
            Some("attributes.b,attributes,message,service")
        );

        let mut builder = RecordBuilder::new(&limits, Oversize::Truncate);
        builder.attribute("longkey", "2");
        builder.attribute("", "no key: dropped");
        let log = builder.finish(fields("m", Some("s"))).unwrap();
        assert_eq!(log.attributes.get("long").map(String::as_str), Some("2"));
        assert_eq!(
            log.attributes.get(TRUNCATED_ATTRIBUTE).map(String::as_str),
            Some("attribute_keys")
        );
    }

    #[test]
    fn rejects_like_log_where_records_can_be_refused() {
        let limits = small_limits();
        let mut builder = RecordBuilder::new(&limits, Oversize::Reject);
        builder.attribute("b", &"v".repeat(60));
        let error = builder.finish(fields("m", None)).unwrap_err();
        assert_eq!(
            error,
            "attribute b: attribute value is 60 bytes; the limit is 50"
        );
        let builder = RecordBuilder::new(&limits, Oversize::Reject);
        assert!(builder.finish(fields("123456789", None)).is_err());
        let builder = RecordBuilder::new(&limits, Oversize::Reject);
        assert!(builder.finish(fields("m", Some("four"))).is_err());
        for oversize in [Oversize::Reject, Oversize::Truncate] {
            let builder = RecordBuilder::new(&limits, oversize);
            let error = builder
                .finish(fields("m", Some("oglogstream.audit")))
                .unwrap_err();
            assert!(error.contains("reserved"), "{error}");
        }
    }

    #[test]
    fn later_sources_override_and_defaults_apply() {
        let limits = LogLimits::default();
        let mut builder = RecordBuilder::new(&limits, Oversize::Truncate);
        builder.attribute("k", "resource");
        builder.attribute("k", "record");
        let log = builder.finish(fields("m", Some("  "))).unwrap();
        assert_eq!(log.service, UNKNOWN_SERVICE);
        assert_eq!(log.attributes.get("k").map(String::as_str), Some("record"));
        assert!(!log.attributes.contains_key(TRUNCATED_ATTRIBUTE));
        let builder = RecordBuilder::new(&limits, Oversize::Truncate);
        assert!(builder.finish(fields(" ", None)).is_err(), "no message");
    }
}
