//! A [`LogFilter`] as tests on a block's logs: time, levels, services and
//! the query language's attribute tests, decided once per dictionary entry
//! of each block rather than once per log.

use super::codec::{Block, Row};
use crate::domain::log::AUDIT_SERVICE;
use crate::domain::query::{CompareOp, Expr, Matcher, Number, Predicate, TextField};
use crate::domain::time::Micros;
use crate::domain::{Level, LevelSet};
use crate::store::StoreError;
use crate::store::filter::LogFilter;
use crate::store::sqlite::connection::sql_error;
use rusqlite::Connection;
use std::collections::HashMap;

/// Everything a block scan needs from the store, read once per query.
pub struct Dictionaries {
    pub service_names: HashMap<i64, String>,
    pub key_names: HashMap<i64, String>,
    pub tenant_names: HashMap<i64, String>,
}

pub fn dictionaries(connection: &Connection) -> Result<Dictionaries, StoreError> {
    let read = |sql: &str| -> Result<HashMap<i64, String>, StoreError> {
        let mut statement = connection.prepare_cached(sql).map_err(sql_error)?;
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)
    };
    Ok(Dictionaries {
        service_names: read("SELECT id, name FROM services")?,
        key_names: read("SELECT id, name FROM attribute_keys")?,
        tenant_names: read("SELECT id, name FROM tenants")?,
    })
}

/// A filter the blocks can answer: time, levels, services and attributes.
/// Built once per query; attribute tests are decided once per dictionary
/// entry of each block, not once per log.
pub struct BlockFilter {
    pub from: Micros,
    pub to: Micros,
    /// The scope's tenants, by id.
    pub tenants: Vec<i64>,
    /// The audit log's service id, when the scope may not see it.
    pub hidden_service: Option<i64>,
    pub levels: Option<LevelSet>,
    /// Services allowed by the `service` parameter (`None`: any).
    pub services: Option<Vec<bool>>,
    pub expr: Compiled,
}

/// `Expr` with services decided per service id and attribute tests by key
/// id (an attribute key never stored cannot match).
pub enum Compiled {
    All(Vec<Compiled>),
    Any(Vec<Compiled>),
    Not(Box<Compiled>),
    Levels(LevelSet),
    /// Allowed service ids.
    Services(Vec<bool>),
    /// The test, on the key's value (`None`: the key was never stored).
    Attribute(Option<i64>, AttributeTest),
}

pub enum AttributeTest {
    Present,
    Matches(Matcher),
    Compare(CompareOp, Number),
}

impl AttributeTest {
    fn holds(&self, value: &str) -> bool {
        match self {
            AttributeTest::Present => true,
            AttributeTest::Matches(matcher) => matcher.matches(value),
            AttributeTest::Compare(op, number) => {
                Number::parse(value).is_some_and(|v| op.holds(v.value, number.value))
            }
        }
    }
}

impl Compiled {
    fn of(
        expr: &Expr,
        service_names: &HashMap<i64, String>,
        max_service: usize,
        key_ids: &HashMap<String, i64>,
    ) -> Option<Compiled> {
        Some(match expr {
            Expr::And(children) => Compiled::All(
                children
                    .iter()
                    .map(|c| Compiled::of(c, service_names, max_service, key_ids))
                    .collect::<Option<_>>()?,
            ),
            Expr::Or(children) => Compiled::Any(
                children
                    .iter()
                    .map(|c| Compiled::of(c, service_names, max_service, key_ids))
                    .collect::<Option<_>>()?,
            ),
            Expr::Not(inner) => Compiled::Not(Box::new(Compiled::of(
                inner,
                service_names,
                max_service,
                key_ids,
            )?)),
            Expr::Is(Predicate::Levels(levels)) => Compiled::Levels(*levels),
            Expr::Is(Predicate::Text {
                field: TextField::Service,
                matcher,
            }) => {
                let mut allowed = vec![false; max_service + 1];
                for (id, name) in service_names {
                    if matcher.matches(name) {
                        allowed[*id as usize] = true;
                    }
                }
                Compiled::Services(allowed)
            }
            Expr::Is(Predicate::Text {
                field: TextField::Attribute(key),
                matcher,
            }) => Compiled::Attribute(
                key_ids.get(key).copied(),
                AttributeTest::Matches(matcher.clone()),
            ),
            Expr::Is(Predicate::Present { key }) => {
                Compiled::Attribute(key_ids.get(key).copied(), AttributeTest::Present)
            }
            Expr::Is(Predicate::Compare { key, op, number }) => Compiled::Attribute(
                key_ids.get(key).copied(),
                AttributeTest::Compare(*op, number.clone()),
            ),
            // Messages and ids are not in the blocks.
            Expr::Is(Predicate::Text { .. }) => return None,
        })
    }

