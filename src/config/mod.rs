//! Configuration: built-in defaults < config file < environment < CLI flags,
//! merged with figment, then validated into [`Config`]. Any error is one line
//! naming the key (and the environment variables that set it).
//!
//! Each section of the file belongs to the component it configures, which
//! holds its raw form (as people write it, with its defaults) and turns it
//! into its own validated settings (`bus::nats::RawNats` into `NatsConfig`,
//! say), reporting a `domain::settings::InvalidSetting` that names the key.
//! This module merges the layers, composes the sections into [`Config`] and
//! turns a refusal into a [`ConfigError`] naming the environment variables
//! that set the key. It imports the components; none imports it.

pub use crate::alerts::AlertsConfig;
pub use crate::auth::AuthConfig;
pub use crate::bus::nats::NatsConfig;
pub use crate::http::server::ServerConfig;
pub use crate::ingest::IngestConfig;
pub use crate::ingest::otlp::OtlpConfig;
pub use crate::ingest::syslog::SyslogConfig;
pub use crate::logging::{LogConfig, LogFormat};
pub use crate::process::ProcessConfig;
pub use crate::query::loki::LokiConfig;
pub use crate::query::{QueryConfig, UiConfig};
pub use crate::security::{RateLimit, SecurityConfig};
pub use crate::store::clickhouse::ClickHouseConfig;
pub use crate::store::settings::StorageConfig;
pub use crate::tenants::TenantsConfig;

use crate::alerts::RawAlerts;
use crate::auth::RawAuth;
use crate::bus::nats::RawNats;
use crate::cli::Cli;
use crate::domain::roles::Roles;
use crate::domain::settings::{InvalidSetting, redact_url};
use crate::http::server::{RawServer, split_listen};
use crate::ingest::RawIngest;
use crate::ingest::otlp::RawOtlp;
use crate::ingest::syslog::RawSyslog;
use crate::logging::RawLog;
use crate::process::{RawProcess, RawRetention};
use crate::query::loki::RawLoki;
use crate::query::{RawQuery, RawUi};
use crate::security::{RawRateLimit, RawSecurity};
use crate::store::clickhouse::RawClickHouse;
use crate::tenants::RawTenants;
pub use crate::tenants::RetentionRule;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG_FILE: &str = "config/oglogstream.toml";

/// The seed's environment variable names, kept so its deployments work.
const SEED_ALIASES: &[(&str, &str)] = &[
    ("HTTP_PORT", "server.port"),
    ("NATS_URL", "nats.url"),
    ("CLICKHOUSE_DSN", "clickhouse.url"),
    ("BATCH_SIZE", "process.batch_size"),
    ("FLUSH_TIMEOUT", "process.flush_timeout"),
    ("MAX_RETRIES", "process.max_retries"),
    ("SHUTDOWN_TIMEOUT", "server.shutdown_timeout"),
    ("LOG_LEVEL", "log.level"),
    ("LOG_FORMAT", "log.format"),
];

/// Secrets taken from the environment exactly as written. figment reads
/// other values as TOML-like (`0123` would become the number 123, `[x]` a
/// list), which would change a password or token, or refuse it.
const VERBATIM_ENV_KEYS: &[&str] = &["nats.user", "nats.password", "nats.token"];

const TOP_LEVEL_KEYS: &[&str] = &[
    "role",
    "server",
    "storage",
    "ingest",
    "process",
    "nats",
    "clickhouse",
    "log",
    "security",
    "rate_limit",
    "syslog",
    "otlp",
    "query",
    "alerts",
    "loki",
    "auth",
    "tenants",
    "retention",
    "ui",
];

/// The whole file as people write it; every section has its defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    role: String,
    server: RawServer,
    storage: crate::store::settings::RawStorage,
    ingest: RawIngest,
    process: RawProcess,
    nats: RawNats,
    clickhouse: RawClickHouse,
    log: RawLog,
    security: RawSecurity,
    rate_limit: RawRateLimit,
    syslog: RawSyslog,
    otlp: RawOtlp,
    query: RawQuery,
    alerts: RawAlerts,
    loki: RawLoki,
    auth: RawAuth,
    tenants: RawTenants,
    retention: RawRetention,
    ui: RawUi,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            role: "all".into(),
            server: Default::default(),
            storage: Default::default(),
            ingest: Default::default(),
            process: Default::default(),
            nats: Default::default(),
            clickhouse: Default::default(),
            log: Default::default(),
            security: Default::default(),
            rate_limit: Default::default(),
            syslog: Default::default(),
            otlp: Default::default(),
            query: Default::default(),
            alerts: Default::default(),
            loki: Default::default(),
            auth: Default::default(),
            tenants: Default::default(),
            retention: Default::default(),
            ui: Default::default(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub roles: Roles,
    pub server: ServerConfig,
    pub data_dir: PathBuf,
    pub storage: StorageConfig,
    pub ingest: IngestConfig,
    pub process: ProcessConfig,
    pub nats_url: Option<String>,
    pub nats: NatsConfig,
    pub clickhouse_url: Option<String>,
    pub clickhouse: ClickHouseConfig,
    pub log: LogConfig,
    /// Days of logs to keep; `None` keeps everything.
    pub retention_days: Option<u32>,
    pub security: SecurityConfig,
    pub syslog: SyslogConfig,
    pub otlp: OtlpConfig,
    pub query: QueryConfig,
    pub alerts: AlertsConfig,
    pub loki: LokiConfig,
    pub auth: AuthConfig,
    pub tenants: TenantsConfig,
    /// `[[retention.rules]]`: every tenant's, after its own.
    pub retention_rules: Vec<RetentionRule>,
    pub ui: UiConfig,
}

