//! Logs made from 30 known templates with random fillers come back as
//! exactly those 30 patterns, each template's logs in one pattern, counts
//! exact; and what else the miner reports.

use super::*;
use crate::domain::query;
use crate::domain::{Level, LogRecord};

/// A template and its fillers: `{num}` and the like are replaced by random
/// values; the expected pattern has `<_>` there.
const TEMPLATES: [&str; 30] = [
    "user {user} logged in from {ip}",
    "payment {uuid} failed: card declined after {dur}",
    "GET {path} returned {num} in {dur}",
    "connection reset by peer (pool {num})",
    "cache miss for key {hex}",
    "sent email to {email} with subject \"{quoted}\"",
    "worker {num} started processing batch {uuid}",
    "disk usage at {pct} on volume data",
    "retrying request to {ipport} (attempt {num} of five)",
    "order {num} shipped to warehouse {user}",
    "scheduled job cleanup finished, removed {num} files in {dur}",
    "TLS handshake with {ip} failed: certificate expired",
    "level=info msg=\"request completed\" method=GET status={num} duration={dur}",
    "level=warn msg=\"slow query\" table=orders rows={num} took={dur}",
    "token {hex} refreshed for client {user}",
    "upstream {ip} marked unhealthy after {num} consecutive failures",
    "Starting server on port {num}",
    "Shutting down gracefully, draining {num} connections",
    "file {path} uploaded by {email} ({num} bytes)",
    "kafka consumer group orders lag is {num} messages on partition {num}",
    "rate limit exceeded for api key {hex}, retry in {dur}",
    "session {uuid} expired",
    "config reloaded from {path}",
    "deadlock detected on table inventory, transaction {num} rolled back",
    "feature flag checkout_redesign evaluated to {bool} for tenant {num}",
    "websocket client {uuid} disconnected: {reason}",
    "backup snapshot {hex} completed, size {size}",
    "GC pause {dur} exceeded threshold",
    "received SIGTERM, exiting with code {num}",
    "user {email} changed password",
];

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len() as u64) as usize]
    }
}

fn filler(kind: &str, random: &mut SplitMix) -> String {
    match kind {
        "num" => random.below(100_000).to_string(),
        "dur" => match random.below(3) {
            0 => format!("{}ms", random.below(1000)),
            1 => format!("{}.{}s", random.below(60), random.below(10)),
            _ => format!("{}m{}s", random.below(10), random.below(60)),
        },
        "ip" => format!(
            "10.{}.{}.{}",
            random.below(256),
            random.below(256),
            random.below(256)
        ),
        "ipport" => format!(
            "10.0.{}.{}:{}",
            random.below(256),
            random.below(256),
            1024 + random.below(60_000)
        ),
        "uuid" => {
            let a = random.next();
            let b = random.next();
            format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                b >> 52,
                b & 0xffff_ffff_ffff
            )
        }
        "hex" => format!("{:016x}", random.next() | 1),
        "email" => format!(
            "{}{}@example.com",
            random.pick(&["ann", "bo", "cy"]),
            random.below(1000)
        ),
        "path" => format!(
            "/api/{}/{}",
            random.pick(&["users", "orders", "carts"]),
            random.below(10_000)
        ),
        "pct" => format!("{}%", random.below(100)),
        "size" => format!("{}MB", random.below(4096)),
        "quoted" => format!(
            "Invoice {} for {}",
            random.below(10_000),
            random.pick(&["May", "June"])
        ),
        "user" => random
            .pick(&["alice", "bob", "carol", "dave", "erin"])
            .to_string(),
        "bool" => random.pick(&["true", "false"]).to_string(),
        "reason" => random
            .pick(&["timeout", "closed", "reset", "idle"])
            .to_string(),
        other => panic!("unknown filler {other}"),
    }
}

/// The template with its fillers, and the pattern expected back.
fn fill(template: &str, random: &mut SplitMix) -> (String, String) {
    let (mut message, mut pattern) = (String::new(), String::new());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = open + rest[open..].find('}').unwrap();
        message.push_str(&rest[..open]);
        pattern.push_str(&rest[..open]);
        message.push_str(&filler(&rest[open + 1..close], random));
        pattern.push_str(PLACEHOLDER);
        rest = &rest[close + 1..];
    }
    message.push_str(rest);
    pattern.push_str(rest);
    (message, pattern)
}

struct Generated {
    records: Vec<LogRecord>,
    /// (expected pattern, its messages).
    expected: Vec<(String, Vec<String>)>,
}

fn generate(seed: u64) -> Generated {
    let mut random = SplitMix(seed);
    let mut expected: Vec<(String, Vec<String>)> = Vec::new();
    let mut records = Vec::new();
    let mut per_template: Vec<u64> = TEMPLATES.iter().map(|_| 5 + random.below(120)).collect();
    let mut index = 0u64;
    while per_template.iter().any(|left| *left > 0) {
        let template = random.below(TEMPLATES.len() as u64) as usize;
        if per_template[template] == 0 {
            continue;
        }
        per_template[template] -= 1;
        let (message, pattern) = fill(TEMPLATES[template], &mut random);
        match expected.iter_mut().find(|(p, _)| *p == pattern) {
            Some((_, messages)) => messages.push(message.clone()),
            None => expected.push((pattern, vec![message.clone()])),
        }
        records.push(LogRecord {
            id: format!("id-{index}"),
            timestamp: 1_735_689_600_000_000 + index as i64 * 1_000_000,
            level: Level::ALL[template % 5],
            service: ["api", "web", "worker"][template % 3].to_string(),
            message,
            attributes: Default::default(),
            ..Default::default()
        });
        index += 1;
    }
    Generated { records, expected }
}

