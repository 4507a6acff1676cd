//! Which blocks may hold a match for a search's attribute terms, from their
//! Bloom filters (for rare values such as a trace id).

use super::bloom::{has_bits, key_positions, pair_positions};
use super::codec::BLOCK_SHIFT;
use super::filter::dictionaries;
use crate::domain::query::{Expr, Matcher, Predicate, TextField};
use crate::store::StoreError;
use crate::store::sqlite::connection::sql_error;
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashMap;

/// The bits a block's attribute filter must hold for a search.
pub struct AttributeProbe {
    wanted: Vec<[usize; 2]>,
    /// Blocks from here on have no filter yet: always read.
    pub tail_from: i64,
}

impl AttributeProbe {
    /// What a block's attribute filter must hold for a log to match every
    /// top-level attribute term of `expr` (a value, or only the key): `None`
    /// when there is no such term. For searches of rare values (a trace id).
    pub fn of(connection: &Connection, expr: &Expr) -> Result<Option<AttributeProbe>, StoreError> {
        // Blocks built before the dictionary is read: their keys are in it.
        let last_built: Option<i64> = connection
            .query_row("SELECT MAX(block) FROM attribute_blooms", [], |row| {
                row.get(0)
            })
            .map_err(sql_error)?;
        let dictionaries = dictionaries(connection)?;
        let key_ids: HashMap<&str, i64> = dictionaries
            .key_names
            .iter()
            .map(|(id, name)| (name.as_str(), *id))
            .collect();
        let mut wanted: Vec<[usize; 2]> = Vec::new();
        for term in expr.conjuncts() {
            let (key, value) = match term {
                Expr::Is(Predicate::Text {
                    field: TextField::Attribute(key),
                    matcher: Matcher::Equals(pattern),
                }) => (key, pattern.as_literal()),
                Expr::Is(Predicate::Present { key }) | Expr::Is(Predicate::Compare { key, .. }) => {
                    (key, None)
                }
                Expr::Is(Predicate::Text {
                    field: TextField::Attribute(key),
                    ..
                }) => (key, None),
                _ => continue,
            };
            let Some(&key_id) = key_ids.get(key.as_str()) else {
                // Never stored: only the tail could hold it.
                wanted.push([usize::MAX; 2]);
                continue;
            };
            wanted.push(match value {
                Some(literal) => pair_positions(key_id, literal),
                None => key_positions(key_id),
            });
        }
        if wanted.is_empty() {
            return Ok(None);
        }
        Ok(Some(AttributeProbe {
            wanted,
            tail_from: last_built.map_or(0, |block| (block + 1) << BLOCK_SHIFT),
        }))
    }

    /// Whether the filters skip most blocks: of the newest 64 built blocks, at
    /// most a quarter may hold a match.
    pub fn selective(&self, connection: &Connection) -> Result<bool, StoreError> {
        let mut statement = connection
            .prepare_cached("SELECT bloom FROM attribute_blooms ORDER BY block DESC LIMIT 64")
            .map_err(sql_error)?;
        let blooms = statement
            .query_map([], |row| row.get::<_, Vec<u8>>(0))
            .map_err(sql_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_error)?;
        let holding = blooms.iter().filter(|bloom| self.holds(bloom)).count();
        Ok(!blooms.is_empty() && holding * 4 <= blooms.len())
    }

    fn holds(&self, bloom: &[u8]) -> bool {
        self.wanted
            .iter()
            .all(|positions| positions[0] != usize::MAX && has_bits(bloom, *positions))
    }
}

impl AttributeProbe {
    /// Whether `block` may hold a match (a block without a filter may).
    pub fn may_hold(&self, connection: &Connection, block: i64) -> Result<bool, StoreError> {
        if block << BLOCK_SHIFT >= self.tail_from {
            return Ok(true);
        }
        let mut statement = connection
            .prepare_cached("SELECT bloom FROM attribute_blooms WHERE block = ?1")
            .map_err(sql_error)?;
        let bloom: Option<Vec<u8>> = statement
            .query_row([block], |row| row.get(0))
            .optional()
            .map_err(sql_error)?;
        Ok(bloom.is_none_or(|bloom| self.holds(&bloom)))
    }
}