/// A configuration error: one line naming the key.
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The error for `key`, naming every environment variable that sets it.
fn invalid(key: &str, problem: impl fmt::Display) -> ConfigError {
    let mut sources = vec![format!(
        "OGLOGSTREAM_{}",
        key.to_ascii_uppercase().replace('.', "__")
    )];
    sources.extend(
        SEED_ALIASES
            .iter()
            .filter(|(_, k)| *k == key)
            .map(|(env, _)| env.to_string()),
    );
    ConfigError(format!("{key} ({}): {problem}", sources.join(" or ")))
}

/// A component's refusal of its setting. A plain key (`nats.ack_wait`)
/// also names its environment variables; an item of a list
/// (`alerts.rules[0].query`) has none of its own, since a variable sets the
/// whole list.
impl From<InvalidSetting> for ConfigError {
    fn from(error: InvalidSetting) -> ConfigError {
        let plain_key = error
            .key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
        if plain_key {
            invalid(&error.key, error.problem)
        } else {
            ConfigError(error.to_string())
        }
    }
}

impl Config {
    /// Resolves the configuration from the flags and the process environment.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        let figment = Config::figment(cli)?;
        let raw: RawConfig = figment.extract().map_err(describe_figment_error)?;
        let mut config = Config::validate(raw)?;
        config.process.stall_after_store = cli.stall_after_store;
        Ok(config)
    }

    fn figment(cli: &Cli) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        match &cli.config {
            Some(path) if !path.is_file() => {
                return Err(ConfigError(format!(
                    "--config {}: no such file",
                    path.display()
                )));
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
            }
            None => {}
        }
        let aliases = Env::raw()
            .only(&SEED_ALIASES.iter().map(|(env, _)| *env).collect::<Vec<_>>())
            .map(|key| {
                SEED_ALIASES
                    .iter()
                    .find(|(env, _)| key.as_str().eq_ignore_ascii_case(env))
                    .map(|(_, path)| (*path).into())
                    .unwrap_or_else(|| key.into())
            });
        // Only known sections are read, so unrelated OGLOGSTREAM_* variables
        // (a test harness's OGLOGSTREAM_BIN, say) are not mistaken for typos.
        let prefixed = Env::prefixed("OGLOGSTREAM_").split("__").filter(|key| {
            // figment may show the key before or after `split`; take the
            // section name either way.
            let root = key.as_str().split("__").next().unwrap_or("");
            let root = root.split('.').next().unwrap_or("");
            TOP_LEVEL_KEYS
                .iter()
                .any(|known| root.eq_ignore_ascii_case(known))
        });
        figment = figment.merge(aliases).merge(prefixed);
        for key in VERBATIM_ENV_KEYS {
            let variable = format!(
                "OGLOGSTREAM_{}",
                key.to_ascii_uppercase().replace('.', "__")
            );
            if let Ok(value) = std::env::var(&variable) {
                figment = figment.merge((*key, value));
            }
        }
        if let Some(role) = &cli.role {
            figment = figment.merge(("role", role));
        }
        if let Some(listen) = &cli.listen {
            let (host, port) = split_listen(listen).ok_or_else(|| {
                ConfigError(format!(
                    "--listen {listen:?}: expected HOST:PORT such as 127.0.0.1:8080"
                ))
            })?;
            figment = figment
                .merge(("server.host", host))
                .merge(("server.port", port));
        }
        if let Some(data_dir) = &cli.data_dir {
            figment = figment.merge(("storage.data_dir", data_dir));
        }
        Ok(figment)
    }

    fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let roles = Roles::parse(&raw.role).map_err(|e| invalid("role", e))?;
        let server = raw.server.validate()?;
        let body_read_timeout = raw.server.body_read_timeout()?;
        let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let nats_url = non_empty(&raw.nats.url);
        if !roles.is_all() && nats_url.is_none() {
            return Err(invalid(
                "nats.url",
                format!(
                    "role {roles} runs without the other roles, so it needs NATS to reach them; set NATS_URL or run --role all"
                ),
            ));
        }
        let mut alerts = raw.alerts.validate(&server.listen)?;
        if server.tls.is_some() && raw.alerts.external_url.trim().is_empty() {
            // The derived address (see `alerts.external_url`) is ours: HTTPS.
            alerts.external_url = alerts.external_url.replacen("http://", "https://", 1);
        }
        Ok(Config {
            roles,
            server,
            data_dir: raw.storage.data_dir.clone(),
            storage: raw.storage.validate()?,
            ingest: raw.ingest.validate(body_read_timeout)?,
            process: raw.process.validate()?,
            nats: raw.nats.validate()?,
            nats_url,
            clickhouse_url: non_empty(&raw.clickhouse.url),
            clickhouse: raw.clickhouse.validate()?,
            log: raw.log.validate()?,
            retention_days: raw.storage.retention_days()?,
            security: raw.security.validate(&raw.rate_limit)?,
            syslog: raw.syslog.validate()?,
            otlp: raw.otlp.validate()?,
            query: raw.query.validate()?,
            alerts,
            loki: raw.loki.validate()?,
            auth: raw.auth.validate()?,
            tenants: raw.tenants.validate()?,
            retention_rules: raw.retention.validate()?,
            ui: raw.ui.validate()?,
        })
    }
}

