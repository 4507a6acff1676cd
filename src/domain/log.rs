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

/// Longer values are not ids: they stay attributes.
const MAX_ID_CHARS: usize = 128;

/// Which id an attribute name gives, and its rank among the names of that
/// id (0 first): shippers' names for a log's trace and span ids, most
/// common first (OTLP's own fields arrive as `trace_id`/`span_id` from its
/// decoder).
fn id_key(key: &str) -> Option<(IdKind, usize)> {
    Some(match key {
        "trace_id" => (IdKind::Trace, 0),
        "traceId" => (IdKind::Trace, 1),
        "trace.id" => (IdKind::Trace, 2),
        "span_id" => (IdKind::Span, 0),
        "spanId" => (IdKind::Span, 1),
        "span.id" => (IdKind::Span, 2),
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum IdKind {
    Trace,
    Span,
}

/// Moves the trace and span ids out of `attributes` into the log's own
/// fields (of each id's names, the first that holds a plausible id; the
/// rest stay attributes). Ids are kept as sent, trimmed; hex ids lowercased
/// so a lookup matches however a shipper cased them.
///
/// One pass over the names: a binary search per candidate name (six per
/// log) was ~10% of the ingest role's CPU in a bulk profile.
pub fn take_trace_ids(attributes: &mut Attributes) -> (Option<String>, Option<String>) {
    // (rank, position) of the best plausible name of each id so far.
    let mut trace: Option<(usize, usize)> = None;
    let mut span: Option<(usize, usize)> = None;
    for (at, (key, value)) in attributes.iter().enumerate() {
        let Some((kind, rank)) = id_key(key) else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() || value.len() > MAX_ID_CHARS {
            continue;
        }
        let best = if kind == IdKind::Trace {
            &mut trace
        } else {
            &mut span
        };
        if best.is_none_or(|(best_rank, _)| rank < best_rank) {
            *best = Some((rank, at));
        }
    }
    // The later position first, so the earlier one stays where it is.
    let (trace_at, span_at) = (trace.map(|(_, at)| at), span.map(|(_, at)| at));
    let (trace_id, span_id) = if trace_at > span_at {
        let trace_id = trace_at.map(|at| attributes.remove_at(at));
        (trace_id, span_at.map(|at| attributes.remove_at(at)))
    } else {
        let span_id = span_at.map(|at| attributes.remove_at(at));
        (trace_at.map(|at| attributes.remove_at(at)), span_id)
    };
    (trace_id.map(normalised_id), span_id.map(normalised_id))
}

fn normalised_id(value: String) -> String {
    let value = value.trim();
    if value.bytes().all(|b| b.is_ascii_hexdigit()) {
        value.to_ascii_lowercase()
    } else {
        value.to_string()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_first_plausible_name_of_each_id_is_taken_and_the_rest_stay() {
        let mut found = attributes(&[
            ("a", "1"),
            ("span.id", "SHOULD-STAY"),
            ("spanId", " 00F067AA0BA902B7 "),
            ("trace.id", "4BF92F3577B34DA6A3CE929D0E0E4736"),
            ("traceId", "   "),
            ("z", "2"),
        ]);
        assert_eq!(
            take_trace_ids(&mut found),
            (
                Some("4bf92f3577b34da6a3ce929d0e0e4736".to_string()),
                Some("00f067aa0ba902b7".to_string())
            ),
            "traceId is blank, so trace.id; spanId ranks before span.id; hex lowercased"
        );
        assert_eq!(
            found,
            attributes(&[
                ("a", "1"),
                ("span.id", "SHOULD-STAY"),
                ("traceId", "   "),
                ("z", "2")
            ])
        );
    }

    #[test]
    fn ids_that_are_not_hex_are_kept_as_sent_and_long_values_are_not_ids() {
        let long = "x".repeat(MAX_ID_CHARS + 1);
        let mut found = attributes(&[("span_id", "Req-7"), ("trace_id", &long)]);
        assert_eq!(
            take_trace_ids(&mut found),
            (None, Some("Req-7".to_string()))
        );
        assert_eq!(found, attributes(&[("trace_id", &long)]));
        let mut none = attributes(&[("service.version", "1")]);
        assert_eq!(take_trace_ids(&mut none), (None, None));
        assert_eq!(none.len(), 1);
    }
}
