//! Elasticsearch bulk (`POST /_bulk`, `/{index}/_bulk`): NDJSON pairs of an
//! action line and a document line, to our logs plus one result per action,
//! in order, for the answer ES clients read.
//!
//! `index` and `create` store their document; `update` and `delete` are
//! answered with an item error (logs are only appended). A document is
//! flattened to dotted keys, and [`FIELDS`] names the ones that become the
//! message, timestamp, level and service (the first present wins and is not
//! repeated as an attribute); everything else, and the index name as
//! `index`, are attributes. ES can
//! refuse one item, so a document breaking a limit gets its item's 400, as
//! `/log` would refuse it.

use crate::domain::level::Level;
use crate::domain::parse::{LogLimits, NewLog};
use crate::domain::shippers::DecodeError;
use crate::domain::shippers::flatten::{FlatSink, FlattenJson, KeyPath};
use crate::domain::shippers::record::{Fields as LogFields, Oversize, RecordBuilder};
use crate::domain::time::{MAX_MICROS, Micros, parse_rfc3339};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// What a document field can be to the mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Message,
    Timestamp,
    Level,
    Service,
}

/// The fields the mapping looks up, by role, the preferred first: the first
/// present (for the level: the first holding a level name; for the service:
/// the first not blank) is used and not repeated as an attribute.
const FIELDS: [(&str, Role); 11] = [
    ("message", Role::Message),
    ("log", Role::Message),
    ("msg", Role::Message),
    ("@timestamp", Role::Timestamp),
    ("timestamp", Role::Timestamp),
    ("log.level", Role::Level),
    ("level", Role::Level),
    ("severity", Role::Level),
    ("service.name", Role::Service),
    ("service", Role::Service),
    ("app", Role::Service),
];

/// The attribute holding the index a document was sent to.
pub const INDEX_ATTRIBUTE: &str = "index";

/// The bulk actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Index,
    Create,
    Update,
    Delete,
}

impl Action {
    fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "index" => Action::Index,
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// One action's outcome, in request order; names borrowed from the request.
#[derive(Debug, PartialEq)]
pub struct Item<'a> {
    pub action: Action,
    pub index: Option<Cow<'a, str>>,
    /// The client's `_id`, when it gave one.
    pub id: Option<Cow<'a, str>>,
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
pub struct Bulk<'a> {
    pub logs: Vec<NewLog>,
    pub items: Vec<Item<'a>>,
}

impl Bulk<'_> {
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
pub fn decode_bulk<'a>(
    body: &'a [u8],
    path_index: Option<&'a str>,
    limits: &LogLimits,
) -> Result<Bulk<'a>, DecodeError> {
    let mut bulk = Bulk::default();
    let mut lines = Lines::new(body);
    let mut path = KeyPath::default();
    // Clients repeat one action line for every document (`{"index":{}}`, or
    // the same `_index`): an identical line is not parsed again.
    let mut previous: Option<(&'a [u8], Action, ActionMeta<'a>)> = None;
    while let Some((number, line)) = lines.next_non_blank() {
        let (action, meta) = match &previous {
            Some((bytes, action, meta)) if *bytes == line => (*action, meta.clone()),
            _ => {
                let (action, meta) = action_line(number, line)?;
                previous = Some((line, action, meta.clone()));
                (action, meta)
            }
        };
        let name = action.name();
        let document = match action {
            Action::Delete => None,
            _ => Some(lines.next_non_blank().ok_or_else(|| {
                DecodeError::Malformed(format!(
                    "the {name} action on line [{number}] has no document line after it"
                ))
            })?),
        };
        let index = meta.index.or(path_index.map(Cow::Borrowed));
        let result = match (action, document, &index) {
            (Action::Update | Action::Delete, _, _) => Err(ItemError {
                kind: "illegal_argument_exception",
                reason: format!(
                    "{name} is not supported: logs are only appended (use index or create)"
                ),
            }),
            (_, _, None) => Err(ItemError {
                kind: "action_request_validation_exception",
                reason: "index is missing: name it in the action or the path (/{index}/_bulk)"
                    .into(),
            }),
            (_, Some((_, source)), Some(index)) => std::str::from_utf8(source)
                .map_err(|e| ItemError {
                    kind: "document_parsing_exception",
                    reason: format!("the document is not UTF-8: {e}"),
                })
                .and_then(|source| map_document(source, index, &mut path, limits))
                .map(|log| {
                    bulk.logs.push(log);
                    bulk.logs.len() - 1
                }),
            (_, None, Some(_)) => Err(ItemError {
                kind: "illegal_argument_exception",
                reason: "the action has no document".into(),
            }),
        };
        bulk.items.push(Item {
            action,
            index,
            id: meta.id,
            result,
        });
    }
    Ok(bulk)
}

