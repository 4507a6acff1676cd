//! OTLP/HTTP logs (`POST /v1/logs`): an `ExportLogsServiceRequest` as
//! protobuf or OTLP/JSON, to our logs; and the answers, in the request's
//! encoding.
//!
//! Both encodings are read into one borrowed model ([`AnyValue`],
//! [`Record`]) and mapped by one function: resource `service.name` is the
//! service, the severity number (or text) the level, the body the message,
//! `time_unix_nano` (else `observed_time_unix_nano`) the timestamp; the
//! resource's, scope's and record's attributes, flattened to dotted keys,
//! are the attributes (a record's own override its scope's, which override
//! its resource's), with `trace_id`/`span_id` in lowercase hex. A record
//! without a body is refused; nothing else is (over-long values are cut, see
//! `record`).

use crate::domain::level::Level;
use crate::domain::parse::LogLimits;
use crate::domain::shippers::flatten::{FlatSink, KeyPath, double_text};
use crate::domain::shippers::protobuf::{
    Fields, ProtobufError, Value, put_bytes_field, put_varint_field, values_of,
};
use crate::domain::shippers::record::{Fields as LogFields, Oversize, RecordBuilder};
use crate::domain::shippers::{DecodeError, Decoded, RejectedRecord};
use crate::domain::time::{MAX_MICROS, Micros};
use base64::Engine;
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json` (OTLP/JSON)
    Json,
}

/// Severity numbers to levels: each row is the first number of a range of
/// four (TRACE 1–4 … FATAL 21–24). Trace has no level of its own: debug.
const SEVERITY_RANGES: [(i64, Level); 6] = [
    (1, Level::Debug),
    (5, Level::Debug),
    (9, Level::Info),
    (13, Level::Warn),
    (17, Level::Error),
    (21, Level::Fatal),
];

/// OTLP/JSON may name the enum: `SEVERITY_NUMBER_WARN2` is 14.
const SEVERITY_NAMES: [(&str, i64); 6] = [
    ("TRACE", 1),
    ("DEBUG", 5),
    ("INFO", 9),
    ("WARN", 13),
    ("ERROR", 17),
    ("FATAL", 21),
];

/// The resource attribute that names the service.
const SERVICE_ATTRIBUTE: &str = "service.name";

/// `AnyValue`s nested deeper than this are refused (the protobuf reader
/// recurses; serde_json bounds the JSON form at 128 itself).
const MAX_NESTING: usize = 32;

pub fn level_of(severity_number: i64, severity_text: &str) -> Level {
    if (1..=24).contains(&severity_number) {
        return SEVERITY_RANGES
            .iter()
            .rev()
            .find(|(first, _)| severity_number >= *first)
            .map(|(_, level)| *level)
            .unwrap_or(Level::Info);
    }
    Level::parse_alias(severity_text.trim()).unwrap_or(Level::Info)
}

fn severity_number_named(name: &str) -> Option<i64> {
    let name = name.strip_prefix("SEVERITY_NUMBER_").unwrap_or(name);
    if name == "UNSPECIFIED" {
        return Some(0);
    }
    let (base, step) = match name.as_bytes().last() {
        Some(digit @ b'2'..=b'4') => (&name[..name.len() - 1], i64::from(digit - b'1')),
        _ => (name, 0),
    };
    SEVERITY_NAMES
        .iter()
        .find(|(known, _)| *known == base)
        .map(|(_, first)| first + step)
}

/// An attribute value or a body, borrowed from the request where possible.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyValue<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Cow<'a, [u8]>),
    Array(Vec<AnyValue<'a>>),
    KvList(Vec<(Cow<'a, str>, AnyValue<'a>)>),
    Empty,
}

type KeyValues<'a> = Vec<(Cow<'a, str>, AnyValue<'a>)>;

#[derive(Debug, Default)]
pub struct Scope<'a> {
    pub name: Cow<'a, str>,
    pub version: Cow<'a, str>,
    pub attributes: KeyValues<'a>,
}

#[derive(Debug, Default)]
pub struct Record<'a> {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i64,
    pub severity_text: Cow<'a, str>,
    pub body: Option<AnyValue<'a>>,
    pub attributes: KeyValues<'a>,
    /// Lowercase hex.
    pub trace_id: String,
    pub span_id: String,
    pub event_name: Cow<'a, str>,
}

pub fn decode(body: &[u8], encoding: Encoding, limits: &LogLimits) -> Result<Decoded, DecodeError> {
    let mut mapper = Mapper::new(limits, None);
    match encoding {
        Encoding::Protobuf => decode_protobuf(body, &mut mapper)?,
        Encoding::Json => decode_json(body, &mut mapper)?,
    }
    Ok(mapper.decoded)
}

/// The logs of one `ResourceLogs`, in order: the value of the resource
/// attribute that names a tenant (`tenants.otlp_attribute`), if it has one,
/// and how many of the decoded logs came from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRun {
    pub tenant: Option<String>,
    pub logs: usize,
}

/// As [`decode`], also saying which logs came from which resource and the
/// tenant each resource names in `attribute` (kept among the attributes
/// too). The runs cover `logs` in order; refused records are in none.
pub fn decode_by_resource(
    body: &[u8],
    encoding: Encoding,
    limits: &LogLimits,
    attribute: &str,
) -> Result<(Decoded, Vec<ResourceRun>), DecodeError> {
    let mut mapper = Mapper::new(limits, Some(attribute));
    match encoding {
        Encoding::Protobuf => decode_protobuf(body, &mut mapper)?,
        Encoding::Json => decode_json(body, &mut mapper)?,
    }
    mapper.close_run();
    Ok((mapper.decoded, mapper.runs))
}

/// Maps records to logs, one resource and one scope at a time.
struct Mapper<'l> {
    limits: &'l LogLimits,
    decoded: Decoded,
    records_seen: usize,
    service: Option<String>,
    /// The current resource's and scope's attributes, flattened once.
    resource_leaves: Vec<(String, String)>,
    scope_leaves: Vec<(String, String)>,
    /// The resource attribute naming a tenant, when the caller asks for
    /// runs; the current resource's value of it and where its logs start.
    tenant_attribute: Option<&'l str>,
    resource_tenant: Option<String>,
    run_start: usize,
    runs: Vec<ResourceRun>,
}

impl<'l> Mapper<'l> {
    fn new(limits: &'l LogLimits, tenant_attribute: Option<&'l str>) -> Mapper<'l> {
        Mapper {
            limits,
            decoded: Decoded::default(),
            records_seen: 0,
            service: None,
            resource_leaves: Vec::new(),
            scope_leaves: Vec::new(),
            tenant_attribute,
            resource_tenant: None,
            run_start: 0,
            runs: Vec::new(),
        }
    }

    fn resource(&mut self, attributes: KeyValues<'_>) {
        self.close_run();
        self.service = None;
        self.resource_tenant = None;
        self.resource_leaves.clear();
        let mut path = KeyPath::default();
        for (key, value) in attributes {
            if self.tenant_attribute == Some(&*key) {
                self.resource_tenant = Some(tenant_text(&value));
            }
            match value {
                AnyValue::Str(service) if key == SERVICE_ATTRIBUTE => {
                    self.service = Some(service.into_owned());
                }
                value => walk(&mut path, &key, value, &mut self.resource_leaves),
            }
        }
    }

    /// Ends the current resource's run (a resource none of whose records
    /// were decoded leaves none).
    fn close_run(&mut self) {
        let logs = self.decoded.logs.len() - self.run_start;
        if self.tenant_attribute.is_some() && logs > 0 {
            self.runs.push(ResourceRun {
                tenant: self.resource_tenant.take(),
                logs,
            });
        }
        self.run_start = self.decoded.logs.len();
    }

    fn scope(&mut self, scope: Scope<'_>) {
        self.scope_leaves.clear();
        let mut path = KeyPath::default();
        for (key, value) in scope.attributes {
            walk(&mut path, &key, value, &mut self.scope_leaves);
        }
        for (key, value) in [
            ("otel.scope.name", scope.name),
            ("otel.scope.version", scope.version),
        ] {
            if !value.is_empty() {
                self.scope_leaves
                    .push((key.to_string(), value.into_owned()));
            }
        }
    }

    fn record(&mut self, record: Record<'_>) {
        let index = self.records_seen;
        self.records_seen += 1;
        match self.map(record) {
            Ok(log) => self.decoded.logs.push(log),
            Err(error) => self.decoded.rejected.push(RejectedRecord { index, error }),
        }
    }

    fn map(&self, record: Record<'_>) -> Result<crate::domain::parse::NewLog, String> {
        let message = match record.body {
            None | Some(AnyValue::Empty) => {
                return Err("log record has no body".into());
            }
            Some(AnyValue::Str(text)) => text.into_owned(),
            Some(other) => to_json(other).to_string(),
        };
        let mut builder = RecordBuilder::new(self.limits, Oversize::Truncate);
        for (key, value) in self.resource_leaves.iter().chain(&self.scope_leaves) {
            builder.attribute(key, value);
        }
        let mut path = KeyPath::default();
        for (key, value) in record.attributes {
            walk(&mut path, &key, value, &mut builder);
        }
        for (key, value) in [("trace_id", record.trace_id), ("span_id", record.span_id)] {
            if !value.is_empty() {
                builder.attribute_owned(key.to_string(), value);
            }
        }
        if !record.event_name.is_empty() {
            builder.attribute("event.name", &record.event_name);
        }
        let timestamp = [record.time_unix_nano, record.observed_time_unix_nano]
            .into_iter()
            .find_map(micros_from_nanos);
        builder.finish(LogFields {
            level: level_of(record.severity_number, &record.severity_text),
            service: self.service.clone(),
            message,
            timestamp,
        })
    }
}

/// A tenant attribute's value as text: a string as it is, anything else
/// as JSON (an integer names the tenant of its digits; no tenant id looks
/// like a list or a map, so their records are refused with it shown).
fn tenant_text(value: &AnyValue<'_>) -> String {
    match value {
        AnyValue::Str(text) => text.to_string(),
        other => to_json(other.clone()).to_string(),
    }
}

/// Zero (unset) and instants our timestamps cannot hold count as absent, so
/// the next candidate (observed time, then receipt time) is used.
fn micros_from_nanos(nanos: u64) -> Option<Micros> {
    let micros = (nanos / 1000) as i64;
    (micros > 0 && micros < MAX_MICROS).then_some(micros)
}

fn walk<S: FlatSink>(path: &mut KeyPath, key: &str, value: AnyValue<'_>, sink: &mut S) {
    let mark = path.enter(key);
    match value {
        AnyValue::Str(text) => sink.leaf(path.as_str(), text),
        AnyValue::Bool(flag) => sink.leaf(path.as_str(), Cow::Owned(flag.to_string())),
        AnyValue::Int(number) => sink.leaf(path.as_str(), Cow::Owned(number.to_string())),
        AnyValue::Double(number) => sink.leaf(path.as_str(), Cow::Owned(double_text(number))),
        AnyValue::Bytes(bytes) => sink.leaf(
            path.as_str(),
            Cow::Owned(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
        array @ AnyValue::Array(_) => {
            sink.leaf(path.as_str(), Cow::Owned(to_json(array).to_string()))
        }
        AnyValue::KvList(entries) => {
            for (key, value) in entries {
                walk(path, &key, value, sink);
            }
        }
        AnyValue::Empty => {}
    }
    path.leave(mark);
}

/// A non-string body or an array attribute as compact JSON.
fn to_json(value: AnyValue<'_>) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        AnyValue::Str(text) => Json::String(text.into_owned()),
        AnyValue::Bool(flag) => Json::Bool(flag),
        AnyValue::Int(number) => Json::from(number),
        AnyValue::Double(number) => serde_json::Number::from_f64(number)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(double_text(number))),
        AnyValue::Bytes(bytes) => {
            Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        AnyValue::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        AnyValue::KvList(entries) => Json::Object(
            entries
                .into_iter()
                .map(|(key, value)| (key.into_owned(), to_json(value)))
                .collect(),
        ),
        AnyValue::Empty => Json::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
    out
}

// ---- protobuf ---------------------------------------------------------------

fn decode_protobuf(body: &[u8], mapper: &mut Mapper<'_>) -> Result<(), DecodeError> {
    // ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }
    for resource_logs in values_of(body, 1) {
        read_resource_logs(resource_logs?.bytes()?, mapper)?;
    }
    Ok(())
}

/// `ResourceLogs { Resource resource = 1; repeated ScopeLogs scope_logs = 2; }`.
/// The resource is read first wherever it is, since every record needs it.
fn read_resource_logs(message: &[u8], mapper: &mut Mapper<'_>) -> Result<(), DecodeError> {
    let mut attributes = Vec::new();
    for resource in values_of(message, 1) {
        // Resource { repeated KeyValue attributes = 1; }
        for attribute in values_of(resource?.bytes()?, 1) {
            attributes.push(key_value(attribute?.bytes()?, 0)?);
        }
    }
    mapper.resource(attributes);
    for scope_logs in values_of(message, 2) {
        read_scope_logs(scope_logs?.bytes()?, mapper)?;
    }
    Ok(())
}

/// `ScopeLogs { InstrumentationScope scope = 1; repeated LogRecord log_records = 2; }`
fn read_scope_logs(message: &[u8], mapper: &mut Mapper<'_>) -> Result<(), DecodeError> {
    let mut scope = Scope::default();
    for instrumentation_scope in values_of(message, 1) {
        // InstrumentationScope { name = 1; version = 2; repeated KeyValue attributes = 3; }
        for field in Fields::new(instrumentation_scope?.bytes()?) {
            match field? {
                (1, value) => scope.name = Cow::Borrowed(value.string()?),
                (2, value) => scope.version = Cow::Borrowed(value.string()?),
                (3, value) => scope.attributes.push(key_value(value.bytes()?, 0)?),
                _ => {}
            }
        }
    }
    mapper.scope(scope);
    for record in values_of(message, 2) {
        mapper.record(log_record(record?.bytes()?)?);
    }
    Ok(())
}

fn log_record(message: &[u8]) -> Result<Record<'_>, ProtobufError> {
    let mut record = Record::default();
    for field in Fields::new(message) {
        match field? {
            (1, value) => record.time_unix_nano = value.integer()?,
            (11, value) => record.observed_time_unix_nano = value.integer()?,
            (2, value) => record.severity_number = value.integer()? as i64,
            (3, value) => record.severity_text = Cow::Borrowed(value.string()?),
            (5, value) => record.body = Some(any_value(value.bytes()?, 0)?),
            (6, value) => record.attributes.push(key_value(value.bytes()?, 0)?),
            (9, value) => record.trace_id = hex(value.bytes()?),
            (10, value) => record.span_id = hex(value.bytes()?),
            (12, value) => record.event_name = Cow::Borrowed(value.string()?),
            _ => {}
        }
    }
    Ok(record)
}

/// `KeyValue { string key = 1; AnyValue value = 2; }`
fn key_value(message: &[u8], depth: usize) -> Result<(Cow<'_, str>, AnyValue<'_>), ProtobufError> {
    let mut key = "";
    let mut value = AnyValue::Empty;
    for field in Fields::new(message) {
        match field? {
            (1, field) => key = field.string()?,
            (2, field) => value = any_value(field.bytes()?, depth + 1)?,
            _ => {}
        }
    }
    Ok((Cow::Borrowed(key), value))
}

/// `AnyValue { oneof { string = 1; bool = 2; int64 = 3; double = 4;
/// ArrayValue = 5; KeyValueList = 6; bytes = 7; } }`
fn any_value(message: &[u8], depth: usize) -> Result<AnyValue<'_>, ProtobufError> {
    if depth > MAX_NESTING {
        return Err(ProtobufError("attribute values are nested too deeply"));
    }
    let mut value = AnyValue::Empty;
    for field in Fields::new(message) {
        value = match field? {
            (1, field) => AnyValue::Str(Cow::Borrowed(field.string()?)),
            (2, field) => AnyValue::Bool(field.integer()? != 0),
            (3, field) => AnyValue::Int(field.integer()? as i64),
            (4, Value::Fixed64(bits)) => AnyValue::Double(f64::from_bits(bits)),
            (5, field) => {
                // ArrayValue { repeated AnyValue values = 1; }
                let items = values_of(field.bytes()?, 1)
                    .map(|item| any_value(item?.bytes()?, depth + 1))
                    .collect::<Result<_, _>>()?;
                AnyValue::Array(items)
            }
            (6, field) => {
                // KeyValueList { repeated KeyValue values = 1; }
                let entries = values_of(field.bytes()?, 1)
                    .map(|entry| key_value(entry?.bytes()?, depth + 1))
                    .collect::<Result<_, _>>()?;
                AnyValue::KvList(entries)
            }
            (7, field) => AnyValue::Bytes(Cow::Borrowed(field.bytes()?)),
            _ => value,
        };
    }
    Ok(value)
}

// ---- OTLP/JSON ---------------------------------------------------------------
//
// Field names are lowerCamelCase, int64 fields may be strings or numbers,
// enums numbers or names, ids hex, bytes base64; unknown fields are ignored.

fn decode_json(body: &[u8], mapper: &mut Mapper<'_>) -> Result<(), DecodeError> {
    let request: JsonRequest<'_> = serde_json::from_slice(body)
        .map_err(|e| DecodeError::Malformed(format!("malformed OTLP/JSON: {e}")))?;
    for resource_logs in request.resource_logs {
        mapper.resource(key_values(resource_logs.resource.attributes)?);
        for scope_logs in resource_logs.scope_logs {
            mapper.scope(Scope {
                name: scope_logs.scope.name,
                version: scope_logs.scope.version,
                attributes: key_values(scope_logs.scope.attributes)?,
            });
            for record in scope_logs.log_records {
                mapper.record(Record {
                    time_unix_nano: record.time_unix_nano.0,
                    observed_time_unix_nano: record.observed_time_unix_nano.0,
                    severity_number: record.severity_number.0,
                    severity_text: record.severity_text,
                    body: record.body.map(any_value_json).transpose()?,
                    attributes: key_values(record.attributes)?,
                    trace_id: record.trace_id.to_ascii_lowercase(),
                    span_id: record.span_id.to_ascii_lowercase(),
                    event_name: record.event_name,
                });
            }
        }
    }
    Ok(())
}

fn key_values(pairs: Vec<JsonKeyValue<'_>>) -> Result<KeyValues<'_>, DecodeError> {
    pairs
        .into_iter()
        .map(|pair| {
            Ok((
                pair.key,
                pair.value
                    .map(any_value_json)
                    .transpose()?
                    .unwrap_or(AnyValue::Empty),
            ))
        })
        .collect()
}

fn any_value_json(value: JsonAnyValue<'_>) -> Result<AnyValue<'_>, DecodeError> {
    Ok(if let Some(text) = value.string_value {
        AnyValue::Str(text)
    } else if let Some(flag) = value.bool_value {
        AnyValue::Bool(flag)
    } else if let Some(number) = value.int_value {
        AnyValue::Int(number.0)
    } else if let Some(number) = value.double_value {
        AnyValue::Double(number.0)
    } else if let Some(array) = value.array_value {
        AnyValue::Array(
            array
                .values
                .into_iter()
                .map(any_value_json)
                .collect::<Result<_, _>>()?,
        )
    } else if let Some(list) = value.kvlist_value {
        AnyValue::KvList(key_values(list.values)?)
    } else if let Some(text) = value.bytes_value {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| DecodeError::Malformed(format!("bytesValue is not base64: {e}")))?;
        AnyValue::Bytes(Cow::Owned(bytes))
    } else {
        AnyValue::Empty
    })
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonRequest<'a> {
    #[serde(borrow)]
    resource_logs: Vec<JsonResourceLogs<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonResourceLogs<'a> {
    #[serde(borrow)]
    resource: JsonResource<'a>,
    #[serde(borrow)]
    scope_logs: Vec<JsonScopeLogs<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonResource<'a> {
    #[serde(borrow)]
    attributes: Vec<JsonKeyValue<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonScopeLogs<'a> {
    #[serde(borrow)]
    scope: JsonScope<'a>,
    #[serde(borrow)]
    log_records: Vec<JsonLogRecord<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonScope<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    version: Cow<'a, str>,
    #[serde(borrow)]
    attributes: Vec<JsonKeyValue<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonLogRecord<'a> {
    time_unix_nano: Flexible<u64>,
    observed_time_unix_nano: Flexible<u64>,
    severity_number: Severity,
    #[serde(borrow)]
    severity_text: Cow<'a, str>,
    #[serde(borrow)]
    body: Option<JsonAnyValue<'a>>,
    #[serde(borrow)]
    attributes: Vec<JsonKeyValue<'a>>,
    #[serde(borrow)]
    trace_id: Cow<'a, str>,
    #[serde(borrow)]
    span_id: Cow<'a, str>,
    #[serde(borrow)]
    event_name: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonKeyValue<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    value: Option<JsonAnyValue<'a>>,
}

/// One of the fields is set (none: an empty value).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonAnyValue<'a> {
    #[serde(borrow)]
    string_value: Option<Cow<'a, str>>,
    bool_value: Option<bool>,
    int_value: Option<Flexible<i64>>,
    double_value: Option<Flexible<f64>>,
    #[serde(borrow)]
    array_value: Option<JsonArray<'a>>,
    #[serde(borrow)]
    kvlist_value: Option<JsonKvList<'a>>,
    #[serde(borrow)]
    bytes_value: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonArray<'a> {
    #[serde(borrow)]
    values: Vec<JsonAnyValue<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonKvList<'a> {
    #[serde(borrow)]
    values: Vec<JsonKeyValue<'a>>,
}

/// A number given as a JSON number or as a string of one (int64 fields in
/// OTLP/JSON; `"NaN"` and `"Infinity"` for doubles).
#[derive(Default)]
struct Flexible<T>(T);

impl<'de, T> Deserialize<'de> for Flexible<T>
where
    T: std::str::FromStr + Default + Deserialize<'de>,
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<'a, T> {
            Number(T),
            Text(Cow<'a, str>),
            Null(()),
        }
        match Either::<T>::deserialize(deserializer)? {
            Either::Number(value) => Ok(Flexible(value)),
            Either::Text(text) => {
                text.trim().parse().map(Flexible).map_err(|_| {
                    serde::de::Error::custom(format!("expected a number, got {text:?}"))
                })
            }
            Either::Null(()) => Ok(Flexible(T::default())),
        }
    }
}

