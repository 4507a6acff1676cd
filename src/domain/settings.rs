//! Setting values as people write them: durations (`250ms`, `5m`), whole
//! numbers within a range, URLs that may carry a password. Each component
//! validates its own section of the configuration with these and reports an
//! [`InvalidSetting`] naming the key; `config` adds the environment variables
//! that set that key. Pure: no I/O, no knowledge of any component.

use std::fmt;
use std::time::Duration;

/// A setting that cannot be used, named by its key as the file spells it
/// (`nats.ack_wait`), or by an item of a list (`alerts.rules[0].query`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSetting {
    pub key: String,
    pub problem: String,
}

impl InvalidSetting {
    pub fn new(key: impl Into<String>, problem: impl fmt::Display) -> InvalidSetting {
        InvalidSetting {
            key: key.into(),
            problem: problem.to_string(),
        }
    }
}

impl fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

impl std::error::Error for InvalidSetting {}

/// `value` as a count within `[min, max]`.
pub fn in_range(key: &str, value: i64, min: i64, max: i64) -> Result<usize, InvalidSetting> {
    if value < min || value > max {
        return Err(InvalidSetting::new(
            key,
            format!("{value} is out of range ({min} to {max})"),
        ));
    }
    Ok(value as usize)
}

/// `250ms`, `2s`, `1.5s`, `5m`, `1h`, `3d`, `2w`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        "d" => number * 86_400.0,
        "w" => number * 604_800.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

/// [`parse_duration`] for the setting `key`.
pub fn duration(key: &str, text: &str) -> Result<Duration, InvalidSetting> {
    parse_duration(text).ok_or_else(|| {
        InvalidSetting::new(
            key,
            format!("expected a duration such as 250ms, 2s, 5m or 1h, got {text:?}"),
        )
    })
}

/// `scheme://user:secret@host` -> `scheme://user:***@host`, for logs and
/// error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    let user = credentials.split(':').next().unwrap_or("");
    format!("{scheme}://{user}:***@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_redaction() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(
            redact_url("clickhouse://u:p@h:9000/db"),
            "clickhouse://u:***@h:9000/db"
        );
    }

    #[test]
    fn ranges_and_durations_name_their_key() {
        assert_eq!(in_range("a.b", 5, 1, 10), Ok(5));
        let error = in_range("a.b", 11, 1, 10).unwrap_err();
        assert_eq!(error.to_string(), "a.b: 11 is out of range (1 to 10)");
        let error = duration("a.c", "soon").unwrap_err();
        assert_eq!(error.key, "a.c");
        assert!(error.problem.contains("\"soon\""), "{error}");
    }
}
