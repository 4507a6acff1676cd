//! Modern ClickHouse, checked: the schema and queries the store writes for a
//! current server (what compose.yaml deploys) are executed by the current
//! engine, in-process through chdb (PyPI `chdb-core`, pinned in
//! tests/requirements.txt), on the contract's data; every answer must equal
//! the 18.16 server's through the store. On a larger table, `EXPLAIN
//! indexes = 1` must show the message's n-gram skip index leaving a small
//! fraction of granules for a word in no log.

use super::contract::{dataset, filters, page_ids, ready};
use super::deps::ClickHouse;
use oglogstream::domain::LogRecord;
use oglogstream::domain::log::attributes_to_json;
use oglogstream::domain::query::{FieldName, TextField};
use oglogstream::store::clickhouse::{ClickHouseStore, check};
use oglogstream::store::facets::FacetQuery;
use oglogstream::store::{
    Dimension, GroupedCountQuery, HistogramQuery, LogFilter, LogKey, LogQuery, Order, Store,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

const MODERN: &str = "24.8";
const DATABASE: &str = "modern";
/// The larger table lives apart, so the compared answers see only the
/// contract's data.
const BIG: &str = "modern_big";
const MINUTE: i64 = 60_000_000;
/// Attributes whose facet values are compared.
const FACET_KEYS: [&str; 3] = ["region", "http.status", "k'ey"];
const HOUR: i64 = 60 * MINUTE;
/// 2025-01-01T00:00:00Z, where the contract's data starts.
const T0: i64 = 1_735_689_600_000_000;

fn hex(text: &str) -> String {
    let digits: String = text.bytes().map(|b| format!("{b:02X}")).collect();
    format!("unhex('{digits}')")
}

/// The rows as the store writes them: attributes as JSON and as the
/// sorted key and value arrays the query language and facets read; the
/// tenant, trace and span ids (`''` for none).
fn insert(records: &[LogRecord]) -> String {
    let list = |items: Vec<String>| format!("[{}]", items.join(", "));
    let rows: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                r.timestamp,
                hex(&r.id),
                r.level.code(),
                hex(&r.service),
                hex(&r.message),
                hex(&attributes_to_json(&r.attributes).unwrap_or_default()),
                hex(r.tenant.as_str()),
                hex(r.trace_id.as_deref().unwrap_or_default()),
                hex(r.span_id.as_deref().unwrap_or_default()),
                list(r.attributes.keys().map(|k| hex(k)).collect()),
                list(r.attributes.values().map(|v| hex(v)).collect()),
            )
        })
        .collect();
    format!(
        "INSERT INTO {DATABASE}.logs \
         (ts_us, id, level, service, message, attributes, tenant, trace_id, span_id, \
         attr_keys, attr_values) VALUES {}",
        rows.join(", ")
    )
}

/// A table of 240,000 logs in 30 granules, one of them holding "zanzibar",
/// for the skip index to prove itself on.
fn larger_table() -> Vec<String> {
    let mut statements = check::schema(MODERN, BIG).expect("a version");
    statements.extend([
        format!(
            "INSERT INTO {BIG}.logs (ts_us, id, level, service, message, attributes) \
             SELECT toInt64({T0} + 86400000000 + number * 1000000), concat('big-', toString(number)), \
             toUInt8(number % 5), 'svc', concat('GET /api/v1/orders ', toString(number % 977), \
             if(number = 123457, ' ZanziBar', ''), ' took ', toString(number % 91), 'ms'), '' \
             FROM numbers(240000)"
        ),
        format!("OPTIMIZE TABLE {BIG}.logs FINAL"),
    ]);
    statements
}

fn python() -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-venv/bin/python");
    assert!(
        std::path::Path::new(venv).is_file(),
        "{venv} is missing: scripts/install-test-deps.sh (make test) creates it with tests/requirements.txt"
    );
    venv.to_string()
}

/// Skip-index granules `(kept, total)` from an `EXPLAIN indexes = 1`.
fn skip_index_granules(explain: &str) -> Option<(u64, u64)> {
    let at = explain.find("Name: message_ngrams")?;
    let line = explain[at..]
        .lines()
        .find(|line| line.trim_start().starts_with("Granules:"))?;
    let (kept, total) = line
        .trim()
        .trim_start_matches("Granules:")
        .trim()
        .split_once('/')?;
    Some((kept.trim().parse().ok()?, total.trim().parse().ok()?))
}

fn cells(rows: &Value) -> Vec<Vec<String>> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|cell| cell.as_str().expect("cells are strings").to_string())
                .collect()
        })
        .collect()
}

/// `(bucket, level code, service, count)` rows, summed and sorted the way
/// the store sums them.
fn count_rows(rows: Vec<Vec<String>>) -> Vec<(i64, u8, String, u64)> {
    let mut totals: BTreeMap<(i64, u8, String), u64> = BTreeMap::new();
    for row in rows {
        let count: u64 = row[3].parse().unwrap();
        if count > 0 {
            *totals
                .entry((
                    row[0].parse().unwrap(),
                    row[1].parse().unwrap(),
                    row[2].clone(),
                ))
                .or_default() += count;
        }
    }
    totals
        .into_iter()
        .map(|((b, l, s), n)| (b, l, s, n))
        .collect()
}

