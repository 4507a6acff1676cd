//! Patterns: logs made from 30 known templates, their placeholders filled
//! with random values of every kind the miner meets (numbers, durations,
//! IPs, UUIDs, hex ids, emails, URLs, quoted strings, words that vary),
//! come back as those 30 templates with their exact counts, through
//! Loki's `patterns` (Drilldown) and our `/api/patterns` (the Explorer).

use super::support::{MINUTE, SECOND, T0, get, ns, rfc3339, seed};
use crate::support::Server;
use awc::http::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `<_>` marks a placeholder; the letter after it in `FILLERS` says what
/// fills it.
const TEMPLATES: [(&str, &str); 30] = [
    ("connection to <_> refused after <_> retries", "in"),
    ("user <_> logged in from \"<_>\"", "eq"),
    ("payment <_> declined by issuer with code <_>", "un"),
    ("cache miss for key <_> in region <_>", "hr"),
    ("request <_> completed in <_>", "ud"),
    ("disk usage on volume <_> reached <_>", "vp"),
    ("worker <_> picked job <_> from queue emails", "nh"),
    ("slow query took <_> on table orders", "d"),
    ("tls handshake with <_> failed: certificate expired", "i"),
    ("retrying upload of <_> bytes to bucket backups", "n"),
    ("session <_> expired for tenant <_>", "hw"),
    ("scheduled report <_> generated for account <_>", "nn"),
    ("inventory sync pulled <_> items from warehouse <_>", "nv"),
    ("kafka consumer lag on partition <_> is <_> messages", "nn"),
    ("feature flag <_> evaluated to true for <_>", "fe"),
    ("oauth token refreshed for client <_> expires at <_>", "ut"),
    ("webhook delivery to <_> returned status <_>", "Un"),
    ("memory pressure: heap at <_> of limit <_>", "ss"),
    ("shipment <_> left depot <_> on route <_>", "hnn"),
    ("password reset email sent to <_>", "e"),
    ("rate limit exceeded for api key <_> on endpoint <_>", "hP"),
    ("backup snapshot <_> verified checksum <_>", "nh"),
    ("dns lookup for <_> timed out after <_>", "Hd"),
    ("invoice <_> paid amount <_> currency EUR", "nm"),
    (
        "container <_> restarted by supervisor reason OOMKilled",
        "h",
    ),
    ("search index rebuild processed <_> documents in <_>", "nd"),
    (
        "gRPC call /inventory.Stock/Reserve failed with deadline after <_>",
        "d",
    ),
    ("login attempt blocked for ip <_> after <_> failures", "in"),
    ("cron job cleanup_temp finished removing <_> files", "n"),
    ("price update for sku <_> changed from <_> to <_>", "kmm"),
];

const SERVICES: [&str; 3] = ["checkout", "auth", "billing"];
const LEVELS: [&str; 5] = ["debug", "info", "warn", "error", "fatal"];

/// A small deterministic generator (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn filler(&mut self, kind: char) -> String {
        let words = ["acme", "globex", "initech", "umbrella", "hooli", "stark"];
        let flags = ["new_checkout", "dark_mode", "fast_search", "beta_pricing"];
        match kind {
            'n' => self.below(100_000).to_string(),
            'i' => format!(
                "10.{}.{}.{}",
                self.below(256),
                self.below(256),
                self.below(256)
            ),
            'e' => format!("user{}@example.com", self.below(10_000)),
            'q' => format!("Mozilla Firefox {}", self.below(130)),
            'u' => format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                self.next() as u32,
                self.below(0x10000),
                self.below(0x1000),
                self.below(0x1000),
                self.next() & 0xFFFF_FFFF_FFFF
            ),
            'h' => format!("{:016x}", self.next()),
            'r' => format!("eu-west-{}", self.below(4) + 1),
            'd' => format!("{}ms", self.below(5000)),
            'v' => format!("vol{}", self.below(50)),
            'p' => format!("{}%", self.below(100)),
            'w' => words[self.below(words.len() as u64) as usize].to_string(),
            'f' => flags[self.below(flags.len() as u64) as usize].to_string(),
            't' => format!("2025-01-01T{:02}:{:02}:00Z", self.below(24), self.below(60)),
            'U' => format!("https://hooks.example.com/h/{}", self.below(1000)),
            's' => format!("{}MiB", self.below(4096)),
            'P' => format!("/v1/orders/{}", self.below(10_000)),
            'H' => format!("host{}.internal", self.below(100)),
            'm' => format!("{}.{:02}", self.below(1000), self.below(100)),
            'k' => format!("SKU-{}", self.below(100_000)),
            other => panic!("no filler kind {other}"),
        }
    }
}

