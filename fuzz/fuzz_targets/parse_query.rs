//! Any text as a `query`: an expression or an error pointing inside the
//! text, never a panic; an accepted expression evaluates without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oglogstream::domain::query;
use oglogstream::domain::{Level, LogRecord};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match query::parse(text) {
        Ok(expr) => {
            let record = LogRecord {
                id: "id-1".into(),
                timestamp: 0,
                level: Level::Warn,
                service: "Checkout".into(),
                message: "connection refused after 3s".into(),
                attributes: [("http.status".to_string(), "503".to_string())].into(),
                ..Default::default()
            };
            let _ = expr.matches(&record);
        }
        Err(error) => assert!((1..=text.chars().count() + 1).contains(&error.position)),
    }
});
