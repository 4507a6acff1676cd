//! The store contract, written once and run against every store: the
//! expected answer of each query is computed in memory from the same records
//! with `LogFilter::matches`, the definition every store must agree with.

use super::deps::ClickHouse;
use oglogstream::domain::log::AUDIT_SERVICE;
use oglogstream::domain::query::{FieldName, TextField};
use oglogstream::domain::{Level, LevelSet, LogBatch, LogRecord, TenantId};
use oglogstream::store::clickhouse::{ClickHouseStore, Options, Stepping};
use oglogstream::store::facets::{FacetQuery, Facets, FieldFacet, KeyCount};
use oglogstream::store::filter::Scope;
use oglogstream::store::sqlite::SqliteStore;
use oglogstream::store::{
    BucketCount, Dimension, GroupedCount, GroupedCountQuery, HistogramQuery, LevelServiceCount,
    LogFilter, LogKey, LogQuery, Order, Store,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000_000;

const SERVICES: [&str; 6] = [
    "api",
    "API-Gateway",
    "billing_worker",
    "Ünïcode-Svc",
    "日本サービス",
    "pay%ments",
];

const MESSAGES: [&str; 12] = [
    "plain message",
    "it's quoted",
    "back\\slash path C:\\tmp",
    "100% done",
    "under_score_name",
    "nul\0byte inside",
    "Échec de la requête",
    "ОШИБКА базы данных",
    "emoji 🚀 launch",
    "percent%and_underscore",
    "\"double\" quotes",
    "Payment TIMEOUT after 3s",
];

/// Records spread over three hours, with timestamps on and off minute and
/// hour boundaries, several sharing a timestamp; ids rise in insertion order
/// (as ingest's ids do), which is the tie-break both stores share.
pub fn dataset() -> Vec<LogRecord> {
    let offsets = [
        0,
        1,
        SECOND - 1,
        MINUTE,
        MINUTE,
        MINUTE + 1,
        59 * MINUTE + 59 * SECOND + 999_999,
        HOUR,
        HOUR + 7 * SECOND,
        HOUR + 30 * MINUTE + 123_456,
        2 * HOUR - 1,
        2 * HOUR,
        2 * HOUR + 15 * MINUTE,
        2 * HOUR + 15 * MINUTE,
        3 * HOUR - MINUTE + 1,
    ];
    let mut records = Vec::new();
    for round in 0..8 {
        for (i, offset) in offsets.iter().enumerate() {
            let n = records.len();
            records.push(LogRecord {
                id: format!("id-{n:05}"),
                timestamp: T0 + offset + round * 3 * SECOND,
                level: Level::ALL[(i + round as usize) % 5],
                service: SERVICES[(i * 7 + round as usize) % SERVICES.len()].to_string(),
                message: format!(
                    "{} #{n}",
                    MESSAGES[(i + round as usize * 5) % MESSAGES.len()]
                ),
                attributes: attributes(n),
                tenant: TENANTS[n % TENANTS.len()].clone(),
                trace_id: (n % 7 == 0).then(|| format!("{:032x}", n % 3)),
                span_id: (n % 7 == 0).then(|| format!("{n:016x}")),
            });
            // The audit log: a reserved service only some scopes see.
            if n % 17 == 0
                && let Some(record) = records.last_mut()
            {
                record.service = AUDIT_SERVICE.to_string();
            }
        }
    }
    records
}

/// Three tenants sharing services, attribute keys and messages, the first
/// (`default`) holding most logs.
static TENANTS: std::sync::LazyLock<[TenantId; 5]> = std::sync::LazyLock::new(|| {
    let tenant = |name: &str| TenantId::parse(name).expect("a tenant id");
    [
        TenantId::default(),
        tenant("team-a"),
        TenantId::default(),
        tenant("team-b"),
        tenant("team-a"),
    ]
});

/// The scopes every read is asked with: each tenant alone, several at once,
/// with and without the audit log, and a tenant the store never saw.
pub fn scopes() -> Vec<Scope> {
    let tenant = |name: &str| TenantId::parse(name).expect("a tenant id");
    vec![
        Scope::default(),
        Scope::tenant(tenant("team-a")),
        Scope::of([tenant("team-a"), tenant("team-b")]).expect("a scope"),
        Scope::default().with_audit(true),
        every_tenant(),
        Scope::tenant(tenant("nobody")),
    ]
}

/// Every tenant of the dataset, audit log included: the whole store.
pub fn every_tenant() -> Scope {
    Scope::of(TENANTS.iter().cloned())
        .expect("a scope")
        .with_audit(true)
}

/// Attributes of record `n`: hostile keys and values, regions in several
/// cases, numbers and non-numbers, a key shadowing `level`, and none at all.
fn attributes(n: usize) -> oglogstream::domain::Attributes {
    let mut attributes = oglogstream::domain::Attributes::new();
    let mut set = |key: &str, value: &str| {
        attributes.insert(key.to_string(), value.to_string());
    };
    if n % 3 == 0 {
        set("k'ey", "v\\al\0ue");
        set("region", "日本");
    }
    match n % 4 {
        1 => set("region", "eu-west-1"),
        2 => set("region", "EU-Central-1"),
        _ => {}
    }
    if n % 2 == 0 {
        set(
            "http.status",
            ["200", "503", "abc", "-2.5", "500"][n / 2 % 5],
        );
    }
    if n % 7 == 0 {
        set("trace", &format!("T{}", n % 3));
    }
    if n % 11 == 0 {
        set("level", "custom");
    }
    if n % 13 == 0 {
        set("my key", "A \"quoted\" value");
    }
    attributes
}

/// Queries in the language exercising every kind of predicate, alone and
/// combined; each store must answer them as `Expr::matches` does.
const QUERIES: &[&str] = &[
    "service:api",
    "service:API*",
    "service:*svc*",
    "service:\"pay%ments\"",
    "service:(billing_worker OR 日本サービス)",
    "-service:api*",
    "level:>=error",
    "level:<warn service:api-gateway",
    "level:(debug OR fatal)",
    "timeout",
    "\"it's quoted\"",
    "\"C:\\\\tmp\"",
    "under*name",
    "~\"#[0-9]{3}$\"",
    "~\"(?i)échec\"",
    "message:~\"^nul\"",
    "id:id-00007",
    "id:~\"-0001[0-9]$\"",
    "region:eu-west-1",
    "region:eu-*",
    "region:日本",
    "-region:eu-*",
    "region:*",
    "-region:*",
    "region:~\"^EU\"",
    "\"k'ey\":\"v\\\\al\u{0}ue\"",
    "http.status:>=500",
    "http.status:<0",
    "-http.status:>=500",
    "http.status:>200 http.status:<=503",
    "http.status:(abc OR >=503)",
    "trace:t1 OR trace:T2",
    "trace_id:00000000000000000000000000000001",
    "trace_id:00000000000000000000000000000002 level:>=warn",
    "trace_id:*",
    "-trace_id:*",
    "span_id:000000000000001c",
    "service:oglogstream.audit",
    "@level:custom",
    "@level:* level:info",
    "\"my key\":*quoted*",
    "(timeout OR \"100%\") -level:debug",
    "NOT (region:* OR http.status:*)",
    "level:error region:eu-* OR service:api -timeout",
];

fn levels(list: &[Level]) -> Option<LevelSet> {
    let mut set = LevelSet::default();
    list.iter().for_each(|l| set.insert(*l));
    Some(set)
}

/// Filters exercising every condition alone and together.
pub fn filters() -> Vec<LogFilter> {
    let text = |s: &str| Some(s.to_lowercase());
    let mut filters = vec![
        LogFilter::default(),
        LogFilter {
            levels: levels(&[Level::Error]),
            ..Default::default()
        },
        LogFilter {
            levels: levels(&[Level::Warn, Level::Fatal, Level::Debug]),
            ..Default::default()
        },
        LogFilter {
            from: Some(T0 + MINUTE),
            to: Some(T0 + 2 * HOUR),
            ..Default::default()
        },
        LogFilter {
            from: Some(T0 + MINUTE + 1),
            to: Some(T0 + 2 * HOUR + 15 * MINUTE),
            ..Default::default()
        },
        LogFilter {
            from: Some(T0 + 7),
            to: Some(T0 + 2 * HOUR + 15 * MINUTE + 3 * SECOND + 1),
            levels: levels(&[Level::Info, Level::Error]),
            service: text("a"),
            ..Default::default()
        },
    ];
    for service in ["API", "gateway", "ÜNÏ", "日本", "%", "_", "pay%m", "nope"] {
        filters.push(LogFilter {
            service: text(service),
            ..Default::default()
        });
    }
    for q in [
        "it's",
        "\\slash",
        "C:\\TMP",
        "100%",
        "%",
        "_",
        "e_s",
        "nul\0byte",
        "\0",
        "échec",
        "ошибка БАЗЫ",
        "🚀",
        "\"double\"",
        "timeout",
        "' OR '1'='1",
        "absent",
    ] {
        filters.push(LogFilter {
            text: text(q),
            ..Default::default()
        });
    }
    filters.push(LogFilter {
        text: text("#1"),
        service: text("api"),
        levels: levels(&[Level::Debug, Level::Info, Level::Warn]),
        from: Some(T0 + SECOND),
        to: Some(T0 + 3 * HOUR),
        ..Default::default()
    });
    for query in QUERIES {
        filters.push(LogFilter {
            expr: language(query),
            ..Default::default()
        });
    }
    // The language ANDed with the other filters.
    filters.push(LogFilter {
        levels: levels(&[Level::Error, Level::Warn, Level::Info]),
        service: text("a"),
        from: Some(T0 + MINUTE),
        to: Some(T0 + 2 * HOUR + 15 * MINUTE),
        expr: language("region:* -http.status:abc"),
        ..Default::default()
    });
    filters
}

pub fn language(query: &str) -> oglogstream::domain::query::Expr {
    oglogstream::domain::query::parse(query).unwrap_or_else(|e| panic!("{query:?}: {e}"))
}

/// Waits until a store that connects in the background is ready.
pub async fn ready(store: &dyn Store) {
    crate::support::eventually("the store to be ready", Duration::from_secs(30), || async {
        store.check().await.ok()
    })
    .await;
}

/// The ids of the page a store answers for `query`.
pub async fn page_ids(store: &dyn Store, query: &LogQuery) -> Vec<String> {
    store
        .logs(query)
        .await
        .expect("logs")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// The ids a store must answer for `query`, by `LogFilter::matches` over
/// `records` in insertion order (which breaks ties in time, as stores do).
pub fn expected_logs(records: &[LogRecord], query: &LogQuery) -> Vec<String> {
    let mut matching: Vec<&LogRecord> = records
        .iter()
        .filter(|r| query.filter.matches(r))
        .filter(|r| {
            query
                .after
                .as_ref()
                .is_none_or(|after| after.precedes(r, query.order))
        })
        .collect();
    matching.sort_by(|a, b| (a.timestamp, a.id.as_bytes()).cmp(&(b.timestamp, b.id.as_bytes())));
    if query.order == Order::Desc {
        matching.reverse();
    }
    matching
        .into_iter()
        .skip(query.offset)
        .take(query.limit)
        .map(|r| r.id.clone())
        .collect()
}

fn sorted_counts(mut counts: Vec<LevelServiceCount>) -> Vec<(String, String, u64)> {
    let mut out: Vec<(String, String, u64)> = counts
        .drain(..)
        .map(|c| (c.level.to_string(), c.service, c.count))
        .collect();
    out.sort();
    out
}

fn expected_counts(records: &[LogRecord], filter: &LogFilter) -> Vec<(String, String, u64)> {
    let mut totals: BTreeMap<(String, String), u64> = BTreeMap::new();
    for record in records.iter().filter(|r| filter.matches(r)) {
        *totals
            .entry((record.level.to_string(), record.service.clone()))
            .or_default() += 1;
    }
    totals.into_iter().map(|((l, s), n)| (l, s, n)).collect()
}

fn sorted_buckets(buckets: Vec<BucketCount>) -> Vec<(i64, String, u64)> {
    let mut out: Vec<(i64, String, u64)> = buckets
        .into_iter()
        .map(|b| (b.bucket_start, b.level.to_string(), b.count))
        .collect();
    out.sort();
    out
}

fn expected_buckets(records: &[LogRecord], query: &HistogramQuery) -> Vec<(i64, String, u64)> {
    let mut totals: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for record in records.iter().filter(|r| query.filter.matches(r)) {
        let bucket = record.timestamp - record.timestamp.rem_euclid(query.interval);
        *totals
            .entry((bucket, record.level.to_string()))
            .or_default() += 1;
    }
    totals.into_iter().map(|((b, l), n)| (b, l, n)).collect()
}

/// A grouped count as the contract compares it.
type GroupedRow = (
    i64,
    bool,
    Option<String>,
    Option<String>,
    Option<String>,
    u64,
);

/// Grouped counts as `store/grouped.rs` defines them, counted log by log:
/// `(bucket, other, level, service, attribute, count)`.
pub fn expected_grouped(records: &[LogRecord], query: &GroupedCountQuery) -> Vec<GroupedRow> {
    // Levels rank by severity (their code), as the stores order groups.
    type Group = (Option<u8>, Option<String>, Option<String>);
    let mut cells: BTreeMap<(i64, Group), u64> = BTreeMap::new();
    for record in records.iter().filter(|r| query.filter.matches(r)) {
        let bucket = match query.interval {
            Some(interval) => {
                query.origin + (record.timestamp - query.origin).div_euclid(interval) * interval
            }
            None => query.filter.from.unwrap_or(0),
        };
        let mut group: Group = (None, None, None);
        for dimension in &query.group_by {
            match dimension {
                Dimension::Level => group.0 = Some(record.level.code()),
                Dimension::Service => group.1 = Some(record.service.clone()),
                Dimension::Attribute(keys) => {
                    group.2 = keys.iter().find_map(|k| record.attributes.get(k).cloned())
                }
            }
        }
        *cells.entry((bucket, group)).or_default() += 1;
    }
    let mut totals: BTreeMap<Group, u64> = BTreeMap::new();
    for ((_, group), n) in &cells {
        *totals.entry(group.clone()).or_default() += n;
    }
    let mut ranked: Vec<(Group, u64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let kept: Vec<Group> = match query.limit_groups {
        Some(limit) if ranked.len() > limit => {
            ranked.into_iter().take(limit).map(|(g, _)| g).collect()
        }
        _ => ranked.into_iter().map(|(g, _)| g).collect(),
    };
    let mut out: BTreeMap<(i64, bool, Group), u64> = BTreeMap::new();
    for ((bucket, group), n) in cells {
        let key = if kept.contains(&group) {
            (bucket, false, group)
        } else {
            (bucket, true, (None, None, None))
        };
        *out.entry(key).or_default() += n;
    }
    let mut rows: Vec<_> = out
        .into_iter()
        .map(|((b, other, (l, s, a)), n)| {
            let level = l.and_then(Level::from_code).map(|l| l.to_string());
            (b, other, level, s, a, n)
        })
        .collect();
    rows.sort();
    rows
}

fn grouped_rows(rows: Vec<GroupedCount>) -> Vec<GroupedRow> {
    let mut out: Vec<_> = rows
        .into_iter()
        .map(|r| {
            (
                r.bucket_start,
                r.other,
                r.level.map(|l| l.to_string()),
                r.service,
                r.attribute,
                r.count,
            )
        })
        .collect();
    out.sort();
    out
}

/// Grouped counts over ranges aligned to the rollups and ragged ones,
/// buckets the rollups tile and ones they do not, every dimension.
async fn grouped_counts_contract(store: &dyn Store, records: &[LogRecord]) {
    let attribute =
        |keys: &[&str]| Dimension::Attribute(keys.iter().map(|k| k.to_string()).collect());
    let dimensions = [
        vec![],
        vec![Dimension::Level],
        vec![Dimension::Service, Dimension::Level],
        vec![attribute(&["region"])],
        vec![Dimension::Level, attribute(&["http.status", "region"])],
        vec![attribute(&["absent"]), Dimension::Service],
    ];
    let buckets: [(Option<i64>, i64); 6] = [
        (None, 0),
        (Some(MINUTE), 0),
        (Some(HOUR), 0),
        (Some(5 * MINUTE), 90 * SECOND),
        (Some(7 * SECOND), T0 + 1),
        (Some(90 * MINUTE), T0 + MINUTE + 1),
    ];
    let filters = [
        LogFilter::default(),
        LogFilter {
            levels: levels(&[Level::Error, Level::Info]),
            service: Some("a".into()),
            ..Default::default()
        },
        LogFilter {
            text: Some("%".into()),
            ..Default::default()
        },
        LogFilter {
            expr: language("region:* -http.status:abc"),
            ..Default::default()
        },
        LogFilter {
            expr: language("level:>=warn service:api*"),
            ..Default::default()
        },
    ];
    for (from, to) in [
        (T0, T0 + 3 * HOUR),
        (T0 + 1, T0 + 3 * HOUR - 1),
        (T0 - HOUR, T0 + 10 * HOUR),
    ] {
        for filter in &filters {
            for group_by in &dimensions {
                for (interval, origin) in buckets {
                    for limit_groups in [None, Some(2)] {
                        let query = GroupedCountQuery {
                            filter: LogFilter {
                                from: Some(from),
                                to: Some(to),
                                ..filter.clone()
                            },
                            interval,
                            origin,
                            group_by: group_by.clone(),
                            limit_groups,
                        };
                        let got = store.grouped_counts(&query).await.expect("grouped_counts");
                        assert_eq!(
                            grouped_rows(got),
                            expected_grouped(records, &query),
                            "{}: grouped counts for {query:?}",
                            store.kind()
                        );
                    }
                }
            }
        }
    }
}

/// Attribute keys of the matching logs, most frequent first, ties by key.
pub fn expected_keys(records: &[LogRecord], filter: &LogFilter) -> Vec<KeyCount> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for record in records.iter().filter(|r| filter.matches(r)) {
        for key in record.attributes.keys() {
            *counts.entry(key.clone()).or_default() += 1;
        }
    }
    let mut keys: Vec<KeyCount> = counts
        .into_iter()
        .map(|(key, count)| KeyCount { key, count })
        .collect();
    keys.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
    keys
}

/// Facets as the issue defines them, counted in memory.
pub fn expected_facets(records: &[LogRecord], query: &FacetQuery) -> Facets {
    let matching: Vec<&LogRecord> = records.iter().filter(|r| query.filter.matches(r)).collect();
    let fields = query.fields.clone().unwrap_or_else(|| {
        let mut fields = vec![FieldName::Level, FieldName::Text(TextField::Service)];
        fields.extend(
            expected_keys(records, &query.filter)
                .into_iter()
                .take(10)
                .map(|k| FieldName::Text(TextField::Attribute(k.key))),
        );
        fields
    });
    let fields = fields
        .into_iter()
        .map(|field| {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for record in &matching {
                let value = match &field {
                    FieldName::Level => Some(record.level.as_str().to_string()),
                    FieldName::Text(TextField::Service) => Some(record.service.clone()),
                    FieldName::Text(TextField::Attribute(key)) => {
                        record.attributes.get(key).cloned()
                    }
                    FieldName::Text(_) => None,
                };
                if let Some(value) = value {
                    *counts.entry(value).or_default() += 1;
                }
            }
            let having: u64 = counts.values().sum();
            let distinct = counts.len() as u64;
            let mut values: Vec<(String, u64)> = counts.into_iter().collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_bytes().cmp(b.0.as_bytes())));
            values.truncate(query.limit);
            let listed: u64 = values.iter().map(|(_, n)| n).sum();
            FieldFacet {
                field,
                values,
                other: having - listed,
                distinct,
            }
        })
        .collect();
    Facets {
        total: matching.len() as u64,
        approximate: false,
        fields,
    }
}

