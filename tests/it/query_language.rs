//! Issue 12 against the real binary on the embedded store (and, for the
//! language, facets, fields, context and export, on ClickHouse): the `query`
//! parameter on every endpoint, facets, fields, context, cursor pages and
//! export, bad input as 400s naming the parameter, and `query.timeout`.

use crate::support::{Launch, Server, eventually};
use awc::http::StatusCode;
use awc::http::header::HeaderMap;
use serde_json::{Value, json};
use std::time::Duration;

/// GET with the raw answer: status, headers, body.
async fn get_raw(server: &Server, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut response = server
        .client
        .get(server.url(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let body = response.body().limit(256 << 20).await.expect("body");
    (response.status(), response.headers().clone(), body.to_vec())
}

fn encode(value: &str) -> String {
    serde_urlencoded::to_string([("x", value)]).unwrap()[2..].to_string()
}

/// Eight logs a second apart from 2025-01-01T10:00:00Z (see each line).
async fn seeded() -> Server {
    seeded_on(Launch::default()).await
}

/// The same logs on a server started by `launch`.
async fn seeded_on(launch: Launch) -> Server {
    let server = Server::launch(launch).await;
    let logs = json!([
        {"level": "info",  "service": "checkout",    "message": "GET /api/v1/cart 200 12ms",        "timestamp": "2025-01-01T10:00:00Z",
         "attributes": {"region": "eu-west-1", "http.status": "200", "k8s.pod.name": "checkout-7f9c-1"}},
        {"level": "error", "service": "checkout",    "message": "payment timeout after 3s",          "timestamp": "2025-01-01T10:00:01Z",
         "attributes": {"region": "eu-west-1", "http.status": "503", "trace_id": "T1"}},
        {"level": "warn",  "service": "Checkout-EU", "message": "slow upstream: connection refused, retrying", "timestamp": "2025-01-01T10:00:02Z",
         "attributes": {"region": "eu-central-1", "http.status": "502", "trace_id": "T1"}},
        {"level": "fatal", "service": "payments",    "message": "disk full: 100% used",              "timestamp": "2025-01-01T10:00:03Z",
         "attributes": {"region": "us-east-1", "http.status": "abc"}},
        {"level": "debug", "service": "payments",    "message": "healthcheck ok",                    "timestamp": "2025-01-01T10:00:04Z"},
        {"level": "error", "service": "search",      "message": "ERROR deadlock detected on orders_7", "timestamp": "2025-01-01T10:00:05Z",
         "attributes": {"region": "EU-WEST-1", "level": "custom", "my key": "a b"}},
        {"level": "info",  "service": "search",      "message": "healthcheck ok",                    "timestamp": "2025-01-01T10:00:06Z",
         "attributes": {"region": "us-east-1", "http.status": "404", "duration_ms": "-3.5"}},
        {"level": "warn",  "service": "auth",        "message": "token expired for user 42",         "timestamp": "2025-01-01T10:00:07Z",
         "attributes": {"http.status": "401"}}
    ]);
    let (status, answer) = server
        .post("/log/bulk", Some("application/json"), logs.to_string())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    server.wait_stored(8).await;
    server
}

/// The positions (0-7, by timestamp) of the logs `/api/logs?…` answers.
async fn positions(server: &Server, parameters: &str) -> Vec<u64> {
    let (status, rows) = server.get(&format!("/api/logs?{parameters}")).await;
    assert_eq!(status, StatusCode::OK, "{parameters}: {rows}");
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let timestamp = row["timestamp"].as_str().unwrap();
            timestamp[17..19].parse::<u64>().unwrap()
        })
        .collect()
}

async fn with_query(server: &Server, query: &str) -> Vec<u64> {
    positions(server, &format!("order=asc&query={}", encode(query))).await
}

#[actix_web::test]
async fn the_query_parameter_filters_every_endpoint() {
    filters_every_endpoint(&seeded().await).await;
}

