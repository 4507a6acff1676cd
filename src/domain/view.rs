//! Saved views: a named search of the Explorer (its query, time range,
//! columns, split-by field, order and wrapping) that its owner and everyone
//! else who may read its tenant can open by a short link (`/v/{id}`).
//!
//! Pure: what a view is, how the API's JSON becomes one (every field checked
//! on its own, so a `400` names the field at fault), and who may change one.
//! The query role stores views (`query/views.rs`) as records of the store's
//! small-records seam.

use super::principal::{AccessRole, Principal};
use super::query::{self, FieldName, TextField};
use super::time::{Micros, format_rfc3339, parse_rfc3339};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Characters of a view's id: short, URL-safe, unambiguous in any case.
pub const ID_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
pub const ID_LEN: usize = 10;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_QUERY_CHARS: usize = 4096;
pub const MAX_COLUMNS: usize = 20;
pub const MAX_KEY_CHARS: usize = 256;
/// The longest relative range, `last`: ten years.
const MAX_LAST_SECONDS: u64 = 3650 * 86_400;
/// A new view shows what the Explorer shows by default.
pub const DEFAULT_LAST: &str = "24h";
pub const DEFAULT_SPLIT_BY: &str = "level";

/// Anyone who may read logs may save a view and change their own; changing
/// or deleting someone else's takes this role (where roles exist: with keys
/// only, an editor or admin key).
pub const CHANGES_EVERY_VIEW: AccessRole = AccessRole::Editor;

/// The fields the server sets: ignored when a client sends them back (a
/// view read from the API can be sent as it is), never taken from it.
const SET_BY_THE_SERVER: [&str; 5] = ["id", "owner", "tenant", "created", "updated"];

/// A time range as the view keeps it: relative to when it is opened, or
/// fixed. Both are kept as written (`7d`, `2026-12-01T00:00:00+01:00`), so
/// the view shows back what its author typed; both were checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ViewRange {
    Last { last: String },
    Between { from: String, to: String },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewOrder {
    #[default]
    Desc,
    Asc,
}

/// What a client chooses: the body of `POST` and `PUT /api/views`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewSpec {
    pub name: String,
    pub query: String,
    pub range: ViewRange,
    pub columns: Vec<String>,
    /// `level`, `service` or an attribute key; `None`: the histogram is not
    /// split.
    pub split_by: Option<String>,
    pub order: ViewOrder,
    pub wrap: bool,
}

/// A saved view as the API answers it and the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub id: String,
    #[serde(flatten)]
    pub spec: ViewSpec,
    /// The principal's name that saved it (`Principal::name`).
    pub owner: String,
    /// The tenant it was saved in (`default` with tenants off).
    pub tenant: String,
    #[serde(with = "rfc3339")]
    pub created: Micros,
    #[serde(with = "rfc3339")]
    pub updated: Micros,
}

/// Why a body is not a view: the field at fault, what to fix, and for a
/// `query` that does not parse, the 1-based column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ViewError {
    pub field: String,
    pub message: String,
    pub position: Option<usize>,
}

impl ViewError {
    fn new(field: &str, message: impl Into<String>) -> ViewError {
        ViewError {
            field: field.to_string(),
            message: message.into(),
            position: None,
        }
    }
}

impl ViewSpec {
    /// Reads and checks the API's JSON.
    pub fn from_json(body: &Value) -> Result<ViewSpec, ViewError> {
        let Value::Object(fields) = body else {
            return Err(ViewError::new(
                "body",
                "expected a JSON object with name, query, range, columns, split_by, order and wrap",
            ));
        };
        let mut fields = fields.clone();
        for shown in SET_BY_THE_SERVER {
            fields.remove(shown);
        }
        let spec = ViewSpec {
            name: name(fields.remove("name"))?,
            query: query_text(fields.remove("query"))?,
            range: range(fields.remove("range"))?,
            columns: columns(fields.remove("columns"))?,
            split_by: split_by(fields.remove("split_by"))?,
            order: order(fields.remove("order"))?,
            wrap: wrap(fields.remove("wrap"))?,
        };
        if let Some(unknown) = fields.keys().next() {
            return Err(ViewError::new(
                unknown,
                format!(
                    "unknown field {unknown:?}: a view has name, query, range, columns, split_by, order and wrap"
                ),
            ));
        }
        Ok(spec)
    }
}

/// Whether `principal` may change or delete `view`: its owner, or an editor.
pub fn may_change(principal: &Principal, view: &View) -> bool {
    principal.name == view.owner || principal.may(CHANGES_EVERY_VIEW)
}

/// Whether `text` has the shape of a view's id (anything else is no view).
pub fn is_view_id(text: &str) -> bool {
    text.len() == ID_LEN && text.bytes().all(|b| ID_ALPHABET.contains(&b))
}

