//! Loki's request parameters: the query string, plus a form-encoded body
//! for `POST`; times as integer nanoseconds, float seconds or RFC 3339; durations (`step`, `since`, `interval`) as
//! Prometheus durations (`30s`, `1m`, `1h30m`) or float seconds; `limit`
//! and `direction` as Loki takes them. Pure, except for reading the body.

use super::error::LokiError;
use crate::domain::logql::parse_duration;
use crate::domain::time::parse_rfc3339;
use crate::http::body::{media_type, read_limited};
use crate::store::Order;
use actix_web::HttpRequest;
use actix_web::web::Payload;
use std::time::Duration;

/// The largest form body taken (Loki's `series` may carry many
/// `match[]`); larger is 413.
const MAX_FORM_BYTES: usize = 1 << 20;
const FORM_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
const HOUR_NANOS: i64 = 3600 * NANOS_PER_SECOND;

/// The decoded parameters of one request.
#[derive(Clone, Debug, Default)]
pub struct LokiParams {
    pairs: Vec<(String, String)>,
}

impl LokiParams {
    /// The form body's pairs (a `POST` with
    /// `application/x-www-form-urlencoded`), then the query string's, as
    /// Go's `Request.Form` orders them.
    pub async fn read(request: &HttpRequest, payload: Payload) -> Result<LokiParams, LokiError> {
        let mut pairs = Vec::new();
        if request.method() == actix_web::http::Method::POST
            && media_type(request).as_deref() == Some("application/x-www-form-urlencoded")
        {
            let body = read_limited(request, payload, MAX_FORM_BYTES, FORM_READ_TIMEOUT).await?;
            pairs = serde_urlencoded::from_bytes(&body)
                .map_err(|e| LokiError::bad_request(format!("the form body is not valid: {e}")))?;
        }
        pairs.extend(decode(request.query_string())?);
        Ok(LokiParams { pairs })
    }

    pub fn from_query_string(query_string: &str) -> Result<LokiParams, LokiError> {
        Ok(LokiParams {
            pairs: decode(query_string)?,
        })
    }

    /// The first non-empty value of `name`.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (`match[]`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `query`, which the endpoint needs.
    pub fn query(&self) -> Result<&str, LokiError> {
        self.one("query")
            .ok_or_else(|| LokiError::bad_parameter("query", "the query is missing"))
    }

    /// A time parameter in nanoseconds, `default` when absent.
    pub fn time(&self, name: &str, default: i64) -> Result<i64, LokiError> {
        match self.one(name) {
            None => Ok(default),
            Some(text) => parse_time(text).map_err(|e| LokiError::bad_parameter(name, e)),
        }
    }

    /// A duration parameter in nanoseconds.
    pub fn duration(&self, name: &str) -> Result<Option<i64>, LokiError> {
        self.one(name)
            .map(|text| {
                parse_seconds_or_duration(text).map_err(|e| LokiError::bad_parameter(name, e))
            })
            .transpose()
    }

    /// `start`, `end` (default now) and `since` (default `default_since`):
    /// `[start, end)` in nanoseconds. A `start` wins over `since`.
    pub fn range(&self, now: i64, default_since: i64) -> Result<(i64, i64), LokiError> {
        let end = self.time("end", now)?;
        let since = self.duration("since")?.unwrap_or(default_since);
        let start = self.time("start", end.min(now).saturating_sub(since))?;
        if end < start {
            return Err(LokiError::bad_request(
                "end timestamp must not be before or equal to start time",
            ));
        }
        Ok((start, end))
    }

    /// `limit`, `default` when absent.
    pub fn limit(&self, default: usize) -> Result<usize, LokiError> {
        match self.one("limit") {
            None => Ok(default),
            Some(text) => text.trim().parse::<u32>().map(|n| n as usize).map_err(|_| {
                LokiError::bad_parameter("limit", format!("expected a whole number, got {text:?}"))
            }),
        }
    }

