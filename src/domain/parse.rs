//! Parsing and validating ingest bodies: one JSON log, a JSON array of logs,
//! or NDJSON. Every failure names the field to fix, so the HTTP layer can answer
//! `{"error": ..., "field": ...}` without knowing JSON.
//!
//! The single-log parser streams the object through a hand-written visitor
//! instead of building a `serde_json::Value`: it allocates only the strings it
//! keeps, and it knows which field it was reading when something went wrong.

use super::attributes::Attributes;
use super::flatten::{Arrays, FlatSink, FlattenJson, KeyPath};
use super::level::Level;
use super::time::{Micros, parse_rfc3339};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fmt;

/// Size rules of one log. Defaults follow the seed's contract (message 10 KB,
/// service 100 characters) plus attribute limits of our own.
#[derive(Clone, Debug)]
pub struct LogLimits {
    pub max_message_bytes: usize,
    pub max_service_chars: usize,
    pub max_attributes: usize,
    pub max_attribute_key_bytes: usize,
    pub max_attribute_value_bytes: usize,
}

/// The limit rules, as the error a log breaking them gets. The JSON parser
/// refuses such a log; the shippers' decoders (`domain::shippers`) refuse it
/// or truncate the value, as their protocol allows, with the same numbers.
impl LogLimits {
    pub fn message_error(&self, message: &str) -> Option<String> {
        (message.len() > self.max_message_bytes).then(|| {
            format!(
                "message is {} bytes; the limit is {} bytes",
                message.len(),
                self.max_message_bytes
            )
        })
    }

    pub fn service_error(&self, service: &str) -> Option<String> {
        let chars = service.chars().count();
        (chars > self.max_service_chars).then(|| {
            format!(
                "service is {chars} characters; the limit is {}",
                self.max_service_chars
            )
        })
    }

    /// `present` attributes are already kept; may one more be added?
    pub fn attribute_count_error(&self, present: usize) -> Option<String> {
        (present >= self.max_attributes)
            .then(|| format!("too many attributes: the limit is {}", self.max_attributes))
    }

    pub fn attribute_key_error(&self, key: &str) -> Option<String> {
        (key.is_empty() || key.len() > self.max_attribute_key_bytes).then(|| {
            format!(
                "attribute keys must be 1 to {} bytes",
                self.max_attribute_key_bytes
            )
        })
    }

    pub fn attribute_value_error(&self, value: &str) -> Option<String> {
        (value.len() > self.max_attribute_value_bytes).then(|| {
            format!(
                "attribute value is {} bytes; the limit is {}",
                value.len(),
                self.max_attribute_value_bytes
            )
        })
    }
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_message_bytes: 10 * 1024,
            max_service_chars: 100,
            max_attributes: 64,
            max_attribute_key_bytes: 128,
            max_attribute_value_bytes: 2048,
        }
    }
}

