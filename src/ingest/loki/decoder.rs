//! Loki push (`POST /loki/api/v1/push`): a `PushRequest` as JSON (the
//! current `stream`/`values` form and the legacy `labels`/`entries` form
//! older clients send) or as protobuf (the caller undoes snappy first), to
//! our logs.
//!
//! Each entry takes its stream's labels and its own structured metadata
//! (which wins on a shared name). The first of [`SERVICE_LABELS`] present
//! names the service, the first of [`LEVEL_LABELS`] holding a level name the
//! level (default info); the names used so are not repeated as attributes,
//! every other label and metadata pair is one. Loki has no per-entry error,
//! so over-long values are cut (see `record`) and an empty line is refused
//! and counted.

use crate::domain::level::Level;
use crate::domain::parse::LogLimits;
use crate::domain::shippers::protobuf::{Fields, values_of};
use crate::domain::shippers::quoted::quoted;
use crate::domain::shippers::record::{Fields as LogFields, Oversize, RecordBuilder};
use crate::domain::shippers::{DecodeError, Decoded, RejectedRecord};
use crate::domain::time::{MAX_MICROS, Micros, parse_rfc3339};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    /// `application/x-protobuf`, after snappy.
    Protobuf,
}

/// Labels naming the service, most specific first.
pub const SERVICE_LABELS: [&str; 4] = ["service_name", "service", "app", "job"];
/// Labels (or structured metadata) naming the level, most specific first.
pub const LEVEL_LABELS: [&str; 3] = ["level", "detected_level", "severity"];

type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

struct Entry<'a> {
    /// Nanoseconds since the epoch; 0 when the client sent none.
    nanos: i64,
    line: Cow<'a, str>,
    metadata: Pairs<'a>,
}

pub fn decode(body: &[u8], format: Format, limits: &LogLimits) -> Result<Decoded, DecodeError> {
    let mut decoded = Decoded::default();
    let mut index = 0;
    let mut emit = |labels: &Pairs<'_>, entry: Entry<'_>| -> Result<(), DecodeError> {
        match map_entry(labels, entry, limits)? {
            Ok(log) => decoded.logs.push(log),
            Err(error) => decoded.rejected.push(RejectedRecord { index, error }),
        }
        index += 1;
        Ok(())
    };
    match format {
        Format::Protobuf => decode_protobuf(body, &mut emit)?,
        Format::Json => decode_json(body, &mut emit)?,
    }
    Ok(decoded)
}

/// The log, a per-entry refusal, or a timestamp that fails the whole push
/// (as Loki answers 400 for it).
fn map_entry(
    labels: &Pairs<'_>,
    entry: Entry<'_>,
    limits: &LogLimits,
) -> Result<Result<crate::domain::parse::NewLog, String>, DecodeError> {
    let timestamp = micros_from_nanos(entry.nanos)?;
    let pairs = || labels.iter().chain(entry.metadata.iter());
    // The last pair of a name wins: metadata overrides the stream's labels.
    let last = |name: &str| pairs().rev().find(|(key, _)| key == name).map(|(_, v)| v);
    let service_label = SERVICE_LABELS
        .into_iter()
        .find(|name| last(name).is_some_and(|value| !value.trim().is_empty()));
    let level_label = LEVEL_LABELS.into_iter().find_map(|name| {
        let level = Level::parse_alias(last(name)?.trim())?;
        Some((name, level))
    });
    let mut builder = RecordBuilder::new(limits, Oversize::Truncate);
    for (key, value) in pairs() {
        if Some(key.as_ref()) != service_label
            && Some(key.as_ref()) != level_label.map(|(name, _)| name)
        {
            builder.attribute(key, value);
        }
    }
    Ok(builder.finish(LogFields {
        level: level_label.map(|(_, level)| level).unwrap_or(Level::Info),
        service: service_label.and_then(last).map(|value| value.to_string()),
        message: entry.line.into_owned(),
        timestamp,
    }))
}

fn micros_from_nanos(nanos: i64) -> Result<Option<Micros>, DecodeError> {
    if nanos == 0 {
        return Ok(None);
    }
    let micros = nanos / 1000;
    if !(0..MAX_MICROS).contains(&micros) {
        return Err(DecodeError::Malformed(format!(
            "timestamp {nanos} is out of range: send nanoseconds since 1970 as a string"
        )));
    }
    Ok(Some(micros))
}

