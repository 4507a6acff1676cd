//! Any bytes as a `POST /log` body: an answer, never a panic; anything
//! accepted obeys the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oglogstream::domain::parse::{LogLimits, parse_log};

fuzz_target!(|data: &[u8]| {
    let limits = LogLimits::default();
    if let Ok(log) = parse_log(data, &limits) {
        assert!(!log.message.trim().is_empty() && log.message.len() <= limits.max_message_bytes);
        assert!(!log.service.trim().is_empty() && log.service.chars().count() <= limits.max_service_chars);
        assert!(log.attributes.len() <= limits.max_attributes);
    }
});