/// An action line's action and metadata; a malformed one fails the request.
fn action_line(number: usize, line: &[u8]) -> Result<(Action, ActionMeta<'_>), DecodeError> {
    let malformed = |why: String| {
        DecodeError::Malformed(format!(
            "Malformed action/metadata line [{number}], expected {{\"index\"|\"create\": {{...}}}}: {why}"
        ))
    };
    let line = std::str::from_utf8(line).map_err(|e| malformed(e.to_string()))?;
    let (name, meta) = parse_action(line).map_err(|e| malformed(e.to_string()))?;
    let action = Action::parse(&name).ok_or_else(|| {
        malformed(format!(
            "expected one of [create, delete, index, update] but found [{name}]"
        ))
    })?;
    Ok((action, meta))
}

/// A document's leaves: the fields of [`FIELDS`] kept in their slots (their
/// keys are not copied), every other one straight into the log's attributes.
struct Document<'l> {
    known: [Option<String>; FIELDS.len()],
    attributes: RecordBuilder<'l>,
}

impl FlatSink for Document<'_> {
    fn leaf(&mut self, key: &str, value: Cow<'_, str>) {
        match field_slot(key) {
            Some(slot) if self.known[slot].is_none() => self.known[slot] = Some(value.into_owned()),
            _ => self
                .attributes
                .attribute_owned(key.to_string(), value.into_owned()),
        }
    }
}

/// `key`'s position in [`FIELDS`] (a `match` on the key: a linear search
/// of the table cost a string comparison per field per leaf).
fn field_slot(key: &str) -> Option<usize> {
    Some(match key {
        "message" => 0,
        "log" => 1,
        "msg" => 2,
        "@timestamp" => 3,
        "timestamp" => 4,
        "log.level" => 5,
        "level" => 6,
        "severity" => 7,
        "service.name" => 8,
        "service" => 9,
        "app" => 10,
        _ => return None,
    })
}

impl Document<'_> {
    /// The first field of `role` that `accept` maps to a value, taken out.
    fn take<T>(&mut self, role: Role, accept: impl Fn(&str) -> Option<T>) -> Option<(String, T)> {
        FIELDS
            .iter()
            .enumerate()
            .find_map(|(slot, (_, field_role))| {
                if *field_role != role {
                    return None;
                }
                let value = accept(self.known[slot].as_deref()?)?;
                Some((self.known[slot].take()?, value))
            })
    }
}

fn map_document(
    source: &str,
    index: &str,
    path: &mut KeyPath,
    limits: &LogLimits,
) -> Result<NewLog, ItemError> {
    let parse_error = |reason: String| ItemError {
        kind: "document_parsing_exception",
        reason,
    };
    let mut document = Document {
        known: Default::default(),
        attributes: RecordBuilder::new(limits, Oversize::Reject),
    };
    path.leave(0);
    let mut deserializer = serde_json::Deserializer::from_str(source);
    FlattenJson::new(path, &mut document)
        .object(&mut deserializer)
        .and_then(|()| deserializer.end())
        .map_err(|e| parse_error(format!("failed to parse the document: {e}")))?;

    let (message, ()) = document.take(Role::Message, |_| Some(())).ok_or_else(|| {
        parse_error("the document has no message: send it in message, log or msg".into())
    })?;
    let timestamp = document
        .take(Role::Timestamp, |text| Some(parse_date(text)))
        .map(|(text, parsed)| {
            parsed.map_err(|e| {
                parse_error(format!("failed to parse field [@timestamp] {text:?}: {e}"))
            })
        })
        .transpose()?;
    let level = document
        .take(Role::Level, |value| Level::parse_alias(value.trim()))
        .map_or(Level::Info, |(_, level)| level);
    let service = document
        .take(Role::Service, |value| {
            (!value.trim().is_empty()).then_some(())
        })
        .map_or_else(|| index.to_string(), |(service, ())| service);
    let Document {
        known,
        attributes: mut builder,
    } = document;
    // Fields not used for the mapping stay, as attributes.
    for (slot, value) in known.into_iter().enumerate() {
        if let Some(value) = value {
            builder.attribute_owned(FIELDS[slot].0.to_string(), value);
        }
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

/// A string borrowed from the line when it has no escapes (serde copies a
/// `Cow` map key, or one inside an `Option`).
struct BorrowedStr;

impl<'de> DeserializeSeed<'de> for BorrowedStr {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for BorrowedStr {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(name))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(name.to_string()))
    }
}