/// `{app="web", level="info"}`: Prometheus label syntax, values in double
/// quotes with backslash escapes.
pub fn parse_labels(text: &str) -> Result<Pairs<'_>, DecodeError> {
    let invalid = |why: &str| {
        DecodeError::Malformed(format!(
            "labels {text:?}: {why}; expected {{name=\"value\", ...}}"
        ))
    };
    let mut rest = text.trim();
    rest = rest
        .strip_prefix('{')
        .ok_or_else(|| invalid("no opening brace"))?;
    let mut pairs = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            if !after.trim().is_empty() {
                return Err(invalid("text after the closing brace"));
            }
            return Ok(pairs);
        }
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        if name_end == 0 {
            return Err(invalid("a label name is missing"));
        }
        let (name, after) = rest.split_at(name_end);
        rest = after
            .trim_start()
            .strip_prefix('=')
            .ok_or_else(|| invalid("no = after a label name"))?;
        rest = rest
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| invalid("label values are quoted"))?;
        let (value, after) =
            quoted(rest, label_escape).ok_or_else(|| invalid("a label value is not closed"))?;
        pairs.push((Cow::Borrowed(name), value));
        rest = after.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Label values escape like Go strings: `\n`, `\t`, `\r`, and any other
/// character stands for itself.
fn label_escape(c: char) -> Option<char> {
    Some(match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        other => other,
    })
}

// ---- protobuf ---------------------------------------------------------------

fn decode_protobuf<'a>(
    body: &'a [u8],
    emit: &mut impl FnMut(&Pairs<'a>, Entry<'a>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    // PushRequest { repeated StreamAdapter streams = 1; }
    for stream in values_of(body, 1) {
        let stream = stream?.bytes()?;
        // StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; }
        let mut labels = Vec::new();
        for text in values_of(stream, 1) {
            labels = parse_labels(text?.string()?)?;
        }
        for entry in values_of(stream, 2) {
            emit(&labels, read_entry(entry?.bytes()?)?)?;
        }
    }
    Ok(())
}

/// `EntryAdapter { Timestamp timestamp = 1; string line = 2;
/// repeated LabelPairAdapter structuredMetadata = 3; }`
fn read_entry(message: &[u8]) -> Result<Entry<'_>, DecodeError> {
    let mut entry = Entry {
        nanos: 0,
        line: Cow::Borrowed(""),
        metadata: Vec::new(),
    };
    for field in Fields::new(message) {
        match field? {
            (1, value) => {
                // google.protobuf.Timestamp { int64 seconds = 1; int32 nanos = 2; }
                let (mut seconds, mut nanos) = (0i64, 0i64);
                for field in Fields::new(value.bytes()?) {
                    match field? {
                        (1, value) => seconds = value.integer()? as i64,
                        (2, value) => nanos = i64::from(value.integer()? as i32),
                        _ => {}
                    }
                }
                entry.nanos = seconds
                    .checked_mul(1_000_000_000)
                    .and_then(|n| n.checked_add(nanos))
                    .ok_or_else(|| DecodeError::Malformed("timestamp out of range".into()))?;
            }
            (2, value) => entry.line = Cow::Borrowed(value.string()?),
            (3, value) => {
                // LabelPairAdapter { string name = 1; string value = 2; }
                let (mut name, mut text) = ("", "");
                for field in Fields::new(value.bytes()?) {
                    match field? {
                        (1, value) => name = value.string()?,
                        (2, value) => text = value.string()?,
                        _ => {}
                    }
                }
                entry
                    .metadata
                    .push((Cow::Borrowed(name), Cow::Borrowed(text)));
            }
            _ => {}
        }
    }
    Ok(entry)
}

// ---- JSON ----------------------------------------------------------------------

