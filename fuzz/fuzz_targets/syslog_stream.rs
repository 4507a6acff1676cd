//! Any bytes as a syslog TCP stream (both framings, split across reads):
//! bounded frames, each decoded or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oglogstream::ingest::fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::syslog_stream(data));
