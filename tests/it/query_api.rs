//! The ingest -> query round trip through every filter, and stats, histogram
//! and services totals against what was sent.

use crate::support::{Server, log};
use awc::http::StatusCode;
use serde_json::{Value, json};

/// A small fixed data set spread over two hours of 2025-01-01.
async fn seeded() -> Server {
    let server = Server::start().await;
    let logs = json!([
        {"level": "info",  "service": "Payment-API", "message": "charge ok",                 "timestamp": "2025-01-01T10:00:00Z"},
        {"level": "error", "service": "payment-api", "message": "Charge TIMEOUT after 3s",   "timestamp": "2025-01-01T10:00:30.250Z"},
        {"level": "warn",  "service": "auth",        "message": "slow token check",          "timestamp": "2025-01-01T10:30:00Z"},
        {"level": "debug", "service": "auth",        "message": "token cache hit",           "timestamp": "2025-01-01T11:00:00Z"},
        {"level": "fatal", "service": "ledger",      "message": "disk full: 100% used_now",  "timestamp": "2025-01-01T11:59:59.999999Z"},
        {"level": "error", "service": "ledger",      "message": "écriture échouée: ÉCHEC",   "timestamp": "2025-01-01T12:00:00Z"}
    ]);
    let (status, answer) = server
        .post("/log/bulk", Some("application/json"), logs.to_string())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    server.wait_stored(6).await;
    server
}