fn fill(template: &str, kinds: &str, random: &mut Random) -> String {
    let mut message = String::new();
    let mut kinds = kinds.chars();
    for (index, piece) in template.split("<_>").enumerate() {
        if index > 0 {
            message.push_str(&random.filler(kinds.next().expect("a kind per placeholder")));
        }
        message.push_str(piece);
    }
    message
}

/// Template `i` gets `20 + 7 i` logs at one level, spread over the hour
/// from T0 and over three services, all templates shuffled together.
fn pattern_logs() -> (Vec<Value>, BTreeMap<&'static str, (u64, &'static str)>) {
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    let mut logs = Vec::new();
    let mut expected = BTreeMap::new();
    for (index, (template, kinds)) in TEMPLATES.iter().enumerate() {
        let count = 20 + 7 * index as u64;
        let level = LEVELS[index % LEVELS.len()];
        expected.insert(*template, (count, level));
        for n in 0..count {
            logs.push(json!({
                "level": level,
                "service": SERVICES[(n as usize + index) % SERVICES.len()],
                "message": fill(template, kinds, &mut random),
            }));
        }
    }
    // Shuffled, then stamped in that order across the hour.
    for at in (1..logs.len()).rev() {
        let other = random.below(at as u64 + 1) as usize;
        logs.swap(at, other);
    }
    let spacing = 3600 * SECOND / logs.len() as i64;
    for (n, log) in logs.iter_mut().enumerate() {
        log["ts_ns"] = json!(T0 + n as i64 * spacing + 1_000);
    }
    (logs, expected)
}

#[actix_web::test]
async fn thirty_templates_come_back_with_exact_counts() {
    let (logs, expected) = pattern_logs();
    let server = Server::start().await;
    seed(&server, &logs).await;

    // Loki's patterns: one item per pattern and level, per-step samples.
    let answer = get(
        &server,
        "/loki/api/v1/patterns",
        &[
            ("query", r#"{service_name=~".+"}"#),
            ("start", &ns(T0)),
            ("end", &ns(T0 + 60 * MINUTE)),
            ("step", "5m"),
        ],
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let mut loki: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for item in answer.json["data"].as_array().unwrap() {
        let pattern = item["pattern"].as_str().unwrap().to_string();
        let count: u64 = item["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sample| sample[1].as_u64().unwrap())
            .sum();
        let previous = loki.insert(
            pattern.clone(),
            (count, item["level"].as_str().unwrap().into()),
        );
        assert!(previous.is_none(), "{pattern} listed twice: one level each");
    }
    let wanted: BTreeMap<String, (u64, String)> = expected
        .iter()
        .map(|(t, (n, l))| (t.to_string(), (*n, l.to_string())))
        .collect();
    assert_eq!(loki, wanted);

    // Our API: the same patterns, counts, levels and services.
    let (status, body) = server
        .get(&format!(
            "/api/patterns?from={}&to={}&limit=50",
            rfc3339(T0),
            rfc3339(T0 + 60 * MINUTE)
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["logs"], logs.len());
    assert_eq!(body["truncated"], false);
    let patterns = body["patterns"].as_array().unwrap();
    assert_eq!(patterns.len(), 30);
    let counts: Vec<u64> = patterns
        .iter()
        .map(|p| p["count"].as_u64().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "most frequent first"
    );
    for pattern in patterns {
        let text = pattern["pattern"].as_str().unwrap();
        let (count, level) = expected
            .get(text)
            .unwrap_or_else(|| panic!("an unknown pattern {text}"));
        assert_eq!(pattern["count"], *count, "{text}");
        assert_eq!(pattern["levels"], json!({*level: count}), "{text}");
        let services: u64 = pattern["services"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(services, *count);
        let sparkline: u64 = pattern["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s[1].as_u64().unwrap())
            .sum();
        assert_eq!(sparkline, *count, "{text}");
        assert!(
            pattern["example_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
        );
    }
    // Filtering by a pattern finds exactly its logs.
    let template = TEMPLATES[7].0;
    let (_, filtered) = server
        .get(&format!(
            "/api/stats?from={}&to={}&query={}",
            rfc3339(T0),
            rfc3339(T0 + 60 * MINUTE),
            serde_urlencoded::to_string([("q", format!("pattern:\"{template}\""))])
                .unwrap()
                .trim_start_matches("q=")
        ))
        .await;
    assert_eq!(filtered["total_logs"], expected[template].0, "{filtered}");
}