/// A log that passed validation but has no id yet.
#[derive(Clone, Debug, PartialEq)]
pub struct NewLog {
    pub level: Level,
    pub message: String,
    pub service: String,
    pub timestamp: Option<Micros>,
    pub attributes: Attributes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidLog {
    /// The JSON field at fault (`attributes.region` for an attribute), if any.
    pub field: Option<String>,
    pub message: String,
}

impl InvalidLog {
    fn new(field: &str, message: impl Into<String>) -> InvalidLog {
        InvalidLog {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    fn body(message: impl Into<String>) -> InvalidLog {
        InvalidLog {
            field: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for InvalidLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Parses one JSON object: `{level, message, service, timestamp?, attributes?}`.
pub fn parse_log(body: &[u8], limits: &LogLimits) -> Result<NewLog, InvalidLog> {
    let text = std::str::from_utf8(body).map_err(|e| {
        InvalidLog::body(format!(
            "body is not valid UTF-8 (bad byte at offset {}): send UTF-8 JSON",
            e.valid_up_to()
        ))
    })?;
    parse_log_str(text, limits)
}

pub fn parse_log_str(text: &str, limits: &LogLimits) -> Result<NewLog, InvalidLog> {
    let tracker = FieldTracker::default();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let raw = RawLogSeed {
        tracker: &tracker,
        limits,
    }
    .deserialize(&mut deserializer)
    .and_then(|raw| deserializer.end().map(|_| raw))
    .map_err(|e| InvalidLog {
        field: tracker.take(),
        message: describe_json_error(&e),
    })?;
    raw.validate(limits)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkFormat {
    JsonArray,
    Ndjson,
}

#[derive(Debug, PartialEq)]
pub struct RejectedEntry {
    /// Position among the entries (array index, or non-blank NDJSON line count).
    pub index: usize,
    /// 1-based line number in an NDJSON body.
    pub line: Option<usize>,
    pub error: InvalidLog,
}

#[derive(Debug, Default)]
pub struct BulkOutcome {
    pub accepted: Vec<NewLog>,
    pub rejected: Vec<RejectedEntry>,
}

/// Parses a bulk body. Entries are judged one by one; only a body that is not
/// an array at all (or not UTF-8, for an array) fails as a whole.
pub fn parse_bulk(
    body: &[u8],
    format: BulkFormat,
    limits: &LogLimits,
) -> Result<BulkOutcome, InvalidLog> {
    match format {
        BulkFormat::JsonArray => parse_json_array(body, limits),
        BulkFormat::Ndjson => Ok(parse_ndjson(body, limits)),
    }
}

fn parse_json_array(body: &[u8], limits: &LogLimits) -> Result<BulkOutcome, InvalidLog> {
    let text = std::str::from_utf8(body).map_err(|e| {
        InvalidLog::body(format!(
            "body is not valid UTF-8 (bad byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let entries: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
        InvalidLog::body(format!(
            "body must be a JSON array of log objects: {} (send application/x-ndjson to have each line judged on its own)",
            describe_json_error(&e)
        ))
    })?;
    let mut outcome = BulkOutcome {
        accepted: Vec::with_capacity(entries.len()),
        rejected: Vec::new(),
    };
    for (index, entry) in entries.into_iter().enumerate() {
        match parse_log_str(entry.get(), limits) {
            Ok(log) => outcome.accepted.push(log),
            Err(error) => outcome.rejected.push(RejectedEntry {
                index,
                line: None,
                error,
            }),
        }
    }
    Ok(outcome)
}

fn parse_ndjson(body: &[u8], limits: &LogLimits) -> BulkOutcome {
    let mut outcome = BulkOutcome::default();
    let mut index = 0;
    // memchr finds line ends many bytes at a time; splitting with a per-byte
    // closure cost ~5% of bulk ingest.
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    for (line_index, end) in ends.enumerate() {
        let line = &body[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_log(line, limits) {
            Ok(log) => outcome.accepted.push(log),
            Err(error) => outcome.rejected.push(RejectedEntry {
                index,
                line: Some(line_index + 1),
                error,
            }),
        }
        index += 1;
    }
    outcome
}

/// serde_json's messages are good; they only need their field context, which
/// the tracker supplies separately.
fn describe_json_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof => format!("malformed JSON: {error}"),
        Category::Data | Category::Io => error.to_string(),
    }
}

/// Remembers which field the parser was in, for error messages.
#[derive(Default)]
struct FieldTracker {
    known: Cell<Option<&'static str>>,
    /// Only set on the error path (unknown fields, attribute keys).
    dynamic: RefCell<Option<String>>,
}

impl FieldTracker {
    fn enter(&self, field: &'static str) {
        self.known.set(Some(field));
    }

    fn blame(&self, field: String) {
        *self.dynamic.borrow_mut() = Some(field);
    }

    fn take(&self) -> Option<String> {
        self.dynamic
            .borrow_mut()
            .take()
            .or_else(|| self.known.get().map(str::to_string))
    }
}

#[derive(Default)]
struct RawLog {
    level: Option<Level>,
    message: Option<String>,
    service: Option<String>,
    timestamp: Option<Micros>,
    attributes: Option<Attributes>,
}

impl RawLog {
    fn validate(self, limits: &LogLimits) -> Result<NewLog, InvalidLog> {
        let level = self.level.ok_or_else(|| {
            InvalidLog::new(
                "level",
                format!("level is required: one of {}", Level::NAMES),
            )
        })?;
        let message = self
            .message
            .ok_or_else(|| InvalidLog::new("message", "message is required"))?;
        if message.trim().is_empty() {
            return Err(InvalidLog::new("message", "message must not be empty"));
        }
        if let Some(error) = limits.message_error(&message) {
            return Err(InvalidLog::new("message", error));
        }
        let service = self
            .service
            .ok_or_else(|| InvalidLog::new("service", "service is required"))?;
        if service.trim().is_empty() {
            return Err(InvalidLog::new("service", "service must not be empty"));
        }
        if let Some(error) = limits.service_error(&service) {
            return Err(InvalidLog::new("service", error));
        }
        if super::audit::is_reserved_service(&service) {
            return Err(InvalidLog::new(
                "service",
                super::audit::RESERVED_SERVICE_ERROR,
            ));
        }
        Ok(NewLog {
            level,
            message,
            service,
            timestamp: self.timestamp,
            attributes: self.attributes.unwrap_or_default(),
        })
    }
}

struct RawLogSeed<'a> {
    tracker: &'a FieldTracker,
    limits: &'a LogLimits,
}

impl<'de> DeserializeSeed<'de> for RawLogSeed<'_> {
    type Value = RawLog;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawLog, D::Error> {
        deserializer.deserialize_map(self)
    }
}

enum Field {
    Level,
    Message,
    Service,
    Timestamp,
    Attributes,
    Unknown,
}

/// Reads a key without allocating unless it is unknown (then it is recorded).
struct FieldSeed<'a>(&'a FieldTracker);

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Field, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
        Ok(match key {
            "level" => Field::Level,
            "message" => Field::Message,
            "service" => Field::Service,
            "timestamp" => Field::Timestamp,
            "attributes" => Field::Attributes,
            other => {
                self.0.blame(other.to_string());
                Field::Unknown
            }
        })
    }
}

impl<'de> Visitor<'de> for RawLogSeed<'_> {
    type Value = RawLog;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with level, message and service")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawLog, A::Error> {
        let mut raw = RawLog::default();
        while let Some(field) = map.next_key_seed(FieldSeed(self.tracker))? {
            match field {
                Field::Level => {
                    self.tracker.enter("level");
                    reject_duplicate(raw.level.is_some(), "level")?;
                    raw.level = Some(map.next_value_seed(LevelSeed)?);
                }
                Field::Message => {
                    self.tracker.enter("message");
                    reject_duplicate(raw.message.is_some(), "message")?;
                    raw.message = Some(map.next_value()?);
                }
                Field::Service => {
                    self.tracker.enter("service");
                    reject_duplicate(raw.service.is_some(), "service")?;
                    raw.service = Some(map.next_value()?);
                }
                Field::Timestamp => {
                    self.tracker.enter("timestamp");
                    reject_duplicate(raw.timestamp.is_some(), "timestamp")?;
                    raw.timestamp = map.next_value_seed(OptionalSeed(TimestampSeed))?;
                }
                Field::Attributes => {
                    self.tracker.enter("attributes");
                    reject_duplicate(raw.attributes.is_some(), "attributes")?;
                    raw.attributes = map.next_value_seed(OptionalSeed(AttributesSeed {
                        tracker: self.tracker,
                        limits: self.limits,
                    }))?;
                }
                Field::Unknown => {
                    return Err(de::Error::custom(
                        "unknown field: allowed fields are level, message, service, timestamp, attributes",
                    ));
                }
            }
        }
        Ok(raw)
    }
}

fn reject_duplicate<E: de::Error>(seen: bool, field: &str) -> Result<(), E> {
    if seen {
        return Err(E::custom(format!("duplicate field {field}")));
    }
    Ok(())
}

struct LevelSeed;

impl<'de> DeserializeSeed<'de> for LevelSeed {
    type Value = Level;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Level, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for LevelSeed {
    type Value = Level;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a level string: one of {}", Level::NAMES)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Level, E> {
        Level::parse(text).ok_or_else(|| {
            E::custom(format!(
                "unknown level {text:?}: use one of {}",
                Level::NAMES
            ))
        })
    }
}

struct TimestampSeed;

impl<'de> DeserializeSeed<'de> for TimestampSeed {
    type Value = Micros;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Micros, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TimestampSeed {
    type Value = Micros;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp string")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Micros, E> {
        parse_rfc3339(text).map_err(E::custom)
    }
}

/// `null` means "not given" for the optional fields.
struct OptionalSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for OptionalSeed<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for OptionalSeed<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(deserializer).map(Some)
    }
}