    /// `direction`: `backward` (newest first, the default) or `forward`.
    pub fn direction(&self) -> Result<Order, LokiError> {
        match self
            .one("direction")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("backward") => Ok(Order::Desc),
            Some("forward") => Ok(Order::Asc),
            Some(other) => Err(LokiError::bad_parameter(
                "direction",
                format!("expected forward or backward, got {other:?}"),
            )),
        }
    }

    /// `step` in nanoseconds; Loki's default gives about 250 points.
    pub fn step(&self, start: i64, end: i64) -> Result<i64, LokiError> {
        match self.duration("step")? {
            Some(step) if step <= 0 => Err(LokiError::bad_request(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            )),
            Some(step) => Ok(step),
            None => Ok(default_step(start, end)),
        }
    }
}

fn decode(query_string: &str) -> Result<Vec<(String, String)>, LokiError> {
    serde_urlencoded::from_str(query_string)
        .map_err(|e| LokiError::bad_request(format!("the query string is not valid: {e}")))
}

/// Loki's default step: the range over 250, in whole seconds, at least 1 s.
pub fn default_step(start: i64, end: i64) -> i64 {
    let seconds = (end.saturating_sub(start) / NANOS_PER_SECOND / 250).max(1);
    seconds * NANOS_PER_SECOND
}

/// The default range of `query_range` and friends: the last hour.
pub const DEFAULT_SINCE: i64 = HOUR_NANOS;
/// The default range of `labels`, `label/…/values`, `series`: six hours.
pub const DEFAULT_LABELS_SINCE: i64 = 6 * HOUR_NANOS;

/// A timestamp as Loki reads one, in nanoseconds: an integer
/// (nanoseconds), a decimal number of seconds, or RFC 3339 with up to nine
/// fractional digits.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Some(seconds) = decimal_seconds(text) {
        return seconds;
    }
    if !text.is_empty()
        && text
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        // Always nanoseconds, however few the digits: Grafana's Save & test
        // asks for `time=4000000000`, four seconds after the epoch.
        return text
            .parse()
            .map_err(|_| format!("{text:?} is out of range"));
    }
    rfc3339_nanos(text).map_err(|e| {
        format!("cannot parse {text:?} as a timestamp: use nanoseconds, seconds or RFC 3339 ({e})")
    })
}

/// `1738160741.883`: seconds with a fraction, to the nanosecond.
fn decimal_seconds(text: &str) -> Option<Result<i64, String>> {
    let (whole, fraction) = text.split_once('.')?;
    let negative = whole.starts_with('-');
    let digits = whole.trim_start_matches('-');
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(digits) || !all_digits(fraction) || (digits.is_empty() && fraction.is_empty()) {
        return None;
    }
    let out_of_range = || format!("{text:?} is out of range");
    let seconds: i64 = if digits.is_empty() {
        0
    } else {
        match digits.parse() {
            Ok(seconds) => seconds,
            Err(_) => return Some(Err(out_of_range())),
        }
    };
    let mut nanos: i64 = 0;
    for (index, byte) in fraction.bytes().enumerate().take(9) {
        nanos += i64::from(byte - b'0') * 10i64.pow(8 - index as u32);
    }
    let total = seconds
        .checked_mul(NANOS_PER_SECOND)
        .and_then(|s| s.checked_add(nanos))
        .ok_or_else(out_of_range);
    Some(total.map(|t| if negative { -t } else { t }))
}

