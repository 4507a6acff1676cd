//! Retention: logs older than a cutoff leave `logs`, the trace lookup
//! table `logs_by_trace` (partitioned by day like `logs`) and the rollups;
//! and the logs a retention rule names (`delete_matching`).

use super::client::{STATEMENT_TIMEOUT, collect, run};
use super::conditions::{dimension_conditions, logs_time_range};
use super::pool::{Pool, ReadBudget};
use super::rows::One;
use super::schema::TRACE_TABLE;
use super::sql::{text_literal, where_clause};
use crate::domain::TenantId;
use crate::domain::time::{Micros, format_rfc3339};
use crate::store::StoreError;
use crate::store::filter::LogFilter;
use klickhouse::Client;
use std::time::{Duration, Instant};

/// The rollups as (table, bucket column, bucket width in microseconds).
const ROLLUPS: [(&str, &str, i64); 2] = [
    ("tenant_counts_minute", "minute", 60_000_000),
    ("tenant_counts_hour", "hour", 3_600_000_000),
];
/// How long `delete_matching` waits for its mutations to finish.
const MUTATION_WAIT: Duration = Duration::from_secs(600);

/// Whole days before the cutoff go by dropping their partitions (cheap);
/// the rest of the cutoff's day, and the rollup, by an `ALTER ... DELETE`
/// mutation, which ClickHouse applies in the background: reads may see
/// the old rows for a few seconds more.
pub async fn delete_older_than(pool: &Pool, cutoff: Micros) -> Result<u64, StoreError> {
    let database = pool.database().to_string();
    let layout = pool.layout();
    let cutoff_day = format_rfc3339(cutoff);
    // "2025-01-31T..." -> 20250131, the partition id of that day.
    let cutoff_day: u32 = cutoff_day[..10].replace('-', "").parse().unwrap_or(0);
    let budget = ReadBudget::new(STATEMENT_TIMEOUT);
    let expired: Vec<One<u64>> = pool
        .read(
            &budget,
            &format!("SELECT count() FROM {database}.logs WHERE ts_us < {cutoff}"),
        )
        .await?;
    let expired = expired.first().map_or(0, |One(n)| *n);
    if expired == 0 {
        return Ok(0);
    }
    // Partitions and mutations belong to the local tables: on a cluster,
    // every host deletes its own rows.
    for client in pool.host_clients().await? {
        for table in ["logs", TRACE_TABLE] {
            let table = layout.local(table);
            let partitions: Vec<One<String>> = run(
                &client,
                collect(
                    &client,
                    format!(
                        "SELECT DISTINCT partition_id FROM system.parts \
                         WHERE database = '{database}' AND table = '{table}' AND active"
                    ),
                ),
            )
            .await?;
            for One(partition) in partitions {
                if let Ok(day) = partition.parse::<u32>()
                    && day < cutoff_day
                {
                    let statement = format!("ALTER TABLE {database}.{table} DROP PARTITION {day}");
                    run(&client, client.execute(statement)).await?;
                }
            }
        }
        for (table, column) in [
            ("logs", "ts_us"),
            (TRACE_TABLE, "ts_us"),
            ("tenant_counts_minute", "minute"),
            ("tenant_counts_hour", "hour"),
        ] {
            let statement = format!(
                "ALTER TABLE {database}.{} DELETE WHERE {column} < {cutoff}",
                layout.local(table)
            );
            run(&client, client.execute(statement)).await?;
        }
    }
    Ok(expired)
}

/// One tenant's logs before `cutoff` (in `logs` and `logs_by_trace`) and its rollup counts, by `ALTER ...
/// DELETE` mutations on every host's local tables (partitions hold every
/// tenant's day, so none is dropped). Nothing is asked of the server when
/// nothing is due: a mutation rewrites parts even when it matches nothing.
pub async fn delete_tenant_older_than(
    pool: &Pool,
    tenant: &TenantId,
    cutoff: Micros,
) -> Result<u64, StoreError> {
    let database = pool.database().to_string();
    let layout = pool.layout();
    let tenant = text_literal(tenant.as_str());
    let budget = ReadBudget::new(STATEMENT_TIMEOUT);
    let expired: Vec<One<u64>> = pool
        .read(
            &budget,
            &format!(
                "SELECT count() FROM {database}.logs WHERE tenant = {tenant} AND ts_us < {cutoff}"
            ),
        )
        .await?;
    let expired = expired.first().map_or(0, |One(n)| *n);
    if expired == 0 {
        return Ok(0);
    }
    for client in pool.host_clients().await? {
        for (table, column) in [
            ("logs", "ts_us"),
            (TRACE_TABLE, "ts_us"),
            ("tenant_counts_minute", "minute"),
            ("tenant_counts_hour", "hour"),
        ] {
            let statement = format!(
                "ALTER TABLE {database}.{} DELETE WHERE tenant = {tenant} AND {column} < {cutoff}",
                layout.local(table)
            );
            run(&client, client.execute(statement)).await?;
        }
    }
    Ok(expired)
}

