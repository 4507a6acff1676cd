//! Optional API keys. Keys are kept only as SHA-256 digests (the config may
//! hold `sha256:<hex>` so the file has no secret); a presented key is hashed
//! and compared with every digest in constant time, so timing reveals
//! neither which key nor how much of it matched.

use crate::domain::principal::AccessRole;
use crate::domain::tenant::{Allowed, TenantId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A key as the configuration writes it: a plain string (any tenant), or
/// `{ key = "sha256:…", tenants = ["team-a"] }` (those tenants only; `"*"`
/// is any).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RawKey {
    Plain(String),
    Bound { key: String, tenants: Vec<String> },
}

impl From<&str> for RawKey {
    fn from(key: &str) -> RawKey {
        RawKey::Plain(key.to_string())
    }
}

impl From<String> for RawKey {
    fn from(key: String) -> RawKey {
        RawKey::Plain(key)
    }
}

#[derive(Clone, Debug, Default)]
pub struct KeySet {
    digests: Vec<[u8; 32]>,
    /// Per digest, the tenants its key may act for.
    tenants: Vec<Allowed>,
}

impl KeySet {
    /// Each entry is a plain key or `sha256:<64 hex digits>`, maybe bound to
    /// tenants.
    pub fn parse<K: Clone + Into<RawKey>>(entries: &[K]) -> Result<KeySet, String> {
        let mut set = KeySet::default();
        for entry in entries.iter().cloned().map(Into::into) {
            let (key, allowed) = match entry {
                RawKey::Plain(key) => (key, Allowed::Any),
                RawKey::Bound { key, tenants } => (key, allowed_tenants(&tenants)?),
            };
            let key = key.trim();
            if key.is_empty() {
                continue;
            }
            set.digests.push(parse_key(key)?);
            set.tenants.push(allowed);
        }
        Ok(set)
    }

    /// The tenants the presented key may act for: `None` when no key of
    /// this set is presented (compared in constant time, as `allows`).
    pub fn tenants_of(&self, presented: &str) -> Option<Allowed> {
        let presented = digest(presented);
        let mut found = None;
        for (known, allowed) in self.digests.iter().zip(&self.tenants) {
            if constant_time_eq(known, &presented) && found.is_none() {
                found = Some(allowed.clone());
            }
        }
        found
    }
}