/// The contract. Every store must pass it unchanged.
pub async fn store_contract(store: Arc<dyn Store>) {
    let records = dataset();
    // Three inserts, the first of two batches at once.
    let (first, rest) = records.split_at(40);
    let (second, third) = rest.split_at(30);
    let batches: Vec<LogBatch> = vec![first[..25].into(), first[25..].into()];
    store.insert(&batches).await.expect("insert");
    store.insert(&[second.into()]).await.expect("insert");
    store.insert(&[third.into()]).await.expect("insert");
    store.insert(&[]).await.expect("an empty insert is fine");

    // Every record comes back whole: attributes, NUL and multi-byte text,
    // tenant, trace and span ids.
    let everything = store
        .logs(&LogQuery {
            filter: LogFilter {
                scope: every_tenant(),
                ..LogFilter::default()
            },
            limit: 1000,
            offset: 0,
            order: Order::Asc,
            after: None,
        })
        .await
        .expect("logs");
    let mut in_time_order: Vec<(usize, &LogRecord)> = records.iter().enumerate().collect();
    in_time_order.sort_by_key(|(i, r)| (r.timestamp, *i));
    assert_eq!(
        everything.len(),
        records.len(),
        "{}: every record stored",
        store.kind()
    );
    for (got, (_, wanted)) in everything.iter().zip(in_time_order) {
        assert_eq!(
            got,
            wanted,
            "{}: a record comes back unchanged",
            store.kind()
        );
    }

    // A redelivered batch: which of its ids are stored. Stored records mixed
    // with new ones (several lookups' worth: more ids than one statement may
    // hold, with timestamps inside and beyond the stored range), and nothing
    // for an empty batch.
    let unseen: Vec<LogRecord> = (0..6000)
        .map(|n| LogRecord {
            // As long as ingest's ids, so the lookups are as large.
            id: format!("01a209eb-e653-76eb-a88b-{n:012}"),
            timestamp: T0 + (n as i64 - 3000) * SECOND,
            ..records[n % records.len()].clone()
        })
        .collect();
    let redelivered: Vec<LogBatch> = vec![
        unseen[..3500].into(),
        records[..60].into(),
        unseen[3500..].into(),
        records[60..].into(),
    ];
    let existing = store
        .existing_ids(&redelivered)
        .await
        .expect("existing_ids");
    let stored: std::collections::HashSet<String> = records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(existing, stored, "{}: existing_ids", store.kind());
    assert!(
        store
            .existing_ids(&[Vec::<LogRecord>::new().into()])
            .await
            .expect("existing_ids")
            .is_empty()
    );

    for filter in scopes().into_iter().flat_map(|scope| {
        filters().into_iter().map(move |filter| LogFilter {
            scope: scope.clone(),
            ..filter
        })
    }) {
        for (order, limit, offset) in [
            (Order::Desc, 100, 0),
            (Order::Asc, 100, 0),
            (Order::Desc, 7, 3),
            (Order::Asc, 5, 11),
            (Order::Desc, 10, 1000),
        ] {
            let query = LogQuery {
                filter: filter.clone(),
                limit,
                offset,
                order,
                after: None,
            };
            assert_eq!(
                page_ids(store.as_ref(), &query).await,
                expected_logs(&records, &query),
                "{}: logs for {query:?}",
                store.kind()
            );
        }
        let counts = store
            .level_service_counts(&filter)
            .await
            .expect("level_service_counts");
        assert_eq!(
            sorted_counts(counts),
            expected_counts(&records, &filter),
            "{}: counts for {filter:?}",
            store.kind()
        );
    }

    // Keyset pages list every row once, in order, whatever the page size.
    for filter in [
        LogFilter::default(),
        LogFilter {
            expr: language("region:* OR level:error"),
            ..Default::default()
        },
        LogFilter {
            text: Some("quoted #".into()),
            ..Default::default()
        },
        LogFilter {
            scope: every_tenant(),
            ..Default::default()
        },
        LogFilter {
            expr: language("region:*"),
            scope: scopes()[2].clone(),
            ..Default::default()
        },
    ] {
        for order in [Order::Asc, Order::Desc] {
            for limit in [1, 7, 50] {
                let mut got = Vec::new();
                let mut after = None;
                loop {
                    let page = store
                        .logs(&LogQuery {
                            filter: filter.clone(),
                            limit,
                            offset: 0,
                            order,
                            after: after.clone(),
                        })
                        .await
                        .expect("logs");
                    got.extend(page.iter().map(|r| r.id.clone()));
                    if page.len() < limit {
                        break;
                    }
                    after = page.last().map(LogKey::of);
                }
                let everything = LogQuery {
                    filter: filter.clone(),
                    limit: 1000,
                    offset: 0,
                    order,
                    after: None,
                };
                assert_eq!(
                    got,
                    expected_logs(&records, &everything),
                    "{}: keyset pages of {limit}, {order:?}, {filter:?}",
                    store.kind()
                );
            }
        }
    }

    // Facets and attribute keys.
    let attribute = |key: &str| FieldName::Text(TextField::Attribute(key.into()));
    for filter in [
        LogFilter::default(),
        LogFilter {
            expr: language("level:>=warn"),
            ..Default::default()
        },
        LogFilter {
            expr: language("region:* -http.status:abc"),
            ..Default::default()
        },
        LogFilter {
            text: Some("e".into()),
            service: Some("a".into()),
            from: Some(T0 + MINUTE),
            to: Some(T0 + 2 * HOUR),
            ..Default::default()
        },
        LogFilter {
            expr: language("service:nobody"),
            ..Default::default()
        },
        LogFilter {
            scope: scopes()[1].clone(),
            ..Default::default()
        },
        LogFilter {
            expr: language("level:>=warn"),
            scope: scopes()[2].clone(),
            ..Default::default()
        },
        LogFilter {
            scope: every_tenant(),
            ..Default::default()
        },
        LogFilter {
            scope: scopes()[5].clone(),
            ..Default::default()
        },
    ] {
        for (fields, limit) in [
            (None, 3),
            (None, 100),
            (
                Some(vec![
                    FieldName::Level,
                    FieldName::Text(TextField::Service),
                    attribute("region"),
                    attribute("level"),
                    attribute("http.status"),
                    attribute("absent"),
                ]),
                2,
            ),
        ] {
            let query = FacetQuery {
                filter: filter.clone(),
                fields,
                limit,
            };
            assert_eq!(
                store.facets(&query).await.expect("facets"),
                expected_facets(&records, &query),
                "{}: facets for {query:?}",
                store.kind()
            );
        }
        assert_eq!(
            store.attribute_keys(&filter).await.expect("keys"),
            expected_keys(&records, &filter),
            "{}: attribute keys for {filter:?}",
            store.kind()
        );
    }

    // Histograms: ranges aligned to the rollup and ragged ones, intervals
    // that are whole minutes and ones that are not.
    let ranges = [
        (T0, T0 + 3 * HOUR),
        (T0 + MINUTE, T0 + 2 * HOUR + 15 * MINUTE),
        (T0 + 1, T0 + 3 * HOUR - 1),
        (T0 + 30 * SECOND, T0 + 90 * SECOND),
        (T0 + HOUR + 7 * SECOND, T0 + HOUR + 7 * SECOND + 1),
        (T0 - HOUR, T0 + 10 * HOUR),
    ];
    let intervals = [SECOND, 7 * SECOND, MINUTE, 5 * MINUTE, HOUR, 90 * MINUTE];
    for (from, to) in ranges {
        for interval in intervals {
            for filter in [
                LogFilter::default(),
                LogFilter {
                    levels: levels(&[Level::Error, Level::Info]),
                    service: Some("a".into()),
                    ..Default::default()
                },
                LogFilter {
                    text: Some("%".into()),
                    ..Default::default()
                },
                LogFilter {
                    scope: scopes()[2].clone(),
                    ..Default::default()
                },
                LogFilter {
                    levels: levels(&[Level::Error, Level::Info]),
                    scope: every_tenant(),
                    ..Default::default()
                },
            ] {
                let query = HistogramQuery {
                    filter: LogFilter {
                        from: Some(from),
                        to: Some(to),
                        ..filter
                    },
                    interval,
                };
                let got = store.bucket_counts(&query).await.expect("bucket_counts");
                assert_eq!(
                    sorted_buckets(got),
                    expected_buckets(&records, &query),
                    "{}: histogram for {query:?}",
                    store.kind()
                );
            }
        }
        let filter = LogFilter {
            from: Some(from),
            to: Some(to),
            ..Default::default()
        };
        let counts = store.level_service_counts(&filter).await.expect("counts");
        assert_eq!(
            sorted_counts(counts),
            expected_counts(&records, &filter),
            "{}: counts for {filter:?}",
            store.kind()
        );
    }

    grouped_counts_contract(store.as_ref(), &records).await;
    let records = rule_deletion_contract(store.as_ref(), records).await;

    // Retention: a log from days earlier (its own day, its own partition
    // where the store partitions by day) and the first hour go; the cutoff is
    // hour-aligned as the caller guarantees. A store may apply it in the
    // background, so the effect is awaited.
    let old = LogRecord {
        id: "id-old".into(),
        timestamp: T0 - 2 * 24 * HOUR,
        ..records[0].clone()
    };
    store.insert(&[vec![old].into()]).await.expect("insert");
    let cutoff = T0 + HOUR;
    let kept: Vec<LogRecord> = records
        .iter()
        .filter(|r| r.timestamp >= cutoff)
        .cloned()
        .collect();
    let deleted = store.delete_older_than(cutoff).await.expect("retention");
    assert_eq!(
        deleted as usize,
        records.len() + 1 - kept.len(),
        "{}",
        store.kind()
    );
    let everything = LogFilter {
        scope: every_tenant(),
        ..LogFilter::default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let counts = sorted_counts(
            store
                .level_service_counts(&everything)
                .await
                .expect("counts"),
        );
        let rows = store
            .logs(&LogQuery {
                filter: everything.clone(),
                limit: 1000,
                offset: 0,
                order: Order::Asc,
                after: None,
            })
            .await
            .expect("logs");
        if counts == expected_counts(&kept, &everything) && rows.len() == kept.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: retention left {} rows and counts {counts:?}",
            store.kind(),
            rows.len()
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }

    trace_lookups_contract(store.as_ref(), kept).await;
}

