//! Durations, byte sizes and numbers as LogQL reads and writes them: Go's
//! `time.ParseDuration` together with Prometheus' `d`, `w`, `y` units;
//! go-humanize's byte sizes (`20MB` is 20·10⁶, `1KiB` 1024); Go's float
//! parsing and formatting of sample values.

const NANOS_PER_SECOND: f64 = 1e9;

/// A duration such as `10s`, `1h30m`, `1.5s`, `250ms`, `2d`, `-3s` or `0`,
/// in nanoseconds. `None` for anything else or an overflow.
pub fn parse_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            "w" => 7.0 * 86_400e9,
            "y" => 365.0 * 86_400e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * unit;
    }
    if !total.is_finite() || total > i64::MAX as f64 {
        return None;
    }
    let nanos = total.round() as i64;
    Some(if negative { -nanos } else { nanos })
}

/// Seconds of a duration label value (`duration > 10s`, `unwrap
/// duration(x)`), Go's syntax only.
pub fn duration_seconds(text: &str) -> Option<f64> {
    parse_duration(text).map(|nanos| nanos as f64 / NANOS_PER_SECOND)
}

/// A byte size as go-humanize reads it: digits (commas ignored), then an
/// optional unit in any case (`b`, `kb`, `kib`, `k`, `ki`, … up to `eb`).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(text.len());
    let number: String = text[..digits_end].chars().filter(|c| *c != ',').collect();
    let value: f64 = number.parse().ok()?;
    let unit = text[digits_end..].trim().to_ascii_lowercase();
    let multiplier: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024f64.powi(2),
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024f64.powi(3),
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        "e" | "eb" => 1e18,
        "ei" | "eib" => 1024f64.powi(6),
        _ => return None,
    };
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return None;
    }
    Some(bytes as u64)
}

/// A label value as a number, as Go's `strconv.ParseFloat` reads it
/// (`1e3`, `-2.5`, `+Inf`, `NaN`); surrounding spaces are not allowed.
pub fn parse_float(text: &str) -> Option<f64> {
    if text.is_empty() || text.trim() != text {
        return None;
    }
    match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if text
        .bytes()
        .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E'))
    {
        return None;
    }
    text.parse().ok()
}

/// A sample value as Loki writes it (Go's `FormatFloat(v, 'f', -1, 64)`).
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{value}")
    }
}

/// A range or offset as Prometheus writes it: `5m`, `1h30m`, `1d`, `500ms`.
pub fn format_range(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let mut millis = nanos / 1_000_000;
    if millis == 0 || nanos % 1_000_000 != 0 {
        return format_go_duration(nanos);
    }
    let mut out = String::new();
    if millis < 0 {
        out.push('-');
        millis = -millis;
    }
    for (unit, size) in [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if millis >= size {
            out.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    out
}

/// A duration as Go's `time.Duration.String` writes it: `1h0m0s`, `1m30s`,
/// `1.5s`, `250ms`, `0s`.
pub fn format_go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let magnitude = nanos.unsigned_abs();
    let fraction = |value: u64, divisor: u64| -> String {
        let whole = value / divisor;
        let rest = value % divisor;
        if rest == 0 {
            return whole.to_string();
        }
        let width = divisor.to_string().len() - 1;
        let digits = format!("{rest:0width$}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    };
    if magnitude < 1_000 {
        return format!("{sign}{magnitude}ns");
    }
    if magnitude < 1_000_000 {
        return format!("{sign}{}µs", fraction(magnitude, 1_000));
    }
    if magnitude < 1_000_000_000 {
        return format!("{sign}{}ms", fraction(magnitude, 1_000_000));
    }
    let hours = magnitude / 3_600_000_000_000;
    let minutes = magnitude / 60_000_000_000 % 60;
    let seconds = fraction(magnitude % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}s"),
        (0, _) => format!("{sign}{minutes}m{seconds}s"),
        _ => format!("{sign}{hours}h{minutes}m{seconds}s"),
    }
}

/// A byte size written back in a form [`parse_bytes`] reads as the same
/// number (binary units when exact, else plain bytes).
pub fn format_bytes(bytes: u64) -> String {
    for (unit, size) in [
        ("EiB", 1u64 << 60),
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    for (unit, size) in [
        ("EB", 1_000_000_000_000_000_000u64),
        ("PB", 1_000_000_000_000_000),
        ("TB", 1_000_000_000_000),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("kB", 1_000),
    ] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_go_and_prometheus() {
        let second = 1_000_000_000;
        assert_eq!(parse_duration("10s"), Some(10 * second));
        assert_eq!(parse_duration("1h30m"), Some(5400 * second));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_duration("3µs"), Some(3_000));
        assert_eq!(parse_duration("2d"), Some(172_800 * second));
        assert_eq!(parse_duration("1w"), Some(604_800 * second));
        assert_eq!(parse_duration("-3s"), Some(-3 * second));
        assert_eq!(parse_duration("0"), Some(0));
        for bad in ["", "5", "s", "5x", "1.2.3s", "5m x", "."] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn byte_sizes_follow_humanize() {
        assert_eq!(parse_bytes("20MB"), Some(20_000_000));
        assert_eq!(parse_bytes("1KiB"), Some(1024));
        assert_eq!(parse_bytes("1kib"), Some(1024));
        assert_eq!(parse_bytes("1.5 GB"), Some(1_500_000_000));
        assert_eq!(parse_bytes("1,024"), Some(1024));
        assert_eq!(parse_bytes("42"), Some(42));
        assert_eq!(parse_bytes("10b"), Some(10));
        assert_eq!(parse_bytes("5 parsecs"), None);
        assert_eq!(parse_bytes("MB"), None);
    }

    #[test]
    fn floats_and_values() {
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert_eq!(parse_float("-2.5"), Some(-2.5));
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
        assert!(parse_float("NaN").is_some_and(f64::is_nan));
        for bad in ["", " 1", "1 ", "abc", "0x10", "1,5"] {
            assert_eq!(parse_float(bad), None, "{bad}");
        }
        assert_eq!(format_value(2.0), "2");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn durations_are_written_back() {
        let second = 1_000_000_000;
        assert_eq!(format_range(300 * second), "5m");
        assert_eq!(format_range(5400 * second), "1h30m");
        assert_eq!(format_range(86_400 * second), "1d");
        assert_eq!(format_range(500_000_000), "500ms");
        assert_eq!(format_go_duration(10 * second), "10s");
        assert_eq!(format_go_duration(3600 * second), "1h0m0s");
        assert_eq!(format_go_duration(90 * second), "1m30s");
        assert_eq!(format_go_duration(1_500_000_000), "1.5s");
        assert_eq!(format_go_duration(250_000_000), "250ms");
        assert_eq!(format_bytes(20_000_000), "20MB");
        assert_eq!(format_bytes(1024), "1KiB");
        assert_eq!(format_bytes(7), "7B");
        for bytes in [20_000_000, 1024, 7, 1_500_000_000] {
            assert_eq!(parse_bytes(&format_bytes(bytes)), Some(bytes));
        }
    }
}
