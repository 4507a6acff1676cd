//! A log's attributes: flat string pairs, sorted by key so output is
//! deterministic, kept in one vector.
//!
//! Why not a `BTreeMap`: its first entry allocates a whole node (11 keys and
//! 11 values, ~540 bytes), so a log with six attributes held ~250 bytes more
//! than the pairs themselves, and every queued log paid it. Logs have a
//! handful of attributes (at most `limits.max_attributes`), where a binary
//! search in a vector is as fast as a tree.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attributes(Vec<(String, String)>);

impl Attributes {
    pub fn new() -> Attributes {
        Attributes(Vec::new())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.position(key).ok().map(|at| &self.0[at].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaced, as a map does.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.position(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, value)),
            Err(at) => {
                self.0.insert(at, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.position(key).ok().map(|at| self.0.remove(at).1)
    }

    /// The value of the `at`th pair in key order, taken out (panics past
    /// the end, as `Vec::remove` does).
    pub fn remove_at(&mut self, at: usize) -> String {
        self.0.remove(at).1
    }

    /// The pair with the greatest key, taken out.
    pub fn pop_last(&mut self) -> Option<(String, String)> {
        self.0.pop()
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &String)> + ExactSizeIterator {
        self.0.iter().map(|(key, value)| (key, value))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(key, _)| key)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(_, value)| value)
    }

    pub fn into_values(self) -> impl DoubleEndedIterator<Item = String> + ExactSizeIterator {
        self.0.into_iter().map(|(_, value)| value)
    }
}

/// `attributes["key"]`, as a map's: panics when the key is missing, so for
/// tests and keys known to be there.
impl std::ops::Index<&str> for Attributes {
    type Output = String;

    fn index(&self, key: &str) -> &String {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no attribute {key:?}"),
        }
    }
}

/// Later pairs win over earlier ones with the same key, as inserting them
/// one by one would.
impl FromIterator<(String, String)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Attributes {
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        // Stable: equal keys stay in arrival order, and the last is kept.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match kept.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => kept.push(pair),
            }
        }
        Attributes(kept)
    }
}

impl<const N: usize> From<[(String, String); N]> for Attributes {
    fn from(pairs: [(String, String); N]) -> Attributes {
        pairs.into_iter().collect()
    }
}

impl Extend<(String, String)> for Attributes {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, pairs: I) {
        for (key, value) in pairs {
            self.insert(key, value);
        }
    }
}

impl IntoIterator for Attributes {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(key, value)| (key, value))
    }
}

/// A JSON object, as a map of strings was.
impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Attributes, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Attributes;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a map of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attributes, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(pairs.into_iter().collect())
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_string(), value.to_string())
    }

    /// Every operation answers what a `BTreeMap` answers after the same
    /// sequence of inserts and removals.
    #[test]
    fn behaves_as_a_sorted_map() {
        let mut ours = Attributes::new();
        let mut map = BTreeMap::new();
        for step in 0..500u32 {
            let key = format!("k{}", step * 7 % 13);
            let value = format!("v{step}");
            if step % 5 == 4 {
                assert_eq!(ours.remove(&key), map.remove(&key));
            } else {
                assert_eq!(
                    ours.insert(key.clone(), value.clone()),
                    map.insert(key.clone(), value)
                );
            }
            assert_eq!(ours.get(&key), map.get(&key));
            assert_eq!(ours.contains_key("k3"), map.contains_key("k3"));
            assert_eq!(ours.len(), map.len());
            assert!(ours.iter().eq(map.iter()));
        }
        assert_eq!(ours.pop_last(), map.pop_last());
        assert!(ours.keys().eq(map.keys()));
        assert!(ours.clone().into_iter().eq(map.clone()));
    }

    #[test]
    fn collecting_keeps_the_last_of_equal_keys() {
        let collected: Attributes = [pair("b", "1"), pair("a", "2"), pair("b", "3")]
            .into_iter()
            .collect();
        assert_eq!(
            collected.iter().collect::<Vec<_>>(),
            [
                (&"a".to_string(), &"2".to_string()),
                (&"b".to_string(), &"3".to_string())
            ]
        );
    }

    #[test]
    fn is_a_json_object_both_ways() {
        let attributes = Attributes::from([pair("zone", "b"), pair("app", "x")]);
        let text = serde_json::to_string(&attributes).unwrap();
        assert_eq!(text, r#"{"app":"x","zone":"b"}"#);
        let back: Attributes =
            serde_json::from_str(r#"{"zone":"b","app":"x","zone":"c"}"#).unwrap();
        assert_eq!(back.get("zone").map(String::as_str), Some("c"));
        assert_eq!(back.len(), 2);
    }
}
