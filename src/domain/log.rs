//! The log record as it travels from ingest through the bus into a store and
//! back out of the query API.

use super::attributes::Attributes;
use super::level::Level;
use super::tenant::TenantId;
use super::time::{Micros, write_rfc3339};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use std::sync::Arc;

/// The reserved service of the audit log: who signed in, changed what or
/// was refused. Only admins read it, and no ingest path may write it.
pub const AUDIT_SERVICE: &str = "oglogstream.audit";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Assigned by ingest (see `domain::id`); unique across instances.
    pub id: String,
    pub timestamp: Micros,
    pub level: Level,
    pub service: String,
    pub message: String,
    pub attributes: Attributes,
    /// Whose log it is (`default` while tenants are off).
    pub tenant: TenantId,
    /// The OpenTelemetry trace and span the log was written in, from OTLP's
    /// fields or a shipper's `trace_id`/`traceId`/`trace.id` (`span_id`,
    /// `spanId`) attribute, lowercase hex.
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

/// A blank record (`info`, no text, the default tenant): for building
/// records field by field, in tests above all.
impl Default for LogRecord {
    fn default() -> LogRecord {
        LogRecord {
            id: String::new(),
            timestamp: 0,
            level: Level::Info,
            service: String::new(),
            message: String::new(),
            attributes: Attributes::new(),
            tenant: TenantId::default(),
            trace_id: None,
            span_id: None,
        }
    }
}

impl LogRecord {
    /// About the bytes this log takes written out as one JSON line (its
    /// text plus the fixed fields and punctuation): what a queue of logs
    /// will need on disk, counted without serialising anything.
    pub fn estimated_bytes(&self) -> u64 {
        const FIXED: usize = 96;
        let attributes: usize = self
            .attributes
            .iter()
            .map(|(key, value)| key.len() + value.len() + 6)
            .sum();
        let ids = self.trace_id.as_ref().map_or(0, String::len)
            + self.span_id.as_ref().map_or(0, String::len)
            + self.tenant.as_str().len();
        (FIXED + self.id.len() + self.service.len() + self.message.len() + attributes + ids) as u64
    }
}

/// The estimated bytes of every log in a batch (see [`LogRecord::estimated_bytes`]).
pub fn batch_bytes(batch: &[LogRecord]) -> u64 {
    batch.iter().map(LogRecord::estimated_bytes).sum()
}

/// Records are handed between roles in shared, immutable batches so that the
/// work queue and every live subscriber read the same allocation.
pub type LogBatch = Arc<[LogRecord]>;

/// Serialises as the `/api/logs` row: `{id, timestamp, level, message, service,
/// attributes}` with an RFC 3339 timestamp, then `trace_id` and `span_id`
/// when the log has them. The WebSocket frame is the same. A read that
/// names several tenants writes [`Row::with_tenant`] instead.
impl Serialize for LogRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Row {
            record: self,
            tenant: false,
        }
        .serialize(serializer)
    }
}

/// A record as an API row, with or without its tenant.
pub struct Row<'a> {
    record: &'a LogRecord,
    tenant: bool,
}

impl<'a> Row<'a> {
    /// The row with a `tenant` field: for reads across several tenants.
    pub fn with_tenant(record: &'a LogRecord) -> Row<'a> {
        Row {
            record,
            tenant: true,
        }
    }
}

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.record;
        let mut timestamp = String::with_capacity(27);
        write_rfc3339(&mut timestamp, record.timestamp);
        let mut row = serializer.serialize_struct("LogRecord", 9)?;
        row.serialize_field("id", &record.id)?;
        row.serialize_field("timestamp", &timestamp)?;
        row.serialize_field("level", &record.level)?;
        row.serialize_field("message", &record.message)?;
        row.serialize_field("service", &record.service)?;
        row.serialize_field("attributes", &AttributesJson(&record.attributes))?;
        if let Some(trace_id) = &record.trace_id {
            row.serialize_field("trace_id", trace_id)?;
        }
        if let Some(span_id) = &record.span_id {
            row.serialize_field("span_id", span_id)?;
        }
        if self.tenant {
            row.serialize_field("tenant", &record.tenant)?;
        }
        row.end()
    }
}

struct AttributesJson<'a>(&'a Attributes);

impl Serialize for AttributesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// The attribute names shippers give a log's trace and span ids (OTLP's own
/// fields arrive as `trace_id`/`span_id` from its decoder), most common first.
const TRACE_ID_KEYS: [&str; 3] = ["trace_id", "traceId", "trace.id"];
const SPAN_ID_KEYS: [&str; 3] = ["span_id", "spanId", "span.id"];
/// Longer values are not ids: they stay attributes.
const MAX_ID_CHARS: usize = 128;

/// Moves the trace and span ids out of `attributes` into the log's own
/// fields (the first key of each list that holds a plausible id; the rest
/// stay attributes). Ids are kept as sent, trimmed; hex ids lowercased so a
/// lookup matches however a shipper cased them.
pub fn take_trace_ids(attributes: &mut Attributes) -> (Option<String>, Option<String>) {
    let mut take = |keys: &[&str]| {
        let key = keys.iter().find(|key| {
            attributes.get(key).is_some_and(|value| {
                let value = value.trim();
                !value.is_empty() && value.len() <= MAX_ID_CHARS
            })
        })?;
        let value = attributes.remove(key)?;
        let value = value.trim();
        Some(if value.bytes().all(|b| b.is_ascii_hexdigit()) {
            value.to_ascii_lowercase()
        } else {
            value.to_string()
        })
    };
    let trace_id = take(&TRACE_ID_KEYS);
    let span_id = take(&SPAN_ID_KEYS);
    (trace_id, span_id)
}

/// Attributes as stored: a JSON object, or `None` when there are none.
pub fn attributes_to_json(attributes: &Attributes) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    serde_json::to_string(attributes).ok()
}

/// The inverse of [`attributes_to_json`]; a damaged value yields no attributes
/// rather than failing the whole query.
pub fn attributes_from_json(json: Option<&str>) -> Attributes {
    json.and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}
