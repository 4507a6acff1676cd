//! Replays the fuzz seeds and every crash the fuzzers ever found
//! (`fuzz/seeds/<target>/`) through the same parsers the fuzz targets drive,
//! so a regression fails `cargo test` without a fuzzer installed.

use oglogstream::domain::parse::{BulkFormat, LogLimits, parse_bulk, parse_log};
use oglogstream::domain::query;
use oglogstream::query::params;
use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no seeds in {}", dir.display());
    inputs
}

#[test]
fn parse_log_seeds() {
    let limits = LogLimits::default();
    let mut accepted = 0;
    for (name, data) in inputs("parse_log") {
        if let Ok(log) = parse_log(&data, &limits) {
            assert!(log.message.len() <= limits.max_message_bytes, "{name}");
            accepted += 1;
        }
    }
    assert!(accepted >= 1, "the valid seeds parse");
}

#[test]
fn parse_bulk_seeds() {
    let limits = LogLimits::default();
    for (name, data) in inputs("parse_bulk") {
        let _ = parse_bulk(&data, BulkFormat::JsonArray, &limits);
        let outcome =
            parse_bulk(&data, BulkFormat::Ndjson, &limits).expect("NDJSON never fails whole");
        let entries = data
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .count();
        assert_eq!(
            outcome.accepted.len() + outcome.rejected.len(),
            entries,
            "{name}"
        );
    }
}

#[test]
fn query_params_seeds() {
    for (name, data) in inputs("query_params") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let Ok(pairs) = params::decode(text) else {
            continue;
        };
        let scope = oglogstream::store::filter::Scope::default();
        if let Ok(query) = params::log_query(&pairs, &scope) {
            assert!((1..=params::MAX_LIMIT).contains(&query.limit), "{name}");
        }
        let _ = params::histogram_query(&pairs, 1_790_000_000_000_000, &scope);
        let _ = params::services_query(&pairs, &scope);
    }
}

/// The shippers' decoders: every seed (real clients' captured requests
/// among them) and every past crash through the fuzz targets' checks.
#[test]
fn shipper_decoder_seeds() {
    use oglogstream::ingest::fuzzing;
    type Check = fn(&[u8]);
    let targets: [(&str, Check); 4] = [
        ("otlp_logs", fuzzing::otlp_logs),
        ("loki_push", fuzzing::loki_push),
        ("elasticsearch_bulk", fuzzing::elasticsearch_bulk),
        ("syslog_stream", fuzzing::syslog_stream),
    ];
    for (target, check) in targets {
        for (_name, data) in inputs(target) {
            check(&data);
        }
    }
}

/// Requests captured from the real clients decode to the logs they carry.
#[test]
fn captured_client_requests_decode() {
    use oglogstream::ingest::{elasticsearch, loki, otlp};
    let limits = LogLimits::default();
    let seed = |target: &str, file: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fuzz/seeds")
                .join(target)
                .join(file),
        )
        .unwrap_or_else(|e| panic!("{target}/{file}: {e}"))
    };
    let otlp_count = |file: &str, encoding| {
        otlp::decode(&seed("otlp_logs", file), encoding, &limits)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .logs
            .len()
    };
    assert_eq!(otlp_count("python-sdk.pb", otlp::Encoding::Protobuf), 1);
    assert_eq!(otlp_count("js-sdk.json", otlp::Encoding::Json), 2);
    assert_eq!(
        otlp_count("every-value-kind.pb", otlp::Encoding::Protobuf),
        1
    );
    assert_eq!(otlp_count("every-value-kind.json", otlp::Encoding::Json), 1);
    let loki_count = |file: &str, format| {
        loki::decode(&seed("loki_push", file), format, &limits)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .logs
            .len()
    };
    assert_eq!(loki_count("python-v1.json", loki::Format::Json), 1);
    assert_eq!(loki_count("python-legacy.json", loki::Format::Json), 1);
    assert_eq!(loki_count("winston.pb", loki::Format::Protobuf), 2);
    let bulk_body = seed("elasticsearch_bulk", "python-helpers.ndjson");
    let bulk = elasticsearch::decode_bulk(&bulk_body, None, &limits).expect("a bulk body");
    assert_eq!((bulk.logs.len(), bulk.refused()), (2, 0));
}

#[test]
fn parse_query_seeds() {
    let mut accepted = 0;
    for (name, data) in inputs("parse_query") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        match query::parse(text) {
            Ok(_) => accepted += 1,
            Err(error) => assert!(
                (1..=text.chars().count() + 1).contains(&error.position),
                "{name}: {error}"
            ),
        }
    }
    assert!(accepted >= 2, "the valid seeds parse");
}