struct AttributesSeed<'a> {
    tracker: &'a FieldTracker,
    limits: &'a LogLimits,
}

impl<'de> DeserializeSeed<'de> for AttributesSeed<'_> {
    type Value = Attributes;

    /// Structured loggers' attributes: strings as they are, numbers and
    /// booleans as their JSON text, nested objects flattened to dotted keys
    /// (the shippers' flattening), `null` dropped; arrays refused. Every
    /// flattened leaf counts against the same limits a string did.
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Attributes, D::Error> {
        let mut path = KeyPath::default();
        let mut sink = AttributeSink {
            limits: self.limits,
            attributes: Attributes::new(),
            refused: None,
        };
        let flattened = FlattenJson::new(&mut path, &mut sink)
            .arrays(Arrays::Refuse)
            .object(deserializer);
        if let Err(error) = flattened {
            // The path still names the value being read when it failed.
            if !path.as_str().is_empty() {
                self.tracker.blame(format!("attributes.{}", path.as_str()));
            }
            return Err(error);
        }
        match sink.refused {
            Some((key, error)) => {
                self.tracker.blame(format!("attributes.{key}"));
                Err(de::Error::custom(error))
            }
            None => Ok(sink.attributes),
        }
    }
}

/// Keeps the flattened attributes within the limits; the first one that
/// breaks a rule is remembered (with its key) and ends the keeping.
struct AttributeSink<'a> {
    limits: &'a LogLimits,
    attributes: Attributes,
    refused: Option<(String, String)>,
}

