//! Elasticsearch bulk (`POST /_bulk`, `/{index}/_bulk`): NDJSON pairs of an
//! action line and a document line, to our logs plus one result per action,
//! in order, for the answer ES clients read.
//!
//! `index` and `create` store their document; `update` and `delete` are
//! answered with an item error (logs are only appended). A document is
//! flattened to dotted keys first, then [`MESSAGE_FIELDS`],
//! [`TIMESTAMP_FIELDS`], [`LEVEL_FIELDS`] and [`SERVICE_FIELDS`] are looked
//! up by name (the first present wins and is not repeated as an attribute);
//! everything else, and the index name as `index`, are attributes. ES can
//! refuse one item, so a document breaking a limit gets its item's 400, as
//! `/log` would refuse it.

use super::DecodeError;
use super::flatten::{FlattenJson, KeyPath};
use super::record::{Fields as LogFields, Oversize, RecordBuilder};
use crate::domain::level::Level;
use crate::domain::parse::{LogLimits, NewLog};
use crate::domain::time::{MAX_MICROS, Micros, parse_rfc3339};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

pub const MESSAGE_FIELDS: [&str; 3] = ["message", "log", "msg"];
pub const TIMESTAMP_FIELDS: [&str; 2] = ["@timestamp", "timestamp"];
pub const LEVEL_FIELDS: [&str; 3] = ["log.level", "level", "severity"];
pub const SERVICE_FIELDS: [&str; 3] = ["service.name", "service", "app"];
/// The attribute holding the index a document was sent to.
pub const INDEX_ATTRIBUTE: &str = "index";

/// One action's outcome, in request order.
#[derive(Debug, PartialEq)]
pub struct Item {
    /// The action as sent (`index`, `create`, `update`, `delete`).
    pub action: String,
    pub index: Option<String>,
    /// The client's `_id`, when it gave one.
    pub id: Option<String>,
    /// The position of its log in [`Bulk::logs`], or why it was refused.
    pub result: Result<usize, ItemError>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ItemError {
    /// Elasticsearch's error type, which clients show.
    pub kind: &'static str,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Bulk {
    pub logs: Vec<NewLog>,
    pub items: Vec<Item>,
}

impl Bulk {
    pub fn refused(&self) -> usize {
        self.items
            .iter()
            .filter(|item| item.result.is_err())
            .count()
    }
}

/// `path_index` is `{index}` of `/{index}/_bulk`, the default for actions
/// that name none. A malformed action line fails the whole request, as in
/// Elasticsearch; a bad document fails only its item.
pub fn decode_bulk(
    body: &[u8],
    path_index: Option<&str>,
    limits: &LogLimits,
) -> Result<Bulk, DecodeError> {
    let mut bulk = Bulk::default();
    let mut lines = Lines::new(body);
    while let Some((number, line)) = lines.next_non_blank() {
        let action = parse_action(line).map_err(|e| {
            DecodeError::Malformed(format!(
                "Malformed action/metadata line [{number}], expected {{\"index\"|\"create\": {{...}}}}: {e}"
            ))
        })?;
        let index = action
            .meta
            .index
            .map(Cow::into_owned)
            .or_else(|| path_index.map(str::to_string));
        let mut item = Item {
            action: action.name.to_string(),
            index,
            id: action.meta.id.map(Cow::into_owned),
            result: Ok(0),
        };
        let document = match action.name.as_ref() {
            "index" | "create" | "update" => Some(lines.next_non_blank().ok_or_else(|| {
                DecodeError::Malformed(format!(
                    "the {} action on line [{number}] has no document line after it",
                    action.name
                ))
            })?),
            "delete" => None,
            other => {
                return Err(DecodeError::Malformed(format!(
                    "Malformed action/metadata line [{number}], expected one of [create, delete, index, update] but found [{other}]"
                )));
            }
        };
        item.result = match (document, &item.index) {
            (_, _) if matches!(action.name.as_ref(), "update" | "delete") => Err(ItemError {
                kind: "illegal_argument_exception",
                reason: format!(
                    "{} is not supported: logs are only appended (use index or create)",
                    action.name
                ),
            }),
            (_, None) => Err(ItemError {
                kind: "action_request_validation_exception",
                reason: "index is missing: name it in the action or the path (/{index}/_bulk)"
                    .into(),
            }),
            (Some((_, source)), Some(index)) => map_document(source, index, limits).map(|log| {
                bulk.logs.push(log);
                bulk.logs.len() - 1
            }),
            (None, Some(_)) => Err(ItemError {
                kind: "illegal_argument_exception",
                reason: "the action has no document".into(),
            }),
        };
        bulk.items.push(item);
    }
    Ok(bulk)
}

fn map_document(source: &[u8], index: &str, limits: &LogLimits) -> Result<NewLog, ItemError> {
    let parse_error = |reason: String| ItemError {
        kind: "document_parsing_exception",
        reason,
    };
    let mut leaves: Vec<(String, String)> = Vec::new();
    let mut path = KeyPath::default();
    let mut deserializer = serde_json::Deserializer::from_slice(source);
    FlattenJson {
        path: &mut path,
        sink: &mut leaves,
    }
    .object(&mut deserializer)
    .and_then(|()| deserializer.end())
    .map_err(|e| parse_error(format!("failed to parse the document: {e}")))?;

    let mut take = |names: &[&str], accept: &dyn Fn(&str) -> bool| {
        names.iter().find_map(|name| {
            let at = leaves
                .iter()
                .position(|(key, value)| key == name && accept(value))?;
            Some(leaves.swap_remove(at).1)
        })
    };
    let message = take(&MESSAGE_FIELDS, &|_| true).ok_or_else(|| {
        parse_error("the document has no message: send it in message, log or msg".into())
    })?;
    let timestamp = take(&TIMESTAMP_FIELDS, &|_| true)
        .map(|text| {
            parse_date(&text).map_err(|e| {
                parse_error(format!("failed to parse field [@timestamp] {text:?}: {e}"))
            })
        })
        .transpose()?;
    let level = take(&LEVEL_FIELDS, &|value| {
        Level::parse_alias(value.trim()).is_some()
    })
    .and_then(|value| Level::parse_alias(value.trim()))
    .unwrap_or(Level::Info);
    let service = take(&SERVICE_FIELDS, &|value| !value.trim().is_empty())
        .unwrap_or_else(|| index.to_string());
    let mut builder = RecordBuilder::new(limits, Oversize::Reject);
    for (key, value) in leaves {
        builder.attribute_owned(key, value);
    }
    builder.attribute(INDEX_ATTRIBUTE, index);
    builder
        .finish(LogFields {
            level,
            service: Some(service),
            message,
            timestamp,
        })
        .map_err(|reason| ItemError {
            kind: "illegal_argument_exception",
            reason,
        })
}

/// Elasticsearch's default date format, `strict_date_optional_time ||
/// epoch_millis`: RFC 3339, the same without an offset (UTC), a bare date,
/// or milliseconds since the epoch.
pub fn parse_date(text: &str) -> Result<Micros, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .ok()
            .and_then(|millis| millis.checked_mul(1000))
            .filter(|micros| *micros < MAX_MICROS)
            .ok_or_else(|| "epoch milliseconds out of range".into());
    }
    parse_rfc3339(text).or_else(|error| {
        let has_time = text.len() > 10;
        let assumed_utc = if has_time {
            format!("{text}Z")
        } else {
            format!("{text}T00:00:00Z")
        };
        parse_rfc3339(&assumed_utc).map_err(|_| error)
    })
}

