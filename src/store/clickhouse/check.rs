//! The SQL this store sends to a server of a given version, for checking it
//! on an engine not run as a server here: the test suite executes the
//! current engine's statements in chdb (ClickHouse in-process) and compares
//! the answers with those of the 18.16 server the other tests use.

use super::counts::{self, Grouping};
use super::{facets, grouped, read, schema};
use crate::domain::time::Micros;
use crate::store::filter::{LogFilter, LogQuery};
use crate::store::grouped::GroupedCountQuery;

fn features(version: &str) -> Option<schema::Features> {
    schema::ServerVersion::parse(version).map(schema::Features::of)
}

/// Every statement a new database gets, in order; `None` for a version
/// that does not parse.
pub fn schema(version: &str, database: &str) -> Option<Vec<String>> {
    let features = features(version)?;
    let mut statements = vec![
        schema::create_database(database),
        schema::create_migrations_table(database),
    ];
    let layout = schema::Layout::default();
    for version in 1..=schema::LATEST {
        for step in schema::migration(version, database, features, &layout).unwrap_or_default() {
            match step {
                schema::Step::Sql(statement) => statements.push(statement),
                // A new database's old rollups hold nothing to move.
                schema::Step::MoveRollup { old, .. } => {
                    statements.push(format!("DROP TABLE IF EXISTS {database}.{old}"));
                }
                // The upgrade finds a new database already in shape.
                schema::Step::UpgradeLogs => {}
                // Copies nothing in a new database, but is checked all the same.
                schema::Step::CopyPerShard(statement) => statements.push(statement),
                // A new database's empty table is sorted again all the same.
                schema::Step::SortLogsByTenant => {
                    let sort = schema::SortByTenant::new(database, &layout);
                    statements.extend(sort.create());
                    statements.extend(sort.swap());
                    statements.extend(sort.finish());
                }
            }
        }
    }
    Some(statements)
}

/// A page as one window over the query's whole range (the store steps
/// through several; each is this statement with a narrower range), or, for
/// a filter pinning a trace id, the one lookup in `logs_by_trace` the store
/// makes.
pub fn page(version: &str, database: &str, query: &LogQuery) -> Option<String> {
    if query.filter.pinned_trace_id().is_some() {
        return Some(read::trace_page(database, features(version)?, query));
    }
    let (from, to) = query.filter.bounds();
    Some(read::window_page(
        database,
        features(version)?,
        query,
        (from, to),
        (query.offset as u64, query.limit as u64),
        false,
    ))
}

/// `SELECT key, logs` for the attribute keys of the matching logs.
pub fn attribute_keys(version: &str, database: &str, filter: &LogFilter) -> Option<String> {
    Some(facets::attribute_key_counts(
        database,
        features(version)?,
        filter,
    ))
}

/// `SELECT key, value, logs`: the facet values of attribute `keys`.
pub fn attribute_values(
    version: &str,
    database: &str,
    filter: &LogFilter,
    keys: &[&str],
    limit: usize,
) -> Option<String> {
    Some(facets::attribute_top_values(
        database,
        features(version)?,
        filter,
        keys,
        limit,
    ))
}

/// Counts by level and service, or by `interval` bucket and level:
/// `(bucket, level, service, count)` rows.
pub fn counts(
    version: &str,
    database: &str,
    filter: &LogFilter,
    interval: Option<Micros>,
) -> Option<String> {
    let grouping = match interval {
        Some(interval) => Grouping::BucketLevel(interval),
        None => Grouping::LevelService,
    };
    Some(counts::statement(
        database,
        features(version)?,
        filter,
        grouping,
    ))
}

/// Grouped counts (`Store::grouped_counts`): `(bucket, level, service,
/// attribute, has the attribute, count)` rows, summed by the caller.
pub fn grouped_counts(version: &str, database: &str, query: &GroupedCountQuery) -> Option<String> {
    Some(grouped::statement(database, features(version)?, query))
}
