//! Retention: logs older than a cutoff leave `logs`, the trace lookup
//! table `logs_by_trace` (partitioned by day like `logs`) and the rollups.

use super::client::{STATEMENT_TIMEOUT, collect, run};
use super::pool::{Pool, ReadBudget};
use super::rows::One;
use super::schema::TRACE_TABLE;
use super::sql::text_literal;
use crate::domain::TenantId;
use crate::domain::time::{Micros, format_rfc3339};
use crate::store::StoreError;

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