#[test]
fn thirty_templates_come_back_as_themselves_with_exact_counts() {
    for seed in [1, 2, 3, 42, 2025] {
        let generated = generate(seed);
        assert_eq!(generated.expected.len(), 30);
        let mut miner = PatternMiner::new(MinerOptions::default());
        for record in &generated.records {
            miner.add(record);
        }
        let patterns = miner.finish();
        let mut found: Vec<(String, u64)> = patterns
            .iter()
            .map(|p| (p.pattern.clone(), p.count))
            .collect();
        let mut wanted: Vec<(String, u64)> = generated
            .expected
            .iter()
            .map(|(pattern, messages)| (pattern.clone(), messages.len() as u64))
            .collect();
        found.sort();
        wanted.sort();
        assert_eq!(found, wanted, "seed {seed}");
        // Each pattern, as a filter, finds exactly its template's logs.
        for (pattern, messages) in &generated.expected {
            let template = Template::parse(pattern).unwrap();
            let matching = generated
                .records
                .iter()
                .filter(|r| template.matches(&r.message))
                .count();
            assert_eq!(matching, messages.len(), "seed {seed}: {pattern}");
        }
    }
}

#[test]
fn statistics_per_pattern() {
    let rows = [
        (
            0,
            Level::Error,
            "api",
            "a",
            "connection reset by peer (pool 7)",
        ),
        (
            30,
            Level::Warn,
            "web",
            "b",
            "connection reset by peer (pool 12)",
        ),
        (
            90,
            Level::Error,
            "api",
            "c",
            "connection reset by peer (pool 3)",
        ),
        (95, Level::Info, "api", "d", "all good"),
    ];
    let grid = SampleGrid {
        start_micros: 0,
        step_micros: 60_000_000,
    };
    let mut miner = PatternMiner::new(MinerOptions {
        max_patterns: 10,
        samples: Some(grid),
    });
    for (seconds, level, service, id, message) in rows {
        miner.add_message(seconds * 1_000_000, level, service, id, message);
    }
    let patterns = miner.finish();
    assert_eq!(patterns.len(), 2);
    let reset = &patterns[0];
    assert_eq!(reset.pattern, "connection reset by peer (pool <_>)");
    assert_eq!(reset.count, 3);
    assert_eq!(reset.levels, [(Level::Warn, 1), (Level::Error, 2)].into());
    assert_eq!(
        reset.services,
        [("api".to_string(), 2), ("web".to_string(), 1)].into()
    );
    assert_eq!((reset.first_seen, reset.last_seen), (0, 90_000_000));
    assert_eq!(reset.example_id, "a");
    assert_eq!(reset.samples, [(0, 2), (60_000_000, 1)]);
    assert_eq!(
        reset.samples_by_level[&Level::Error],
        [(0, 1), (60_000_000, 1)]
    );
    let json = serde_json::to_value(reset).unwrap();
    assert_eq!(json["first_seen"], "1970-01-01T00:00:00.000000Z");
    assert_eq!(json["levels"]["error"], 2);
    assert_eq!(json["samples"][1], serde_json::json!([60_000, 1]));
    assert_eq!(patterns[1].pattern, "all good");
    // The query language finds the pattern's logs.
    let expr = query::parse(&format!("pattern:{}", query::quote(&reset.pattern))).unwrap();
    let records: Vec<LogRecord> = rows
        .iter()
        .map(|(seconds, level, service, id, message)| LogRecord {
            id: id.to_string(),
            timestamp: seconds * 1_000_000,
            level: *level,
            service: service.to_string(),
            message: message.to_string(),
            attributes: Default::default(),
            ..Default::default()
        })
        .collect();
    assert_eq!(records.iter().filter(|r| expr.matches(r)).count(), 3);
}

#[test]
fn varying_words_merge_and_memory_is_bounded() {
    let mut miner = PatternMiner::new(MinerOptions {
        max_patterns: 3,
        samples: None,
    });
    for (index, name) in ["alice", "bob", "carol", "alice"].iter().enumerate() {
        miner.add_message(
            index as i64,
            Level::Info,
            "s",
            "x",
            &format!("user {name} opened the door"),
        );
    }
    for index in 0..50 {
        // Fifty shapes: past three clusters, what fits none shares the
        // catch-all (the five-word one does not fit the `user` pattern).
        let message = vec!["word"; index + 1].join(" ");
        miner.add_message(index as i64, Level::Info, "s", "x", &message);
    }
    let patterns = miner.finish();
    assert_eq!(patterns[0].pattern, "<_>");
    assert_eq!(patterns[0].count, 48);
    assert!(
        patterns
            .iter()
            .any(|p| p.pattern == "user <_> opened the door" && p.count == 4)
    );
    assert_eq!(patterns.iter().map(|p| p.count).sum::<u64>(), 54);
    assert_eq!(patterns.len(), 4);
}