/// A retention rule's deletion (`Store::delete_matching`): one tenant's
/// logs a query names before a cutoff, scattered among the logs that stay,
/// leave the rows, the counts, the histogram and the facets alike (a store
/// may finish in the background, so the effect is awaited). Returns what
/// is left.
async fn rule_deletion_contract(store: &dyn Store, records: Vec<LogRecord>) -> Vec<LogRecord> {
    let rule = LogFilter {
        to: Some(T0 + 2 * HOUR),
        expr: language("level:>=warn -service:api"),
        scope: Scope::tenant(TENANTS[0].clone()).with_audit(true),
        ..LogFilter::default()
    };
    let kept: Vec<LogRecord> = records
        .iter()
        .filter(|r| !rule.matches(r))
        .cloned()
        .collect();
    assert!(
        kept.len() < records.len()
            && records
                .iter()
                .any(|r| r.level >= Level::Warn && r.tenant != TENANTS[0]),
        "the rule names some logs and leaves others alike"
    );
    let deleted = store.delete_matching(&rule).await.expect("delete_matching");
    assert_eq!(
        deleted as usize,
        records.len() - kept.len(),
        "{}: logs the rule deleted",
        store.kind()
    );
    let everything = LogFilter {
        scope: every_tenant(),
        ..LogFilter::default()
    };
    let histogram = HistogramQuery {
        filter: LogFilter {
            from: Some(T0 - DAY),
            to: Some(T0 + DAY),
            ..everything.clone()
        },
        interval: 15 * MINUTE,
    };
    let facets = FacetQuery {
        filter: everything.clone(),
        fields: None,
        limit: 10,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = page_ids(
            store,
            &LogQuery {
                filter: everything.clone(),
                limit: 1000,
                offset: 0,
                order: Order::Asc,
                after: None,
            },
        )
        .await;
        let counts = sorted_counts(
            store
                .level_service_counts(&everything)
                .await
                .expect("counts"),
        );
        let buckets = sorted_buckets(store.bucket_counts(&histogram).await.expect("histogram"));
        let got_facets = store.facets(&facets).await.expect("facets");
        let differences: Vec<&str> = [
            (rows.len() != kept.len(), "rows"),
            (counts != expected_counts(&kept, &everything), "counts"),
            (buckets != expected_buckets(&kept, &histogram), "histogram"),
            (got_facets != expected_facets(&kept, &facets), "facets"),
        ]
        .into_iter()
        .filter_map(|(differs, what)| differs.then_some(what))
        .collect();
        if differences.is_empty() {
            return kept;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: after a rule's deletion, {differences:?} differ from what is left",
            store.kind()
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

const DAY: i64 = 24 * HOUR;
/// 2025-01-02T00:00:00Z: the traced week starts here, after the dataset.
const WEEK_START: i64 = T0 + DAY;
const TRACES: usize = 120;

/// The trace id of trace `k` of [`traced_week`]: lowercase hex, as ingest
/// stores ids, unlike any id of [`dataset`].
fn trace_id(k: usize) -> String {
    format!("7ace{k:028x}")
}

/// A week of traced logs: [`TRACES`] traces starting all over the week, of
/// 1 to 12 logs each, every one crossing several of 16 services; spans of
/// three logs; a few traces lasting hours or days (so a trace crosses hour
/// and day partitions), tenants mixed, some trace ids reused by another
/// tenant, and an untraced log beside each trace's first.
fn traced_week() -> Vec<LogRecord> {
    let tenant = |name: &str| TenantId::parse(name).expect("a tenant id");
    let mut records = Vec::new();
    for k in 0..TRACES {
        let start = WEEK_START + (k as i64) * 7 * DAY / TRACES as i64 + (k as i64 % 7) * SECOND;
        let step = match k % 11 {
            0 => 20 * HOUR,
            5 => 13 * MINUTE,
            _ => 250_000 + k as i64,
        };
        let owner = match k % 5 {
            3 => tenant("team-a"),
            4 => tenant("team-b"),
            _ => TenantId::default(),
        };
        let length = 1 + (k * 7) % 12;
        for j in 0..length {
            let mut attributes = oglogstream::domain::Attributes::new();
            attributes.insert(
                "region".into(),
                ["eu-west-1", "us-east-1", "日本"][(k + j) % 3].into(),
            );
            if j % 2 == 0 {
                attributes.insert("http.status".into(), ["200", "503"][j / 2 % 2].into());
            }
            records.push(LogRecord {
                id: format!("tr-{k:03}-{j:02}"),
                timestamp: start + j as i64 * step,
                level: Level::ALL[(k + j) % 5],
                service: format!("svc-{:02}", (k * 3 + j * 5) % 16),
                message: format!("trace {k} step {j}"),
                attributes,
                tenant: owner.clone(),
                trace_id: Some(trace_id(k)),
                span_id: Some(format!("{:016x}", k * 100 + j / 3)),
            });
        }
        records.push(LogRecord {
            id: format!("un-{k:03}"),
            timestamp: start,
            level: Level::Info,
            service: format!("svc-{:02}", k % 16),
            message: format!("untraced beside trace {k}"),
            tenant: owner.clone(),
            ..LogRecord::default()
        });
        if k % 10 == 0 {
            // Another tenant's log with the same trace id: never in the
            // owner's lookups.
            records.push(LogRecord {
                id: format!("tr-{k:03}-other"),
                timestamp: start + MINUTE,
                level: Level::Error,
                service: "svc-other".into(),
                message: format!("another tenant's trace {k}"),
                tenant: tenant("team-b"),
                trace_id: Some(trace_id(k)),
                span_id: Some("00000000000000ff".into()),
                ..LogRecord::default()
            });
        }
    }
    records
}

/// Trace lookups (issue 25) on both stores: a trace's logs whatever the
/// range, the language's other terms and the seed's filters ANDed with it,
/// pages, cursors, counts and facets, each compared with `LogFilter::matches`
/// over what is stored; then retention and a tenant's retention clear the
/// traces' logs too. `kept` is what the contract left stored.
async fn trace_lookups_contract(store: &dyn Store, kept: Vec<LogRecord>) {
    let traced = traced_week();
    let (first, rest) = traced.split_at(traced.len() / 3);
    store
        .insert(&[first.into(), rest[..100].into()])
        .await
        .expect("insert");
    store.insert(&[rest[100..].into()]).await.expect("insert");
    let mut stored = kept;
    stored.extend(traced.iter().cloned());

    let sampled: Vec<usize> = (0..TRACES).step_by(4).chain([7, 11, 22]).collect();
    for &k in &sampled {
        let first_log = traced
            .iter()
            .find(|r| r.id == format!("tr-{k:03}-00"))
            .expect("the trace's first log");
        let id = trace_id(k);
        let lookup = |text: String, from: Option<i64>, to: Option<i64>| LogFilter {
            expr: language(&text),
            from,
            to,
            ..LogFilter::default()
        };
        let around = (
            Some(first_log.timestamp - 30 * MINUTE),
            Some(first_log.timestamp + 30 * MINUTE),
        );
        let filters = [
            lookup(format!("trace_id:{id}"), None, None),
            lookup(format!("trace_id:{id}"), around.0, around.1),
            lookup(format!("trace_id:{id}"), Some(T0 - 7 * DAY), Some(T0)),
            lookup(
                format!("trace_id:{} level:>=warn", id.to_uppercase()),
                None,
                None,
            ),
            lookup(format!("-region:eu-west-1 trace_id:{id}"), None, None),
            lookup(format!("trace_id:{id} http.status:>=500"), None, None),
            LogFilter {
                service: Some("svc-0".into()),
                levels: levels(&[Level::Debug, Level::Info, Level::Error]),
                ..lookup(format!("trace_id:{id}"), None, None)
            },
        ];
        for scope in [Scope::default(), scopes()[2].clone(), every_tenant()] {
            for filter in &filters {
                let filter = LogFilter {
                    scope: scope.clone(),
                    ..filter.clone()
                };
                for (order, limit, offset) in [(Order::Desc, 100, 0), (Order::Asc, 3, 1)] {
                    let query = LogQuery {
                        filter: filter.clone(),
                        limit,
                        offset,
                        order,
                        after: None,
                    };
                    assert_eq!(
                        page_ids(store, &query).await,
                        expected_logs(&stored, &query),
                        "{}: trace lookup {query:?}",
                        store.kind()
                    );
                }
            }
            let whole = LogFilter {
                scope: scope.clone(),
                ..filters[0].clone()
            };
            let counts = store.level_service_counts(&whole).await.expect("counts");
            assert_eq!(
                sorted_counts(counts),
                expected_counts(&stored, &whole),
                "{}: a trace's counts {whole:?}",
                store.kind()
            );
            let query = FacetQuery {
                filter: whole,
                fields: None,
                limit: 5,
            };
            assert_eq!(
                store.facets(&query).await.expect("facets"),
                expected_facets(&stored, &query),
                "{}: a trace's facets {query:?}",
                store.kind()
            );
        }
    }
    // A trace over three days, by keyset pages of two.
    let long = LogFilter {
        expr: language(&format!("trace_id:{}", trace_id(11))),
        ..LogFilter::default()
    };
    for order in [Order::Asc, Order::Desc] {
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .logs(&LogQuery {
                    filter: long.clone(),
                    limit: 2,
                    offset: 0,
                    order,
                    after: after.clone(),
                })
                .await
                .expect("logs");
            got.extend(page.iter().map(|r| r.id.clone()));
            if page.len() < 2 {
                break;
            }
            after = page.last().map(LogKey::of);
        }
        let everything = LogQuery {
            filter: long.clone(),
            limit: 1000,
            offset: 0,
            order,
            after: None,
        };
        let expected = expected_logs(&stored, &everything);
        assert!(expected.len() > 3, "{expected:?}");
        assert_eq!(got, expected, "{}: keyset pages of a trace", store.kind());
    }

    // Retention clears the traces' logs, and so does a tenant's.
    let cutoff = WEEK_START + 3 * DAY;
    let deleted = store.delete_older_than(cutoff).await.expect("retention");
    assert_eq!(
        deleted as usize,
        stored.iter().filter(|r| r.timestamp < cutoff).count(),
        "{}",
        store.kind()
    );
    stored.retain(|r| r.timestamp >= cutoff);
    traces_converge(store, &stored, &sampled, "retention").await;
    let team_a = TenantId::parse("team-a").expect("a tenant id");
    let tenant_cutoff = WEEK_START + 5 * DAY;
    store
        .delete_tenant_older_than(&team_a, tenant_cutoff)
        .await
        .expect("a tenant's retention");
    stored.retain(|r| r.tenant != team_a || r.timestamp >= tenant_cutoff);
    traces_converge(store, &stored, &sampled, "a tenant's retention").await;
}

/// Waits (a store may delete in the background) until every sampled
/// trace's lookup answers what `stored` says.
async fn traces_converge(store: &dyn Store, stored: &[LogRecord], sampled: &[usize], what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut differences = Vec::new();
        for &k in sampled {
            let query = LogQuery {
                filter: LogFilter {
                    expr: language(&format!("trace_id:{}", trace_id(k))),
                    scope: every_tenant(),
                    ..LogFilter::default()
                },
                limit: 1000,
                offset: 0,
                order: Order::Asc,
                after: None,
            };
            let (got, expected) = (page_ids(store, &query).await, expected_logs(stored, &query));
            if got != expected {
                differences.push(format!("trace {k}: {got:?} instead of {expected:?}"));
            }
        }
        if differences.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: after {what}, {}",
            store.kind(),
            differences.join("; ")
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn sqlite_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    store_contract(Arc::clone(&store)).await;
    store.close().await;
}

#[actix_web::test]
async fn clickhouse_store_meets_the_contract() {
    let clickhouse = ClickHouse::start().await;
    // Windows of a few logs each, so every page below steps through several.
    let options = Options {
        stepping: Stepping {
            first_rows: 4,
            filtered_first_rows: 4,
            growth: 2,
            max_growth: 4,
            first_width: None,
        },
        ..Options::default()
    };
    let store: Arc<dyn Store> =
        Arc::new(ClickHouseStore::open_with(&clickhouse.dsn("contract"), options).unwrap());
    ready(store.as_ref()).await;
    store_contract(Arc::clone(&store)).await;
    store.close().await;
}
