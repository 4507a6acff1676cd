//! Micro-benchmarks of the hot paths: parsing and validating logs (one, a
//! JSON array, NDJSON, and the shippers' protocols), writing a batch to the embedded store, and rendering
//! a query result. `cargo bench --bench hot_paths` measures; `cargo test
//! --all-targets` runs each once as a smoke test. End-to-end load lives in
//! the load generator (`make bench`), not here.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use oglogstream::domain::parse::{BulkFormat, LogLimits, parse_bulk, parse_log};
use oglogstream::domain::time::format_rfc3339;
use oglogstream::domain::{LogBatch, LogRecord};
use oglogstream::loadgen::corpus::Corpus;
use oglogstream::store::Store;
use oglogstream::store::sqlite::SqliteStore;
use std::hint::black_box;

const BULK_LOGS: usize = 1000;
/// Transaction sizes compared by the store benchmark.
const STORE_BATCHES: [usize; 4] = [500, 2000, 5000, 20_000];
const PAGE: usize = 100;

fn json_logs(count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut corpus = Corpus::new(seed);
    (0..count)
        .map(|i| {
            let mut json = Vec::new();
            let timestamp = format_rfc3339(1_735_689_600_000_000 + i as i64 * 1_000);
            corpus.log_json(Some(timestamp), &mut json);
            json
        })
        .collect()
}

fn records(count: usize, seed: u64) -> Vec<LogRecord> {
    let limits = LogLimits::default();
    json_logs(count, seed)
        .iter()
        .enumerate()
        .map(|(i, json)| {
            let log = parse_log(json, &limits).expect("generated logs are valid");
            LogRecord {
                id: format!("0194{i:028x}"),
                timestamp: log.timestamp.unwrap_or_default(),
                level: log.level,
                service: log.service,
                message: log.message,
                attributes: log.attributes,
                ..Default::default()
            }
        })
        .collect()
}

fn parsing(c: &mut Criterion) {
    let limits = LogLimits::default();
    let logs = json_logs(BULK_LOGS, 1);
    let mut group = c.benchmark_group("parse");

    let one = &logs[0];
    group.throughput(Throughput::Elements(1));
    group.bench_function("one log", |b| {
        b.iter(|| parse_log(black_box(one), &limits).expect("valid"))
    });

    let mut array = b"[".to_vec();
    for (i, log) in logs.iter().enumerate() {
        if i > 0 {
            array.push(b',');
        }
        array.extend_from_slice(log);
    }
    array.push(b']');
    let mut ndjson = Vec::new();
    for log in &logs {
        ndjson.extend_from_slice(log);
        ndjson.push(b'\n');
    }
    group.throughput(Throughput::Elements(BULK_LOGS as u64));
    group.bench_function("bulk JSON array, 1000 logs", |b| {
        b.iter(|| parse_bulk(black_box(&array), BulkFormat::JsonArray, &limits).expect("valid"))
    });
    group.bench_function("bulk NDJSON, 1000 logs", |b| {
        b.iter(|| parse_bulk(black_box(&ndjson), BulkFormat::Ndjson, &limits).expect("valid"))
    });
    group.throughput(Throughput::Bytes(ndjson.len() as u64));
    group.bench_function("bulk NDJSON, bytes", |b| {
        b.iter(|| parse_bulk(black_box(&ndjson), BulkFormat::Ndjson, &limits).expect("valid"))
    });
    group.finish();
}

/// The shippers' decoders on 1000-log requests of the same corpus, beside
/// `parse/bulk NDJSON, 1000 logs` (snappy and gzip undone by the caller are
/// measured apart: `unsnappy` is in the Loki row, as the handler runs it).
fn shippers(c: &mut Criterion) {
    use oglogstream::domain::shippers::{compression, framing};
    use oglogstream::ingest::{elasticsearch, loki, otlp, syslog};
    use oglogstream::loadgen::shippers::{elasticsearch_body, loki_body, otlp_body, syslog_frames};
    let limits = LogLimits::default();
    let mut corpus = Corpus::new(11);
    let logs: Vec<_> = (0..BULK_LOGS).map(|_| corpus.log(None)).collect();
    let time = 1_735_732_800_000_000;
    let (otlp_request, loki_request) = (otlp_body(&logs, time), loki_body(&logs, time));
    let (bulk_request, syslog_stream) =
        (elasticsearch_body(&logs, time), syslog_frames(&logs, time));
    let mut group = c.benchmark_group("shippers");
    group.throughput(Throughput::Elements(BULK_LOGS as u64));
    group.bench_function("OTLP protobuf, 1000 logs", |b| {
        b.iter(|| {
            otlp::decode(black_box(&otlp_request), otlp::Encoding::Protobuf, &limits)
                .expect("valid")
        })
    });
    group.bench_function("Loki snappy protobuf, 1000 logs", |b| {
        b.iter(|| {
            let inflated =
                compression::unsnappy(black_box(&loki_request), 1 << 24).expect("snappy");
            loki::decode(&inflated, loki::Format::Protobuf, &limits).expect("valid")
        })
    });
    group.bench_function("Elasticsearch bulk, 1000 logs", |b| {
        b.iter(|| {
            elasticsearch::decode_bulk(black_box(&bulk_request), None, &limits).expect("valid")
        })
    });
    group.bench_function("syslog octet-counted, 1000 lines", |b| {
        b.iter(|| {
            let mut framer = framing::Framer::new(1 << 16);
            framer.extend(black_box(&syslog_stream));
            let mut decoded = 0;
            while let Some(framing::Frame::Message(frame)) = framer.next_frame() {
                decoded += usize::from(syslog::decode(frame, time, &limits).is_ok());
            }
            decoded
        })
    });
    group.finish();
}

fn storing(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("sqlite insert");
    // Per-log cost against the transaction size: the measured basis of the
    // default `process.batch_size`.
    for batch_size in STORE_BATCHES {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = SqliteStore::open(dir.path()).expect("the store opens");
        let template = records(batch_size, 2);
        // Fresh ids every round, as ingest stamps them: the store skips a
        // log whose id it already holds.
        let ids = oglogstream::domain::id::IdGenerator::new();
        let mut clock = 0i64;
        group.throughput(Throughput::Elements(batch_size as u64));
        group.bench_function(format!("{batch_size} logs per transaction"), |b| {
            b.iter_batched(
                || {
                    // Later timestamps each time, as in service: the database
                    // grows at its end.
                    clock += 1_000_000_000;
                    let batch: LogBatch = template
                        .iter()
                        .map(|record| LogRecord {
                            id: ids.next((record.timestamp + clock) as u64 / 1000),
                            timestamp: record.timestamp + clock,
                            ..record.clone()
                        })
                        .collect();
                    vec![batch]
                },
                |batches| {
                    runtime
                        .block_on(store.insert(&batches))
                        .expect("insert succeeds")
                },
                BatchSize::LargeInput,
            )
        });
        runtime.block_on(store.close());
    }
    group.finish();
}

fn rendering(c: &mut Criterion) {
    let page = records(PAGE, 3);
    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(PAGE as u64));
    group.bench_function("/api/logs page of 100 rows to JSON", |b| {
        b.iter(|| serde_json::to_vec(black_box(&page)).expect("serialises"))
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("one live-tail frame", |b| {
        b.iter(|| serde_json::to_string(black_box(&page[0])).expect("serialises"))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: these guide optimisation; the load generator gives the
    // end-to-end figures.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = parsing, shippers, storing, rendering
}
criterion_main!(benches);