/// `tenants = [...]` of a bound key: ids, or `"*"` for any.
fn allowed_tenants(tenants: &[String]) -> Result<Allowed, String> {
    if tenants.is_empty() {
        return Err("a key's tenants must name at least one tenant (or \"*\" for any)".into());
    }
    if tenants.iter().any(|t| t.trim() == "*") {
        return Ok(Allowed::Any);
    }
    let mut ids = Vec::new();
    for tenant in tenants {
        let id = TenantId::parse(tenant.trim()).map_err(|e| e.to_string())?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(Allowed::Only(ids))
}

fn parse_key(entry: &str) -> Result<[u8; 32], String> {
    {
        {
            match entry.strip_prefix("sha256:") {
                Some(hex) => parse_hex_digest(hex).ok_or_else(|| {
                    "a sha256: key needs 64 hex digits after the prefix".to_string()
                }),
                None => {
                    if entry.len() < 16 {
                        return Err("keys must be at least 16 characters".into());
                    }
                    Ok(digest(entry))
                }
            }
        }
    }
}

impl KeySet {
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

/// `key:sha256:<16 hex digits>`: names a key in the audit log and in logs
/// without revealing it (the first 64 bits of its SHA-256, which the config
/// may hold anyway).
pub fn fingerprint(key: &str) -> String {
    let hex: String = digest(key)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("key:sha256:{hex}")
}

/// The access role each kind of key grants, and what callers without any
/// credentials may do.
#[derive(Clone, Debug, Default)]
pub struct KeyRoles {
    pub read: KeySet,
    pub editor: KeySet,
    pub admin: KeySet,
    /// Sign-in is configured: nothing but ingest (as its keys say) is open
    /// to callers without credentials.
    pub sign_in: bool,
}

impl KeyRoles {
    /// The role a presented key grants, `None` when no list holds it.
    /// Without sign-in, editor or admin keys, a read key may also change
    /// things, as every key could before roles.
    pub fn role_of(&self, key: &str) -> Option<AccessRole> {
        let holds = |keys: &KeySet| !keys.is_open() && keys.allows(Some(key));
        if holds(&self.admin) {
            Some(AccessRole::Admin)
        } else if holds(&self.editor) {
            Some(AccessRole::Editor)
        } else if holds(&self.read) {
            Some(if self.read_keys_change() {
                AccessRole::Editor
            } else {
                AccessRole::Viewer
            })
        } else {
            None
        }
    }

    /// The tenants a presented key may act for, from the list that holds
    /// it (`Any` for a key no list binds).
    pub fn tenants_of(&self, key: &str) -> Allowed {
        [&self.admin, &self.editor, &self.read]
            .into_iter()
            .find_map(|keys| keys.tenants_of(key))
            .unwrap_or_default()
    }

    fn read_keys_change(&self) -> bool {
        !self.sign_in && self.editor.is_open() && self.admin.is_open()
    }

    /// What a caller without credentials may do: everything when no key and
    /// no sign-in is configured (`make run`), reading when only changes
    /// need keys, nothing once sign-in is on or reads need a key.
    pub fn anonymous_role(&self) -> Option<AccessRole> {
        if self.sign_in || !self.read.is_open() {
            None
        } else if self.editor.is_open() && self.admin.is_open() {
            Some(AccessRole::Admin)
        } else {
            Some(AccessRole::Viewer)
        }
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
    fn keys_grant_their_list_s_role() {
        let keys = |read: &[&str], editor: &[&str], admin: &[&str], sign_in| KeyRoles {
            read: KeySet::parse(&read.iter().map(|k| k.to_string()).collect::<Vec<_>>()).unwrap(),
            editor: KeySet::parse(&editor.iter().map(|k| k.to_string()).collect::<Vec<_>>())
                .unwrap(),
            admin: KeySet::parse(&admin.iter().map(|k| k.to_string()).collect::<Vec<_>>()).unwrap(),
            sign_in,
        };
        let (r, e, a) = (
            "read-key-0123456789",
            "editor-key-0123456789",
            "admin-key-0123456789",
        );
        let full = keys(&[r], &[e], &[a], false);
        assert_eq!(full.role_of(r), Some(AccessRole::Viewer));
        assert_eq!(full.role_of(e), Some(AccessRole::Editor));
        assert_eq!(full.role_of(a), Some(AccessRole::Admin));
        assert_eq!(full.role_of("other-key-0123456789"), None);
        assert_eq!(full.anonymous_role(), None);
        // Only read keys: they change too, as before roles; unless sign-in is on.
        assert_eq!(
            keys(&[r], &[], &[], false).role_of(r),
            Some(AccessRole::Editor)
        );
        assert_eq!(
            keys(&[r], &[], &[], true).role_of(r),
            Some(AccessRole::Viewer)
        );
        // Nothing configured: everything open; reads open when only changes need keys.
        assert_eq!(
            keys(&[], &[], &[], false).anonymous_role(),
            Some(AccessRole::Admin)
        );
        assert_eq!(
            keys(&[], &[], &[a], false).anonymous_role(),
            Some(AccessRole::Viewer)
        );
        assert_eq!(keys(&[], &[], &[], true).anonymous_role(), None);
        assert_eq!(keys(&[], &[], &[], false).role_of(r), None);
        let print = fingerprint(r);
        assert!(
            print.starts_with("key:sha256:") && print.len() == 27,
            "{print}"
        );
        assert!(!print.contains(r));
        assert!(hashed_form(r).contains(&print["key:sha256:".len()..]));
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(KeySet::parse(&["short"]).is_err());
        assert!(KeySet::parse(&["sha256:abc"]).is_err());
    }
}
