//! Optional API keys. Keys are kept only as SHA-256 digests (the config may
//! hold `sha256:<hex>` so the file has no secret); a presented key is hashed
//! and compared with every digest in constant time, so timing reveals
//! neither which key nor how much of it matched.

use sha2::{Digest, Sha256};

#[derive(Clone, Debug, Default)]
pub struct KeySet {
    digests: Vec<[u8; 32]>,
}

impl KeySet {
    /// Each entry is a plain key or `sha256:<64 hex digits>`.
    pub fn parse(entries: &[String]) -> Result<KeySet, String> {
        let mut digests = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let digest = match entry.strip_prefix("sha256:") {
                Some(hex) => parse_hex_digest(hex).ok_or_else(|| {
                    "a sha256: key needs 64 hex digits after the prefix".to_string()
                })?,
                None => {
                    if entry.len() < 16 {
                        return Err("keys must be at least 16 characters".into());
                    }
                    digest(entry)
                }
            };
            digests.push(digest);
        }
        Ok(KeySet { digests })
    }

    /// No keys configured: this kind of access is open.
    pub fn is_open(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn allows(&self, presented: Option<&str>) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(presented) = presented else {
            return false;
        };
        let presented = digest(presented);
        // Visit every digest whatever matches, to keep the timing flat.
        self.digests.iter().fold(false, |found, known| {
            found | constant_time_eq(known, &presented)
        })
    }
}

pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// `sha256:<hex>`, the form to put in the config instead of the key itself.
pub fn hashed_form(key: &str) -> String {
    let hex: String = digest(key).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn parse_hex_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_hashed_keys() {
        let keys = KeySet::parse(&[
            "first-key-0123456789".into(),
            hashed_form("second-key-0123456789"),
        ])
        .unwrap();
        assert!(keys.allows(Some("first-key-0123456789")));
        assert!(keys.allows(Some("second-key-0123456789")));
        assert!(!keys.allows(Some("first-key-012345678")));
        assert!(!keys.allows(None));
        assert!(KeySet::default().allows(None));
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(KeySet::parse(&["short".into()]).is_err());
        assert!(KeySet::parse(&["sha256:abc".into()]).is_err());
    }
}
