//! The log record as it travels from ingest through the bus into a store and
//! back out of the query API.

use super::level::Level;
use super::time::{Micros, write_rfc3339};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Flat string attributes, sorted by key so output is deterministic.
pub type Attributes = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Assigned by ingest (see `domain::id`); unique across instances.
    pub id: String,
    pub timestamp: Micros,
    pub level: Level,
    pub service: String,
    pub message: String,
    pub attributes: Attributes,
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
        (FIXED + self.id.len() + self.service.len() + self.message.len() + attributes) as u64
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
/// attributes}` with an RFC 3339 timestamp. The WebSocket frame is the same.
impl Serialize for LogRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut timestamp = String::with_capacity(27);
        write_rfc3339(&mut timestamp, self.timestamp);
        let mut row = serializer.serialize_struct("LogRecord", 6)?;
        row.serialize_field("id", &self.id)?;
        row.serialize_field("timestamp", &timestamp)?;
        row.serialize_field("level", &self.level)?;
        row.serialize_field("message", &self.message)?;
        row.serialize_field("service", &self.service)?;
        row.serialize_field("attributes", &AttributesJson(&self.attributes))?;
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
