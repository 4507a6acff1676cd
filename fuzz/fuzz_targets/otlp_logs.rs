//! Any bytes as a `POST /v1/logs` body (protobuf and OTLP/JSON): an answer,
//! never a panic; what is accepted keeps the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oglogstream::ingest::fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::otlp_logs(data));
