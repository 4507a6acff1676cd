//! Setting values as people write them: durations (`250ms`, `5m`), whole
//! numbers within a range, URLs that may carry a password, secrets. Each component
//! validates its own section of the configuration with these and reports an
//! [`InvalidSetting`] naming the key; `config` adds the environment variables
//! that set that key. Pure: no I/O, no knowledge of any component.

use serde::{Deserialize, Serialize};
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

/// A password or token from the configuration. `Debug` shows `***`, and
/// there is no `Display`: the value leaves only through [`Secret::expose`],
/// at the one place that hands it to a client library. (It serializes as
/// itself, for the configuration layers, whose defaults are empty.)
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// A secret file's contents: one trailing line break is not part of the
    /// secret (`echo pw > file` writes one); an empty file is refused.
    pub fn from_file_text(key: &str, path: &str, text: &str) -> Result<Secret, InvalidSetting> {
        let value = text
            .strip_suffix('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
            .unwrap_or(text);
        if value.is_empty() {
            return Err(InvalidSetting::new(key, format!("{path} is empty")));
        }
        Ok(Secret(value.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

/// Query parameters whose value is a credential, by a part of their name
/// (`password`, `api_key`, `access_token`, `X-Amz-Signature`, …).
const SECRET_PARAMETERS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "sig",
    "credential",
    "jwt",
    "nkey",
    "seed",
];

/// A listener's address: empty means off; otherwise `HOST:PORT` with an IP
/// address (`example` shows one in the error).
pub fn optional_address(
    key: &str,
    text: &str,
    example: &str,
) -> Result<Option<std::net::SocketAddr>, InvalidSetting> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        InvalidSetting::new(
            key,
            format!("expected an address such as {example}, or empty for off; got {text:?}"),
        )
    })
}

/// A URL or DSN fit for logs, errors and `/health`: the password of
/// `scheme://user:secret@host` becomes `***`, a lone user part (a token, as
/// in `nats://TOKEN@host`) too, and so does the value of every query
/// parameter named like a credential (`?password=…`, `&token=…`). When in
/// doubt it hides more: the credentials end at the last `@`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let (authority, tail) = match rest.rfind('@') {
        Some(at) => {
            let (credentials, host) = (&rest[..at], &rest[at + 1..]);
            let user = match credentials.split_once(':') {
                Some((user, _)) => format!("{user}:***@"),
                None => "***@".to_string(),
            };
            (user, host)
        }
        None => (String::new(), rest),
    };
    let redacted = format!("{authority}{}", redact_query(tail));
    match scheme {
        Some(scheme) => format!("{scheme}://{redacted}"),
        None => redacted,
    }
}

/// `path?password=x&db=y#f` -> `path?password=***&db=y#f`.
fn redact_query(text: &str) -> String {
    let Some((before, query)) = text.split_once('?') else {
        return text.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_parameter(name) => format!("{name}=***"),
            _ => pair.to_string(),
        })
        .collect();
    let mut out = format!("{before}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMETERS.iter().any(|part| name.contains(part))
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
    fn urls_lose_every_credential_and_keep_the_rest() {
        let cases = [
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("nats://s3cr3t@h:4222", "nats://***@h:4222"),
            ("tls://u:p@h:4222", "tls://u:***@h:4222"),
            // An unescaped '@' or '/' in the password still hides all of it.
            (
                "clickhouse://u:p@ss/w@h:9000/db",
                "clickhouse://u:***@h:9000/db",
            ),
            (
                "clickhouse://h:9000/db?secure=true&password=s3cr3t&x=1",
                "clickhouse://h:9000/db?secure=true&password=***&x=1",
            ),
            (
                "https://h/hook?api_key=k1&Access_Token=t2&X-Amz-Signature=s3#top",
                "https://h/hook?api_key=***&Access_Token=***&X-Amz-Signature=***#top",
            ),
            ("h:9000?pwd=x", "h:9000?pwd=***"),
            ("no url at all", "no url at all"),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact_url(url), redacted, "{url}");
        }
    }

    #[test]
    fn secrets_never_show_and_secret_files_lose_one_line_break() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(secret.expose(), "hunter2");
        let read = Secret::from_file_text("nats.password_file", "/p", "pw\r\n").unwrap();
        assert_eq!(read.expose(), "pw");
        let read = Secret::from_file_text("nats.password_file", "/p", " pw \n\n").unwrap();
        assert_eq!(read.expose(), " pw \n");
        let error = Secret::from_file_text("nats.password_file", "/p", "\n").unwrap_err();
        assert_eq!(error.key, "nats.password_file");
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
