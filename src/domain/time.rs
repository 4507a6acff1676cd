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
    let micros = match parse_common_rfc3339(text) {
        Some(micros) => micros,
        None => {
            let parsed = OffsetDateTime::parse(text, &Rfc3339)
                .map_err(|e| format!("expected RFC 3339 like 2025-01-01T12:00:00.123Z ({e})"))?;
            parsed.unix_timestamp_nanos() / 1_000
        }
    };
    if !(0..MAX_MICROS as i128).contains(&micros) {
        return Err("must be between 1970 and 9999".into());
    }
    Ok(micros as Micros)
}

/// The shape nearly every timestamp has, `YYYY-MM-DDTHH:MM:SS[.digits]`
/// then `Z` or `±HH:MM`, read directly: the general parser took a tenth of
/// decoding an Elasticsearch document. `None` for anything else (lowercase
/// `t`/`z`, a leap second, an invalid date), which the general parser then
/// judges, so both accept and refuse the same texts.
fn parse_common_rfc3339(text: &str) -> Option<i128> {
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b'T'
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let digit = |at: usize| -> Option<i64> {
        let value = bytes.get(at)?.wrapping_sub(b'0');
        (value < 10).then_some(i64::from(value))
    };
    let two = |at: usize| Some(digit(at)? * 10 + digit(at + 1)?);
    let (year, month, day) = (two(0)? * 100 + two(2)?, two(5)?, two(8)?);
    let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut at = 19;
    let mut fraction = 0i64;
    if bytes[at] == b'.' {
        at += 1;
        let start = at;
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            if at - start < 6 {
                fraction = fraction * 10 + i64::from(bytes[at] - b'0');
            }
            at += 1;
        }
        let digits = at - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..6 {
            fraction *= 10;
        }
    }
    let offset_seconds = match bytes.get(at..)? {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (two(at + 1)?, two(at + 4)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    Some(i128::from(seconds) * 1_000_000 + i128::from(fraction))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
/// days-from-civil, the inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000) as u32;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    let Ok(year @ 0..=9999) = u32::try_from(year) else {
        use std::fmt::Write;
        let _ = write!(
            out,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{frac:06}Z",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        );
        return;
    };
    // Digit by digit: `write!` cost ~2,000 instructions a timestamp
    // (callgrind), paid once per stored log answered and once per row read.
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut text[0..4], year);
    put_digits(&mut text[5..7], month);
    put_digits(&mut text[8..10], day);
    put_digits(&mut text[11..13], sod / 3600);
    put_digits(&mut text[14..16], (sod / 60) % 60);
    put_digits(&mut text[17..19], sod % 60);
    put_digits(&mut text[20..26], frac);
    if let Ok(text) = std::str::from_utf8(&text) {
        out.push_str(text);
    }
}

/// Writes `value`'s last `digits.len()` decimal digits, zero-padded.
fn put_digits(digits: &mut [u8], mut value: u32) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
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

    /// The digit-by-digit path writes what `write!` with the same widths
    /// does, over a sweep of instants and around year 0 (before it, `write!`
    /// itself writes).
    #[test]
    fn writes_digits_as_format_does() {
        let formatted = |micros: Micros| {
            let secs = micros.div_euclid(1_000_000);
            let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
            let sod = secs.rem_euclid(86_400);
            format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
                sod / 3600,
                (sod / 60) % 60,
                sod % 60,
                micros.rem_euclid(1_000_000)
            )
        };
        let year_zero = -62_167_219_200_000_000;
        let mut instants = vec![year_zero, year_zero - 1, MAX_MICROS - 1];
        instants.extend((0..4000i64).map(|step| step * 7_919_993_123_457 % MAX_MICROS));
        for micros in instants {
            assert_eq!(format_rfc3339(micros), formatted(micros), "{micros}");
        }
    }

    #[test]
    fn keeps_sub_millisecond_precision_and_offsets() {
        assert_eq!(
            parse_rfc3339("2025-01-01T13:00:00.123456789+01:00").unwrap(),
            1_735_732_800_123_456
        );
    }

    /// The fast path and the general parser agree on every text.
    #[test]
    fn the_common_shape_parses_like_the_time_crate() {
        let general = |text: &str| {
            OffsetDateTime::parse(text, &Rfc3339)
                .ok()
                .map(|t| t.unix_timestamp_nanos() / 1_000)
        };
        let mut texts = vec![
            "2024-02-29T23:59:59.999999999Z".to_string(),
            "2023-02-29T00:00:00Z".into(),
            "2000-02-29T12:00:00+14:00".into(),
            "1900-02-29T12:00:00Z".into(),
            "2025-12-31T23:59:60Z".into(),
            "2025-01-01T24:00:00Z".into(),
            "2025-01-01T12:00:00.Z".into(),
            "2025-01-01T12:00:00.5-00:30".into(),
            "2025-01-01T12:00:00+24:00".into(),
            "2025-01-01t12:00:00z".into(),
            "2025-01-01T12:00:00".into(),
            "2025-13-01T12:00:00Z".into(),
            "2025-04-31T12:00:00Z".into(),
            "1970-01-01T00:00:00Z".into(),
            "9999-12-31T23:59:59.999999Z".into(),
            "0001-01-01T00:00:00Z".into(),
        ];
        // A sweep over days, times, fractions and offsets.
        for step in 0..4000i64 {
            let micros = step * 7_919_993_123_457 % MAX_MICROS;
            let base = format_rfc3339(micros);
            texts.push(base.clone());
            let offset = format!(
                "{}{:02}:{:02}",
                if step % 2 == 0 { '+' } else { '-' },
                step % 24,
                step % 60
            );
            texts.push(base.replace('Z', &offset));
            texts.push(base.replacen(&base[19..26], &base[19..22], 1));
        }
        for text in &texts {
            assert_eq!(
                parse_common_rfc3339(text).or_else(|| general(text)),
                general(text),
                "{text}"
            );
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
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
