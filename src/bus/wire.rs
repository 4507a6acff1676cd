//! The bytes a batch travels as between processes: JSON lines, one record a
//! line, with the timestamp in microseconds and the level as its code.
//!
//! JSON lines keep the payload readable with `nats stream view` while still
//! being compact (short keys, no RFC 3339 timestamps), and a batch splits
//! into broker-sized messages at any line boundary, so a bulk request larger
//! than the broker's `max_payload` still travels, as several messages.
//!
//! Unknown keys are ignored when decoding, so a newer writer may add fields.

use crate::domain::time::Micros;
use crate::domain::{Attributes, Level, LogBatch, LogRecord, TenantId};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// One record alone is larger than a message may be.
    #[error("a log of {size} bytes does not fit in a message of at most {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("undecodable message: {0}")]
    Malformed(String),
}

#[derive(Serialize, Deserialize)]
struct WireRecord<'a> {
    #[serde(borrow)]
    i: Cow<'a, str>,
    t: Micros,
    l: u8,
    #[serde(borrow)]
    s: Cow<'a, str>,
    #[serde(borrow)]
    m: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    a: Attributes,
    /// The tenant; absent for `default` (and in messages from before tenants).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    n: Option<Cow<'a, str>>,
    /// Trace and span ids, when the log has them.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    x: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    y: Option<Cow<'a, str>>,
}

/// One encoded message and the id the broker deduplicates it by.
#[derive(Debug)]
pub struct Message {
    pub bytes: Vec<u8>,
    /// The first log's id and the message's log count: a log is in exactly
    /// one message, so no two messages share an id, and the same message
    /// published twice (a retry) has the same one.
    pub id: String,
}

/// Encodes `batch` into messages of at most `max_message_bytes` each.
pub fn encode(batch: &[LogRecord], max_message_bytes: usize) -> Result<Vec<Message>, MessageError> {
    let mut messages = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut first_id: &str = "";
    let mut count = 0;
    let mut line: Vec<u8> = Vec::new();
    for record in batch {
        line.clear();
        serde_json::to_writer(
            &mut line,
            &WireRecord {
                i: Cow::Borrowed(&record.id),
                t: record.timestamp,
                l: record.level.code(),
                s: Cow::Borrowed(&record.service),
                m: Cow::Borrowed(&record.message),
                // Attributes are small maps; cloning keeps one record type for
                // both directions.
                a: record.attributes.clone(),
                n: (!record.tenant.is_default()).then(|| Cow::Borrowed(record.tenant.as_str())),
                x: record.trace_id.as_deref().map(Cow::Borrowed),
                y: record.span_id.as_deref().map(Cow::Borrowed),
            },
        )
        .map_err(|e| MessageError::Malformed(e.to_string()))?;
        line.push(b'\n');
        if line.len() > max_message_bytes {
            return Err(MessageError::TooLarge {
                size: line.len(),
                limit: max_message_bytes,
            });
        }
        if current.len() + line.len() > max_message_bytes {
            messages.push(Message {
                bytes: std::mem::take(&mut current),
                id: format!("{first_id}+{count}"),
            });
            count = 0;
        }
        if count == 0 {
            first_id = &record.id;
        }
        current.extend_from_slice(&line);
        count += 1;
    }
    if !current.is_empty() {
        messages.push(Message {
            bytes: current,
            id: format!("{first_id}+{count}"),
        });
    }
    Ok(messages)
}

/// Decodes one message back into records.
pub fn decode(message: &[u8]) -> Result<LogBatch, MessageError> {
    let mut records = Vec::new();
    for (number, line) in message.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let wire: WireRecord = serde_json::from_slice(line)
            .map_err(|e| MessageError::Malformed(format!("line {}: {e}", number + 1)))?;
        let level = Level::from_code(wire.l).ok_or_else(|| {
            MessageError::Malformed(format!(
                "line {}: unknown level code {}",
                number + 1,
                wire.l
            ))
        })?;
        let tenant = match wire.n {
            None => TenantId::default(),
            Some(name) => TenantId::parse(&name).map_err(|error| {
                MessageError::Malformed(format!("line {}: {error}", number + 1))
            })?,
        };
        records.push(LogRecord {
            id: wire.i.into_owned(),
            timestamp: wire.t,
            level,
            service: wire.s.into_owned(),
            message: wire.m.into_owned(),
            attributes: wire.a,
            tenant,
            trace_id: wire.x.map(Cow::into_owned),
            span_id: wire.y.map(Cow::into_owned),
        });
    }
    Ok(records.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize, message: &str) -> LogRecord {
        LogRecord {
            id: format!("id-{i}"),
            timestamp: 1_735_732_800_123_456 + i as i64,
            level: Level::ALL[i % 5],
            service: "svc \"quoted\"".into(),
            message: message.into(),
            attributes: if i % 2 == 0 {
                [("k\n".to_string(), "v\0é".to_string())].into()
            } else {
                Attributes::new()
            },
            tenant: if i % 3 == 0 {
                TenantId::default()
            } else {
                TenantId::parse(&format!("team-{}", i % 3)).unwrap()
            },
            trace_id: (i % 2 == 1).then(|| format!("{i:032x}")),
            span_id: (i % 4 == 1).then(|| format!("{i:016x}")),
        }
    }

    #[test]
    fn round_trips_awkward_text() {
        let batch: Vec<LogRecord> = [
            "plain",
            "new\nline",
            "nul\0byte",
            "ünïcødé 日本 🚀",
            "\\'%_",
        ]
        .iter()
        .enumerate()
        .map(|(i, m)| record(i, m))
        .collect();
        let messages = encode(&batch, 1 << 20).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(&*decode(&messages[0].bytes).unwrap(), &batch[..]);
        assert_eq!(messages[0].id, "id-0+5");
    }

    #[test]
    fn splits_at_the_limit_and_keeps_order() {
        let batch: Vec<LogRecord> = (0..100).map(|i| record(i, &"x".repeat(100))).collect();
        let messages = encode(&batch, 1000).unwrap();
        assert!(messages.len() > 10);
        assert!(messages.iter().all(|m| m.bytes.len() <= 1000));
        let back: Vec<LogRecord> = messages
            .iter()
            .flat_map(|m| decode(&m.bytes).unwrap().to_vec())
            .collect();
        assert_eq!(back, batch);
        // Ids name each message by its first log and count, so they differ.
        let ids: std::collections::HashSet<&str> = messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids.len(), messages.len());
        let second = decode(&messages[1].bytes).unwrap();
        assert_eq!(messages[1].id, format!("{}+{}", second[0].id, second.len()));
    }

    #[test]
    fn refuses_a_record_larger_than_a_message() {
        let batch = [record(1, &"x".repeat(2000))];
        assert!(matches!(
            encode(&batch, 1000),
            Err(MessageError::TooLarge { limit: 1000, .. })
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b"{"[..],
            b"\xff\xfe",
            b"{\"i\":\"a\",\"t\":1,\"l\":9,\"s\":\"\",\"m\":\"\"}",
            b"[]",
        ] {
            assert!(decode(bytes).is_err());
        }
        assert_eq!(decode(b"\n\n").unwrap().len(), 0);
    }
}