fn describe_figment_error(error: figment::Error) -> ConfigError {
    let key = error.path.join(".");
    let source = error
        .metadata
        .as_ref()
        .map(|m| m.name.to_string())
        .unwrap_or_default();
    let key = if key.is_empty() {
        "configuration".to_string()
    } else {
        key
    };
    let problem = error.kind.to_string();
    if source.is_empty() {
        invalid(&key, problem)
    } else {
        invalid(&key, format!("{problem} (from {source})"))
    }
}

impl Config {
    /// One line for the start-up log. Credentials in URLs are masked.
    pub fn summary(&self) -> String {
        format!(
            "roles={} listen={}://{} data_dir={} nats={}{} clickhouse={}{} batch_size={} flush_timeout={:?} queue_capacity={} retention_days={} ingest_keys={} read_keys={} sign_in={} rate_limits={} syslog_tcp={} syslog_udp={} syslog_tls={} otlp_grpc={}",
            self.roles,
            self.server.scheme(),
            self.server.listen,
            self.data_dir.display(),
            if self.nats.servers.is_empty() {
                "-".to_string()
            } else {
                let servers: Vec<String> =
                    self.nats.servers.iter().map(|s| redact_url(s)).collect();
                servers.join(",")
            },
            nats_security(&self.nats),
            self.clickhouse_url
                .as_deref()
                .map(redact_url)
                .unwrap_or_else(|| "-".into()),
            if self.clickhouse.tls.is_set() {
                " (tls_ca)"
            } else {
                ""
            },
            self.process.batch_size,
            self.process.flush_timeout,
            self.ingest.queue_capacity,
            self.retention_days
                .map(|d| d.to_string())
                .unwrap_or_else(|| "forever".into()),
            if self.security.ingest_keys.is_open() {
                "off"
            } else {
                "on"
            },
            if self.security.read_keys.is_open() {
                "off"
            } else {
                "on"
            },
            self.auth
                .oidc
                .as_ref()
                .map_or("off", |oidc| oidc.issuer.as_str()),
            if self.security.ingest_rate.is_some() || self.security.query_rate.is_some() {
                "on"
            } else {
                "off"
            },
            listen_or_off(self.syslog.tcp_listen),
            listen_or_off(self.syslog.udp_listen),
            listen_or_off(self.syslog.tls_listen.as_ref().map(|(address, _)| *address)),
            listen_or_off(self.otlp.grpc_listen),
        )
    }
}

/// How the NATS client signs in and whether it requires TLS, without any
/// secret: ` (tls, nats.creds_file)`.
fn nats_security(nats: &NatsConfig) -> String {
    use crate::bus::nats::NatsCredentials;
    let mut parts = Vec::new();
    if nats.tls.is_set() {
        parts.push("tls".to_string());
    }
    if nats.credentials != NatsCredentials::None {
        parts.push(nats.credentials.settings());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn listen_or_off(address: Option<std::net::SocketAddr>) -> String {
    address
        .map(|address| address.to_string())
        .unwrap_or_else(|| "off".into())
}

#[cfg(test)]
// figment's Jail API returns its large error type from every closure.
#[allow(clippy::result_large_err)]
mod tests;
