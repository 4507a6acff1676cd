//! Timestamps are microseconds since the Unix epoch (UTC) everywhere inside the
//! program; RFC 3339 exists only at the edges (JSON in and out).

use std::time::{SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub type Micros = i64;

/// 10000-01-01T00:00:00Z: the first instant RFC 3339 cannot write.
pub const MAX_MICROS: Micros = 253_402_300_800_000_000;

pub fn now_micros() -> Micros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as Micros)
        .unwrap_or(0)
}

/// Parses RFC 3339 (fractional seconds optional, any offset); sub-microsecond
/// digits are truncated. Instants before 1970 or from year 10000 are refused.
pub fn parse_rfc3339(text: &str) -> Result<Micros, String> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("expected RFC 3339 like 2025-01-01T12:00:00.123Z ({e})"))?;
    let micros = parsed.unix_timestamp_nanos() / 1_000;
    if !(0..MAX_MICROS as i128).contains(&micros) {
        return Err("must be between 1970 and 9999".into());
    }
    Ok(micros as Micros)
}

/// Query parameters accept RFC 3339 or epoch milliseconds.
pub fn parse_instant(text: &str) -> Result<Micros, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let millis: i64 = text
            .parse()
            .map_err(|_| "epoch milliseconds out of range".to_string())?;
        return millis
            .checked_mul(1_000)
            .filter(|m| *m < MAX_MICROS)
            .ok_or_else(|| "epoch milliseconds out of range".to_string());
    }
    parse_rfc3339(text).map_err(|e| format!("{e}, or epoch milliseconds"))
}

/// `2025-01-01T12:00:00.123456Z`: always UTC, always six fractional digits, so
/// the strings sort like the instants they name.
pub fn format_rfc3339(micros: Micros) -> String {
    let mut out = String::with_capacity(27);
    write_rfc3339(&mut out, micros);
    out
}

pub fn write_rfc3339(out: &mut String, micros: Micros) {
    use std::fmt::Write;
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
}

/// Howard Hinnant's days-to-civil algorithm: exact for the proleptic Gregorian
/// calendar and much cheaper than a general date library on the hot path.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_time_crate() {
        for micros in [
            0,
            1,
            951_782_400_123_456,
            1_735_732_800_000_000,
            MAX_MICROS - 1,
        ] {
            let ours = format_rfc3339(micros);
            let back = parse_rfc3339(&ours).unwrap();
            assert_eq!(back, micros, "{ours}");
        }
        assert_eq!(
            format_rfc3339(1_735_732_800_123_000),
            "2025-01-01T12:00:00.123000Z"
        );
    }

    #[test]
    fn keeps_sub_millisecond_precision_and_offsets() {
        assert_eq!(
            parse_rfc3339("2025-01-01T13:00:00.123456789+01:00").unwrap(),
            1_735_732_800_123_456
        );
    }

    #[test]
    fn refuses_garbage_and_out_of_range() {
        assert!(parse_rfc3339("yesterday").is_err());
        assert!(parse_rfc3339("1969-12-31T23:59:59Z").is_err());
        assert!(parse_instant("99999999999999999999").is_err());
        assert_eq!(
            parse_instant("1735732800123").unwrap(),
            1_735_732_800_123_000
        );
    }
}
