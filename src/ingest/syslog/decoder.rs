//! One syslog message (RFC 5424, or the BSD format of RFC 3164) to our log.
//! Framing (where a message ends on TCP) is `framing`'s job; a UDP datagram
//! is one message.
//!
//! Severity is the level ([`SEVERITY_LEVELS`]), APP-NAME (3164: the TAG)
//! the service, MSG the message; the hostname, the facility's name, PROCID,
//! MSGID and each structured-data parameter (`<sd-id>.<name>`) are
//! attributes. RFC 3164 timestamps have no year and no zone: the year is the
//! one that puts the instant nearest to the receipt time, the zone UTC.
//! A line without a `<PRI>` is not syslog: it is refused, for the caller to
//! count and skip.

use crate::domain::level::Level;
use crate::domain::parse::{LogLimits, NewLog};
use crate::domain::shippers::quoted::quoted;
use crate::domain::shippers::record::{Fields as LogFields, Oversize, RecordBuilder};
use crate::domain::time::{Micros, parse_rfc3339};
use std::borrow::Cow;

/// Severity 0–7 (emergency … debug) to our levels.
pub const SEVERITY_LEVELS: [Level; 8] = [
    Level::Fatal, // 0 emergency
    Level::Fatal, // 1 alert
    Level::Fatal, // 2 critical
    Level::Error, // 3 error
    Level::Warn,  // 4 warning
    Level::Info,  // 5 notice
    Level::Info,  // 6 informational
    Level::Debug, // 7 debug
];

/// Facility codes 0–23 by name, for the `facility` attribute.
pub const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Decodes one message; `received` dates RFC 3164 timestamps.
pub fn decode(message: &[u8], received: Micros, limits: &LogLimits) -> Result<NewLog, String> {
    // Valid UTF-8 (nearly always) is checked fast and borrowed.
    let text = match std::str::from_utf8(message) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(message),
    };
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    let (priority, rest) = priority(text).ok_or("no <PRI> at the start: not a syslog message")?;
    let severity = usize::from(priority % 8);
    let facility = usize::from(priority / 8);
    let parts = match rfc5424_version(rest) {
        Some(after_version) => rfc5424(after_version),
        None => rfc3164(rest, received),
    };
    let mut builder = RecordBuilder::new(limits, Oversize::Truncate);
    for (key, value) in [
        ("hostname", parts.hostname),
        ("procid", parts.procid),
        ("msgid", parts.msgid),
    ] {
        if let Some(value) = value {
            builder.attribute(key, value);
        }
    }
    builder.attribute("facility", FACILITIES[facility]);
    for (key, value) in parts.structured_data {
        builder.attribute_owned(key, value.into_owned());
    }
    builder.finish(LogFields {
        level: SEVERITY_LEVELS[severity],
        service: parts.app_name.map(str::to_string),
        message: parts.message.to_string(),
        timestamp: parts.timestamp,
    })
}

/// Structured-data parameters as `<sd-id>.<name>` and their values.
type Parameters<'a> = Vec<(String, Cow<'a, str>)>;

#[derive(Default)]
struct Parts<'a> {
    timestamp: Option<Micros>,
    hostname: Option<&'a str>,
    app_name: Option<&'a str>,
    procid: Option<&'a str>,
    msgid: Option<&'a str>,
    structured_data: Parameters<'a>,
    message: &'a str,
}

/// `<PRI>`: 0–191, one to three digits.
fn priority(text: &str) -> Option<(u8, &str)> {
    let rest = text.trim_start().strip_prefix('<')?;
    let end = rest.find('>')?;
    let digits = &rest[..end];
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u8 = digits.parse().ok().filter(|v| *v <= 191)?;
    Some((value, &rest[end + 1..]))
}

/// RFC 5424 has `VERSION SP` right after the PRI.
fn rfc5424_version(rest: &str) -> Option<&str> {
    let (version, after) = split_space(rest)?;
    let is_version = (1..=2).contains(&version.len())
        && version.bytes().all(|b| b.is_ascii_digit())
        && !version.starts_with('0');
    is_version.then_some(after)
}

/// The next space-separated field; `-` (nil) is `None`.
/// Splits at the first space (a byte search: the headers are ASCII).
fn split_space(text: &str) -> Option<(&str, &str)> {
    let at = memchr::memchr(b' ', text.as_bytes())?;
    Some((&text[..at], &text[at + 1..]))
}

fn field(rest: &str) -> (Option<&str>, &str) {
    let (token, after) = split_space(rest).unwrap_or((rest, ""));
    ((token != "-" && !token.is_empty()).then_some(token), after)
}