    /// Decides every attribute test on a block's dictionary: for each
    /// test, in tree order, which entries satisfy it.
    pub fn decide(&self, block: &Block, out: &mut Vec<Vec<bool>>) {
        match self {
            Compiled::All(children) | Compiled::Any(children) => {
                children.iter().for_each(|c| c.decide(block, out))
            }
            Compiled::Not(inner) => inner.decide(block, out),
            Compiled::Attribute(key, test) => out.push(
                block
                    .dictionary
                    .iter()
                    .map(|(entry_key, value)| {
                        Some(*entry_key) == *key
                            && std::str::from_utf8(value).is_ok_and(|value| test.holds(value))
                    })
                    .collect(),
            ),
            Compiled::Levels(_) | Compiled::Services(_) => {}
        }
    }

    /// Whether `row` matches; `decided` from [`Compiled::decide`], consumed
    /// in the same order through `next`.
    fn matches(&self, row: &Row, decided: &[Vec<bool>], next: &mut usize) -> bool {
        match self {
            Compiled::All(children) => {
                // Every child consumes its tests, matched or not.
                let mut all = true;
                for child in children {
                    all &= child.matches(row, decided, next);
                }
                all
            }
            Compiled::Any(children) => {
                let mut any = false;
                for child in children {
                    any |= child.matches(row, decided, next);
                }
                any
            }
            Compiled::Not(inner) => !inner.matches(row, decided, next),
            Compiled::Levels(levels) => {
                Level::from_code(row.level).is_some_and(|l| levels.contains(l))
            }
            Compiled::Services(allowed) => {
                allowed.get(row.service as usize).copied().unwrap_or(false)
            }
            Compiled::Attribute(..) => {
                let table = &decided[*next];
                *next += 1;
                row.pairs.iter().any(|&at| table[at as usize])
            }
        }
    }
}

impl BlockFilter {
    /// `None` when the filter tests what blocks do not hold (the message or
    /// the id): the caller reads rows instead.
    pub fn of(filter: &LogFilter, dictionaries: &Dictionaries) -> Option<BlockFilter> {
        if filter.text.is_some() {
            return None;
        }
        let max_service = dictionaries
            .service_names
            .keys()
            .copied()
            .max()
            .unwrap_or(0)
            .max(0) as usize;
        let key_ids: HashMap<String, i64> = dictionaries
            .key_names
            .iter()
            .map(|(id, name)| (name.clone(), *id))
            .collect();
        let services = filter.service.as_ref().map(|needle| {
            let mut allowed = vec![false; max_service + 1];
            for (id, name) in &dictionaries.service_names {
                if crate::domain::query::contains_ignore_case(name, needle) {
                    allowed[*id as usize] = true;
                }
            }
            allowed
        });
        let (from, to) = filter.bounds();
        let tenants = dictionaries
            .tenant_names
            .iter()
            .filter(|(_, name)| filter.scope.tenants().iter().any(|t| t.as_str() == *name))
            .map(|(id, _)| *id)
            .collect();
        let hidden_service = (!filter.scope.audit)
            .then(|| {
                dictionaries
                    .service_names
                    .iter()
                    .find(|(_, name)| *name == AUDIT_SERVICE)
                    .map(|(id, _)| *id)
            })
            .flatten();
        Some(BlockFilter {
            from,
            to,
            tenants,
            hidden_service,
            levels: filter.levels,
            services,
            expr: Compiled::of(
                &filter.expr,
                &dictionaries.service_names,
                max_service,
                &key_ids,
            )?,
        })
    }

    pub fn row_matches(&self, row: &Row, decided: &[Vec<bool>]) -> bool {
        row.ts >= self.from
            && row.ts < self.to
            && self.tenants.contains(&row.tenant)
            && self.hidden_service != Some(row.service)
            && self.levels.is_none_or(|levels| {
                Level::from_code(row.level).is_some_and(|l| levels.contains(l))
            })
            && self
                .services
                .as_ref()
                .is_none_or(|allowed| allowed.get(row.service as usize).copied().unwrap_or(false))
            && self.expr.matches(row, decided, &mut 0)
    }
}