async fn filters_every_endpoint(server: &Server) {
    for (query, expected) in [
        ("", vec![0, 1, 2, 3, 4, 5, 6, 7]),
        ("service:checkout", vec![0, 1]),
        ("service:checkout*", vec![0, 1, 2]),
        ("service:\"Checkout-eu\"", vec![2]),
        ("-healthcheck", vec![0, 1, 2, 3, 5, 7]),
        ("level:>=error region:eu-*", vec![1, 5]),
        ("level:warning OR level:crit", vec![2, 3, 7]),
        ("http.status:>=500", vec![1, 2]),
        ("-http.status:>=500", vec![0, 3, 4, 5, 6, 7]),
        ("\"connection refused\"", vec![2]),
        ("conn*refused", vec![2]),
        ("~\"\\d+%\"", vec![3]),
        ("message:~\"^(?i)error\"", vec![5]),
        ("@level:custom", vec![5]),
        ("\"my key\":\"A B\"", vec![5]),
        ("trace_id:T1 OR service:auth", vec![1, 2, 7]),
        ("k8s.pod.name:checkout-7f*", vec![0]),
        ("duration_ms:<0", vec![6]),
        ("region:(us-east-1 OR eu-central-1)", vec![2, 3, 6]),
        ("-region:*", vec![4, 7]),
        ("(timeout OR deadlock) -level:fatal", vec![1, 5]),
        ("NOT (service:search OR service:payments)", vec![0, 1, 2, 7]),
        ("ok and", vec![]),
    ] {
        assert_eq!(with_query(server, query).await, expected, "query {query:?}");
    }
    // ANDed with the seed's parameters.
    assert_eq!(
        positions(
            server,
            &format!("order=asc&level=error&query={}", encode("region:eu-*"))
        )
        .await,
        [1, 5]
    );
    assert_eq!(
        positions(server, "order=asc&q=ok&query=service:search").await,
        [6]
    );
    let (_, rows) = server.get("/api/logs?order=asc&limit=1&offset=3").await;
    let id = rows[0]["id"].as_str().unwrap().to_string();
    assert_eq!(with_query(server, &format!("id:{id}")).await, [3]);

    let (_, stats) = server
        .get(&format!("/api/stats?query={}", encode("service:checkout*")))
        .await;
    assert_eq!(stats["total_logs"], 3);
    assert_eq!(stats["logs_by_level"]["error"], 1);
    let (_, stats) = server
        .get(&format!(
            "/api/stats?level=error&query={}",
            encode("region:*")
        ))
        .await;
    assert_eq!(stats["total_logs"], 2);
    let (_, histogram) = server
        .get(&format!(
            "/api/histogram?from=2025-01-01T10:00:00Z&to=2025-01-01T11:00:00Z&interval=1h&query={}",
            encode("http.status:>=500")
        ))
        .await;
    assert_eq!(histogram["buckets"][0]["total"], 2, "{histogram}");
    assert_eq!(histogram["buckets"][0]["error"], 1);
    let (_, services) = server.get("/api/services?query=healthcheck").await;
    assert_eq!(
        services,
        json!([{"service": "payments", "count": 1}, {"service": "search", "count": 1}])
    );
}

#[actix_web::test]
async fn bad_queries_are_400_pointing_at_the_column() {
    let server = Server::start().await;
    let longest = "a".repeat(4000);
    let nested = |depth: usize| format!("{}x{}", "(".repeat(depth), ")".repeat(depth));
    for accepted in [longest.clone(), nested(32), "é".repeat(4000)] {
        let (status, body) = server
            .get(&format!("/api/logs?query={}", encode(&accepted)))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for (query, position) in [
        ("level:loud", 7),
        ("é é level:nope", 11),
        ("(timeout", 9),
        ("timeout AND", 12),
        ("http.status:>=abc", 15),
        ("~\"(\"", 1),
        ("x ~\"(\\\\w{100}){100}\"", 3),
        ("\"open", 1),
    ]
    .iter()
    .map(|(q, p)| (q.to_string(), *p))
    .chain([(format!("{longest}b"), 4001), (nested(33), 33)])
    {
        for endpoint in [
            "/api/logs",
            "/api/stats",
            "/api/histogram",
            "/api/services",
            "/api/facets",
            "/api/fields",
            "/api/export",
        ] {
            let (status, body) = server
                .get(&format!("{endpoint}?query={}", encode(&query)))
                .await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{endpoint} {query:.40}: {body}"
            );
            assert_eq!(body["field"], "query", "{body}");
            assert_eq!(body["position"], position, "{endpoint} {query:.40}: {body}");
            assert!(body["error"].as_str().unwrap().len() > 20, "{body}");
        }
    }
    // The live tail refuses it at the handshake.
    let (status, body) = server.get("/ws/live?query=level:loud").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (body["field"].clone(), body["position"].clone()),
        (json!("query"), json!(7))
    );
}

