//! What a scan counts (levels, services, attribute keys and the values
//! asked for), scaled when it came from a sample, and the facets and
//! attribute keys made from it.

use crate::domain::Level;
use crate::domain::query::{FieldName, TextField};
use crate::store::facets::{self, FacetQuery, Facets, KeyCount, Tally};
use crate::store::sqlite::expr::for_each_attribute;
use std::collections::HashMap;

/// Counts gathered from blocks (and the tail's rows), before scaling.
#[derive(Default)]
pub struct Counts {
    pub total: u64,
    pub levels: [u64; 5],
    pub services: HashMap<i64, u64>,
    /// Logs having each attribute key (by key name).
    pub keys: HashMap<String, u64>,
    /// Values of the attributes asked for (all when `None` was asked).
    pub values: HashMap<String, Tally>,
}

impl Counts {
    /// Adds one log read as a row (the tail).
    pub fn add_row(
        &mut self,
        level: u8,
        service_id: i64,
        attributes: Option<&str>,
        wanted: &Wanted,
    ) {
        self.total += 1;
        if let Some(slot) = self.levels.get_mut(level as usize) {
            *slot += 1;
        }
        *self.services.entry(service_id).or_default() += 1;
        if let Some(json) = attributes {
            for_each_attribute(json, |key, value| {
                match self.keys.get_mut(key.as_ref()) {
                    Some(n) => *n += 1,
                    None => {
                        self.keys.insert(key.to_string(), 1);
                    }
                }
                if wanted.wants(&key) {
                    self.values
                        .entry(key.into_owned())
                        .or_default()
                        .add(&value, 1);
                }
            });
        }
    }
}

impl Counts {
    /// Scales counts from a sample of `fraction` of the logs to the whole.
    pub fn scale(&mut self, fraction: f64) {
        if fraction >= 1.0 {
            return;
        }
        let factor = 1.0 / fraction;
        let scaled = |n: &mut u64| *n = (*n as f64 * factor).round() as u64;
        scaled(&mut self.total);
        self.levels.iter_mut().for_each(scaled);
        self.services.values_mut().for_each(scaled);
        self.keys.values_mut().for_each(scaled);
        self.values
            .values_mut()
            .for_each(|tally| tally.scale(factor));
    }
}

/// Which attributes' values to tally.
pub enum Wanted {
    /// Only keys (for `/api/fields`).
    Nothing,
    Every,
    These(Vec<String>),
}

impl Wanted {
    pub fn wants(&self, key: &str) -> bool {
        match self {
            Wanted::Nothing => false,
            Wanted::Every => true,
            Wanted::These(keys) => keys.iter().any(|k| k == key),
        }
    }
}

/// Facets from counts (scaled already when they came from a sample).
pub fn facets_from(
    query: &FacetQuery,
    counts: Counts,
    approximate: bool,
    service_names: &HashMap<i64, String>,
) -> Facets {
    let keys = keys_from(&counts);
    let fields = facets::chosen_fields(query, &keys);
    let mut values = counts.values;
    let finished = fields
        .into_iter()
        .map(|field| {
            let mut tally = Tally::default();
            match &field {
                FieldName::Level => {
                    for (code, n) in counts.levels.iter().enumerate() {
                        if let (Some(level), true) = (Level::from_code(code as u8), *n > 0) {
                            tally.add(level.as_str(), *n);
                        }
                    }
                }
                FieldName::Text(TextField::Service) => {
                    for (id, n) in &counts.services {
                        if let Some(name) = service_names.get(id) {
                            tally.add(name, *n);
                        }
                    }
                }
                FieldName::Text(TextField::Attribute(key)) => {
                    if let Some(found) = values.remove(key) {
                        tally = found;
                    }
                }
                FieldName::Text(_) => {}
            }
            tally.finish(field, query.limit)
        })
        .collect();
    Facets {
        total: counts.total,
        approximate,
        fields: finished,
    }
}

/// Attribute keys from counts, most frequent first.
pub fn keys_from(counts: &Counts) -> Vec<KeyCount> {
    let mut keys: Vec<KeyCount> = counts
        .keys
        .iter()
        .map(|(key, count)| KeyCount {
            key: key.clone(),
            count: *count,
        })
        .collect();
    facets::sort_key_counts(&mut keys);
    keys
}