/// `TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]`
fn rfc5424(rest: &str) -> Parts<'_> {
    let (timestamp, rest) = field(rest);
    let (hostname, rest) = field(rest);
    let (app_name, rest) = field(rest);
    let (procid, rest) = field(rest);
    let (msgid, rest) = field(rest);
    let (structured_data, rest) = match rest.strip_prefix("- ") {
        Some(after) => (Vec::new(), after),
        None if rest == "-" => (Vec::new(), ""),
        // Structured data that does not parse is kept as part of the message.
        None => structured_data(rest).unwrap_or((Vec::new(), rest)),
    };
    Parts {
        // An unreadable timestamp costs the log its time, not the log.
        timestamp: timestamp.and_then(|t| parse_rfc3339(t).ok()),
        hostname,
        app_name,
        procid,
        msgid,
        structured_data,
        message: rest.strip_prefix('\u{feff}').unwrap_or(rest),
    }
}

/// `[id name="value" ...][id2 ...]`, values with `\"`, `\\` and `\]`
/// escapes. Returns the parameters and what follows (the MSG).
fn structured_data(mut rest: &str) -> Option<(Parameters<'_>, &str)> {
    let mut parameters = Vec::new();
    while let Some(element) = rest.strip_prefix('[') {
        let id_end = memchr::memchr2(b' ', b']', element.as_bytes())?;
        let id = &element[..id_end];
        rest = &element[id_end..];
        loop {
            if let Some(after) = rest.strip_prefix(']') {
                rest = after;
                break;
            }
            let after_space = rest.strip_prefix(' ')?;
            let equals = memchr::memchr(b'=', after_space.as_bytes())?;
            let name = &after_space[..equals];
            let after_name = after_space[equals + 1..].strip_prefix('"')?;
            let (value, after_value) = quoted(after_name, parameter_escape)?;
            let mut key = String::with_capacity(id.len() + 1 + name.len());
            key.push_str(id);
            key.push('.');
            key.push_str(name);
            parameters.push((key, value));
            rest = after_value;
        }
    }
    Some((parameters, rest.strip_prefix(' ').unwrap_or(rest)))
}

/// RFC 5424 escapes `"`, `\\` and `]` in parameter values; a backslash
/// before anything else is kept.
fn parameter_escape(c: char) -> Option<char> {
    matches!(c, '"' | '\\' | ']').then_some(c)
}

/// `TIMESTAMP SP HOSTNAME SP TAG[PID]: MSG`, leniently: the hostname may be
/// missing (local senders), the timestamp may be RFC 3339 (rsyslog's
/// forwarding format); without a timestamp the whole rest is the message.
fn rfc3164(rest: &str, received: Micros) -> Parts<'_> {
    let (timestamp, rest) = match bsd_timestamp(rest, received) {
        Some(found) => found,
        None => {
            let (token, after) = split_space(rest).unwrap_or((rest, ""));
            match parse_rfc3339(token) {
                Ok(micros) => (micros, after),
                Err(_) => {
                    return Parts {
                        message: rest.trim_start(),
                        ..Parts::default()
                    };
                }
            }
        }
    };
    let rest = rest.trim_start();
    let (first, after_first) = split_space(rest).unwrap_or((rest, ""));
    let looks_like_tag = first.ends_with(':') || first.contains('[');
    let (hostname, rest) = if looks_like_tag {
        (None, rest)
    } else {
        (Some(first), after_first)
    };
    let tag_end = rest.find([':', '[', ' ']).unwrap_or(rest.len());
    let tag = &rest[..tag_end];
    let mut after_tag = &rest[tag_end..];
    let mut procid = None;
    if let Some(inside) = after_tag.strip_prefix('[')
        && let Some(close) = inside.find(']')
    {
        procid = Some(&inside[..close]);
        after_tag = &inside[close + 1..];
    }
    let message = after_tag.strip_prefix(':').unwrap_or(after_tag);
    let message = message.strip_prefix(' ').unwrap_or(message);
    Parts {
        timestamp: Some(timestamp),
        hostname,
        app_name: (!tag.is_empty()).then_some(tag),
        procid,
        message,
        ..Parts::default()
    }
}

