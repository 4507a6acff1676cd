//! Bringing the schema up to date on the server we connected to: read its
//! version (which decides the table features, see `schema.rs`), then apply
//! each migration not yet recorded, on every host of a cluster.

use super::client::{collect, everywhere_by_shard, execute, run, run_for};
use super::dsn::Dsn;
use super::rows::One;
use super::schema::{self, Features, Layout, ServerVersion};
use crate::store::StoreError;
use klickhouse::Client;
use std::time::Duration;

/// The server's version as it reports it, and what that version can do.
pub async fn server_features(client: &Client) -> Result<(String, Features), StoreError> {
    let version: String = run(client, async {
        let row: One<String> = client.query_one("SELECT version()").await?;
        Ok(row.0)
    })
    .await?;
    let server = ServerVersion::parse(&version).ok_or_else(|| {
        StoreError::Unavailable(format!(
            "clickhouse reported an unreadable version {version:?}"
        ))
    })?;
    Ok((version, Features::of(server)))
}

/// Applies every migration the database lacks; `version` is the server's
/// (for the log line), `features` what it can do.
pub async fn migrate(
    client: &Client,
    dsn: &Dsn,
    layout: &Layout,
    version: &str,
    features: Features,
) -> Result<(), StoreError> {
    let database = &dsn.database;
    execute(client, &schema::create_database(database)).await?;
    execute(client, &schema::create_migrations_table(database)).await?;
    let applied: Vec<One<u32>> = run(
        client,
        collect::<One<u32>>(client, schema::applied_versions(database)),
    )
    .await?;
    let applied: Vec<u32> = applied.into_iter().map(|One(v)| v).collect();
    if let Some(newest) = applied.iter().max().filter(|v| **v > schema::LATEST) {
        return Err(StoreError::Unavailable(format!(
            "clickhouse schema version {newest} is newer than this binary understands ({}); upgrade oglogstream",
            schema::LATEST
        )));
    }
    // On a cluster, tables are made on every host, one statement at a
    // time (each idempotent), so no ZooKeeper is needed for DDL. Only
    // then must every host answer: a store starting while a replica is
    // down still starts.
    let mut hosts: Option<Vec<(u32, Client)>> = None;
    for version in 1..=schema::LATEST {
        if applied.contains(&version) {
            continue;
        }
        let Some(steps) = schema::migration(version, database, features, layout) else {
            continue;
        };
        if hosts.is_none() {
            let clients = everywhere_by_shard(dsn, layout.cluster.as_deref(), client).await?;
            for (_, host) in &clients {
                execute(host, &schema::create_database(database)).await?;
                execute(host, &schema::create_migrations_table(database)).await?;
            }
            hosts = Some(clients);
        }
        let hosts = hosts.as_deref().unwrap_or_default();
        for step in steps {
            match step {
                schema::Step::Sql(statement) => {
                    for (_, host) in hosts {
                        execute(host, &statement).await?;
                    }
                }
                schema::Step::UpgradeLogs => upgrade_logs(client, database, features).await?,
                schema::Step::MoveRollup { old, backfill } => {
                    for (host, copies) in copying_hosts(hosts, layout) {
                        move_rollup(host, database, &old, copies.then_some(&backfill)).await?;
                    }
                }
                schema::Step::SortLogsByTenant => {
                    let sort = schema::SortByTenant::new(database, layout);
                    for (host, copies) in copying_hosts(hosts, layout) {
                        sort_logs_by_tenant(host, &sort, copies).await?;
                    }
                }
                schema::Step::CopyPerShard(statement) => {
                    for (host, copies) in copying_hosts(hosts, layout) {
                        if copies {
                            run_for(COPY_TIMEOUT, host, host.execute(statement.as_str())).await?;
                        }
                    }
                }
            }
        }
        // Recorded on every host, so a store whose DSN names another
        // host (or starts while this one is down) knows it is done.
        for (_, host) in hosts {
            execute(host, &schema::record_version(database, version)).await?;
        }
        tracing::info!(version, database = %database, "clickhouse schema migrated");
    }
    tracing::info!(
        server = %version,
        ?features,
        database = %database,
        "clickhouse ready"
    );
    Ok(())
}

/// Each host, and whether it is the one of its shard that copies rows
/// between local tables: the first replica of each shard when the tables
/// are replicated (replication carries the rows to the others), every host
/// when they are not. `hosts` come in shard then replica order.
fn copying_hosts<'a>(
    hosts: &'a [(u32, Client)],
    layout: &Layout,
) -> impl Iterator<Item = (&'a Client, bool)> {
    let replicated = layout.replicated;
    hosts.iter().enumerate().map(move |(index, (shard, host))| {
        let first_of_shard = index == 0 || hosts[index - 1].0 != *shard;
        (host, !replicated || first_of_shard)
    })
}

/// One statement of a rebuild copies a whole day of logs.
const COPY_TIMEOUT: Duration = Duration::from_secs(3600);