fn decode_json<'a>(
    body: &'a [u8],
    emit: &mut impl FnMut(&Pairs<'a>, Entry<'a>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let push: JsonPush<'a> = serde_json::from_slice(body)
        .map_err(|e| DecodeError::Malformed(format!("malformed Loki push JSON: {e}")))?;
    for stream in push.streams {
        let labels = match stream.labels {
            Some(text) => match text {
                Cow::Borrowed(text) => parse_labels(text)?,
                Cow::Owned(text) => parse_labels(&text)?
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
                    .collect(),
            },
            None => stream.stream.into_iter().collect(),
        };
        for value in stream.values {
            emit(&labels, value.0)?;
        }
        for legacy in stream.entries {
            let micros = parse_rfc3339(&legacy.ts)
                .map_err(|e| DecodeError::Malformed(format!("entry ts {:?}: {e}", legacy.ts)))?;
            emit(
                &labels,
                Entry {
                    nanos: micros * 1000,
                    line: legacy.line,
                    metadata: Vec::new(),
                },
            )?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct JsonPush<'a> {
    #[serde(borrow)]
    streams: Vec<JsonStream<'a>>,
}

#[derive(Deserialize)]
struct JsonStream<'a> {
    #[serde(default, borrow)]
    stream: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(default, borrow)]
    values: Vec<JsonValue<'a>>,
    /// The legacy form: labels as one string, entries as objects.
    #[serde(default, borrow)]
    labels: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    entries: Vec<LegacyEntry<'a>>,
}

#[derive(Deserialize)]
struct LegacyEntry<'a> {
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    line: Cow<'a, str>,
}

/// `["<nanoseconds>", "line"]` or `["<nanoseconds>", "line", {metadata}]`.
struct JsonValue<'a>(Entry<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for JsonValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(ValueVisitor(std::marker::PhantomData))
    }
}

struct ValueVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
    type Value = JsonValue<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("[\"<unix epoch in nanoseconds>\", \"<log line>\"] or with a third element of structured metadata")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonValue<'a>, A::Error> {
        let nanos = seq
            .next_element::<Nanos>()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?
            .0;
        let line: Cow<'a, str> = seq
            .next_element::<BorrowedText<'a>>()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?
            .0;
        let metadata = seq
            .next_element::<BTreeMap<BorrowedText<'a>, BorrowedText<'a>>>()?
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.0, v.0))
            .collect();
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(4, &self));
        }
        Ok(JsonValue(Entry {
            nanos,
            line,
            metadata,
        }))
    }
}

/// A string borrowed from the body when it has no escapes.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct BorrowedText<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Inner<'b>(#[serde(borrow)] Cow<'b, str>);
        Ok(BorrowedText(Inner::deserialize(deserializer)?.0))
    }
}

/// Nanoseconds as a decimal string (Loki's form) or a number.
struct Nanos(i64);

