//! A rule's counts per group from each store agree with counting in memory
//! (`Expr::matches` and the group's labels), on every counting path: no
//! groups, level and service (rollups), one attribute (facets), several keys
//! with an attribute (reading the logs).

use oglogstream::alerts::counting::{count_groups, labels_of};
use oglogstream::alerts::rule::RuleSpec;
use oglogstream::alerts::state::Labels;
use oglogstream::domain::{Level, LogBatch, LogRecord};
use oglogstream::store::Store;
use oglogstream::store::sqlite::SqliteStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const MINUTE: i64 = 60_000_000;
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000_000;

fn dataset() -> Vec<LogRecord> {
    let services = ["checkout", "checkout-eu", "payments", "search"];
    let regions = ["eu", "us", ""];
    (0..600)
        .map(|n: i64| {
            let mut attributes = oglogstream::domain::Attributes::new();
            let region = regions[(n % 3) as usize];
            if !region.is_empty() {
                attributes.insert("region".to_string(), region.to_string());
            }
            if n % 5 == 0 {
                attributes.insert("http.status".to_string(), (500 + n % 4).to_string());
            }
            LogRecord {
                id: format!("id-{n:05}"),
                // Ten minutes, off minute boundaries, so windows have ragged edges.
                timestamp: T0 + n * MINUTE / 60 + 7_000,
                level: Level::ALL[(n % 5) as usize],
                service: services[(n % 4) as usize].to_string(),
                message: if n % 7 == 0 {
                    "payment timeout".into()
                } else {
                    "ok".into()
                },
                attributes,
                ..Default::default()
            }
        })
        .collect()
}

const RULES: &[(&str, &[&str])] = &[
    ("service:checkout* level:>=error", &[]),
    ("level:>=warn", &["service"]),
    (
        "service:checkout level:(error OR fatal)",
        &["level", "service"],
    ),
    ("timeout", &[]),
    ("level:>=info", &["region"]),
    ("http.status:>=502", &["region"]),
    ("level:error", &["service", "region"]),
    ("-service:search", &["level", "region", "http.status"]),
];

pub async fn counting_contract(store: Arc<dyn Store>) {
    let records = dataset();
    let batch: LogBatch = records.clone().into();
    store.insert(&[batch]).await.expect("insert");
    let windows = [
        (T0, T0 + 10 * MINUTE),
        (T0 + 90_000_000, T0 + 5 * MINUTE + 1),
    ];
    for (query, group_by) in RULES {
        let rule = RuleSpec::counting_only(
            query,
            "5m",
            group_by.iter().map(|k| k.to_string()).collect(),
        )
        .expect("a valid rule");
        for (from, to) in windows {
            let mut expected: HashMap<Labels, u64> = HashMap::new();
            for record in records
                .iter()
                .filter(|r| r.timestamp >= from && r.timestamp < to && rule.expr.matches(r))
            {
                *expected
                    .entry(labels_of(record, &rule.group_by))
                    .or_default() += 1;
            }
            let got: HashMap<Labels, u64> =
                count_groups(&*store, &rule, from, to, Duration::from_secs(30))
                    .await
                    .unwrap_or_else(|e| panic!("{query}: {e}"))
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .collect();
            assert_eq!(got, expected, "{query} by {group_by:?} over [{from}, {to})");
        }
    }
}

#[actix_web::test]
async fn sqlite_counts_rules_like_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    counting_contract(Arc::new(SqliteStore::open(dir.path()).expect("open"))).await;
}

#[actix_web::test]
async fn clickhouse_counts_rules_like_memory() {
    use crate::split::deps::ClickHouse;
    use oglogstream::store::clickhouse::ClickHouseStore;
    let clickhouse = ClickHouse::start().await;
    let store = ClickHouseStore::open(&clickhouse.dsn("alert_counts")).expect("open");
    counting_contract(Arc::new(store)).await;
}