fn text(value: Value, field: &str) -> Result<String, ViewError> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(ViewError::new(
            field,
            format!("{field} must be a string, not {}", kind_of(&other)),
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn name(value: Option<Value>) -> Result<String, ViewError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Err(ViewError::new("name", "name is required"));
    };
    let name = text(value, "name")?.trim().to_string();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(ViewError::new(
            "name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters (it has {chars})"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ViewError::new(
            "name",
            "name may not hold control characters (line breaks, tabs)",
        ));
    }
    Ok(name)
}

fn query_text(value: Option<Value>) -> Result<String, ViewError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(String::new());
    };
    let query = text(value, "query")?;
    let chars = query.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(ViewError::new(
            "query",
            format!("query must be at most {MAX_QUERY_CHARS} characters (it has {chars})"),
        ));
    }
    query::parse(&query).map_err(|error| ViewError {
        field: "query".into(),
        message: format!("query: {error}"),
        position: Some(error.position),
    })?;
    Ok(query)
}

fn range(value: Option<Value>) -> Result<ViewRange, ViewError> {
    const SHAPE: &str = r#"range is {"last": "24h"} or {"from": "<RFC 3339>", "to": "<RFC 3339>"}"#;
    let fields: Map<String, Value> = match value {
        None | Some(Value::Null) => {
            return Ok(ViewRange::Last {
                last: DEFAULT_LAST.into(),
            });
        }
        Some(Value::Object(fields)) => fields,
        Some(other) => {
            return Err(ViewError::new(
                "range",
                format!("{SHAPE}, not {}", kind_of(&other)),
            ));
        }
    };
    let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    keys.sort_unstable();
    match keys.as_slice() {
        ["last"] => {
            let last = text(fields["last"].clone(), "range.last")?
                .trim()
                .to_string();
            check_last(&last)?;
            Ok(ViewRange::Last { last })
        }
        ["from", "to"] => {
            let from = text(fields["from"].clone(), "range.from")?
                .trim()
                .to_string();
            let to = text(fields["to"].clone(), "range.to")?.trim().to_string();
            let from_micros = instant(&from, "range.from")?;
            let to_micros = instant(&to, "range.to")?;
            if from_micros >= to_micros {
                return Err(ViewError::new(
                    "range",
                    format!("range.from ({from}) must be before range.to ({to})"),
                ));
            }
            Ok(ViewRange::Between { from, to })
        }
        _ => Err(ViewError::new(
            "range",
            format!("{SHAPE}; it has {}", keys.join(", ")),
        )),
    }
}

fn instant(text: &str, field: &str) -> Result<Micros, ViewError> {
    parse_rfc3339(text).map_err(|error| ViewError::new(field, format!("{field}: {error}")))
}

/// `15m`, `1h`, `24h`, `7d`: a whole number of seconds, minutes, hours,
/// days or weeks, from one second to ten years.
fn check_last(last: &str) -> Result<(), ViewError> {
    let invalid = || {
        ViewError::new(
            "range.last",
            format!(
                "range.last must be a whole number and a unit (s, m, h, d, w) such as 15m, 1h, 24h or 7d, up to 3650d; got {last:?}"
            ),
        )
    };
    let split = last
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = last.split_at(split);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let unit_seconds: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(invalid()),
    };
    match number.checked_mul(unit_seconds) {
        Some(seconds) if (1..=MAX_LAST_SECONDS).contains(&seconds) => Ok(()),
        _ => Err(invalid()),
    }
}

fn columns(value: Option<Value>) -> Result<Vec<String>, ViewError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ViewError::new(
                "columns",
                format!(
                    "columns must be an array of attribute keys, not {}",
                    kind_of(&other)
                ),
            ));
        }
    };
    if items.len() > MAX_COLUMNS {
        return Err(ViewError::new(
            "columns",
            format!(
                "a view shows at most {MAX_COLUMNS} columns (it names {})",
                items.len()
            ),
        ));
    }
    let mut columns: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let key = text(item, "columns")?;
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_KEY_CHARS {
            return Err(ViewError::new(
                "columns",
                format!("each column is an attribute key of 1 to {MAX_KEY_CHARS} characters"),
            ));
        }
        if columns.contains(&key) {
            return Err(ViewError::new(
                "columns",
                format!("columns names {key:?} twice"),
            ));
        }
        columns.push(key);
    }
    Ok(columns)
}

