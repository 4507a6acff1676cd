//! `[tenants]`: whether requests must name a tenant, the fallbacks, and the
//! limits every tenant gets (`[tenants.defaults]`) or one tenant gets
//! (`[tenants.overrides.<tenant>]`, also from `tenants.overrides_file`,
//! re-read when it changes).

use crate::domain::byte_size::RawByteSize;
use crate::domain::query;
use crate::domain::settings::{InvalidSetting, duration};
use crate::domain::tenant::TenantId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawTenants {
    pub enabled: bool,
    /// The tenant of a request that names none (empty: such a request is
    /// refused with 401 while tenants are on).
    pub default_tenant: String,
    /// An OTLP resource attribute naming the tenant (empty: none).
    pub otlp_attribute: String,
    /// A TOML file of `[overrides.<tenant>]` sections, re-read when it
    /// changes and on SIGHUP (empty: none).
    pub overrides_file: String,
    pub defaults: RawLimits,
    pub overrides: BTreeMap<String, RawLimits>,
}

/// One tenant's limits as written; absent entries are not limited (or, in
/// an override, take the defaults').
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    /// Logs per second (with `ingest_burst`).
    pub ingest_rate: Option<f64>,
    pub ingest_burst: Option<f64>,
    /// A daily quota of ingested bytes (UTC days).
    pub ingest_bytes_per_day: Option<RawByteSize>,
    /// The longest time range one read may cover (`"30d"`).
    pub max_query_range: Option<String>,
    /// Open live tails at once.
    pub max_live_connections: Option<i64>,
    /// How long its logs are kept (`"30d"`), where no retention rule says
    /// otherwise.
    pub retention: Option<String>,
    /// Retention rules by query (`{ query = "level:debug", keep = "3d" }`),
    /// before the global `[[retention.rules]]`.
    pub retention_rules: Option<Vec<RawRetentionRule>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetentionRule {
    pub query: String,
    pub keep: String,
}

#[derive(Clone, Debug, Default)]
pub struct TenantsConfig {
    pub enabled: bool,
    pub default_tenant: Option<TenantId>,
    pub otlp_attribute: Option<String>,
    pub overrides_file: Option<PathBuf>,
    pub limits: LimitsTable,
    /// The limits as configured, which the overrides file is laid over
    /// each time it is read.
    pub configured_defaults: RawLimits,
    pub configured_overrides: BTreeMap<String, RawLimits>,
}

/// A tenant's limits, validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantLimits {
    /// Logs per second and the burst.
    pub ingest_rate: Option<(f64, f64)>,
    pub ingest_bytes_per_day: Option<u64>,
    pub max_query_range: Option<Duration>,
    pub max_live_connections: Option<usize>,
    pub retention: Option<Duration>,
    pub retention_rules: Vec<RetentionRule>,
}

/// Delete logs matching `query` once they are older than `keep`.
#[derive(Clone, Debug, PartialEq)]
pub struct RetentionRule {
    pub text: String,
    pub query: query::Expr,
    pub keep: Duration,
}

/// Every tenant's limits: the defaults and each override (an override's
/// absent entries take the defaults').
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LimitsTable {
    pub defaults: TenantLimits,
    pub overrides: HashMap<TenantId, TenantLimits>,
}

impl LimitsTable {
    /// The limits of `tenant`.
    pub fn of(&self, tenant: &TenantId) -> &TenantLimits {
        self.overrides.get(tenant).unwrap_or(&self.defaults)
    }
}

impl RawTenants {
    pub fn validate(&self) -> Result<TenantsConfig, InvalidSetting> {
        let non_empty = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
        let default_tenant = non_empty(&self.default_tenant)
            .map(|name| TenantId::parse(&name))
            .transpose()
            .map_err(|e| InvalidSetting::new("tenants.default_tenant", e))?;
        Ok(TenantsConfig {
            enabled: self.enabled,
            default_tenant,
            otlp_attribute: non_empty(&self.otlp_attribute),
            overrides_file: non_empty(&self.overrides_file).map(PathBuf::from),
            limits: limits_table(&self.defaults, &self.overrides, "tenants")?,
            configured_defaults: self.defaults.clone(),
            configured_overrides: self.overrides.clone(),
        })
    }
}

/// The table from raw defaults and overrides; `prefix` names their keys in
/// errors (`tenants`, or the overrides file's path).
pub fn limits_table(
    defaults: &RawLimits,
    overrides: &BTreeMap<String, RawLimits>,
    prefix: &str,
) -> Result<LimitsTable, InvalidSetting> {
    let defaults = defaults.validate(&format!("{prefix}.defaults"), None)?;
    let mut table = HashMap::new();
    for (name, raw) in overrides {
        let key = format!("{prefix}.overrides.{name}");
        let tenant = TenantId::parse(name).map_err(|e| InvalidSetting::new(&key, e))?;
        table.insert(tenant, raw.validate(&key, Some(&defaults))?);
    }
    Ok(LimitsTable {
        defaults,
        overrides: table,
    })
}

