//! Logs of realistic variety for benchmarks: many services with skewed
//! volumes, skewed levels, messages from a few bytes to a couple of
//! kilobytes, and about six attributes (region, Kubernetes pod, HTTP status,
//! trace id...) of realistic cardinality. Deterministic for a given seed, so two
//! runs ingest the same data.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A small, fast PRNG (SplitMix64): good enough to vary test data, no crate.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A fraction in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Service names: a few big producers and a long tail, like a real fleet.
pub const SERVICES: &[&str] = &[
    "web-api",
    "auth-service",
    "payments",
    "checkout",
    "inventory",
    "search",
    "notifications",
    "billing",
    "user-profile",
    "recommendations",
    "cart",
    "shipping",
    "orders",
    "gateway",
    "session-store",
    "email-sender",
    "sms-sender",
    "image-resizer",
    "video-transcoder",
    "analytics-ingest",
    "report-builder",
    "fraud-detector",
    "ledger",
    "pricing",
    "catalog",
    "reviews",
    "loyalty",
    "coupon-service",
    "feature-flags",
    "config-service",
    "scheduler",
    "cron-runner",
    "queue-worker",
    "export-worker",
    "import-worker",
    "audit-log",
    "identity-provider",
    "token-service",
    "rate-limiter",
    "edge-proxy",
    "cdn-purger",
    "geo-lookup",
    "currency-rates",
    "tax-calculator",
    "warehouse-sync",
    "supplier-api",
    "partner-webhooks",
    "mobile-bff",
    "admin-console",
    "support-desk",
    "chat-service",
    "presence",
    "metrics-relay",
    "backup-agent",
    "db-migrator",
    "cache-warmer",
    "sitemap-builder",
    "ml-scorer",
    "ab-testing",
    "legacy-monolith",
];

/// Words a search benchmark looks for: `COMMON_TERM` is in about 2% of
/// messages, `RARE_TERM` in about 0.01%, `ABSENT_TERM` in none.
pub const COMMON_TERM: &str = "timeout";
pub const RARE_TERM: &str = "deadlock";
pub const ABSENT_TERM: &str = "zanzibar";

const REGIONS: &[&str] = &[
    "eu-west-1",
    "eu-central-1",
    "us-east-1",
    "us-west-2",
    "ap-south-1",
];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const PATHS: &[&str] = &[
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/cart/items",
    "/api/v2/search",
    "/health",
    "/api/v1/payments/authorize",
    "/api/v1/inventory/reserve",
];

#[derive(Serialize)]
pub struct GeneratedLog<'a> {
    pub level: &'static str,
    pub message: String,
    pub service: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<&'static str, String>,
}

