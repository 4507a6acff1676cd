//! Configuration: built-in defaults < config file < environment < CLI flags,
//! merged with figment, then validated into [`Config`]. Any error is one line
//! naming the key (and the environment variables that set it).
//!
//! One module per section of the file: each holds the section's raw form (as
//! people write it, with its defaults) and turns it into the validated form
//! the rest of the program uses. This module merges the layers, composes the
//! sections and holds the helpers they share.

mod alerts;
mod clickhouse;
mod ingest;
mod log;
mod nats;
mod process;
mod query;
mod roles;
mod security;
mod server;
mod storage;
mod syslog;

pub use alerts::AlertsConfig;
pub use clickhouse::ClickHouseConfig;
pub use ingest::IngestConfig;
pub use log::{LogConfig, LogFormat};
pub use nats::NatsConfig;
pub use process::ProcessConfig;
pub use query::QueryConfig;
pub use roles::{Role, Roles};
pub use security::{RateLimit, SecurityConfig};
pub use server::ServerConfig;
pub use storage::StorageConfig;
pub use syslog::SyslogConfig;

use crate::cli::Cli;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    "query",
    "alerts",
];

/// The whole file as people write it; every section has its defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    role: String,
    server: server::RawServer,
    storage: storage::RawStorage,
    ingest: ingest::RawIngest,
    process: process::RawProcess,
    nats: nats::RawNats,
    clickhouse: clickhouse::RawClickHouse,
    log: log::RawLog,
    security: security::RawSecurity,
    rate_limit: security::RawRateLimit,
    syslog: syslog::RawSyslog,
    query: query::RawQuery,
    alerts: alerts::RawAlerts,
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
            query: Default::default(),
            alerts: Default::default(),
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
    pub query: QueryConfig,
    pub alerts: AlertsConfig,
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
        if let Some(role) = &cli.role {
            figment = figment.merge(("role", role));
        }
        if let Some(listen) = &cli.listen {
            let (host, port) = server::split_listen(listen).ok_or_else(|| {
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
        let body_read_timeout =
            duration("server.body_read_timeout", &raw.server.body_read_timeout)?;
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
        let alerts = raw.alerts.validate(&server.listen)?;
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
            query: raw.query.validate()?,
            alerts,
        })
    }
}

fn in_range(key: &str, value: i64, min: i64, max: i64) -> Result<usize, ConfigError> {
    if value < min || value > max {
        return Err(invalid(
            key,
            format!("{value} is out of range ({min} to {max})"),
        ));
    }
    Ok(value as usize)
}

/// `250ms`, `2s`, `1.5s`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

fn duration(key: &str, text: &str) -> Result<Duration, ConfigError> {
    parse_duration(text).ok_or_else(|| {
        invalid(
            key,
            format!("expected a duration such as 250ms, 2s, 5m or 1h, got {text:?}"),
        )
    })
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
            "roles={} listen={} data_dir={} nats={} clickhouse={} batch_size={} flush_timeout={:?} queue_capacity={} retention_days={} ingest_keys={} read_keys={} rate_limits={} syslog_tcp={} syslog_udp={}",
            self.roles,
            self.server.listen,
            self.data_dir.display(),
            if self.nats.servers.is_empty() {
                "-".to_string()
            } else {
                let servers: Vec<String> =
                    self.nats.servers.iter().map(|s| redact_url(s)).collect();
                servers.join(",")
            },
            self.clickhouse_url
                .as_deref()
                .map(redact_url)
                .unwrap_or_else(|| "-".into()),
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
            if self.security.ingest_rate.is_some() || self.security.query_rate.is_some() {
                "on"
            } else {
                "off"
            },
            listen_or_off(self.syslog.tcp_listen),
            listen_or_off(self.syslog.udp_listen),
        )
    }
}

fn listen_or_off(address: Option<std::net::SocketAddr>) -> String {
    address
        .map(|address| address.to_string())
        .unwrap_or_else(|| "off".into())
}

/// `scheme://user:secret@host` -> `scheme://user:***@host`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    let user = credentials.split(':').next().unwrap_or("");
    format!("{scheme}://{user}:***@{host}")
}

#[cfg(test)]
// figment's Jail API returns its large error type from every closure.
#[allow(clippy::result_large_err)]
pub(super) mod tests {
    use super::*;
    use figment::Jail;

    pub(super) fn load(cli: Cli) -> Result<Config, String> {
        Config::load(&cli).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid() {
        Jail::expect_with(|_| {
            let config = load(Cli::default()).unwrap();
            assert!(config.roles.is_all());
            assert_eq!(config.server.listen, "0.0.0.0:8080");
            assert_eq!(config.process.max_retries, 3);
            Ok(())
        });
    }

    #[test]
    fn layers_override_in_order() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "[process]\nbatch_size = 10\nmax_retries = 7\n[server]\nport = 9000\n",
            )?;
            jail.set_env("BATCH_SIZE", "20");
            jail.set_env("OGLOGSTREAM_PROCESS__BATCH_SIZE", "30");
            jail.set_env("HTTP_PORT", "9100");
            jail.set_env("OGLOGSTREAM_BIN", "/ignored/because/not/a/section");
            let cli = Cli {
                config: Some("custom.toml".into()),
                listen: Some("127.0.0.1:9200".into()),
                ..Cli::default()
            };
            let config = load(cli).unwrap();
            assert_eq!(config.process.batch_size, 30);
            assert_eq!(config.process.max_retries, 7);
            assert_eq!(config.server.listen, "127.0.0.1:9200");
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_their_key() {
        Jail::expect_with(|jail| {
            jail.set_env("FLUSH_TIMEOUT", "abc");
            let error = load(Cli::default()).unwrap_err();
            assert!(
                error.contains("process.flush_timeout") && error.contains("FLUSH_TIMEOUT"),
                "{error}"
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("HTTP_PORT", "99999");
            let error = load(Cli::default()).unwrap_err();
            assert!(error.contains("server.port"), "{error}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("LOG_LEVEL", "loud");
            assert!(load(Cli::default()).unwrap_err().contains("log.level"));
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("HTTP_PORT", "eighty");
            assert!(load(Cli::default()).unwrap_err().contains("server.port"));
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[process]\nbatch_sise = 10\n")?;
            let cli = Cli {
                config: Some("typo.toml".into()),
                ..Cli::default()
            };
            assert!(load(cli).unwrap_err().contains("batch_sise"));
            Ok(())
        });
    }

    #[test]
    fn split_roles_need_nats() {
        Jail::expect_with(|_| {
            let cli = Cli {
                role: Some("ingest".into()),
                ..Cli::default()
            };
            assert!(load(cli).unwrap_err().contains("NATS_URL"));
            let cli = Cli {
                role: Some("ingest,process,query".into()),
                ..Cli::default()
            };
            assert!(load(cli).is_ok());
            let cli = Cli {
                role: Some("ingest,nope".into()),
                ..Cli::default()
            };
            assert!(load(cli).unwrap_err().contains("unknown role"));
            Ok(())
        });
    }

    #[test]
    fn durations_and_redaction() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(
            redact_url("clickhouse://u:p@h:9000/db"),
            "clickhouse://u:***@h:9000/db"
        );
    }
}