impl FlatSink for AttributeSink<'_> {
    fn leaf(&mut self, key: &str, value: Cow<'_, str>) {
        if self.refused.is_some() {
            return;
        }
        let limits = self.limits;
        let error = limits
            .attribute_count_error(self.attributes.len())
            .or_else(|| limits.attribute_key_error(key))
            .or_else(|| limits.attribute_value_error(&value))
            .or_else(|| {
                self.attributes
                    .contains_key(key)
                    .then(|| "duplicate attribute key".to_string())
            });
        match error {
            Some(error) => self.refused = Some((key.to_string(), error)),
            None => {
                self.attributes.insert(key.to_string(), value.into_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NewLog, InvalidLog> {
        parse_log(text.as_bytes(), &LogLimits::default())
    }

    fn field_of(text: &str) -> Option<String> {
        parse(text).expect_err("should be rejected").field
    }

    #[test]
    fn accepts_the_seed_shape() {
        let log = parse(r#"{"level":"INFO","message":"hi","service":"web","timestamp":"2025-01-01T12:00:00.5Z","attributes":{"region":"eu"}}"#).unwrap();
        assert_eq!(log.level, Level::Info);
        assert_eq!(log.timestamp, Some(1_735_732_800_500_000));
        assert_eq!(log.attributes.get("region").map(String::as_str), Some("eu"));
    }

    #[test]
    fn null_optionals_mean_absent() {
        let log = parse(
            r#"{"level":"warn","message":"m","service":"s","timestamp":null,"attributes":null}"#,
        )
        .unwrap();
        assert_eq!(log.timestamp, None);
        assert!(log.attributes.is_empty());
    }

    #[test]
    fn each_rule_names_its_field() {
        assert_eq!(
            field_of(r#"{"message":"m","service":"s"}"#).as_deref(),
            Some("level")
        );
        assert_eq!(
            field_of(r#"{"level":"loud","message":"m","service":"s"}"#).as_deref(),
            Some("level")
        );
        assert_eq!(
            field_of(r#"{"level":5,"message":"m","service":"s"}"#).as_deref(),
            Some("level")
        );
        assert_eq!(
            field_of(r#"{"level":"info","message":"","service":"s"}"#).as_deref(),
            Some("message")
        );
        assert_eq!(
            field_of(r#"{"level":"info","message":["m"],"service":"s"}"#).as_deref(),
            Some("message")
        );
        assert_eq!(
            field_of(r#"{"level":"info","message":"m","service":" "}"#).as_deref(),
            Some("service")
        );
        assert_eq!(
            field_of(r#"{"level":"info","message":"m","service":"OGLogStream.Audit"}"#).as_deref(),
            Some("service"),
            "the audit log's service is reserved"
        );
        assert_eq!(
            field_of(r#"{"level":"info","message":"m","service":"s","timestamp":"noon"}"#)
                .as_deref(),
            Some("timestamp")
        );
        assert_eq!(
            field_of(r#"{"level":"info","message":"m","service":"s","color":"red"}"#).as_deref(),
            Some("color")
        );
        assert_eq!(
            field_of(
                r#"{"level":"info","message":"m","service":"s","attributes":{"a":{"b":["c"]}}}"#
            )
            .as_deref(),
            Some("attributes.a.b")
        );
        assert_eq!(
            field_of(r#"{"level":"info","message":"m","service":"s","attributes":"n=1"}"#)
                .as_deref(),
            Some("attributes")
        );
        assert_eq!(
            field_of(r#"{"level":"info","level":"warn","message":"m","service":"s"}"#).as_deref(),
            Some("level")
        );
    }

    #[test]
    fn attributes_as_structured_loggers_send_them() {
        let log = parse(
            r#"{"level":"info","message":"m","service":"s","attributes":{
                "text":"as is","count":3,"big":18446744073709551615,"negative":-7,
                "ratio":0.25,"exp":1e21,"ok":true,"cached":false,"gone":null,
                "http":{"method":"GET","status":200,"timing":{"ms":1.5},"none":null},
                "empty":{}}}"#,
        )
        .unwrap();
        let pairs: Vec<(&str, &str)> = log
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("big", "18446744073709551615"),
                ("cached", "false"),
                ("count", "3"),
                ("exp", "1e+21"),
                ("http.method", "GET"),
                ("http.status", "200"),
                ("http.timing.ms", "1.5"),
                ("negative", "-7"),
                ("ok", "true"),
                ("ratio", "0.25"),
                ("text", "as is"),
            ]
        );
    }

    #[test]
    fn flattened_attributes_keep_the_rules() {
        let refused = |attributes: &str| {
            let body = format!(
                r#"{{"level":"info","message":"m","service":"s","attributes":{attributes}}}"#
            );
            let error = parse(&body).expect_err(attributes);
            (error.field.unwrap_or_default(), error.message)
        };
        let (field, message) = refused(r#"{"tags":["a","b"]}"#);
        assert_eq!(field, "attributes.tags");
        assert!(message.contains("arrays are not accepted"), "{message}");
        let (field, message) = refused(r#"{"a.b":"x","a":{"b":"y"}}"#);
        assert_eq!(field, "attributes.a.b");
        assert!(message.starts_with("duplicate attribute key"), "{message}");
        let limits = LogLimits::default();
        let long_key = format!(
            r#"{{"outer":{{"{}":1}}}}"#,
            "k".repeat(limits.max_attribute_key_bytes)
        );
        let (field, message) = refused(&long_key);
        assert!(field.starts_with("attributes.outer.k"), "{field}");
        assert!(message.contains("attribute keys must be"), "{message}");
        let nested: Vec<String> = (0..=limits.max_attributes)
            .map(|i| format!(r#""k{i}":{i}"#))
            .collect();
        let (_, message) = refused(&format!(r#"{{"n":{{{}}}}}"#, nested.join(",")));
        assert!(message.contains("too many attributes"), "{message}");
        let (field, message) = refused(&format!(
            r#"{{"deep":{{"v":"{}"}}}}"#,
            "v".repeat(limits.max_attribute_value_bytes + 1)
        ));
        assert_eq!(field, "attributes.deep.v");
        assert!(message.contains("attribute value is"), "{message}");
    }

    #[test]
    fn size_limits() {
        let limits = LogLimits::default();
        let long = "x".repeat(limits.max_message_bytes + 1);
        let body = format!(r#"{{"level":"info","message":"{long}","service":"s"}}"#);
        let error = parse(&body).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("message"));
        assert!(error.message.contains("10240"), "{}", error.message);

        let service = "é".repeat(100);
        assert!(
            parse(&format!(
                r#"{{"level":"info","message":"m","service":"{service}"}}"#
            ))
            .is_ok()
        );
        let service = "é".repeat(101);
        assert!(
            parse(&format!(
                r#"{{"level":"info","message":"m","service":"{service}"}}"#
            ))
            .is_err()
        );

        let many: Vec<String> = (0..=limits.max_attributes)
            .map(|i| format!(r#""k{i}":"v""#))
            .collect();
        let body = format!(
            r#"{{"level":"info","message":"m","service":"s","attributes":{{{}}}}}"#,
            many.join(",")
        );
        assert!(
            parse(&body)
                .unwrap_err()
                .message
                .contains("too many attributes")
        );
    }

    #[test]
    fn malformed_and_non_utf8_bodies() {
        assert!(
            parse("{")
                .unwrap_err()
                .message
                .starts_with("malformed JSON")
        );
        assert!(parse("[]").is_err());
        assert!(parse(r#"{"level":"info","message":"m","service":"s"} trailing"#).is_err());
        let error = parse_log(
            b"{\"level\":\"info\",\"message\":\"\xff\",\"service\":\"s\"}",
            &LogLimits::default(),
        )
        .unwrap_err();
        assert!(error.message.contains("UTF-8"));
    }

    #[test]
    fn bulk_array_judges_each_entry() {
        let body = br#"[{"level":"info","message":"a","service":"s"},{"level":"nope","message":"b","service":"s"},{"level":"error","message":"c","service":"s"}]"#;
        let outcome = parse_bulk(body, BulkFormat::JsonArray, &LogLimits::default()).unwrap();
        assert_eq!(outcome.accepted.len(), 2);
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(outcome.rejected[0].index, 1);
        assert!(parse_bulk(b"{}", BulkFormat::JsonArray, &LogLimits::default()).is_err());
    }

    #[test]
    fn bulk_ndjson_reports_lines() {
        let body = b"{\"level\":\"info\",\"message\":\"a\",\"service\":\"s\"}\r\n\n{oops\n{\"level\":\"debug\",\"message\":\"c\",\"service\":\"s\"}\n";
        let outcome = parse_bulk(body, BulkFormat::Ndjson, &LogLimits::default()).unwrap();
        assert_eq!(outcome.accepted.len(), 2);
        assert_eq!(outcome.rejected[0].index, 1);
        assert_eq!(outcome.rejected[0].line, Some(3));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap stand-in for the fuzz targets: every prefix of a valid body
        // and a sweep of byte values must produce an answer, not a panic.
        let valid = br#"{"level":"info","message":"m\u00e9","service":"s","attributes":{"k":"v"}}"#;
        for end in 0..valid.len() {
            let _ = parse_log(&valid[..end], &LogLimits::default());
            let _ = parse_bulk(&valid[..end], BulkFormat::Ndjson, &LogLimits::default());
        }
        for byte in 0..=255u8 {
            let mut body = valid.to_vec();
            body[20] = byte;
            let _ = parse_log(&body, &LogLimits::default());
        }
    }
}
