//! Byte sizes as people write them in settings: `1048576`, `512KiB`,
//! `256MiB`, `1.5GB`, `10GiB`.

use super::settings::InvalidSetting;
use serde::{Deserialize, Serialize};

/// A size as written: a number of bytes or a string such as `256MiB`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RawByteSize {
    Bytes(i64),
    Text(String),
}

impl RawByteSize {
    /// The size for the setting `key`; `None` for `"auto"`.
    pub fn resolve(&self, key: &str) -> Result<Option<u64>, InvalidSetting> {
        match self {
            RawByteSize::Bytes(n) if *n >= 0 => Ok(Some(*n as u64)),
            RawByteSize::Text(text) if text.trim().eq_ignore_ascii_case("auto") => Ok(None),
            RawByteSize::Text(text) => parse_byte_size(text).map(Some).ok_or_else(|| {
                InvalidSetting::new(
                    key,
                    format!(
                        "expected a size such as 268435456, 512KiB, 256MiB or 10GB, got {text:?}"
                    ),
                )
            }),
            RawByteSize::Bytes(n) => Err(InvalidSetting::new(key, format!("{n} is negative"))),
        }
    }
}

/// `None` for anything else (a negative number, an unknown unit).
pub fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let multiplier: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "tib" | "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * multiplier;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_unit_families() {
        assert_eq!(parse_byte_size("1048576"), Some(1 << 20));
        assert_eq!(parse_byte_size("512KiB"), Some(512 << 10));
        assert_eq!(parse_byte_size("256 MiB"), Some(256 << 20));
        assert_eq!(parse_byte_size("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse_byte_size("2g"), Some(2 << 30));
        assert_eq!(parse_byte_size("-1"), None);
        assert_eq!(parse_byte_size("12 parsecs"), None);
        assert_eq!(parse_byte_size(""), None);
    }
}