/// `severityNumber`: a number, or the enum's name.
#[derive(Default)]
struct Severity(i64);

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<'a> {
            Number(i64),
            Text(Cow<'a, str>),
            Null(()),
        }
        match Either::deserialize(deserializer)? {
            Either::Number(number) => Ok(Severity(number)),
            Either::Text(text) => text
                .parse()
                .ok()
                .or_else(|| severity_number_named(&text))
                .map(Severity)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown severityNumber {text:?}"))
                }),
            Either::Null(()) => Ok(Severity(0)),
        }
    }
}

// ---- answers -------------------------------------------------------------------

/// `partial_success.error_message`: how many records were refused, and why
/// the first was; empty when none was.
pub fn rejection_message(rejected: &[RejectedRecord]) -> String {
    rejected
        .first()
        .map(|first| {
            format!(
                "{} log record(s) refused; the first, record {}: {}",
                rejected.len(),
                first.index,
                first.error
            )
        })
        .unwrap_or_default()
}

/// `ExportLogsServiceResponse`: empty when every record was stored, else
/// `partial_success { rejected_log_records, error_message }`.
pub fn response(rejected: usize, error_message: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => {
            let mut out = Vec::new();
            if rejected > 0 {
                let mut partial = Vec::new();
                put_varint_field(&mut partial, 1, rejected as u64);
                put_bytes_field(&mut partial, 2, error_message.as_bytes());
                put_bytes_field(&mut out, 1, &partial);
            }
            out
        }
        Encoding::Json if rejected == 0 => b"{}".to_vec(),
        Encoding::Json => serde_json::json!({
            "partialSuccess": {
                // int64 is a string in OTLP/JSON.
                "rejectedLogRecords": rejected.to_string(),
                "errorMessage": error_message,
            }
        })
        .to_string()
        .into_bytes(),
    }
}

/// A refusal as `google.rpc.Status { int32 code = 1; string message = 2; }`.
pub fn status(code: u32, message: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => {
            let mut out = Vec::new();
            put_varint_field(&mut out, 1, u64::from(code));
            put_bytes_field(&mut out, 2, message.as_bytes());
            out
        }
        Encoding::Json => serde_json::json!({"code": code, "message": message})
            .to_string()
            .into_bytes(),
    }
}

#[cfg(test)]
mod tests;
