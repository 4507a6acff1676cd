//! `[security]` and `[rate_limit]`: API keys, CORS, trusted proxies and
//! per-client token buckets.

use super::auth::{KeySet, RawKey};
use super::client_ip::IpNet;
use crate::domain::settings::InvalidSetting;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecurity {
    pub cors_allowed_origins: Vec<String>,
    /// Each key a string, or `{ key, tenants }` (see [`RawKey`]).
    pub ingest_keys: Vec<RawKey>,
    /// Keys of the `viewer` role.
    pub read_keys: Vec<RawKey>,
    /// Keys of the `editor` role: they also change alert rules and channels.
    pub editor_keys: Vec<RawKey>,
    /// Keys of the `admin` role: they also read the audit log.
    pub admin_keys: Vec<RawKey>,
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub ingest_per_second: f64,
    pub ingest_burst: f64,
    pub query_per_second: f64,
    pub query_burst: f64,
}

#[derive(Clone, Debug)]
pub struct SecurityConfig {
    pub cors_allowed_origins: Vec<String>,
    pub ingest_keys: KeySet,
    /// `viewer` (see `KeyRoles::role_of` for what they do without editor
    /// and admin keys).
    pub read_keys: KeySet,
    pub editor_keys: KeySet,
    pub admin_keys: KeySet,
    pub trusted_proxies: Vec<IpNet>,
    pub ingest_rate: Option<RateLimit>,
    pub query_rate: Option<RateLimit>,
}

#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl RawSecurity {
    pub fn validate(&self, rates: &RawRateLimit) -> Result<SecurityConfig, InvalidSetting> {
        Ok(SecurityConfig {
            cors_allowed_origins: self.cors_allowed_origins.clone(),
            ingest_keys: KeySet::parse(&self.ingest_keys)
                .map_err(|e| InvalidSetting::new("security.ingest_keys", e))?,
            read_keys: KeySet::parse(&self.read_keys)
                .map_err(|e| InvalidSetting::new("security.read_keys", e))?,
            editor_keys: KeySet::parse(&self.editor_keys)
                .map_err(|e| InvalidSetting::new("security.editor_keys", e))?,
            admin_keys: KeySet::parse(&self.admin_keys)
                .map_err(|e| InvalidSetting::new("security.admin_keys", e))?,
            trusted_proxies: self
                .trusted_proxies
                .iter()
                .map(|entry| IpNet::parse(entry))
                .collect::<Result<_, _>>()
                .map_err(|e| InvalidSetting::new("security.trusted_proxies", e))?,
            ingest_rate: rate_limit(
                "rate_limit.ingest",
                rates.ingest_per_second,
                rates.ingest_burst,
            )?,
            query_rate: rate_limit(
                "rate_limit.query",
                rates.query_per_second,
                rates.query_burst,
            )?,
        })
    }
}

/// `per_second = 0` turns the limit off; `burst = 0` means twice the rate
/// (at least one request).
fn rate_limit(key: &str, per_second: f64, burst: f64) -> Result<Option<RateLimit>, InvalidSetting> {
    if !per_second.is_finite() || per_second < 0.0 {
        return Err(InvalidSetting::new(
            format!("{key}_per_second"),
            "must be 0 (off) or more",
        ));
    }
    if !burst.is_finite() || burst < 0.0 {
        return Err(InvalidSetting::new(
            format!("{key}_burst"),
            "must be 0 (twice the rate) or more",
        ));
    }
    if per_second == 0.0 {
        return Ok(None);
    }
    let burst = if burst == 0.0 {
        (per_second * 2.0).max(1.0)
    } else {
        burst
    };
    Ok(Some(RateLimit { per_second, burst }))
}