/// `Mmm dd hh:mm:ss` (the day space-padded), in UTC, in the year that puts
/// it nearest to `received`.
fn bsd_timestamp(text: &str, received: Micros) -> Option<(Micros, &str)> {
    let stamp = text.get(..15)?;
    let month = MONTHS.iter().position(|m| Some(*m) == stamp.get(..3))? as u8 + 1;
    let day: u8 = stamp.get(4..6)?.trim_start().parse().ok()?;
    let [hour, minute, second]: [u8; 3] = {
        let clock = stamp.get(7..15)?;
        let mut parts = clock.split(':').map(|p| p.parse::<u8>().ok());
        [parts.next()??, parts.next()??, parts.next()??]
    };
    if stamp.as_bytes()[3] != b' ' || stamp.as_bytes()[6] != b' ' || stamp.as_bytes()[9] != b':' {
        return None;
    }
    let received_year = time::OffsetDateTime::from_unix_timestamp(received / 1_000_000)
        .ok()?
        .year();
    let at = |year: i32| -> Option<Micros> {
        let date =
            time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
        let time = time::Time::from_hms(hour, minute, second).ok()?;
        Some(date.with_time(time).assume_utc().unix_timestamp() * 1_000_000)
    };
    let micros = [received_year, received_year - 1, received_year + 1]
        .into_iter()
        .filter_map(at)
        .min_by_key(|micros| (micros - received).abs())?;
    Some((micros, text.get(15..)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::shippers::tests::attribute_pairs;

    /// 2025-06-15T12:00:00Z
    const RECEIVED: Micros = 1_749_988_800_000_000;

    fn decode_text(text: &str) -> Result<NewLog, String> {
        decode(text.as_bytes(), RECEIVED, &LogLimits::default())
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let log = decode_text(
            "<165>1 2025-06-15T11:59:58.123456Z web-1 checkout 4242 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\\"lication\\]\"][meta seq=\"7\"] \u{feff}an application event\n",
        )
        .unwrap();
        assert_eq!((log.level, log.service.as_str()), (Level::Info, "checkout"));
        assert_eq!(log.message, "an application event");
        assert_eq!(log.timestamp, Some(1_749_988_798_123_456));
        assert_eq!(
            attribute_pairs(&log),
            vec![
                ("exampleSDID@32473.eventSource", "App\"lication]"),
                ("exampleSDID@32473.iut", "3"),
                ("facility", "local4"),
                ("hostname", "web-1"),
                ("meta.seq", "7"),
                ("msgid", "ID47"),
                ("procid", "4242"),
            ]
        );
    }

    #[test]
    fn rfc5424_nil_fields() {
        let log = decode_text("<11>1 - - - - - - disk full").unwrap();
        assert_eq!(
            (log.level, log.service.as_str()),
            (Level::Error, "unknown_service")
        );
        assert_eq!(log.message, "disk full");
        assert_eq!(log.timestamp, None);
        assert_eq!(attribute_pairs(&log), vec![("facility", "user")]);
        assert!(decode_text("<11>1 - - - - - -").is_err(), "no message");
    }

    #[test]
    fn rfc3164_variants() {
        let log = decode_text("<34>Jun 15 11:59:59 mymachine su[230]: 'su root' failed").unwrap();
        assert_eq!((log.level, log.service.as_str()), (Level::Fatal, "su"));
        assert_eq!(log.message, "'su root' failed");
        assert_eq!(log.timestamp, Some(1_749_988_799_000_000));
        assert_eq!(
            attribute_pairs(&log),
            vec![
                ("facility", "auth"),
                ("hostname", "mymachine"),
                ("procid", "230")
            ]
        );

        let local = decode_text("<15>Jun  5 01:02:03 cron: nightly job").unwrap();
        assert_eq!(
            (local.level, local.service.as_str(), local.message.as_str()),
            (Level::Debug, "cron", "nightly job")
        );
        assert_eq!(attribute_pairs(&local), vec![("facility", "user")]);

        let forwarded = decode_text("<12>2025-06-15T11:00:00.5+01:00 host app: precise").unwrap();
        assert_eq!(forwarded.timestamp, Some(1_749_981_600_500_000));
        assert_eq!(
            (forwarded.level, forwarded.service.as_str()),
            (Level::Warn, "app")
        );

        let bare = decode_text("<13>just some text").unwrap();
        assert_eq!(
            (bare.service.as_str(), bare.message.as_str()),
            ("unknown_service", "just some text")
        );
    }

    #[test]
    fn year_rollover() {
        // Received just after new year: December is last year.
        let new_year = 1_735_689_610_000_000; // 2025-01-01T00:00:10Z
        let log = decode(
            b"<13>Dec 31 23:59:59 h app: late",
            new_year,
            &LogLimits::default(),
        )
        .unwrap();
        assert_eq!(log.timestamp, Some(1_735_689_599_000_000));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "no pri", "<>1 x", "<999>1 x", "<1a> x", "<13"] {
            assert!(decode_text(bad).is_err(), "{bad:?}");
        }
        assert!(decode(b"<13>\xff\xfe bytes", RECEIVED, &LogLimits::default()).is_ok());
    }

    #[test]
    fn every_severity() {
        let levels: Vec<Level> = (0..8)
            .map(|severity| {
                decode_text(&format!("<{severity}>1 - - - - - - m"))
                    .unwrap()
                    .level
            })
            .collect();
        assert_eq!(levels, SEVERITY_LEVELS.to_vec());
    }
}