#[derive(Deserialize, Default, Clone)]
struct ActionMeta<'a> {
    #[serde(default, borrow, rename = "_index", deserialize_with = "borrowed")]
    index: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "_id", deserialize_with = "borrowed")]
    id: Option<Cow<'a, str>>,
}

fn borrowed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    BorrowedStr.deserialize(deserializer).map(Some)
}

/// `{"<action>": {"_index": ..., "_id": ...}}`: exactly one key. Other
/// metadata (`_type`, `pipeline`, `routing`, ...) is tolerated and ignored.
fn parse_action(line: &str) -> Result<(Cow<'_, str>, ActionMeta<'_>), serde_json::Error> {
    struct ActionVisitor;
    impl<'de> Visitor<'de> for ActionVisitor {
        type Value = (Cow<'de, str>, ActionMeta<'de>);
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object with one action")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let Some(name) = map.next_key_seed(BorrowedStr)? else {
                return Err(de::Error::custom("no action"));
            };
            let meta = map
                .next_value::<Option<ActionMeta<'de>>>()?
                .unwrap_or_default();
            if map.next_key::<IgnoredAny>()?.is_some() {
                return Err(de::Error::custom("one action per line"));
            }
            Ok((name, meta))
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(line);
    let action = (&mut deserializer).deserialize_map(ActionVisitor)?;
    deserializer.end()?;
    Ok(action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::shippers::tests::attribute_pairs;

    fn decode<'a>(body: &'a str, path_index: Option<&'a str>) -> Bulk<'a> {
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
            .map(|item| (item.action.name(), item.result.as_ref().map_err(|e| e.kind)))
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
    fn field_slots_follow_the_table() {
        for (slot, (name, _)) in FIELDS.iter().enumerate() {
            assert_eq!(field_slot(name), Some(slot), "{name}");
        }
        assert_eq!(field_slot("service.version"), None);
    }

    #[test]
    fn repeated_action_lines_keep_their_own_items() {
        let body = concat!(
            "{\"index\":{\"_index\":\"a\"}}\n{\"message\":\"one\"}\n",
            "{\"index\":{\"_index\":\"a\"}}\n{\"message\":\"two\"}\n",
            "{\"create\":{\"_index\":\"a\",\"_id\":\"x\"}}\n{\"message\":\"three\"}\n",
            "{\"index\":{\"_index\":\"a\"}}\n{\"message\":\"four\"}\n",
            "{\"index\":{\"_index\":\"a\"}}\n{\"nothing\":1}\n",
        );
        let bulk = decode(body, None);
        let items: Vec<_> = bulk
            .items
            .iter()
            .map(|item| {
                (
                    item.action,
                    item.index.as_deref(),
                    item.id.as_deref(),
                    item.result.is_ok(),
                )
            })
            .collect();
        assert_eq!(
            items,
            vec![
                (Action::Index, Some("a"), None, true),
                (Action::Index, Some("a"), None, true),
                (Action::Create, Some("a"), Some("x"), true),
                (Action::Index, Some("a"), None, true),
                (Action::Index, Some("a"), None, false),
            ]
        );
        let messages: Vec<_> = bulk.logs.iter().map(|log| log.message.as_str()).collect();
        assert_eq!(messages, ["one", "two", "three", "four"]);
        // A malformed line fails the request even after good ones.
        let bad = "{\"index\":{}}\n{\"message\":\"m\"}\n{\"index\":{}} x\n{}\n";
        assert!(decode_bulk(bad.as_bytes(), Some("i"), &LogLimits::default()).is_err());
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
