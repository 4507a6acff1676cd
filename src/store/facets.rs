//! Facets: for each field, the most frequent values among the logs matching
//! a filter, with counts. The types both stores answer with, and the tally
//! a store that counts in our code (SQLite) finishes them with.

use super::filter::LogFilter;
use crate::domain::query::{FieldName, TextField};
use std::collections::HashMap;

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

/// Counts of one field's values.
#[derive(Debug, Default)]
pub struct Tally {
    counts: HashMap<String, u64>,
}

impl Tally {
    pub fn add(&mut self, value: &str, count: u64) {
        match self.counts.get_mut(value) {
            Some(n) => *n += count,
            None => {
                self.counts.insert(value.to_string(), count);
            }
        }
    }

    /// The top `limit` values, `other` and `distinct`, counts multiplied by
    /// `scale` (1 when exact).
    pub fn finish(self, field: FieldName, limit: usize, scale: u64) -> FieldFacet {
        let distinct = self.counts.len() as u64;
        let total: u64 = self.counts.values().sum();
        let mut values: Vec<(String, u64)> = self.counts.into_iter().collect();
        let by_rank =
            |a: &(String, u64), b: &(String, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
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
            other: (total - listed) * scale,
            distinct,
            values: values.into_iter().map(|(v, n)| (v, n * scale)).collect(),
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
        let facet = tally.finish(FieldName::Text(TextField::Service), 3, 1);
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
        let facet = tally.finish(FieldName::Level, 10, 4);
        assert_eq!((facet.values, facet.other), (vec![("a".into(), 12)], 0));
    }
}