/// Absent: split by level, as the Explorer does; `null`: not split.
fn split_by(value: Option<Value>) -> Result<Option<String>, ViewError> {
    let value = match value {
        None => return Ok(Some(DEFAULT_SPLIT_BY.into())),
        Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    let field = text(value, "split_by")?.trim().to_string();
    let chars = field.chars().count();
    if chars == 0 || chars > MAX_KEY_CHARS {
        return Err(ViewError::new(
            "split_by",
            format!(
                "split_by is level, service or an attribute key of 1 to {MAX_KEY_CHARS} characters (or null)"
            ),
        ));
    }
    match FieldName::parse_reference(&field) {
        FieldName::Text(TextField::Message | TextField::Id) => Err(ViewError::new(
            "split_by",
            format!(
                "{field:?} differs on nearly every log: split by level, service or an attribute (@{field} for an attribute of that name)"
            ),
        )),
        FieldName::Text(TextField::Attribute(key)) if key.is_empty() => Err(ViewError::new(
            "split_by",
            "@ must be followed by an attribute name",
        )),
        _ => Ok(Some(field)),
    }
}

fn order(value: Option<Value>) -> Result<ViewOrder, ViewError> {
    match value {
        None | Some(Value::Null) => Ok(ViewOrder::Desc),
        Some(Value::String(order)) if order == "desc" => Ok(ViewOrder::Desc),
        Some(Value::String(order)) if order == "asc" => Ok(ViewOrder::Asc),
        Some(other) => Err(ViewError::new(
            "order",
            format!("order is \"desc\" or \"asc\", not {other}"),
        )),
    }
}

fn wrap(value: Option<Value>) -> Result<bool, ViewError> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(wrap)) => Ok(wrap),
        Some(other) => Err(ViewError::new(
            "wrap",
            format!("wrap is true or false, not {}", kind_of(&other)),
        )),
    }
}

/// Times as the API writes them everywhere: RFC 3339, UTC, microseconds.
mod rfc3339 {
    use super::{Micros, format_rfc3339, parse_rfc3339};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(micros: &Micros, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_rfc3339(*micros))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Micros, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::principal::Credential;
    use serde_json::json;

    fn spec(body: Value) -> Result<ViewSpec, ViewError> {
        ViewSpec::from_json(&body)
    }

    fn refused(body: Value) -> ViewError {
        spec(body.clone()).expect_err(&format!("{body} is refused"))
    }

    #[test]
    fn a_name_alone_is_a_view_with_the_explorers_defaults() {
        let view = spec(json!({"name": "  Checkout errors "})).unwrap();
        assert_eq!(
            view,
            ViewSpec {
                name: "Checkout errors".into(),
                query: String::new(),
                range: ViewRange::Last { last: "24h".into() },
                columns: vec![],
                split_by: Some("level".into()),
                order: ViewOrder::Desc,
                wrap: false,
            }
        );
    }

    #[test]
    fn every_field_is_read_and_kept_as_written() {
        let body = json!({
            "name": "Checkout errors",
            "query": "service:checkout level:>=error",
            "range": {"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00+01:00"},
            "columns": ["region", "http.status"],
            "split_by": null,
            "order": "asc",
            "wrap": true,
        });
        let view = spec(body).unwrap();
        assert_eq!(
            view.range,
            ViewRange::Between {
                from: "2026-12-01T00:00:00Z".into(),
                to: "2026-12-02T00:00:00+01:00".into()
            }
        );
        assert_eq!(view.columns, ["region", "http.status"]);
        assert_eq!(view.split_by, None, "null: not split");
        assert_eq!((view.order, view.wrap), (ViewOrder::Asc, true));
        for last in ["15m", "1h", "24h", "7d", "2w", "30s", "3650d"] {
            let view = spec(json!({"name": "n", "range": {"last": last}})).unwrap();
            assert_eq!(view.range, ViewRange::Last { last: last.into() });
        }
    }

    #[test]
    fn a_view_read_from_the_api_can_be_sent_back() {
        let view = View {
            id: "k3x9q2mw7h".into(),
            spec: spec(json!({"name": "n", "query": "level:error", "columns": ["region"]}))
                .unwrap(),
            owner: "alice".into(),
            tenant: "team-a".into(),
            created: 1_765_000_000_000_000,
            updated: 1_765_000_000_000_001,
        };
        let shown = serde_json::to_value(&view).unwrap();
        assert_eq!(shown["range"], json!({"last": "24h"}));
        assert_eq!(shown["split_by"], "level");
        assert_eq!(shown["order"], "desc");
        assert_eq!(shown["created"], "2025-12-06T05:46:40.000000Z");
        assert_eq!(ViewSpec::from_json(&shown).unwrap(), view.spec);
        let stored: View = serde_json::from_value(shown).unwrap();
        assert_eq!(stored, view);
    }

