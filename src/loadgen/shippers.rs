//! The shippers' protocols as the load generator sends them: the same
//! corpus as OTLP protobuf, Loki snappy-compressed protobuf, Elasticsearch bulk
//! and octet-counted syslog. Used by the `shippers` phase
//! (`phases/shippers.rs`) and public for the decoders' micro-benchmarks
//! (`benches/hot_paths.rs`).

use super::corpus::GeneratedLog;
use crate::domain::shippers::protobuf::{put_bytes_field, put_varint_field};
use crate::domain::time::format_rfc3339;
use std::collections::BTreeMap;
use std::fmt::Write as _;

fn severity_number(level: &str) -> u64 {
    match level {
        "debug" => 5,
        "info" => 9,
        "warn" => 13,
        "error" => 17,
        _ => 21,
    }
}

/// `ExportLogsServiceRequest`: one resource per service, as SDKs send.
pub fn otlp_body(logs: &[GeneratedLog<'_>], time_us: i64) -> Vec<u8> {
    let mut by_service: BTreeMap<&str, Vec<&GeneratedLog<'_>>> = BTreeMap::new();
    for log in logs {
        by_service.entry(log.service).or_default().push(log);
    }
    let key_value = |key: &str, value: &str| {
        let mut any = Vec::new();
        put_bytes_field(&mut any, 1, value.as_bytes());
        let mut pair = Vec::new();
        put_bytes_field(&mut pair, 1, key.as_bytes());
        put_bytes_field(&mut pair, 2, &any);
        pair
    };
    let mut request = Vec::new();
    for (service, logs) in by_service {
        let mut resource = Vec::new();
        put_bytes_field(&mut resource, 1, &key_value("service.name", service));
        let mut scope_logs = Vec::new();
        for log in logs {
            let mut record = Vec::new();
            record.push((1 << 3) | 1);
            record.extend_from_slice(&((time_us as u64) * 1000).to_le_bytes());
            put_varint_field(&mut record, 2, severity_number(log.level));
            let mut body = Vec::new();
            put_bytes_field(&mut body, 1, log.message.as_bytes());
            put_bytes_field(&mut record, 5, &body);
            for (key, value) in &log.attributes {
                put_bytes_field(&mut record, 6, &key_value(key, value));
            }
            put_bytes_field(&mut scope_logs, 2, &record);
        }
        let mut resource_logs = Vec::new();
        put_bytes_field(&mut resource_logs, 1, &resource);
        put_bytes_field(&mut resource_logs, 2, &scope_logs);
        put_bytes_field(&mut request, 1, &resource_logs);
    }
    request
}

/// A snappy-compressed `PushRequest`: one stream per service and level, the
/// attributes as structured metadata, as Promtail and Alloy send.
pub fn loki_body(logs: &[GeneratedLog<'_>], time_us: i64) -> Vec<u8> {
    let mut streams: BTreeMap<(&str, &str), Vec<&GeneratedLog<'_>>> = BTreeMap::new();
    for log in logs {
        streams
            .entry((log.service, log.level))
            .or_default()
            .push(log);
    }
    let mut push = Vec::new();
    for ((service, level), logs) in streams {
        let mut stream = Vec::new();
        let labels = format!("{{service_name=\"{service}\", level=\"{level}\"}}");
        put_bytes_field(&mut stream, 1, labels.as_bytes());
        for log in logs {
            let mut timestamp = Vec::new();
            put_varint_field(&mut timestamp, 1, (time_us / 1_000_000) as u64);
            put_varint_field(&mut timestamp, 2, ((time_us % 1_000_000) * 1000) as u64);
            let mut entry = Vec::new();
            put_bytes_field(&mut entry, 1, &timestamp);
            put_bytes_field(&mut entry, 2, log.message.as_bytes());
            for (key, value) in &log.attributes {
                let mut pair = Vec::new();
                put_bytes_field(&mut pair, 1, key.as_bytes());
                put_bytes_field(&mut pair, 2, value.as_bytes());
                put_bytes_field(&mut entry, 3, &pair);
            }
            put_bytes_field(&mut stream, 2, &entry);
        }
        put_bytes_field(&mut push, 1, &stream);
    }
    snap::raw::Encoder::new()
        .compress_vec(&push)
        .unwrap_or_default()
}

/// Bulk NDJSON as ECS-minded clients write it.
pub fn elasticsearch_body(logs: &[GeneratedLog<'_>], time_us: i64) -> Vec<u8> {
    let timestamp = format_rfc3339(time_us);
    let mut body = Vec::new();
    for log in logs {
        body.extend_from_slice(b"{\"index\":{\"_index\":\"bench-logs\"}}\n");
        let mut document = serde_json::json!({
            "@timestamp": timestamp,
            "message": log.message,
            "log": {"level": log.level},
            "service": {"name": log.service},
        });
        if let Some(document) = document.as_object_mut() {
            for (key, value) in &log.attributes {
                document.insert(key.to_string(), value.clone().into());
            }
        }
        let _ = serde_json::to_writer(&mut body, &document);
        body.push(b'\n');
    }
    body
}

/// RFC 5424, octet-counted (messages may hold newlines), attributes as
/// structured data.
pub fn syslog_frames(logs: &[GeneratedLog<'_>], time_us: i64) -> Vec<u8> {
    let timestamp = format_rfc3339(time_us);
    let mut out = Vec::new();
    let mut message = String::new();
    for log in logs {
        let severity = match log.level {
            "debug" => 7,
            "info" => 6,
            "warn" => 4,
            "error" => 3,
            _ => 2,
        };
        message.clear();
        let _ = write!(
            message,
            "<{}>1 {timestamp} bench-host {} - - ",
            16 * 8 + severity,
            log.service
        );
        if log.attributes.is_empty() {
            message.push('-');
        } else {
            message.push_str("[attrs@32473");
            for (key, value) in &log.attributes {
                let _ = write!(message, " {key}=\"{value}\"");
            }
            message.push(']');
        }
        let _ = write!(message, " {}", log.message);
        out.extend_from_slice(format!("{} ", message.len()).as_bytes());
        out.extend_from_slice(message.as_bytes());
    }
    out
}

/// One body of `size` corpus logs (the shippers phase's first) in each
/// protocol's encoding, as files in `directory` (`--write-bodies`).
pub fn write_bodies(directory: &std::path::Path, size: usize) -> anyhow::Result<()> {
    use super::corpus::Corpus;
    let mut corpus = Corpus::new(11);
    let logs: Vec<GeneratedLog<'static>> = (0..size).map(|_| corpus.log(None)).collect();
    let time = crate::domain::time::now_micros();
    let mut ndjson = Vec::new();
    for log in &logs {
        serde_json::to_writer(&mut ndjson, log)?;
        ndjson.push(b'\n');
    }
    std::fs::create_dir_all(directory)?;
    for (name, body) in [
        ("ndjson", ndjson),
        ("otlp.pb", otlp_body(&logs, time)),
        ("loki.pb.sz", loki_body(&logs, time)),
        ("elasticsearch.ndjson", elasticsearch_body(&logs, time)),
        ("syslog.frames", syslog_frames(&logs, time)),
    ] {
        std::fs::write(directory.join(name), body)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse::LogLimits;
    use crate::domain::shippers::{compression, framing};
    use crate::ingest::{elasticsearch, loki, otlp, syslog};
    use crate::loadgen::corpus::Corpus;

    /// What the benchmark sends decodes to the same logs on the server.
    #[test]
    fn every_encoding_carries_the_corpus() {
        let mut corpus = Corpus::new(5);
        let logs: Vec<GeneratedLog<'static>> = (0..200).map(|_| corpus.log(None)).collect();
        let limits = LogLimits::default();
        let time = 1_735_732_800_000_000;
        let messages = |decoded: &[crate::domain::parse::NewLog]| {
            let mut messages: Vec<String> = decoded.iter().map(|log| log.message.clone()).collect();
            messages.sort();
            messages
        };
        let mut expected: Vec<String> = logs.iter().map(|log| log.message.clone()).collect();
        expected.sort();

        let decoded =
            otlp::decode(&otlp_body(&logs, time), otlp::Encoding::Protobuf, &limits).unwrap();
        assert!(
            messages(&decoded.logs) == expected,
            "OTLP carries every message"
        );
        let inflated = compression::unsnappy(&loki_body(&logs, time), 1 << 24).unwrap();
        let decoded = loki::decode(&inflated, loki::Format::Protobuf, &limits).unwrap();
        assert!(
            messages(&decoded.logs) == expected,
            "Loki carries every message"
        );
        assert!(decoded.logs.iter().all(|log| log.timestamp == Some(time)));
        let bulk_body = elasticsearch_body(&logs, time);
        let bulk = elasticsearch::decode_bulk(&bulk_body, None, &limits).unwrap();
        assert_eq!(
            (messages(&bulk.logs), bulk.refused()),
            (expected.clone(), 0)
        );
        let mut framer = framing::Framer::new(1 << 16);
        framer.extend(&syslog_frames(&logs, time));
        let mut decoded = Vec::new();
        while let Some(framing::Frame::Message(frame)) = framer.next_frame() {
            decoded.push(syslog::decode(frame, time, &limits).unwrap());
        }
        // Syslog drops a message's trailing line end.
        let trimmed: Vec<String> = expected.iter().map(|m| m.trim_end().to_string()).collect();
        assert!(
            messages(&decoded) == trimmed,
            "syslog carries every message"
        );
        let first = logs
            .iter()
            .position(|log| !log.attributes.is_empty())
            .unwrap();
        let attributes = &otlp::decode(
            &otlp_body(&logs[first..=first], time),
            otlp::Encoding::Protobuf,
            &limits,
        )
        .unwrap()
        .logs[0]
            .attributes;
        assert_eq!(attributes.len(), logs[first].attributes.len());
    }
}