/// [`schema::Step::UpgradeLogs`]: gives a version-1 `logs` the `ts`
/// column and the time-first sort key, keeping every row and column, and
/// adds the hour rollup. Writers should be stopped meanwhile (the upgrade
/// note in docs/split-roles.md): rows written to the old table after its
/// partition was copied would not be carried over, nor counted while the
/// views are away.
async fn upgrade_logs(
    client: &Client,
    database: &str,
    features: Features,
) -> Result<(), StoreError> {
    let number = |statement: String| async move {
        run(client, async {
            let One(n): One<u64> = client.query_one(statement).await?;
            Ok(n)
        })
        .await
    };
    if number(schema::has_ts_column(database)).await? == 0 {
        execute(client, &schema::add_ts_column(database)).await?;
    }
    let keys: Vec<One<String>> = run(
        client,
        collect::<One<String>>(client, schema::logs_keys(database)),
    )
    .await?;
    let rebuilt = keys
        .first()
        .is_some_and(|One(keys)| *keys == schema::current_logs_keys());
    if !rebuilt {
        let before = count(client, &format!("{database}.logs")).await?;
        let partitions = active_partitions(client, database, "logs").await?;
        tracing::info!(
            database = %database,
            rows = before,
            "rebuilding clickhouse logs with the time-first sort key"
        );
        for statement in schema::rebuild_logs(database, &partitions) {
            if statement.starts_with("DROP TABLE IF EXISTS") && statement.ends_with("_mv") {
                // klickhouse can report a dropped connection as success: the
                // copy is checked before anything of the old layout goes.
                let copied = count(client, &format!("{database}.logs_rebuild")).await?;
                if copied < before {
                    return Err(StoreError::Unavailable(format!(
                        "rebuilding {database}.logs copied {copied} of {before} rows; will retry"
                    )));
                }
            }
            run_for(COPY_TIMEOUT, client, client.execute(statement.as_str())).await?;
        }
    }
    let hour_view = number(schema::table_exists(database, "counts_hour_mv")).await? == 1;
    if !rebuilt || !hour_view {
        for statement in schema::hour_rollup_backfill(database, features) {
            run_for(COPY_TIMEOUT, client, client.execute(statement.as_str())).await?;
        }
    }
    Ok(())
}

/// [`schema::Step::SortLogsByTenant`] on one host: the sorted table made,
/// filled (when this host copies), checked and swapped in, unless the
/// table is sorted already; then the views made again and the old table
/// dropped, which an earlier migration stopped halfway may have left
/// undone.
async fn sort_logs_by_tenant(
    host: &Client,
    sort: &schema::SortByTenant<'_>,
    copies: bool,
) -> Result<(), StoreError> {
    let keys: Vec<One<String>> =
        run(host, collect::<One<String>>(host, sort.sorting_key())).await?;
    let sorted = keys
        .first()
        .is_some_and(|One(key)| schema::SortByTenant::is_sorted(key));
    if !sorted {
        for statement in sort.create() {
            execute(host, &statement).await?;
        }
        if copies {
            let database = sort.database();
            let before = count(host, &format!("{database}.{}", sort.logs)).await?;
            tracing::info!(
                database = %database,
                rows = before,
                "sorting clickhouse logs by tenant first"
            );
            for partition in active_partitions(host, database, &sort.logs).await? {
                run_for(COPY_TIMEOUT, host, host.execute(sort.copy(&partition))).await?;
            }
            // klickhouse can report a dropped connection as success: the
            // copy is checked before the old table goes.
            let copied = count(host, &format!("{database}.{}", sort.sorted)).await?;
            if copied < before {
                return Err(StoreError::Unavailable(format!(
                    "sorting {database}.{} by tenant copied {copied} of {before} rows; will retry",
                    sort.logs
                )));
            }
        }
        for statement in sort.swap() {
            execute(host, &statement).await?;
        }
    }
    for statement in sort.finish() {
        execute(host, &statement).await?;
    }
    Ok(())
}

/// `SELECT count()` of `table` (qualified).
async fn count(host: &Client, table: &str) -> Result<u64, StoreError> {
    run(host, async {
        let One(n): One<u64> = host
            .query_one(format!("SELECT count() FROM {table}"))
            .await?;
        Ok(n)
    })
    .await
}

/// The partitions `table` holds rows in, by id (only ids of letters and
/// digits, which day partitions are, so they can be quoted as they are).
async fn active_partitions(
    host: &Client,
    database: &str,
    table: &str,
) -> Result<Vec<String>, StoreError> {
    let partitions: Vec<One<String>> = run(
        host,
        collect::<One<String>>(
            host,
            format!(
                "SELECT DISTINCT partition_id FROM system.parts \
                 WHERE database = '{database}' AND table = '{table}' AND active"
            ),
        ),
    )
    .await?;
    Ok(partitions
        .into_iter()
        .map(|One(p)| p)
        .filter(|p| p.bytes().all(|b| b.is_ascii_alphanumeric()))
        .collect())
}

/// [`schema::Step::MoveRollup`] on one host: `old` renamed aside, copied by
/// `backfill` (when this host copies), then dropped. A host without `old`
/// has nothing to move (a new database's, once moved, or another instance
/// migrating at the same time took it: the rename is atomic).
async fn move_rollup(
    host: &Client,
    database: &str,
    old: &str,
    backfill: Option<&String>,
) -> Result<(), StoreError> {
    let exists = |table: String| async move {
        run(host, async {
            let One(n): One<u64> = host
                .query_one(schema::table_exists(database, &table))
                .await?;
            Ok(n == 1)
        })
        .await
    };
    let moving = format!("{old}_moving");
    if !exists(old.to_string()).await? {
        if exists(moving.clone()).await? {
            tracing::warn!(
                database = %database,
                table = %moving,
                "an earlier migration stopped while moving this rollup into its tenant-keyed successor; left as it is"
            );
        }
        return Ok(());
    }
    let renamed = run(
        host,
        host.execute(format!(
            "RENAME TABLE {database}.{old} TO {database}.{moving}"
        )),
    )
    .await;
    if let Err(error) = renamed {
        if exists(old.to_string()).await? {
            return Err(error);
        }
        // Another instance renamed it first and copies it.
        return Ok(());
    }
    if let Some(backfill) = backfill {
        run_for(COPY_TIMEOUT, host, host.execute(backfill.as_str())).await?;
    }
    execute(host, &format!("DROP TABLE IF EXISTS {database}.{moving}")).await
}