/// RFC 3339, keeping the fraction's digits below the microsecond.
fn rfc3339_nanos(text: &str) -> Result<i64, String> {
    let (micros_text, sub_micro) = match text.find('.') {
        Some(dot) => {
            let digits_end = text[dot + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(text.len(), |at| dot + 1 + at);
            let digits = &text[dot + 1..digits_end];
            let sub_micro: i64 = digits
                .bytes()
                .skip(6)
                .take(3)
                .enumerate()
                .map(|(index, byte)| i64::from(byte - b'0') * 10i64.pow(2 - index as u32))
                .sum();
            (text.to_string(), sub_micro)
        }
        None => (text.to_string(), 0),
    };
    let micros = parse_rfc3339(&micros_text)?;
    Ok(micros * 1000 + sub_micro)
}

/// A duration as Loki's `step`, `since` and `interval` take it: a
/// Prometheus duration (`30s`, `1h30m`, `500ms`) or a number of seconds
/// (`15`, `0.5`).
pub fn parse_seconds_or_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        let nanos = (seconds * NANOS_PER_SECOND as f64).round();
        if !nanos.is_finite() || nanos.abs() > i64::MAX as f64 {
            return Err(format!("{text:?} is out of range"));
        }
        return Ok(nanos as i64);
    }
    parse_duration(text).ok_or_else(|| {
        format!("cannot parse {text:?} as a duration: use 30s, 5m, 1h or a number of seconds")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_form() {
        let second = NANOS_PER_SECOND;
        assert_eq!(
            parse_time("1738160741883000000"),
            Ok(1_738_160_741_883_000_000)
        );
        assert_eq!(parse_time("4000000000"), Ok(4 * second));
        assert_eq!(parse_time("1738160741.883"), Ok(1_738_160_741_883_000_000));
        assert_eq!(parse_time("1.000000001"), Ok(second + 1));
        assert_eq!(
            parse_time("2025-01-29T14:25:41.883Z"),
            Ok(1_738_160_741_883_000_000)
        );
        assert_eq!(
            parse_time("2025-01-29T15:25:41.883000007+01:00"),
            Ok(1_738_160_741_883_000_007)
        );
        for bad in [
            "yesterday",
            "",
            "1.2.3",
            "99999999999999999999",
            "2025-13-01T00:00:00Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_steps() {
        let second = NANOS_PER_SECOND;
        assert_eq!(parse_seconds_or_duration("30s"), Ok(30 * second));
        assert_eq!(parse_seconds_or_duration("1m30s"), Ok(90 * second));
        assert_eq!(parse_seconds_or_duration("60000ms"), Ok(60 * second));
        assert_eq!(parse_seconds_or_duration("15"), Ok(15 * second));
        assert_eq!(parse_seconds_or_duration("0.5"), Ok(second / 2));
        assert!(parse_seconds_or_duration("soon").is_err());
        assert_eq!(default_step(0, 3600 * second), 14 * second);
        assert_eq!(default_step(0, 10 * second), second);
    }

    #[test]
    fn ranges_limits_and_directions() {
        let params = LokiParams::from_query_string(
            "start=100.0&end=200.0&limit=7&direction=FORWARD&step=1m",
        )
        .unwrap();
        let second = NANOS_PER_SECOND;
        assert_eq!(
            params.range(0, DEFAULT_SINCE).unwrap(),
            (100 * second, 200 * second)
        );
        assert_eq!(params.limit(100).unwrap(), 7);
        assert_eq!(params.direction().unwrap(), Order::Asc);
        assert_eq!(params.step(0, 1).unwrap(), 60 * second);
        let since = LokiParams::from_query_string("since=5m&end=1000.0").unwrap();
        assert_eq!(
            since.range(2000 * second, DEFAULT_SINCE).unwrap(),
            (700 * second, 1000 * second)
        );
        let defaults = LokiParams::from_query_string("").unwrap();
        assert_eq!(
            defaults.range(10 * HOUR_NANOS, DEFAULT_SINCE).unwrap(),
            (9 * HOUR_NANOS, 10 * HOUR_NANOS)
        );
        for (query, name) in [
            ("limit=-1", "limit"),
            ("direction=up", "direction"),
            ("start=x", "start"),
            ("step=0", "step"),
        ] {
            let params = LokiParams::from_query_string(query).unwrap();
            let error = params
                .limit(1)
                .and(params.direction().map(|_| 0))
                .and(params.range(0, 0).map(|_| 0))
                .and(params.step(0, 1).map(|_| 0))
                .unwrap_err();
            assert!(
                error.message().contains(name) || name == "step",
                "{query}: {}",
                error.message()
            );
        }
        let backwards = LokiParams::from_query_string("start=200&end=100").unwrap();
        assert!(backwards.range(0, 0).is_err());
    }
}