#[actix_web::test]
async fn modern_clickhouse_answers_like_18_16() {
    let records = dataset();
    let clickhouse = ClickHouse::start().await;
    let store: Arc<dyn Store> = Arc::new(ClickHouseStore::open(&clickhouse.dsn("old")).unwrap());
    ready(store.as_ref()).await;
    store.insert(&[records.as_slice().into()]).await.unwrap();

    let mut setup = check::schema(MODERN, DATABASE).expect("a version");
    assert!(
        setup.iter().any(|s| s.contains("TYPE ngrambf_v1")),
        "{setup:?}"
    );
    setup.push(insert(&records[..60]));
    setup.push(insert(&records[60..]));

    // Each query: its SQL for the modern engine, and 18.16's answer through
    // the store in the same row shape.
    let mut queries = BTreeMap::new();
    let mut expected: BTreeMap<String, Value> = BTreeMap::new();
    for (n, filter) in filters().into_iter().enumerate() {
        for (order, limit, offset) in [(Order::Desc, 100, 0), (Order::Asc, 5, 11)] {
            let query = LogQuery {
                filter: filter.clone(),
                limit,
                offset,
                order,
                after: None,
            };
            let name = format!("page {n} {order:?} {limit} {offset}");
            queries.insert(name.clone(), check::page(MODERN, DATABASE, &query).unwrap());
            expected.insert(name, json!(page_ids(store.as_ref(), &query).await));
        }
        // A cursor page: past the third log of the newest page.
        let newest = store
            .logs(&LogQuery {
                filter: filter.clone(),
                limit: 3,
                offset: 0,
                order: Order::Desc,
                after: None,
            })
            .await
            .unwrap();
        if let Some(third) = newest.get(2) {
            let query = LogQuery {
                filter: filter.clone(),
                limit: 5,
                offset: 0,
                order: Order::Desc,
                after: Some(LogKey::of(third)),
            };
            let name = format!("page {n} after");
            queries.insert(name.clone(), check::page(MODERN, DATABASE, &query).unwrap());
            expected.insert(name, json!(page_ids(store.as_ref(), &query).await));
        }
        // The query language's attribute reads: keys, and the facet values
        // of a few keys (attribute arrays, ARRAY JOIN).
        let name = format!("keys {n}");
        queries.insert(
            name.clone(),
            check::attribute_keys(MODERN, DATABASE, &filter).unwrap(),
        );
        let keys: Vec<(String, u64)> = store
            .attribute_keys(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|k| (k.key, k.count))
            .collect();
        expected.insert(name, json!(keys));
        let name = format!("values {n}");
        queries.insert(
            name.clone(),
            check::attribute_values(MODERN, DATABASE, &filter, &FACET_KEYS, 3).unwrap(),
        );
        let facets = store
            .facets(&FacetQuery {
                filter: filter.clone(),
                fields: Some(
                    FACET_KEYS
                        .iter()
                        .map(|k| FieldName::Text(TextField::Attribute(k.to_string())))
                        .collect(),
                ),
                limit: 3,
            })
            .await
            .unwrap();
        let mut values: Vec<(String, String, u64)> = Vec::new();
        for facet in facets.fields {
            if let FieldName::Text(TextField::Attribute(key)) = &facet.field {
                values.extend(facet.values.into_iter().map(|(v, c)| (key.clone(), v, c)));
            }
        }
        values.sort();
        expected.insert(name, json!(values));
        let name = format!("counts {n}");
        queries.insert(
            name.clone(),
            check::counts(MODERN, DATABASE, &filter, None).unwrap(),
        );
        let mut counts: Vec<(i64, u8, String, u64)> = store
            .level_service_counts(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (0, c.level.code(), c.service, c.count))
            .collect();
        counts.sort();
        expected.insert(name, json!(counts));
    }
    for (from, to) in [
        (T0, T0 + 3 * HOUR),
        (T0 + 1, T0 + 3 * HOUR - 1),
        (T0 + 30_000_000, T0 + 2 * HOUR + 90_000_000),
    ] {
        for interval in [7_000_000, MINUTE, HOUR] {
            let query = HistogramQuery {
                filter: LogFilter {
                    from: Some(from),
                    to: Some(to),
                    ..LogFilter::default()
                },
                interval,
            };
            let name = format!("histogram {from} {to} {interval}");
            queries.insert(
                name.clone(),
                check::counts(MODERN, DATABASE, &query.filter, Some(interval)).unwrap(),
            );
            let mut buckets: Vec<(i64, u8, String, u64)> = store
                .bucket_counts(&query)
                .await
                .unwrap()
                .into_iter()
                .map(|b| (b.bucket_start, b.level.code(), String::new(), b.count))
                .collect();
            buckets.sort();
            expected.insert(name, json!(buckets));
        }
    }
    // Grouped counts: the rollups where they tile the buckets, `GROUP BY`
    // the bucket and an attribute read from the arrays elsewhere.
    let attribute =
        |keys: &[&str]| Dimension::Attribute(keys.iter().map(|k| k.to_string()).collect());
    for (n, (interval, origin, group_by)) in [
        (Some(HOUR), 0, vec![Dimension::Level, Dimension::Service]),
        (Some(7_000_000), T0 + 1, vec![Dimension::Level]),
        (None, 0, vec![attribute(&["region"])]),
        (
            Some(MINUTE),
            0,
            vec![Dimension::Service, attribute(&["http.status", "region"])],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let query = GroupedCountQuery {
            filter: LogFilter {
                from: Some(T0 + 1),
                to: Some(T0 + 3 * HOUR),
                ..LogFilter::default()
            },
            interval,
            origin,
            group_by,
            limit_groups: None,
        };
        let name = format!("grouped {n}");
        queries.insert(
            name.clone(),
            check::grouped_counts(MODERN, DATABASE, &query).unwrap(),
        );
        let mut rows: Vec<(i64, u8, String, String, u8, u64)> = store
            .grouped_counts(&query)
            .await
            .unwrap()
            .into_iter()
            .map(|row| {
                (
                    row.bucket_start,
                    row.level.map_or(0, |level| level.code()),
                    row.service.unwrap_or_default(),
                    row.attribute.clone().unwrap_or_default(),
                    u8::from(row.attribute.is_some()),
                    row.count,
                )
            })
            .collect();
        rows.sort();
        expected.insert(name, json!(rows));
    }
    store.close().await;

    // After the comparison data: a larger table for the skip index.
    setup.extend(larger_table());
    let absent = LogFilter {
        from: Some(T0 + 86_400_000_000),
        text: Some("zanzibar".into()),
        ..LogFilter::default()
    };
    let absent_page = LogQuery {
        filter: absent.clone(),
        limit: 100,
        offset: 0,
        order: Order::Desc,
        after: None,
    };
    let page_sql = check::page(MODERN, BIG, &absent_page).unwrap();
    queries.insert("big zanzibar".into(), page_sql.clone());
    let count_sql = check::counts(MODERN, BIG, &absent, None).unwrap();
    let spec = json!({
        "setup": setup,
        "queries": queries,
        // A page's own scan sits in a set built before the plan EXPLAIN
        // shows; the count scans the same way and shows it.
        "explain": {"counts": count_sql},
    });
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/chdb_check.py");
    let output = Command::new(python())
        .arg(script)
        .arg(&spec_path)
        .output()
        .expect("run chdb");
    assert!(
        output.status.success(),
        "chdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).expect("json from chdb");
    let version = answer["version"].as_str().unwrap_or_default();
    assert!(
        version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            >= Some(24),
        "chdb runs a current engine, not {version}"
    );

    for (name, wanted) in &expected {
        let rows = cells(&answer["results"][name]);
        let got = if name.starts_with("page") {
            json!(rows.iter().map(|row| row[1].clone()).collect::<Vec<_>>())
        } else if name.starts_with("keys") {
            let mut keys: Vec<(String, u64)> = rows
                .into_iter()
                .map(|row| (row[0].clone(), row[1].parse().unwrap()))
                .collect();
            // The store's order: most logs first, then by key.
            keys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            json!(keys)
        } else if name.starts_with("grouped") {
            let mut totals: BTreeMap<(i64, u8, String, String, u8), u64> = BTreeMap::new();
            for row in rows {
                let count: u64 = row[5].parse().unwrap();
                if count > 0 {
                    *totals
                        .entry((
                            row[0].parse().unwrap(),
                            row[1].parse().unwrap(),
                            row[2].clone(),
                            row[3].clone(),
                            row[4].parse().unwrap(),
                        ))
                        .or_default() += count;
                }
            }
            json!(
                totals
                    .into_iter()
                    .map(|((b, l, s, a, p), n)| (b, l, s, a, p, n))
                    .collect::<Vec<_>>()
            )
        } else if name.starts_with("values") {
            let mut values: Vec<(String, String, u64)> = rows
                .into_iter()
                .map(|row| (row[0].clone(), row[1].clone(), row[2].parse().unwrap()))
                .collect();
            values.sort();
            json!(values)
        } else {
            json!(count_rows(rows))
        };
        assert_eq!(&got, wanted, "{name}: chdb {version} against 18.16");
    }
    let found = cells(&answer["results"]["big zanzibar"]);
    assert_eq!(found.len(), 1, "the one log with the word, in any case");
    assert_eq!(found[0][1], "big-123457");

    for (name, explain) in answer["explain"].as_object().unwrap() {
        let explain = explain.as_str().unwrap();
        let (kept, total) = skip_index_granules(explain)
            .unwrap_or_else(|| panic!("{name}: no skip index in the plan:\n{explain}"));
        assert!(
            total >= 29 && kept * 10 <= total,
            "{name}: the skip index kept {kept} of {total} granules:\n{explain}"
        );
    }
}
