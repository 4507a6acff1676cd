//! What must hold for any input to the shippers' decoders, as functions of
//! raw bytes: the fuzz targets (`fuzz/fuzz_targets/`) run them on generated
//! inputs, and `cargo test` replays the seeds and every input that ever
//! failed (`fuzz/seeds/<target>/`) through them. Each panics when an
//! invariant breaks: every record is accepted or refused (none lost or
//! invented) and every accepted log keeps the limits.

use super::{elasticsearch, loki, otlp, syslog};
use crate::domain::parse::{LogLimits, NewLog};
use crate::domain::shippers::compression::unsnappy;
use crate::domain::shippers::framing::{Frame, Framer};
use crate::domain::shippers::record::TRUNCATED_ATTRIBUTE;

/// Limits small enough that fuzzed inputs reach them.
pub fn limits() -> LogLimits {
    LogLimits {
        max_message_bytes: 64,
        max_service_chars: 16,
        max_attributes: 8,
        max_attribute_key_bytes: 32,
        max_attribute_value_bytes: 32,
    }
}

fn assert_within(log: &NewLog, limits: &LogLimits) {
    assert!(!log.message.trim().is_empty(), "empty message kept");
    assert!(
        log.message.len() <= limits.max_message_bytes,
        "message over the limit"
    );
    assert!(!log.service.trim().is_empty(), "empty service");
    assert!(
        log.service.chars().count() <= limits.max_service_chars,
        "service over the limit"
    );
    assert!(
        log.attributes.len() <= limits.max_attributes,
        "too many attributes"
    );
    for (key, value) in &log.attributes {
        assert!(
            key == TRUNCATED_ATTRIBUTE
                || (!key.is_empty() && key.len() <= limits.max_attribute_key_bytes),
            "attribute key {key:?} out of bounds"
        );
        assert!(
            value.len() <= limits.max_attribute_value_bytes,
            "attribute value over the limit"
        );
    }
}

/// A `POST /v1/logs` body, as protobuf and as OTLP/JSON.
pub fn otlp_logs(data: &[u8]) {
    let limits = limits();
    for encoding in [otlp::Encoding::Protobuf, otlp::Encoding::Json] {
        if let Ok(decoded) = otlp::decode(data, encoding, &limits) {
            decoded
                .logs
                .iter()
                .for_each(|log| assert_within(log, &limits));
            let answer = otlp::response(decoded.rejected.len(), "why", encoding);
            assert_eq!(
                answer.is_empty() || answer == b"{}",
                decoded.rejected.is_empty()
            );
        }
    }
}

/// A `POST /loki/api/v1/push` body: JSON, protobuf, and snappy-compressed
/// protobuf as Loki clients send it.
pub fn loki_push(data: &[u8]) {
    let limits = limits();
    for format in [loki::Format::Json, loki::Format::Protobuf] {
        if let Ok(decoded) = loki::decode(data, format, &limits) {
            decoded
                .logs
                .iter()
                .for_each(|log| assert_within(log, &limits));
        }
    }
    if let Ok(inflated) = unsnappy(data, 1 << 20) {
        assert!(inflated.len() <= 1 << 20);
        let _ = loki::decode(&inflated, loki::Format::Protobuf, &limits);
    }
}

/// A `POST /_bulk` body: every item is answered; stored items point at
/// distinct logs, in order.
pub fn elasticsearch_bulk(data: &[u8]) {
    let limits = limits();
    if let Ok(bulk) = elasticsearch::decode_bulk(data, Some("fuzz"), &limits) {
        let stored: Vec<usize> = bulk
            .items
            .iter()
            .filter_map(|item| item.result.as_ref().ok().copied())
            .collect();
        assert_eq!(stored, (0..bulk.logs.len()).collect::<Vec<_>>());
        bulk.logs.iter().for_each(|log| assert_within(log, &limits));
    }
}

/// A syslog TCP stream, delivered in two reads split where the first byte
/// says: frames never exceed the limit, each decodes or is refused.
pub fn syslog_stream(data: &[u8]) {
    let limits = limits();
    const MAX_FRAME: usize = 256;
    let split = data
        .first()
        .map(|b| usize::from(*b) % (data.len() + 1))
        .unwrap_or(0);
    let mut framer = Framer::new(MAX_FRAME);
    let check = |frame: Frame<'_>| {
        if let Frame::Message(message) = frame {
            assert!(message.len() <= MAX_FRAME, "frame over the limit");
            if let Ok(log) = syslog::decode(message, 1_735_732_800_000_000, &limits) {
                assert_within(&log, &limits);
            }
        }
    };
    for chunk in [&data[..split], &data[split..]] {
        framer.extend(chunk);
        while let Some(frame) = framer.next_frame() {
            check(frame);
        }
        assert!(
            framer.buffered() <= MAX_FRAME + 16,
            "the framer holds too much"
        );
    }
    if let Some(frame) = framer.finish() {
        check(frame);
    }
}
