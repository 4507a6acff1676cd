//! Nested attributes to flat dotted keys: `{"http": {"method": "GET"}}`
//! becomes `http.method = "GET"`. Scalars become their text, arrays their
//! compact JSON (or a refusal, where a format takes none), nulls nothing.
//! JSON is flattened by [`FlattenJson`], streaming from the parser (no
//! intermediate tree): Elasticsearch documents and the attributes of our own
//! `/log`; OTLP's `AnyValue` walks the same [`KeyPath`] into the same
//! [`FlatSink`]. It lives here, below `parse` and `shippers`, because both
//! use it (`shippers::flatten` adds the sink the shippers' records fill).

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Where flattened leaves go. The value is borrowed when the input has it
/// as it is, so a sink that does not keep a leaf copies nothing.
pub trait FlatSink {
    fn leaf(&mut self, key: &str, value: Cow<'_, str>);
}

/// Leaves kept in document order.
impl FlatSink for Vec<(String, String)> {
    fn leaf(&mut self, key: &str, value: Cow<'_, str>) {
        self.push((key.to_string(), value.into_owned()));
    }
}

/// The dotted key of the value being visited.
#[derive(Debug, Default)]
pub struct KeyPath(String);

impl KeyPath {
    pub fn new(prefix: &str) -> KeyPath {
        KeyPath(prefix.to_string())
    }

    /// Descends into `segment`; hand the result to [`KeyPath::leave`].
    pub fn enter(&mut self, segment: &str) -> usize {
        let mark = self.0.len();
        if !self.0.is_empty() {
            self.0.push('.');
        }
        self.0.push_str(segment);
        mark
    }

    pub fn leave(&mut self, mark: usize) {
        self.0.truncate(mark);
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A float as JSON writes it (`1.5`, `1e+20`); not-a-number as `NaN`.
pub fn double_text(value: f64) -> String {
    serde_json::Number::from_f64(value)
        .map(|number| number.to_string())
        .unwrap_or_else(|| value.to_string())
}

/// What an array inside the flattened value becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrays {
    /// One leaf holding the array's compact JSON (the shippers' mapping).
    AsJson,
    /// An error: the format takes no arrays (our `/log` attributes).
    Refuse,
}

/// Flattens one JSON value into `sink` under `path`.
pub struct FlattenJson<'p, S> {
    path: &'p mut KeyPath,
    sink: &'p mut S,
    arrays: Arrays,
}

impl<'p, S: FlatSink> FlattenJson<'p, S> {
    /// Arrays become their compact JSON.
    pub fn new(path: &'p mut KeyPath, sink: &'p mut S) -> FlattenJson<'p, S> {
        FlattenJson {
            path,
            sink,
            arrays: Arrays::AsJson,
        }
    }

    pub fn arrays(self, arrays: Arrays) -> FlattenJson<'p, S> {
        FlattenJson { arrays, ..self }
    }

    /// The top level must be an object (an Elasticsearch document).
    pub fn object<'de, D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }

    fn leaf(&mut self, value: Cow<'_, str>) {
        self.sink.leaf(self.path.as_str(), value);
    }
}

impl<'de, S: FlatSink> DeserializeSeed<'de> for FlattenJson<'_, S> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, S: FlatSink> Visitor<'de> for FlattenJson<'_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_str<E: de::Error>(mut self, value: &str) -> Result<(), E> {
        self.leaf(Cow::Borrowed(value));
        Ok(())
    }

    fn visit_string<E: de::Error>(mut self, value: String) -> Result<(), E> {
        self.leaf(Cow::Owned(value));
        Ok(())
    }

    fn visit_bool<E: de::Error>(mut self, value: bool) -> Result<(), E> {
        self.leaf(Cow::Borrowed(if value { "true" } else { "false" }));
        Ok(())
    }

    fn visit_i64<E: de::Error>(mut self, value: i64) -> Result<(), E> {
        self.leaf(Cow::Owned(value.to_string()));
        Ok(())
    }

    fn visit_u64<E: de::Error>(mut self, value: u64) -> Result<(), E> {
        self.leaf(Cow::Owned(value.to_string()));
        Ok(())
    }

    fn visit_f64<E: de::Error>(mut self, value: f64) -> Result<(), E> {
        self.leaf(Cow::Owned(double_text(value)));
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(mark) = map.next_key_seed(EnterKey(&mut *self.path))? {
            map.next_value_seed(FlattenJson {
                path: &mut *self.path,
                sink: &mut *self.sink,
                arrays: self.arrays,
            })?;
            self.path.leave(mark);
        }
        Ok(())
    }

    /// Arrays stay whole, as compact JSON: their positions are not names.
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        if self.arrays == Arrays::Refuse {
            return Err(de::Error::custom(
                "arrays are not accepted: send a string, number, boolean, object or null",
            ));
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<serde_json::Value>()? {
            items.push(item);
        }
        let text = serde_json::Value::Array(items).to_string();
        self.leaf(Cow::Owned(text));
        Ok(())
    }
}

/// Reads an object's key straight onto the path (a `Cow` or `String` key
/// would be a copy per key); yields the mark to leave it by.
struct EnterKey<'p>(&'p mut KeyPath);

impl<'de> DeserializeSeed<'de> for EnterKey<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for EnterKey<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<usize, E> {
        Ok(self.0.enter(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flatten(json: &str) -> Result<Vec<(String, String)>, serde_json::Error> {
        let mut leaves = Vec::new();
        let mut path = KeyPath::default();
        let mut deserializer = serde_json::Deserializer::from_str(json);
        FlattenJson::new(&mut path, &mut leaves).object(&mut deserializer)?;
        deserializer.end()?;
        Ok(leaves)
    }

    #[test]
    fn nested_objects_become_dotted_keys() {
        let leaves = flatten(
            r#"{"a":"x","http":{"method":"GET","status":200,"ok":true,"ratio":0.5,"gone":null},"tags":["a",1],"e\u0301":"é"}"#,
        )
        .unwrap();
        let expected: Vec<(String, String)> = [
            ("a", "x"),
            ("http.method", "GET"),
            ("http.status", "200"),
            ("http.ok", "true"),
            ("http.ratio", "0.5"),
            ("tags", r#"["a",1]"#),
            ("e\u{301}", "é"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(leaves, expected);
    }

    #[test]
    fn the_top_level_must_be_an_object() {
        assert!(flatten("[1]").is_err());
        assert!(flatten("\"text\"").is_err());
        assert!(flatten("{\"a\":").is_err());
        assert_eq!(flatten("{}").unwrap(), vec![]);
    }

    #[test]
    fn key_paths_enter_and_leave() {
        let mut path = KeyPath::new("resource");
        let outer = path.enter("service");
        let inner = path.enter("name");
        assert_eq!(path.as_str(), "resource.service.name");
        path.leave(inner);
        path.leave(outer);
        assert_eq!(path.as_str(), "resource");
        assert_eq!(double_text(1e20), "1e+20");
        assert_eq!(double_text(f64::NAN), "NaN");
    }
}
