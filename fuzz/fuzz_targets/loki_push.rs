//! Any bytes as a `POST /loki/api/v1/push` body (JSON, protobuf, snappy):
//! an answer, never a panic; what is accepted keeps the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oglogstream::ingest::fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::loki_push(data));