impl<'de> Deserialize<'de> for Nanos {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NanosVisitor;
        impl Visitor<'_> for NanosVisitor {
            type Value = Nanos;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timestamp in nanoseconds since the epoch, as a string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Nanos, E> {
                text.parse().map(Nanos).map_err(|_| {
                    E::custom(format!(
                        "timestamp {text:?} is not nanoseconds since the epoch"
                    ))
                })
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Nanos, E> {
                Ok(Nanos(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Nanos, E> {
                i64::try_from(value)
                    .map(Nanos)
                    .map_err(|_| E::custom("timestamp out of range"))
            }
        }
        deserializer.deserialize_any(NanosVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::shippers::protobuf::put_bytes_field;
    use crate::domain::shippers::protobuf::put_varint_field;
    use crate::domain::shippers::tests::attribute_pairs;

    #[test]
    fn json_streams_with_labels_and_metadata() {
        let body = br#"{"streams":[
            {"stream":{"app":"web","job":"varlogs","level":"WARNING","env":"prod"},
             "values":[["1735732800123456789","first"],
                       ["1735732800000000000","second",{"trace_id":"abc","level":"err"}]]},
            {"stream":{"job":"cron","detected_level":"loud"},"values":[["1735732800000000000",""],["1735732800000000000","third"]]}]}"#;
        let decoded = decode(body, Format::Json, &LogLimits::default()).unwrap();
        assert_eq!(decoded.rejected.len(), 1);
        assert_eq!(decoded.rejected[0].index, 2);
        let first = &decoded.logs[0];
        assert_eq!((first.service.as_str(), first.level), ("web", Level::Warn));
        assert_eq!(first.timestamp, Some(1_735_732_800_123_456));
        assert_eq!(
            attribute_pairs(first),
            vec![("env", "prod"), ("job", "varlogs")]
        );
        let second = &decoded.logs[1];
        assert_eq!(second.level, Level::Error, "metadata overrides the label");
        assert_eq!(
            attribute_pairs(second),
            vec![("env", "prod"), ("job", "varlogs"), ("trace_id", "abc")]
        );
        let third = &decoded.logs[2];
        assert_eq!((third.service.as_str(), third.level), ("cron", Level::Info));
        assert_eq!(
            attribute_pairs(third),
            vec![("detected_level", "loud")],
            "not a level: kept"
        );
    }

    #[test]
    fn legacy_json_form() {
        let body = br#"{"streams":[{"labels":"{service_name=\"api\", severity=\"critical\", logger=\"root\"}","entries":[{"ts":"2025-01-01T12:00:00.5Z","line":"legacy"}]}]}"#;
        let decoded = decode(body, Format::Json, &LogLimits::default()).unwrap();
        let log = &decoded.logs[0];
        assert_eq!((log.service.as_str(), log.level), ("api", Level::Fatal));
        assert_eq!(log.timestamp, Some(1_735_732_800_500_000));
        assert_eq!(attribute_pairs(log), vec![("logger", "root")]);
    }

    #[test]
    fn protobuf_push() {
        let mut timestamp = Vec::new();
        put_varint_field(&mut timestamp, 1, 1_735_732_800);
        put_varint_field(&mut timestamp, 2, 250_000_000);
        let mut pair = Vec::new();
        put_bytes_field(&mut pair, 1, b"user");
        put_bytes_field(&mut pair, 2, b"ada");
        let mut entry = Vec::new();
        put_bytes_field(&mut entry, 1, &timestamp);
        put_bytes_field(&mut entry, 2, b"hello from protobuf");
        put_bytes_field(&mut entry, 3, &pair);
        let mut stream = Vec::new();
        put_bytes_field(&mut stream, 2, &entry);
        put_bytes_field(
            &mut stream,
            1,
            br#"{job="winston", level="debug", msg="say \"hi\"\\"}"#,
        );
        let mut push = Vec::new();
        put_bytes_field(&mut push, 1, &stream);
        let decoded = decode(&push, Format::Protobuf, &LogLimits::default()).unwrap();
        let log = &decoded.logs[0];
        assert_eq!((log.service.as_str(), log.level), ("winston", Level::Debug));
        assert_eq!(log.message, "hello from protobuf");
        assert_eq!(log.timestamp, Some(1_735_732_800_250_000));
        assert_eq!(
            attribute_pairs(log),
            vec![("msg", "say \"hi\"\\"), ("user", "ada")]
        );
    }

    #[test]
    fn label_syntax() {
        let pairs = parse_labels(r#" { a = "1" ,b="x\ny",} "#).unwrap();
        assert_eq!(
            pairs,
            vec![
                (Cow::Borrowed("a"), Cow::Borrowed("1")),
                (Cow::Borrowed("b"), Cow::Owned("x\ny".into()))
            ]
        );
        assert!(parse_labels("{}").unwrap().is_empty());
        for bad in ["", "a=\"1\"", "{a=1}", "{a=\"1}", "{=\"1\"}", "{a=\"1\"} x"] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_pushes_fail_whole() {
        let limits = LogLimits::default();
        for bad in [
            &br#"{"streams":[{"stream":{},"values":[["soon","x"]]}]}"#[..],
            br#"{"streams":[{"stream":{},"values":[["1"]]}]}"#,
            br#"{"streams":[{"stream":{},"values":[["-5000","x"]]}]}"#,
            br#"{"streams":[{"stream":{"a":1},"values":[]}]}"#,
            br#"{"streams":5}"#,
            b"",
        ] {
            assert!(
                decode(bad, Format::Json, &limits).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(decode(b"\x0a\x02\x0a\x05", Format::Protobuf, &limits).is_err());
        let decoded = decode(br#"{"streams":[]}"#, Format::Json, &limits).unwrap();
        assert!(decoded.logs.is_empty());
    }
}
