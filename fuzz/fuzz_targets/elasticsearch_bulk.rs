//! Any bytes as a `POST /_bulk` body: every action answered in order,
//! never a panic; what is stored keeps the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oglogstream::ingest::fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::elasticsearch_bulk(data));