async fn messages(server: &Server, query: &str) -> Vec<String> {
    let (status, rows) = server.get(&format!("/api/logs?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {rows}");
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| row["message"].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn every_filter_narrows_the_logs() {
    let server = seeded().await;
    assert_eq!(messages(&server, "").await.len(), 6);
    assert_eq!(
        messages(&server, "level=error").await,
        ["écriture échouée: ÉCHEC", "Charge TIMEOUT after 3s"]
    );
    assert_eq!(
        messages(&server, "level=FATAL,debug").await,
        ["disk full: 100% used_now", "token cache hit"]
    );
    assert_eq!(
        messages(&server, "service=PAYMENT").await.len(),
        2,
        "service: case-insensitive substring"
    );
    assert_eq!(messages(&server, "service=ment-a").await.len(), 2);
    assert_eq!(
        messages(&server, "q=timeout").await,
        ["Charge TIMEOUT after 3s"]
    );
    assert_eq!(
        messages(&server, "q=%C3%A9CHEC").await,
        ["écriture échouée: ÉCHEC"],
        "q: case-insensitive beyond ASCII"
    );
    assert_eq!(
        messages(&server, "q=100%25%20used_").await,
        ["disk full: 100% used_now"],
        "% and _ are literal"
    );
    assert_eq!(
        messages(
            &server,
            "from=2025-01-01T10:00:30.250Z&to=2025-01-01T11:00:00Z"
        )
        .await,
        ["slow token check", "Charge TIMEOUT after 3s"],
        "from inclusive, to exclusive"
    );
    assert_eq!(
        messages(&server, "from=1735725600000&to=1735725630251")
            .await
            .len(),
        2,
        "epoch milliseconds"
    );
    assert_eq!(
        messages(&server, "level=error&service=ledger&q=%C3%89CHEC")
            .await
            .len(),
        1,
        "filters combine"
    );
    assert!(messages(&server, "service=nobody").await.is_empty());
}

#[actix_web::test]
async fn paging_and_order() {
    let server = seeded().await;
    let newest_first = messages(&server, "").await;
    assert_eq!(newest_first[0], "écriture échouée: ÉCHEC");
    let oldest_first = messages(&server, "order=asc").await;
    assert_eq!(
        oldest_first.iter().rev().cloned().collect::<Vec<_>>(),
        newest_first
    );
    assert_eq!(messages(&server, "limit=2").await, newest_first[..2]);
    assert_eq!(
        messages(&server, "limit=2&offset=2").await,
        newest_first[2..4]
    );
    assert!(messages(&server, "offset=6").await.is_empty());
}

#[actix_web::test]
async fn bad_query_parameters_are_400_naming_them() {
    let server = Server::start().await;
    for (query, name) in [
        ("limit=5000", "limit"),
        ("limit=abc", "limit"),
        ("level=loud", "level"),
        ("from=tomorrow", "from"),
        ("order=sideways", "order"),
        ("colour=red", "colour"),
    ] {
        let (status, answer) = server.get(&format!("/api/logs?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(answer["field"], name, "{query}: {answer}");
    }
    let (status, answer) = server.get("/api/histogram?interval=fortnight").await;
    assert_eq!(
        (status, answer["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("interval"))
    );
    let (status, answer) = server.get("/api/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(answer["error"].as_str().is_some());
}

#[actix_web::test]
async fn stats_count_what_was_sent_and_honour_filters() {
    let server = seeded().await;
    let (_, stats) = server.get("/api/stats").await;
    assert_eq!(stats["total_logs"], 6);
    assert_eq!(
        stats["logs_by_level"],
        json!({"debug": 1, "info": 1, "warn": 1, "error": 2, "fatal": 1})
    );
    assert_eq!(
        stats["logs_by_service"],
        json!({"Payment-API": 1, "payment-api": 1, "auth": 2, "ledger": 2})
    );
    let (_, stats) = server.get("/api/stats?level=error").await;
    assert_eq!(stats["total_logs"], 2);
    assert_eq!(
        stats["logs_by_level"]["info"], 0,
        "every level present, zero included"
    );
    let (_, stats) = server.get("/api/stats?service=auth&q=token").await;
    assert_eq!(stats["total_logs"], 2);
    // A ragged range: rollups inside, raw rows at the edges.
    let (_, stats) = server
        .get("/api/stats?from=2025-01-01T10:00:30.250Z&to=2025-01-01T12:00:00Z")
        .await;
    assert_eq!(stats["total_logs"], 4);
}

#[actix_web::test]
async fn histogram_buckets_add_up_to_what_was_sent() {
    let server = seeded().await;
    let (status, histogram) = server
        .get("/api/histogram?from=2025-01-01T10:00:00Z&to=2025-01-01T12:00:01Z&interval=1h")
        .await;
    assert_eq!(status, StatusCode::OK, "{histogram}");
    assert_eq!(histogram["interval"], "1h");
    assert_eq!(histogram["interval_ms"], 3_600_000);
    let buckets = histogram["buckets"].as_array().unwrap();
    assert_eq!(
        buckets.len(),
        3,
        "10:00, 11:00, 12:00 (zero-filled, ascending)"
    );
    assert_eq!(buckets[0]["start"], "2025-01-01T10:00:00.000000Z");
    let totals: Vec<u64> = buckets
        .iter()
        .map(|b| b["total"].as_u64().unwrap())
        .collect();
    assert_eq!(totals, [3, 2, 1]);
    assert_eq!(buckets[0]["error"], 1);
    assert_eq!(buckets[1]["fatal"], 1);

    let (_, fine) = server
        .get("/api/histogram?from=2025-01-01T09:59:00Z&to=2025-01-01T12:01:00Z&level=error,fatal")
        .await;
    let total: u64 = fine["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["total"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3, "automatic interval, filtered");
    assert!(fine["buckets"].as_array().unwrap().len() <= 130);
}

#[actix_web::test]
async fn services_are_listed_with_counts() {
    let server = seeded().await;
    let (status, services) = server.get("/api/services").await;
    assert_eq!(status, StatusCode::OK);
    let services = services.as_array().unwrap();
    assert_eq!(services.len(), 4);
    assert!(
        services[0]["count"].as_u64() >= services[3]["count"].as_u64(),
        "most first"
    );
    let auth: Vec<&Value> = services.iter().filter(|s| s["service"] == "auth").collect();
    assert_eq!(auth[0]["count"], 2);
}

#[actix_web::test]
async fn html_and_hostile_text_round_trip_literally() {
    let server = Server::start().await;
    let nasty = "<script>alert(1)</script> ' \" \\ %_ \u{0} 日本語 '; DROP TABLE logs; --";
    server.accept(&log("error", "web'\"\\", nasty)).await;
    server.wait_stored(1).await;
    let (_, rows) = server.get("/api/logs?q=drop%20table&service=web%27").await;
    assert_eq!(rows[0]["message"], nasty);
    assert_eq!(rows[0]["service"], "web'\"\\");
    let (_, stats) = server.get("/api/stats").await;
    assert_eq!(stats["total_logs"], 1, "store intact");
}

#[actix_web::test]
async fn concurrent_clients_all_land() {
    let server = std::rc::Rc::new(seeded().await);
    let mut tasks = Vec::new();
    for client in 0..8 {
        let server = std::rc::Rc::clone(&server);
        tasks.push(actix_web::rt::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..100 {
                ids.push(
                    server
                        .accept(&log("info", &format!("client-{client}"), &format!("n{i}")))
                        .await,
                );
            }
            ids
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    assert_eq!(ids.len(), 800, "ids are unique");
    server.wait_stored(806).await;
    let (_, stats) = server.get("/api/stats?service=client-").await;
    assert_eq!(stats["total_logs"], 800);
}

/// `/api/histogram?by=`: the buckets split by a field, the ten values with
/// the most logs apart, the rest as `other`, logs without it `missing`.
#[actix_web::test]
async fn the_histogram_splits_by_any_field() {
    let server = Server::start().await;
    // Region r0 has 13 logs, r1 12, …, r12 1; every fifth log has none.
    let mut logs = Vec::new();
    for region in 0..13 {
        for n in 0..(13 - region) {
            logs.push(json!({
                "level": (["info", "error"][n % 2]),
                "service": format!("svc-{}", region % 3),
                "message": "split me",
                "timestamp": format!("2025-01-01T10:{:02}:00Z", (region * 4 + n) % 60),
                "attributes": {"region": format!("r{region}")},
            }));
        }
    }
    for n in 0..5 {
        logs.push(json!({"level": "warn", "service": "svc-0", "message": "no region", "timestamp": format!("2025-01-01T11:{n:02}:00Z")}));
    }
    let total = logs.len() as u64;
    let (status, answer) = server
        .post(
            "/log/bulk",
            Some("application/json"),
            Value::Array(logs).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    server.wait_stored(total).await;
    let range = "from=2025-01-01T10:00:00Z&to=2025-01-01T12:00:00Z&interval=1h";
    let (status, split) = server
        .get(&format!("/api/histogram?{range}&by=region"))
        .await;
    assert_eq!(status, StatusCode::OK, "{split}");
    assert_eq!(split["by"], "region");
    let values: Vec<&str> = split["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        values,
        ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"]
    );
    let buckets = split["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 2);
    let sum = |key: &str| -> u64 { buckets.iter().map(|b| b[key].as_u64().unwrap()).sum() };
    assert_eq!(sum("total"), total);
    assert_eq!(sum("other"), 3 + 2 + 1, "r10, r11 and r12");
    assert_eq!(sum("missing"), 5);
    assert_eq!(buckets[0]["counts"]["r0"], 13);
    assert_eq!(buckets[1]["missing"], 5, "{split}");
    let (_, levels) = server
        .get(&format!("/api/histogram?{range}&by=level"))
        .await;
    assert_eq!(
        levels["values"],
        json!(["info", "error", "warn"]),
        "{levels}"
    );
    let (_, services) = server
        .get(&format!("/api/histogram?{range}&by=service"))
        .await;
    assert_eq!(
        services["buckets"][0]["counts"]["svc-0"],
        13 + 10 + 7 + 4 + 1
    );
    let (status, refused) = server
        .get(&format!("/api/histogram?{range}&by=message"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["field"], "by");
}

/// Ids out of the way (issue 25): a field whose values nearly all differ is
/// left out of the default facets and listed in `id_like`; named in
/// `fields=`, it is answered as a facet.
#[actix_web::test]
async fn id_like_fields_are_listed_apart_from_the_default_facets() {
    const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-south-1"];
    let server = Server::start().await;
    let logs: String = (0..300)
        .map(|n| {
            let mut attributes = json!({
                "request_id": format!("req-{n:05}"),
                "region": REGIONS[n % 3],
            });
            // Unique too, but on only ten logs: too few to call it an id.
            if n < 10 {
                attributes["session"] = json!(format!("s-{n}"));
            }
            json!({"level": "info", "service": "checkout", "message": format!("request {n}"), "attributes": attributes})
                .to_string()
                + "\n"
        })
        .collect();
    let (status, answer) = server
        .post("/log/bulk", Some("application/x-ndjson"), logs)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    server.wait_stored(300).await;

    let (status, facets) = server.get("/api/facets").await;
    assert_eq!(status, StatusCode::OK, "{facets}");
    let fields: Vec<&str> = facets["facets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|facet| facet["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["level", "service", "region", "session"],
        "{facets}"
    );
    assert_eq!(
        facets["id_like"],
        json!([{"field": "request_id", "distinct": 300}])
    );
    assert_eq!(facets["total"], 300);

    let (status, named) = server.get("/api/facets?fields=request_id,region").await;
    assert_eq!(status, StatusCode::OK, "{named}");
    let request_id = &named["facets"][0];
    assert_eq!(request_id["field"], "request_id", "{named}");
    assert_eq!(
        (&request_id["distinct"], &request_id["other"]),
        (&json!(300), &json!(290))
    );
    assert_eq!(request_id["values"].as_array().unwrap().len(), 10);
    assert_eq!(named["facets"][1]["field"], "region");
    assert_eq!(named["id_like"], json!([]), "named fields are all facets");
}