    #[test]
    fn each_refusal_names_its_field() {
        let long = "x".repeat(101);
        let too_many: Vec<String> = (0..21).map(|n| format!("c{n}")).collect();
        for (body, field) in [
            (json!([]), "body"),
            (json!({}), "name"),
            (json!({"name": null}), "name"),
            (json!({"name": "   "}), "name"),
            (json!({"name": long}), "name"),
            (json!({"name": "a\nb"}), "name"),
            (json!({"name": 5}), "name"),
            (json!({"name": "n", "query": 1}), "query"),
            (json!({"name": "n", "query": "x".repeat(4097)}), "query"),
            (json!({"name": "n", "range": "24h"}), "range"),
            (json!({"name": "n", "range": {}}), "range"),
            (
                json!({"name": "n", "range": {"last": "1h", "from": "x"}}),
                "range",
            ),
            (
                json!({"name": "n", "range": {"last": "soon"}}),
                "range.last",
            ),
            (
                json!({"name": "n", "range": {"last": "1.5h"}}),
                "range.last",
            ),
            (json!({"name": "n", "range": {"last": "0m"}}), "range.last"),
            (
                json!({"name": "n", "range": {"last": "3651d"}}),
                "range.last",
            ),
            (json!({"name": "n", "range": {"last": 60}}), "range.last"),
            (
                json!({"name": "n", "range": {"from": "yesterday", "to": "2026-12-02T00:00:00Z"}}),
                "range.from",
            ),
            (
                json!({"name": "n", "range": {"from": "2026-12-01T00:00:00Z", "to": ""}}),
                "range.to",
            ),
            (
                json!({"name": "n", "range": {"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}}),
                "range",
            ),
            (
                json!({"name": "n", "range": {"from": "2026-12-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}}),
                "range",
            ),
            (json!({"name": "n", "columns": "region"}), "columns"),
            (json!({"name": "n", "columns": [""]}), "columns"),
            (json!({"name": "n", "columns": [7]}), "columns"),
            (json!({"name": "n", "columns": ["a", "a"]}), "columns"),
            (
                json!({"name": "n", "columns": ["k".repeat(257)]}),
                "columns",
            ),
            (json!({"name": "n", "columns": too_many}), "columns"),
            (json!({"name": "n", "split_by": "message"}), "split_by"),
            (json!({"name": "n", "split_by": "id"}), "split_by"),
            (json!({"name": "n", "split_by": "@"}), "split_by"),
            (json!({"name": "n", "split_by": ""}), "split_by"),
            (json!({"name": "n", "split_by": 3}), "split_by"),
            (json!({"name": "n", "order": "newest"}), "order"),
            (json!({"name": "n", "wrap": "yes"}), "wrap"),
            (json!({"name": "n", "colour": "red"}), "colour"),
        ] {
            let error = refused(body.clone());
            assert_eq!(error.field, field, "{body}: {error}");
            assert!(!error.message.is_empty());
        }
        // Twenty columns of 256 characters are fine; @message splits by an attribute.
        let columns: Vec<String> = (0..20).map(|n| format!("{n:0>256}")).collect();
        assert!(spec(json!({"name": "n", "columns": columns, "split_by": "@message"})).is_ok());
    }

    #[test]
    fn a_query_that_does_not_parse_says_where() {
        let error = refused(json!({"name": "n", "query": "service:checkout level:loud"}));
        assert_eq!(error.field, "query");
        assert_eq!(error.position, Some(24), "{error}");
        assert!(error.message.contains("unknown level"), "{error}");
        assert!(spec(json!({"name": "n", "query": ""})).is_ok());
    }

    #[test]
    fn owners_and_editors_may_change_a_view() {
        let principal = |name: &str, role| Principal {
            name: name.into(),
            role,
            credential: Credential::Key,
            tenants: None,
        };
        let view = View {
            id: "k3x9q2mw7h".into(),
            spec: spec(json!({"name": "n"})).unwrap(),
            owner: "alice".into(),
            tenant: "default".into(),
            created: 0,
            updated: 0,
        };
        assert!(may_change(&principal("alice", AccessRole::Viewer), &view));
        assert!(!may_change(&principal("bob", AccessRole::Viewer), &view));
        assert!(may_change(&principal("bob", AccessRole::Editor), &view));
        assert!(may_change(&principal("root", AccessRole::Admin), &view));
    }

    #[test]
    fn ids_are_ten_lowercase_letters_or_digits() {
        assert!(is_view_id("k3x9q2mw7h"));
        for not in [
            "",
            "k3x9q2mw7",
            "k3x9q2mw7hh",
            "K3X9Q2MW7H",
            "k3x9q2mw-h",
            "../../etc",
        ] {
            assert!(!is_view_id(not), "{not}");
        }
    }
}