impl RawLimits {
    /// `base`: the defaults an override's absent entries take.
    fn validate(
        &self,
        key: &str,
        base: Option<&TenantLimits>,
    ) -> Result<TenantLimits, InvalidSetting> {
        let base = base.cloned().unwrap_or_default();
        let field = |name: &str| format!("{key}.{name}");
        let ingest_rate = match self.ingest_rate {
            None => base.ingest_rate,
            Some(rate) if rate <= 0.0 => None,
            Some(rate) if rate.is_finite() => {
                let burst = self.ingest_burst.unwrap_or(rate * 2.0);
                if !burst.is_finite() || burst < 1.0 {
                    return Err(InvalidSetting::new(
                        field("ingest_burst"),
                        "must be at least 1",
                    ));
                }
                Some((rate, burst))
            }
            Some(_) => {
                return Err(InvalidSetting::new(
                    field("ingest_rate"),
                    "must be a number of logs per second",
                ));
            }
        };
        let ingest_bytes_per_day = match &self.ingest_bytes_per_day {
            None => base.ingest_bytes_per_day,
            Some(size) => size
                .resolve(&field("ingest_bytes_per_day"))?
                .filter(|b| *b > 0),
        };
        let days = |name: &str, text: &Option<String>, base: Option<Duration>| match text {
            None => Ok(base),
            Some(text) if text.trim() == "0" => Ok(None),
            Some(text) => duration(&field(name), text).map(Some),
        };
        let max_live_connections = match self.max_live_connections {
            None => base.max_live_connections,
            Some(n) if n < 0 => {
                return Err(InvalidSetting::new(
                    field("max_live_connections"),
                    "must not be negative",
                ));
            }
            Some(n) => Some(n as usize),
        };
        let retention_rules = match &self.retention_rules {
            None => base.retention_rules,
            Some(rules) => rules
                .iter()
                .enumerate()
                .map(|(i, rule)| rule.validate(&format!("{}[{i}]", field("retention_rules"))))
                .collect::<Result<_, _>>()?,
        };
        Ok(TenantLimits {
            ingest_rate,
            ingest_bytes_per_day,
            max_query_range: days(
                "max_query_range",
                &self.max_query_range,
                base.max_query_range,
            )?,
            max_live_connections,
            retention: days("retention", &self.retention, base.retention)?,
            retention_rules,
        })
    }
}

impl RawRetentionRule {
    pub fn validate(&self, key: &str) -> Result<RetentionRule, InvalidSetting> {
        let query = query::parse(&self.query)
            .map_err(|e| InvalidSetting::new(format!("{key}.query"), e))?;
        let keep = duration(&format!("{key}.keep"), &self.keep)?;
        if keep.is_zero() {
            return Err(InvalidSetting::new(
                format!("{key}.keep"),
                "must be more than 0",
            ));
        }
        Ok(RetentionRule {
            text: self.query.clone(),
            query,
            keep,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> RawTenants {
        use figment::providers::Format;
        let figment = figment::Figment::from(figment::providers::Serialized::defaults(
            RawTenants::default(),
        ))
        .merge(figment::providers::Toml::string(toml_text));
        figment.extract().unwrap()
    }

    #[test]
    fn overrides_take_the_defaults_they_do_not_set() {
        let config = raw(r#"
            enabled = true
            default_tenant = "shared"
            [defaults]
            ingest_rate = 1000
            retention = "30d"
            [overrides.team-a]
            retention = "7d"
            retention_rules = [{ query = "level:debug", keep = "3d" }]
            "#)
        .validate()
        .unwrap();
        assert_eq!(config.default_tenant.unwrap().as_str(), "shared");
        let team_a = config.limits.of(&TenantId::parse("team-a").unwrap());
        assert_eq!(team_a.ingest_rate, Some((1000.0, 2000.0)));
        assert_eq!(team_a.retention, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(team_a.retention_rules.len(), 1);
        let other = config.limits.of(&TenantId::parse("team-b").unwrap());
        assert_eq!(other.retention, Some(Duration::from_secs(30 * 86_400)));
        assert!(other.retention_rules.is_empty());
    }

    #[test]
    fn mistakes_name_their_key() {
        for (text, key) in [
            ("default_tenant = \"a b\"", "tenants.default_tenant"),
            (
                "[overrides.\"bad id\"]\nretention = \"1d\"",
                "tenants.overrides.bad id",
            ),
            (
                "[defaults]\nretention = \"soon\"",
                "tenants.defaults.retention",
            ),
            (
                "[defaults]\nretention_rules = [{ query = \"level:loud\", keep = \"1d\" }]",
                "tenants.defaults.retention_rules[0].query",
            ),
            (
                "[defaults]\ningest_bytes_per_day = \"lots\"",
                "tenants.defaults.ingest_bytes_per_day",
            ),
        ] {
            let error = raw(text).validate().unwrap_err();
            assert_eq!(error.key, key, "{text}: {error}");
        }
    }
}