/// FNV-1a: a stable per-service number for pod names.
fn hash_text(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Produces logs; `timestamp` is written only when the caller gives one.
pub struct Corpus {
    rng: Rng,
    /// The current trace id, shared by consecutive logs of one trace.
    trace: String,
    /// The current span id within that trace.
    span: String,
    /// Cumulative weights over `SERVICES` (Zipf-like, exponent 1).
    service_weights: Vec<f64>,
}

impl Corpus {
    pub fn new(seed: u64) -> Corpus {
        let mut total = 0.0;
        let service_weights = (1..=SERVICES.len())
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect::<Vec<_>>();
        let service_weights = service_weights.iter().map(|w| w / total).collect();
        Corpus {
            rng: Rng::new(seed),
            trace: String::new(),
            span: String::new(),
            service_weights,
        }
    }

    pub fn service(&mut self) -> &'static str {
        let pick = self.rng.unit();
        let index = self
            .service_weights
            .partition_point(|w| *w < pick)
            .min(SERVICES.len() - 1);
        SERVICES[index]
    }

    /// debug 15%, info 65%, warn 12%, error 7%, fatal 1%.
    pub fn level(&mut self) -> &'static str {
        match self.rng.below(100) {
            0..15 => "debug",
            15..80 => "info",
            80..92 => "warn",
            92..99 => "error",
            _ => "fatal",
        }
    }

    pub fn log(&mut self, timestamp: Option<String>) -> GeneratedLog<'static> {
        let level = self.level();
        let service = self.service();
        let message = self.message(level);
        let attributes = self.attributes(service, level);
        GeneratedLog {
            level,
            message,
            service,
            timestamp,
            attributes,
        }
    }

    /// Attributes as shippers send them: the Kubernetes pod and region on
    /// most logs, HTTP fields on request logs, trace and span ids on 60% of
    /// logs (a trace's four logs on average follow each other, across
    /// services, two to a span), and ids with millions of values. About six
    /// per log.
    fn attributes(&mut self, service: &str, level: &str) -> BTreeMap<&'static str, String> {
        let mut attributes = BTreeMap::new();
        let rng = &mut self.rng;
        if rng.below(10) < 9 {
            attributes.insert(
                "region",
                REGIONS[rng.below(REGIONS.len() as u64) as usize].to_string(),
            );
        }
        if rng.below(100) < 85 {
            // A handful of pods per service: a few hundred values in all.
            let pod = rng.below(6);
            attributes.insert(
                "k8s.pod.name",
                format!(
                    "{service}-{:05x}-{:05x}",
                    hash_text(service) & 0xfffff,
                    pod * 7919
                ),
            );
            attributes.insert(
                "k8s.namespace",
                if rng.below(10) == 0 {
                    "staging"
                } else {
                    "prod"
                }
                .to_string(),
            );
        }
        if rng.below(2) == 0 {
            // Request logs: errors answer 5xx more often.
            let server_error = match level {
                "error" | "fatal" => rng.below(2) == 0,
                _ => rng.below(100) < 2,
            };
            let status = if server_error {
                [500, 502, 503, 504][rng.below(4) as usize]
            } else {
                [200, 200, 200, 200, 200, 201, 204, 301, 304, 400, 401, 404][rng.below(12) as usize]
            };
            attributes.insert("http.status", status.to_string());
            attributes.insert(
                "http.method",
                METHODS[rng.below(METHODS.len() as u64) as usize].to_string(),
            );
            attributes.insert(
                "http.route",
                PATHS[rng.below(PATHS.len() as u64) as usize].to_string(),
            );
            attributes.insert("duration_ms", (1 + rng.below(900)).to_string());
        }
        if rng.below(10) < 6 {
            // One trace spans a few logs: a new one a quarter of the time,
            // and a new span within it every other log.
            let new_trace = self.trace.is_empty() || rng.below(4) == 0;
            if new_trace {
                self.trace = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
            }
            if new_trace || rng.below(2) == 0 {
                self.span = format!("{:016x}", rng.next_u64());
            }
            attributes.insert("trace_id", self.trace.clone());
            attributes.insert("span_id", self.span.clone());
        }
        if rng.below(4) == 0 {
            attributes.insert("user_id", rng.below(5_000_000).to_string());
        }
        if rng.below(5) == 0 {
            attributes.insert("version", format!("1.{}.{}", rng.below(30), rng.below(10)));
        }
        attributes
    }

    /// One JSON object, no trailing newline.
    pub fn log_json(&mut self, timestamp: Option<String>, out: &mut Vec<u8>) {
        let log = self.log(timestamp);
        // Serialising plain strings and a map of strings cannot fail.
        let _ = serde_json::to_writer(&mut *out, &log);
    }

    fn message(&mut self, level: &str) -> String {
        let rng = &mut self.rng;
        let mut text = String::with_capacity(128);
        // Rare and common search terms, independent of the template.
        let roll = rng.below(10_000);
        if roll == 0 {
            let _ = write!(
                text,
                "{RARE_TERM} detected on table orders_{}, transaction rolled back; ",
                rng.below(64)
            );
        } else if roll < 200 {
            let _ = write!(
                text,
                "upstream {COMMON_TERM} after {}ms calling {}; ",
                100 + rng.below(5000),
                PATHS[rng.below(PATHS.len() as u64) as usize]
            );
        }
        match (level, rng.below(8)) {
            ("debug", _) => {
                let _ = write!(
                    text,
                    "cache {} for key user:{}:profile",
                    if rng.below(3) == 0 { "miss" } else { "hit" },
                    rng.below(1_000_000)
                );
            }
            ("error" | "fatal", 0) => {
                // A stack trace: the long tail of message sizes.
                let _ = writeln!(
                    text,
                    "unhandled exception: NullReferenceException: object reference not set (request r-{:08x})",
                    rng.next_u64() as u32
                );
                for frame in 0..(5 + rng.below(40)) {
                    let _ = writeln!(
                        text,
                        "    at Service.Module{}.Handler{}.Invoke(Context ctx) in /src/app/module_{}.cs:line {}",
                        frame,
                        rng.below(100),
                        rng.below(300),
                        rng.below(2000)
                    );
                }
            }
            ("error" | "fatal", _) => {
                let _ = write!(
                    text,
                    "failed to process order {}: {} (attempt {} of 3)",
                    rng.below(100_000_000),
                    [
                        "connection refused",
                        "card declined",
                        "invalid state transition",
                        "upstream returned 502",
                        "constraint violation on orders_pkey",
                    ][rng.below(5) as usize],
                    1 + rng.below(3)
                );
            }
            ("warn", _) => {
                let _ = write!(
                    text,
                    "slow query: {}ms on {} (threshold 500ms)",
                    500 + rng.below(4000),
                    ["orders", "users", "inventory", "sessions"][rng.below(4) as usize]
                );
            }
            (_, 0..5) => {
                let _ = write!(
                    text,
                    "{} {} {} {}ms",
                    METHODS[rng.below(METHODS.len() as u64) as usize],
                    PATHS[rng.below(PATHS.len() as u64) as usize],
                    [200, 200, 200, 201, 204, 301, 404][rng.below(7) as usize],
                    1 + rng.below(900)
                );
            }
            (_, 5..7) => {
                let _ = write!(
                    text,
                    "user {} signed in from {} using {}",
                    rng.below(5_000_000),
                    REGIONS[rng.below(REGIONS.len() as u64) as usize],
                    ["password", "sso", "passkey", "magic link"][rng.below(4) as usize]
                );
            }
            _ => {
                let _ = write!(
                    text,
                    "processed batch {} with {} items in {}ms; queue depth {}; next run scheduled in {}s",
                    rng.below(1_000_000),
                    rng.below(10_000),
                    rng.below(60_000),
                    rng.below(500),
                    rng.below(600)
                );
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse::{LogLimits, parse_log};

    #[test]
    fn generated_logs_are_valid_and_varied() {
        let mut corpus = Corpus::new(7);
        let mut services = std::collections::HashSet::new();
        let mut levels = std::collections::HashMap::new();
        let mut longest = 0;
        for _ in 0..20_000 {
            let mut json = Vec::new();
            corpus.log_json(Some("2025-01-01T00:00:00Z".into()), &mut json);
            let log = parse_log(&json, &LogLimits::default()).expect("valid");
            services.insert(log.service);
            *levels.entry(log.level).or_insert(0) += 1;
            longest = longest.max(log.message.len());
        }
        assert!(services.len() > 40, "{}", services.len());
        assert_eq!(levels.len(), 5);
        assert!(longest > 1000, "{longest}");
    }

    #[test]
    fn attributes_have_realistic_spread() {
        let mut corpus = Corpus::new(11);
        let mut keys: std::collections::HashMap<&str, std::collections::HashSet<String>> =
            Default::default();
        let mut server_errors = 0;
        let rounds = 20_000;
        let mut total = 0;
        for _ in 0..rounds {
            let log = corpus.log(None);
            total += log.attributes.len();
            if log
                .attributes
                .get("http.status")
                .is_some_and(|s| s.starts_with('5'))
            {
                server_errors += 1;
            }
            for (key, value) in log.attributes {
                keys.entry(key).or_default().insert(value);
            }
        }
        let average = total as f64 / rounds as f64;
        assert!((4.5..7.0).contains(&average), "{average}");
        assert_eq!(keys["region"].len(), REGIONS.len());
        assert!(
            (100..1000).contains(&keys["k8s.pod.name"].len()),
            "{}",
            keys["k8s.pod.name"].len()
        );
        // 60% of 20,000 logs in traces of four on average.
        assert!(
            (2000..4500).contains(&keys["trace_id"].len()),
            "{} traces",
            keys["trace_id"].len()
        );
        assert!(keys["span_id"].len() > keys["trace_id"].len());
        assert!(
            (100..1500).contains(&server_errors),
            "{server_errors} 5xx of {rounds}"
        );
    }
}
