//! Facets: for each field, the most frequent values among the logs matching
//! a filter, with counts. The types both stores answer with, and the tally
//! a store that counts in our code (SQLite) finishes them with.

use super::filter::LogFilter;
use crate::domain::query::{FieldName, TextField};

/// Most frequent attribute keys listed when the caller names no fields.
pub const DEFAULT_ATTRIBUTE_FIELDS: usize = 10;
/// Below this many matching logs, counts are always exact.
pub const EXACT_BELOW: u64 = 1_000_000;

#[derive(Clone, Debug, PartialEq)]
pub struct FacetQuery {
    pub filter: LogFilter,
    /// `None`: `level`, `service` and the most frequent attribute keys.
    pub fields: Option<Vec<FieldName>>,
    /// Values listed per field.
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facets {
    /// Matching logs (scaled when approximate).
    pub total: u64,
    /// Counted from a sample and scaled.
    pub approximate: bool,
    pub fields: Vec<FieldFacet>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldFacet {
    pub field: FieldName,
    /// Most frequent first; ties by value in byte order.
    pub values: Vec<(String, u64)>,
    /// Matching logs having the field whose value is not listed.
    pub other: u64,
    /// Distinct values among the matching logs.
    pub distinct: u64,
}

/// An attribute key and the number of matching logs having it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyCount {
    pub key: String,
    pub count: u64,
}

/// Sorts most frequent first, ties by key in byte order.
pub fn sort_key_counts(counts: &mut [KeyCount]) {
    counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
}

/// Counts of one field's values. Values are interned in one string (a
/// facet over trace ids meets a million values; one allocation each was a
/// tenth of a facet's time) and found through a table hashed with foldhash
/// (seeded per process; SipHash was another tenth).
#[derive(Default)]
pub struct Tally {
    /// Every value once, end to end (UTF-8 from every caller; checked when
    /// listed).
    arena: Vec<u8>,
    table: hashbrown::HashTable<Entry>,
    hasher: foldhash::fast::RandomState,
    /// Set by `scale`: distinct values estimated for the whole.
    estimated_distinct: Option<u64>,
}

#[derive(Clone, Copy)]
struct Entry {
    hash: u64,
    start: u32,
    len: u32,
    count: u64,
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally")
            .field("values", &self.table.len())
            .finish()
    }
}

impl Tally {
    fn text(&self, entry: &Entry) -> &[u8] {
        &self.arena[entry.start as usize..(entry.start + entry.len) as usize]
    }

    pub fn add(&mut self, value: &str, count: u64) {
        self.add_bytes(value.as_bytes(), count);
    }

    /// `value` must be UTF-8 (it is only checked when listed).
    pub fn add_bytes(&mut self, value: &[u8], count: u64) {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(value);
        let Tally { arena, table, .. } = self;
        let found = table.find_mut(hash, |entry| {
            &arena[entry.start as usize..(entry.start + entry.len) as usize] == value
        });
        if let Some(entry) = found {
            entry.count += count;
            return;
        }
        let start = arena.len() as u32;
        arena.extend_from_slice(value);
        table.insert_unique(
            hash,
            Entry {
                hash,
                start,
                len: value.len() as u32,
                count,
            },
            |entry| entry.hash,
        );
        if let Some(estimate) = self.estimated_distinct.as_mut() {
            *estimate += 1;
        }
    }

    /// The count of one value (tests).
    pub fn counts_of(&self, value: &str) -> u64 {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(value.as_bytes());
        self.table
            .find(hash, |entry| self.text(entry) == value.as_bytes())
            .map_or(0, |entry| entry.count)
    }

    /// Scales counts taken from a sample by `factor` (the whole is `factor`
    /// times the sample). Distinct values cannot be scaled: they are
    /// estimated from the values seen once, each of which stands for about
    /// `factor` others in the whole (a sample of ids sees each id once).
    pub fn scale(&mut self, factor: f64) {
        let seen_once = self.table.iter().filter(|e| e.count == 1).count() as f64;
        let distinct = self.table.len() as f64 + seen_once * (factor - 1.0);
        let mut total = 0;
        for entry in self.table.iter_mut() {
            entry.count = (entry.count as f64 * factor).round() as u64;
            total += entry.count;
        }
        self.estimated_distinct = Some((distinct.round() as u64).min(total));
    }

    /// The top `limit` values, `other` and `distinct`.
    pub fn finish(self, field: FieldName, limit: usize) -> FieldFacet {
        let distinct = self.estimated_distinct.unwrap_or(self.table.len() as u64);
        let total: u64 = self.table.iter().map(|e| e.count).sum();
        let mut values: Vec<(&[u8], u64)> =
            self.table.iter().map(|e| (self.text(e), e.count)).collect();
        let by_rank = |a: &(&[u8], u64), b: &(&[u8], u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if values.len() > limit {
            // Partition first: a field with millions of values is not sorted
            // whole to list ten.
            values.select_nth_unstable_by(limit, by_rank);
            values.truncate(limit);
        }
        values.sort_by(by_rank);
        let listed: u64 = values.iter().map(|(_, n)| n).sum();
        FieldFacet {
            field,
            other: total - listed,
            distinct,
            values: values
                .into_iter()
                .map(|(value, n)| (String::from_utf8_lossy(value).into_owned(), n))
                .collect(),
        }
    }
}

/// The fields a facet query lists: the named ones, or `level`, `service`
/// and the most frequent attribute keys from `keys` (sorted already).
pub fn chosen_fields(query: &FacetQuery, keys: &[KeyCount]) -> Vec<FieldName> {
    match &query.fields {
        Some(fields) => fields.clone(),
        None => [FieldName::Level, FieldName::Text(TextField::Service)]
            .into_iter()
            .chain(
                keys.iter()
                    .take(DEFAULT_ATTRIBUTE_FIELDS)
                    .map(|k| FieldName::Text(TextField::Attribute(k.key.clone()))),
            )
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_values_with_ties_in_byte_order() {
        let mut tally = Tally::default();
        for (value, n) in [
            ("checkout", 5),
            ("Checkout-EU", 5),
            ("api", 9),
            ("z", 1),
            ("y", 1),
        ] {
            tally.add(value, n);
        }
        let facet = tally.finish(FieldName::Text(TextField::Service), 3);
        assert_eq!(
            facet.values,
            [
                ("api".into(), 9),
                ("Checkout-EU".into(), 5),
                ("checkout".into(), 5)
            ]
        );
        assert_eq!((facet.other, facet.distinct), (2, 5));
        let mut tally = Tally::default();
        tally.add("a", 3);
        for id in 0..100 {
            tally.add(&format!("id-{id}"), 1);
        }
        tally.scale(4.0);
        let facet = tally.finish(FieldName::Level, 1);
        assert_eq!((facet.values, facet.other), (vec![("a".into(), 12)], 400));
        assert_eq!(facet.distinct, 401, "each id seen once stands for four");
    }
}