#[actix_web::test]
async fn facets_and_fields_count_the_matching_logs() {
    facets_and_fields(&seeded().await).await;
}

async fn facets_and_fields(server: &Server) {
    let (status, facets) = server
        .get("/api/facets?fields=level,service,region,@level&limit=2")
        .await;
    assert_eq!(status, StatusCode::OK, "{facets}");
    assert_eq!(
        facets,
        json!({"total": 8, "approximate": false, "facets": [
            {"field": "level", "values": [{"value": "error", "count": 2}, {"value": "info", "count": 2}], "other": 4, "distinct": 5},
            {"field": "service", "values": [{"value": "checkout", "count": 2}, {"value": "payments", "count": 2}], "other": 4, "distinct": 5},
            {"field": "region", "values": [{"value": "eu-west-1", "count": 2}, {"value": "us-east-1", "count": 2}], "other": 2, "distinct": 4},
            {"field": "@level", "values": [{"value": "custom", "count": 1}], "other": 0, "distinct": 1}
        ], "id_like": []})
    );
    // Without `fields`: level, service, then attribute keys by frequency
    // (a trace id is a field of its own, not an attribute: no facet).
    let (_, facets) = server.get("/api/facets").await;
    let fields: Vec<&str> = facets["facets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "level",
            "service",
            "http.status",
            "region",
            "duration_ms",
            "k8s.pod.name",
            "@level",
            "my key"
        ]
    );
    assert_eq!(
        facets["facets"][2]["values"][0],
        json!({"value": "200", "count": 1}),
        "ties by value"
    );
    assert_eq!(facets["facets"][2]["distinct"], 6);
    // Every filter narrows them.
    let (_, facets) = server
        .get(&format!(
            "/api/facets?fields=region&query={}",
            encode("level:>=error")
        ))
        .await;
    assert_eq!(facets["total"], 3);
    assert_eq!(
        facets["facets"][0]["values"],
        json!([{"value": "EU-WEST-1", "count": 1}, {"value": "eu-west-1", "count": 1}, {"value": "us-east-1", "count": 1}]),
        "byte order: upper case first"
    );
    let (_, facets) = server
        .get("/api/facets?fields=service&from=2025-01-01T10:00:05Z&q=healthcheck")
        .await;
    assert_eq!(facets["total"], 1);
    assert_eq!(
        facets["facets"][0]["values"],
        json!([{"value": "search", "count": 1}])
    );

    let (_, fields) = server.get("/api/fields").await;
    assert_eq!(
        fields,
        json!([
            {"field": "http.status", "count": 6}, {"field": "region", "count": 6},
            {"field": "duration_ms", "count": 1},
            {"field": "k8s.pod.name", "count": 1}, {"field": "@level", "count": 1},
            {"field": "my key", "count": 1}
        ])
    );
    let (_, fields) = server.get("/api/fields?query=service:search").await;
    assert_eq!(fields[0], json!({"field": "region", "count": 2}));
    assert_eq!(fields.as_array().unwrap().len(), 5);

    for (parameters, field) in [
        ("fields=message", "fields"),
        ("fields=id", "fields"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("fields=@", "fields"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = server.get(&format!("/api/facets?{parameters}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{parameters}: {body}");
        assert_eq!(body["field"], field, "{parameters}: {body}");
    }
    let (status, body) = server.get("/api/fields?limit=3").await;
    assert_eq!(
        (status, body["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("limit"))
    );
}

#[actix_web::test]
async fn context_shows_the_neighbours_of_a_log() {
    context_neighbours(&seeded().await).await;
}

async fn context_neighbours(server: &Server) {
    let (_, rows) = server.get("/api/logs?order=asc").await;
    let id = |position: usize| rows[position]["id"].as_str().unwrap().to_string();
    let positions_of = |list: &Value| -> Vec<u64> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|row| row["timestamp"].as_str().unwrap()[17..19].parse().unwrap())
            .collect()
    };
    // Log 4 (payments): its service has log 3 before it and none after.
    let (status, context) = server.get(&format!("/api/logs/{}/context", id(4))).await;
    assert_eq!(status, StatusCode::OK, "{context}");
    assert_eq!(context["log"], rows[4]);
    assert_eq!(positions_of(&context["before"]), [3]);
    assert_eq!(positions_of(&context["after"]), Vec::<u64>::new());
    let (_, context) = server
        .get(&format!("/api/logs/{}/context?scope=all", id(4)))
        .await;
    assert_eq!(
        positions_of(&context["before"]),
        [0, 1, 2, 3],
        "oldest first"
    );
    assert_eq!(positions_of(&context["after"]), [5, 6, 7]);
    let (_, context) = server
        .get(&format!(
            "/api/logs/{}/context?scope=all&before=2&after=1",
            id(4)
        ))
        .await;
    assert_eq!(positions_of(&context["before"]), [2, 3]);
    assert_eq!(positions_of(&context["after"]), [5]);
    let (_, context) = server
        .get(&format!(
            "/api/logs/{}/context?scope=all&query={}",
            id(4),
            encode("level:>=warn")
        ))
        .await;
    assert_eq!(
        positions_of(&context["before"]),
        [1, 2, 3],
        "query narrows both sides"
    );
    assert_eq!(positions_of(&context["after"]), [5, 7]);
    let (_, context) = server
        .get(&format!("/api/logs/{}/context?before=0&after=0", id(4)))
        .await;
    assert_eq!(
        (context["before"].clone(), context["after"].clone()),
        (json!([]), json!([]))
    );

    let (status, body) = server.get("/api/logs/no-such-id/context").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["field"], "id");
    for (parameters, field) in [
        ("before=501", "before"),
        ("after=-1", "after"),
        ("scope=team", "scope"),
        ("query=level:loud", "query"),
    ] {
        let (status, body) = server
            .get(&format!("/api/logs/{}/context?{parameters}", id(4)))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{parameters}: {body}");
        assert_eq!(body["field"], field, "{parameters}: {body}");
    }
}

/// The same answers from the ClickHouse store (one private 18.16 server):
/// the language on every endpoint, facets, fields, context, and an export.
#[actix_web::test]
async fn the_query_api_answers_alike_on_clickhouse() {
    let clickhouse = crate::split::deps::ClickHouse::start().await;
    let server = seeded_on(
        Launch::default()
            .env("CLICKHOUSE_DSN", &clickhouse.dsn("query_api"))
            .env("OGLOGSTREAM_QUERY__TIMEOUT", "5s"),
    )
    .await;
    let (_, health) = server.get("/health").await;
    assert_eq!(health["storage"], "clickhouse", "{health}");
    filters_every_endpoint(&server).await;
    facets_and_fields(&server).await;
    context_neighbours(&server).await;
    let (status, _, body) = get_raw(&server, "/api/export?order=asc&query=region:eu*").await;
    assert_eq!(status, StatusCode::OK);
    let (_, rows) = server.get("/api/logs?order=asc&query=region:eu*").await;
    let exported: Vec<Value> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(json!(exported), rows, "export rows are /api/logs rows");
    assert_eq!(exported.len(), 4);
}

/// 6,000 logs, 4,000 of them sharing one timestamp and 2,000 another, so
/// pages and export pages split runs of equal timestamps.
async fn crowded() -> Server {
    let server = Server::start().await;
    for chunk in 0..6 {
        let timestamp = if chunk < 4 {
            "2025-01-01T10:00:00Z"
        } else {
            "2025-01-01T09:00:00Z"
        };
        let mut body = String::new();
        for i in 0..1000 {
            let n = chunk * 1000 + i;
            body.push_str(
                &json!({"level": if n % 10 == 0 { "error" } else { "info" }, "service": "crowd",
                        "message": format!("row {n}, \"quoted\""), "timestamp": timestamp,
                        "attributes": {"n": n.to_string(), "region": if n % 2 == 0 { "eu" } else { "us" }}})
                .to_string(),
            );
            body.push('\n');
        }
        let (status, answer) = server
            .post("/log/bulk", Some("application/x-ndjson"), body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    server.wait_stored(6000).await;
    server
}

/// Every id through cursor pages, and the number of pages.
async fn ids_by_cursor(server: &Server, parameters: &str) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut path = format!("/api/logs?limit=700&{parameters}");
    let mut pages = 0;
    loop {
        let (status, headers, body) = get_raw(server, &path).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        pages += 1;
        let rows: Vec<Value> = serde_json::from_slice(&body).unwrap();
        ids.extend(rows.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        let Some(cursor) = headers.get("x-next-cursor") else {
            assert!(headers.get("link").is_none());
            return (ids, pages);
        };
        let link = headers.get("link").unwrap().to_str().unwrap();
        assert!(link.ends_with(">; rel=\"next\""), "{link}");
        let next = &link[1..link.len() - "; rel=\"next\"".len() - 1];
        assert!(
            next.contains(&format!("cursor={}", cursor.to_str().unwrap())),
            "{link}"
        );
        path = next.to_string();
    }
}

#[actix_web::test]
async fn cursor_pages_and_export_list_every_row_once() {
    let server = crowded().await;
    // The page order: by timestamp, then id as a string.
    let mut offset_pages = Vec::new();
    for offset in (0..6000).step_by(1000) {
        let (_, rows) = server
            .get(&format!("/api/logs?order=asc&limit=1000&offset={offset}"))
            .await;
        offset_pages.extend(rows.as_array().unwrap().iter().map(|r| {
            (
                r["timestamp"].as_str().unwrap().to_string(),
                r["id"].as_str().unwrap().to_string(),
            )
        }));
    }
    let mut sorted = offset_pages.clone();
    sorted.sort();
    assert_eq!(offset_pages, sorted, "ascending (timestamp, id)");
    let ascending: Vec<String> = sorted.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ascending.len(), 6000);

    let (ids, pages) = ids_by_cursor(&server, "order=asc").await;
    assert_eq!(ids, ascending, "every row once, in order");
    assert_eq!(pages, 9, "8 full pages of 700 and a short one");
    let (ids, _) = ids_by_cursor(&server, "").await;
    let descending: Vec<String> = ascending.iter().rev().cloned().collect();
    assert_eq!(ids, descending, "desc reverses both keys");
    let (ids, _) = ids_by_cursor(&server, "query=level:error").await;
    assert_eq!(ids.len(), 600);

    // A cursor belongs to its search.
    let (_, headers, _) = get_raw(&server, "/api/logs?limit=10&query=region:eu").await;
    let cursor = headers
        .get("x-next-cursor")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let (status, _) = server
        .get(&format!(
            "/api/logs?limit=10&query=region:eu&cursor={cursor}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut altered = cursor.clone().into_bytes();
    altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
    for parameters in [
        format!("query=region:us&cursor={cursor}"),
        format!("query=region:eu&order=asc&cursor={cursor}"),
        format!(
            "query=region:eu&cursor={}",
            String::from_utf8(altered).unwrap()
        ),
        format!("query=region:eu&cursor={}", &cursor[..cursor.len() - 3]),
        "cursor=garbage!".to_string(),
        format!("query=region:eu&offset=10&cursor={cursor}"),
    ] {
        let (status, body) = server.get(&format!("/api/logs?{parameters}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{parameters}: {body}");
        assert_eq!(body["field"], "cursor", "{body}");
    }

    // Export: every row, in the same order, across store pages.
    let (status, headers, body) = get_raw(&server, "/api/export?order=asc").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("content-type").unwrap(), "application/x-ndjson");
    let disposition = headers
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"oglogstream-")
            && disposition.ends_with(".ndjson\""),
        "{disposition}"
    );
    let lines: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    let exported: Vec<String> = lines
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(exported, ascending);
    assert_eq!(
        lines[0]["attributes"]["n"].as_str().unwrap().len(),
        4,
        "row shape: {}",
        lines[0]
    );

    let (_, headers, body) =
        get_raw(&server, "/api/export?format=csv&query=level:error&limit=5").await;
    assert_eq!(
        headers.get("content-type").unwrap(),
        "text/csv; charset=utf-8"
    );
    let text = String::from_utf8(body).unwrap();
    let rows: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows[0], "timestamp,level,service,message,id,attributes");
    assert_eq!(rows.len(), 6, "header and limit=5 rows: {text}");
    assert!(
        rows[1].starts_with("2025-01-01T10:00:00.000000Z,error,crowd,\"row "),
        "{}",
        rows[1]
    );
    assert!(
        rows[1].contains(", \"\"quoted\"\"\",")
            && rows[1].ends_with("\"{\"\"n\"\":\"\"3990\"\",\"\"region\"\":\"\"eu\"\"}\""),
        "{}",
        rows[1]
    );
    let (_, _, body) = get_raw(
        &server,
        "/api/export?format=csv&columns=region,n,none&order=asc",
    )
    .await;
    let text = String::from_utf8(body).unwrap();
    let rows: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 6001);
    assert_eq!(rows[0], "timestamp,level,service,message,id,region,n,none");
    assert!(
        rows[1].ends_with(",eu,4000,"),
        "absent attribute: empty cell: {}",
        rows[1]
    );

    for (parameters, field) in [
        ("format=xml", "format"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("columns=region", "columns"),
        ("order=up", "order"),
        ("query=(", "query"),
    ] {
        let (status, body) = server.get(&format!("/api/export?{parameters}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{parameters}: {body}");
        assert_eq!(body["field"], field, "{parameters}: {body}");
    }
}

async fn metric(server: &Server, name: &str) -> u64 {
    let (_, _, body) = get_raw(server, "/metrics").await;
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[actix_web::test]
async fn slow_queries_time_out_and_abandoned_ones_stop() {
    let server = Server::launch(Launch::default().env("OGLOGSTREAM_QUERY__TIMEOUT", "1s")).await;
    let mut body = String::new();
    for i in 0..20_000 {
        body.push_str(
            &json!({"level": "info", "service": "s", "message": format!("message {i}"),
                    "attributes": {"a": "x", "b": "y", "c": "z"}})
            .to_string(),
        );
        body.push('\n');
    }
    let (status, _) = server
        .post("/log/bulk", Some("application/x-ndjson"), body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    server.wait_stored(20_000).await;
    // Hundreds of attribute tests per row: many seconds of work.
    let slow: Vec<String> = (0..300).map(|i| format!("k{i}:v")).collect();
    let slow = encode(&slow.join(" OR "));

    let (status, answer) = server.get(&format!("/api/stats?query={slow}")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("query.timeout"),
        "{answer}"
    );
    assert_eq!(
        metric(&server, "oglogstream_queries_timed_out_total").await,
        1
    );

    // A client that goes away: its read is dropped, not left running.
    let request = server
        .client
        .get(server.url(&format!("/api/facets?query={slow}")))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(request.is_err(), "the client gave up first");
    eventually(
        "the abandoned read to be counted",
        Duration::from_secs(10),
        || async {
            (metric(&server, "oglogstream_queries_abandoned_total").await == 1).then_some(())
        },
    )
    .await;
    assert_eq!(
        metric(&server, "oglogstream_queries_timed_out_total").await,
        1,
        "not a timeout"
    );
}
