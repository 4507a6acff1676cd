//! Any bytes as a `POST /log/bulk` body, as a JSON array and as NDJSON:
//! every entry is either accepted or reported, never lost, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oglogstream::domain::parse::{BulkFormat, LogLimits, parse_bulk};

fuzz_target!(|data: &[u8]| {
    let limits = LogLimits::default();
    let _ = parse_bulk(data, BulkFormat::JsonArray, &limits);
    if let Ok(outcome) = parse_bulk(data, BulkFormat::Ndjson, &limits) {
        let entries = data
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .count();
        assert_eq!(outcome.accepted.len() + outcome.rejected.len(), entries);
    }
});