/// Every log `filter` matches (a retention rule, wherever its logs sit in
/// time), from `logs` and `logs_by_trace` by `ALTER ... DELETE` mutations
/// on every host's local tables, and from the rollups by subtracting: a
/// `SummingMergeTree` cannot delete part of a cell's count, so a row of
/// `-count` per cell is inserted (`n` is a `UInt64`: the negative count
/// wraps around, and readers' `sum(n)` wraps back, as UInt64 arithmetic
/// is modulo 2^64; a cell summed to zero is dropped at the next merge).
/// The correction goes in once, into the first host's local rollup (the
/// first replica of the first shard): reads sum every shard.
///
/// Mutations run in the background; this waits for them (system.mutations
/// on every host), so once it returns rows and counts agree. Meanwhile
/// counts leave the deleted logs out a little before the rows do.
pub async fn delete_matching(pool: &Pool, filter: &LogFilter) -> Result<u64, StoreError> {
    let database = pool.database().to_string();
    let layout = pool.layout();
    let (from, to) = filter.bounds();
    let mut conditions = vec![logs_time_range(from, to)];
    conditions.extend(dimension_conditions(filter, true, pool.features()));
    let condition = where_clause(&conditions);
    let budget = ReadBudget::new(STATEMENT_TIMEOUT);
    let matching: Vec<One<u64>> = pool
        .read(
            &budget,
            &format!("SELECT count() FROM {database}.logs WHERE {condition}"),
        )
        .await?;
    let matching = matching.first().map_or(0, |One(n)| *n);
    if matching == 0 {
        // A mutation rewrites parts even when it matches nothing.
        return Ok(0);
    }
    let hosts = pool.host_clients().await?;
    let Some(first) = hosts.first() else {
        return Ok(0);
    };
    for (table, column, width) in ROLLUPS {
        let statement = format!(
            "INSERT INTO {database}.{local} ({column}, tenant, level, service, n) \
             SELECT toInt64(intDiv(ts_us, {width}) * {width}) AS {column}, tenant, level, service, \
                    toUInt64(-toInt64(count())) \
             FROM {database}.logs WHERE {condition} \
             GROUP BY {column}, tenant, level, service",
            local = layout.local(table)
        );
        run(first, first.execute(statement)).await?;
    }
    let tables = [layout.local("logs"), layout.local(TRACE_TABLE)];
    for client in &hosts {
        for table in &tables {
            let statement = format!("ALTER TABLE {database}.{table} DELETE WHERE {condition}");
            run(client, client.execute(statement)).await?;
        }
    }
    for client in &hosts {
        wait_for_mutations(client, &database, &tables).await?;
    }
    Ok(matching)
}

/// Until no mutation of `tables` is left to do on this host.
async fn wait_for_mutations(
    client: &Client,
    database: &str,
    tables: &[String],
) -> Result<(), StoreError> {
    let names: Vec<String> = tables.iter().map(|t| text_literal(t)).collect();
    let statement = format!(
        "SELECT count() FROM system.mutations \
         WHERE database = {} AND table IN ({}) AND is_done = 0",
        text_literal(database),
        names.join(", ")
    );
    let deadline = Instant::now() + MUTATION_WAIT;
    loop {
        let pending: Vec<One<u64>> = run(client, collect(client, statement.clone())).await?;
        if pending.first().is_none_or(|One(n)| *n == 0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(StoreError::Unavailable(format!(
                "clickhouse mutations on {} still running after {MUTATION_WAIT:?}",
                tables.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The tenants with counts in the hour rollup (small: one row per tenant,
/// hour, level and service).
pub async fn tenants(pool: &Pool) -> Result<Vec<TenantId>, StoreError> {
    let database = pool.database().to_string();
    let budget = ReadBudget::new(STATEMENT_TIMEOUT);
    let names: Vec<One<String>> = pool
        .read(
            &budget,
            &format!("SELECT DISTINCT tenant FROM {database}.tenant_counts_hour"),
        )
        .await?;
    Ok(names
        .iter()
        .filter_map(|One(name)| TenantId::parse(name).ok())
        .collect())
}