/// NDJSON lines with their 1-based numbers, `\r\n` tolerated.
struct Lines<'a> {
    body: &'a [u8],
    start: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    fn new(body: &'a [u8]) -> Lines<'a> {
        Lines {
            body,
            start: 0,
            number: 0,
        }
    }

    fn next_non_blank(&mut self) -> Option<(usize, &'a [u8])> {
        while self.start < self.body.len() {
            let rest = &self.body[self.start..];
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            self.start += end + 1;
            self.number += 1;
            let line = &rest[..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Some((self.number, line));
            }
        }
        None
    }
}

struct Action<'a> {
    name: Cow<'a, str>,
    meta: ActionMeta<'a>,
}

#[derive(Deserialize, Default)]
struct ActionMeta<'a> {
    #[serde(default, borrow, rename = "_index")]
    index: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "_id")]
    id: Option<Cow<'a, str>>,
}

/// `{"<action>": {"_index": ..., "_id": ...}}`: exactly one key. Other
/// metadata (`_type`, `pipeline`, `routing`, ...) is tolerated and ignored.
fn parse_action(line: &[u8]) -> Result<Action<'_>, serde_json::Error> {
    struct ActionVisitor;
    impl<'de> Visitor<'de> for ActionVisitor {
        type Value = Action<'de>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object with one action")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Action<'de>, A::Error> {
            #[derive(Deserialize)]
            struct Name<'b>(#[serde(borrow)] Cow<'b, str>);
            let Some(Name(name)) = map.next_key::<Name<'de>>()? else {
                return Err(de::Error::custom("no action"));
            };
            let meta = map
                .next_value::<Option<ActionMeta<'de>>>()?
                .unwrap_or_default();
            if map.next_key::<IgnoredAny>()?.is_some() {
                return Err(de::Error::custom("one action per line"));
            }
            Ok(Action { name, meta })
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(line);
    let action = (&mut deserializer).deserialize_map(ActionVisitor)?;
    deserializer.end()?;
    Ok(action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::shippers::tests::attribute_pairs;

    fn decode(body: &str, path_index: Option<&str>) -> Bulk {
        decode_bulk(body.as_bytes(), path_index, &LogLimits::default()).unwrap()
    }

    #[test]
    fn maps_documents_and_keeps_item_order() {
        let body = concat!(
            r#"{"index":{"_index":"app-logs","_id":"a1","_type":"_doc","pipeline":"p"}}"#,
            "\n",
            r#"{"@timestamp":"2025-01-01T12:00:00.5Z","message":"card declined","log":{"level":"WARNING"},"service":{"name":"payments"},"http":{"status":402},"tags":["x"]}"#,
            "\r\n",
            "\n",
            r#"{"create":{}}"#,
            "\n",
            r#"{"msg":"from the path index","timestamp":1735732800123,"level":"loud"}"#,
            "\n",
            r#"{"delete":{"_index":"x","_id":"1"}}"#,
            "\n",
            r#"{"update":{"_index":"x","_id":"1"}}"#,
            "\n",
            r#"{"doc":{}}"#,
            "\n",
            r#"{"index":{}}"#,
            "\n",
            r#"{"message":"bad" "#,
            "\n",
            r#"{"index":{}}"#,
            "\n",
            r#"{"no_message":true}"#,
            "\n",
        );
        let bulk = decode(body, Some("default-index"));
        let results: Vec<_> = bulk
            .items
            .iter()
            .map(|item| {
                (
                    item.action.as_str(),
                    item.result.as_ref().map_err(|e| e.kind),
                )
            })
            .collect();
        assert_eq!(
            results,
            vec![
                ("index", Ok(&0)),
                ("create", Ok(&1)),
                ("delete", Err("illegal_argument_exception")),
                ("update", Err("illegal_argument_exception")),
                ("index", Err("document_parsing_exception")),
                ("index", Err("document_parsing_exception")),
            ]
        );
        assert_eq!(bulk.refused(), 4);
        assert_eq!(bulk.items[0].id.as_deref(), Some("a1"));
        assert_eq!(bulk.items[0].index.as_deref(), Some("app-logs"));
        let first = &bulk.logs[0];
        assert_eq!(
            (first.service.as_str(), first.level, first.message.as_str()),
            ("payments", Level::Warn, "card declined")
        );
        assert_eq!(first.timestamp, Some(1_735_732_800_500_000));
        assert_eq!(
            attribute_pairs(first),
            vec![
                ("http.status", "402"),
                ("index", "app-logs"),
                ("tags", "[\"x\"]")
            ]
        );
        let second = &bulk.logs[1];
        assert_eq!(
            (second.service.as_str(), second.level),
            ("default-index", Level::Info)
        );
        assert_eq!(second.timestamp, Some(1_735_732_800_123_000));
        assert_eq!(
            second.attributes.get("level").map(String::as_str),
            Some("loud")
        );
    }

    #[test]
    fn limits_refuse_the_item_not_the_request() {
        let limits = LogLimits {
            max_message_bytes: 5,
            ..LogLimits::default()
        };
        let body = b"{\"index\":{\"_index\":\"i\"}}\n{\"message\":\"too long\"}\n{\"index\":{\"_index\":\"i\"}}\n{\"message\":\"ok\"}\n";
        let bulk = decode_bulk(body, None, &limits).unwrap();
        assert_eq!(bulk.logs.len(), 1);
        assert_eq!(
            bulk.items[0].result.as_ref().unwrap_err().reason,
            "message is 8 bytes; the limit is 5 bytes"
        );
    }

    #[test]
    fn malformed_actions_fail_the_request() {
        let limits = LogLimits::default();
        for bad in [
            &b"{\"index\":{}}"[..],
            b"not json\n{}\n",
            b"{\"index\":{},\"create\":{}}\n{}\n",
            b"{\"upsert\":{}}\n{}\n",
            b"[1]\n",
        ] {
            assert!(
                decode_bulk(bad, Some("i"), &limits).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let missing_index = decode("{\"index\":{}}\n{\"message\":\"m\"}\n", None);
        assert_eq!(
            missing_index.items[0].result.as_ref().unwrap_err().kind,
            "action_request_validation_exception"
        );
        assert!(decode("", None).items.is_empty());
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2025-01-01T12:00:00Z"),
            Ok(1_735_732_800_000_000)
        );
        assert_eq!(
            parse_date("2025-01-01T12:00:00.25"),
            Ok(1_735_732_800_250_000)
        );
        assert_eq!(parse_date("2025-01-01"), Ok(1_735_689_600_000_000));
        assert_eq!(parse_date("1735732800000"), Ok(1_735_732_800_000_000));
        assert!(parse_date("yesterday").is_err());
        assert!(parse_date("99999999999999999999").is_err());
    }
}
