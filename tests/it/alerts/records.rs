//! The `AlertRecords` contract, run against both stores: alerting's rules,
//! state and notifications read back as written, later writes win, deletes
//! and pruning remove, ids list highest first.

use crate::support::eventually;
use oglogstream::store::alert_records::{AlertRecord, AlertRecords, RecordKind};
use oglogstream::store::sqlite::SqliteStore;
use std::sync::Arc;
use std::time::Duration;

fn record(kind: RecordKind, id: &str, body: Option<&str>, updated: i64) -> AlertRecord {
    AlertRecord {
        kind,
        id: id.into(),
        body: body.map(str::to_string),
        updated,
    }
}

async fn ids(records: &dyn AlertRecords, kind: RecordKind, limit: Option<usize>) -> Vec<String> {
    records
        .alert_records(kind, limit)
        .await
        .expect("read records")
        .into_iter()
        .map(|r| format!("{}={}", r.id, r.body.unwrap_or_default()))
        .collect()
}

pub async fn records_contract(records: Arc<dyn AlertRecords>) {
    let records = &*records;
    assert!(ids(records, RecordKind::Rule, None).await.is_empty());
    records
        .put_alert_records(&[
            record(RecordKind::Rule, "r1", Some(r#"{"name":"one"}"#), 10),
            record(
                RecordKind::Rule,
                "r2",
                Some(r#"{"name":"two 'quoted' \\ ünï"}"#),
                10,
            ),
            record(RecordKind::State, "r1", Some("{}"), 10),
        ])
        .await
        .expect("put");
    assert_eq!(
        ids(records, RecordKind::Rule, None).await,
        [
            r#"r2={"name":"two 'quoted' \\ ünï"}"#,
            r#"r1={"name":"one"}"#
        ]
    );
    assert_eq!(ids(records, RecordKind::State, None).await, ["r1={}"]);
    assert!(ids(records, RecordKind::Channel, None).await.is_empty());

    // A later write replaces; an older one does not.
    records
        .put_alert_records(&[record(RecordKind::Rule, "r1", Some("new"), 20)])
        .await
        .expect("replace");
    records
        .put_alert_records(&[record(RecordKind::Rule, "r1", Some("stale"), 15)])
        .await
        .expect("stale write");
    assert_eq!(
        ids(records, RecordKind::Rule, Some(1)).await,
        ["r2={\"name\":\"two 'quoted' \\\\ ünï\"}"]
    );
    assert!(
        ids(records, RecordKind::Rule, None)
            .await
            .contains(&"r1=new".to_string())
    );

    // A record without a body deletes.
    records
        .put_alert_records(&[record(RecordKind::Rule, "r2", None, 30)])
        .await
        .expect("delete");
    assert_eq!(ids(records, RecordKind::Rule, None).await, ["r1=new"]);

    // Newest (highest id) first, limited; pruning drops the old ones.
    let notifications: Vec<AlertRecord> = (1..=5)
        .map(|n| {
            record(
                RecordKind::Notification,
                &format!("n{n}"),
                Some("{}"),
                n * 100,
            )
        })
        .collect();
    records
        .put_alert_records(&notifications)
        .await
        .expect("notifications");
    assert_eq!(
        ids(records, RecordKind::Notification, Some(3)).await,
        ["n5={}", "n4={}", "n3={}"]
    );
    records
        .prune_alert_records(RecordKind::Notification, 300)
        .await
        .expect("prune");
    // ClickHouse applies the delete as a mutation, in the background.
    eventually(
        "old notifications to be pruned",
        Duration::from_secs(30),
        || async {
            let left = ids(records, RecordKind::Notification, None).await;
            (left == ["n5={}", "n4={}", "n3={}"]).then_some(())
        },
    )
    .await;
    assert_eq!(
        ids(records, RecordKind::Rule, None).await,
        ["r1=new"],
        "other kinds untouched"
    );
}

#[actix_web::test]
async fn sqlite_alert_records_meet_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path()).expect("open"));
    records_contract(store).await;
}

#[actix_web::test]
async fn clickhouse_alert_records_meet_the_contract() {
    use crate::split::deps::ClickHouse;
    use oglogstream::store::clickhouse::ClickHouseStore;
    let clickhouse = ClickHouse::start().await;
    let store = Arc::new(ClickHouseStore::open(&clickhouse.dsn("alert_records")).expect("open"));
    records_contract(store).await;
}
