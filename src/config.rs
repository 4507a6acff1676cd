//! Configuration: built-in defaults < config file < environment < CLI flags,
//! merged with figment, then validated into [`Config`]. Any error is one line
//! naming the key (and the environment variables that set it).

use crate::cli::Cli;
use crate::domain::parse::LogLimits;
use crate::security::auth::KeySet;
use crate::security::client_ip::IpNet;
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
];

// ---- raw, as written by people ---------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    role: String,
    server: RawServer,
    storage: RawStorage,
    ingest: RawIngest,
    process: RawProcess,
    nats: RawNats,
    clickhouse: RawUrl,
    log: RawLog,
    security: RawSecurity,
    rate_limit: RawRateLimit,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    cors_allowed_origins: Vec<String>,
    ingest_keys: Vec<String>,
    read_keys: Vec<String>,
    trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    ingest_per_second: f64,
    ingest_burst: f64,
    query_per_second: f64,
    query_burst: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    host: String,
    port: i64,
    shutdown_timeout: String,
    body_read_timeout: String,
    workers: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    data_dir: PathBuf,
    retention_days: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIngest {
    max_body_bytes: i64,
    max_bulk_bytes: i64,
    queue_capacity: i64,
    max_message_bytes: i64,
    max_service_chars: i64,
    max_attributes: i64,
    max_attribute_key_bytes: i64,
    max_attribute_value_bytes: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    batch_size: i64,
    flush_timeout: String,
    max_retries: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUrl {
    url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNats {
    url: String,
    stream: String,
    subject_prefix: String,
    consumer: String,
    stream_max_bytes: i64,
    stream_max_age: String,
    ack_wait: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: String,
    format: String,
}

impl Default for RawConfig {
    fn default() -> Self {
        let limits = LogLimits::default();
        RawConfig {
            role: "all".into(),
            server: RawServer {
                host: "0.0.0.0".into(),
                port: 8080,
                shutdown_timeout: "30s".into(),
                body_read_timeout: "30s".into(),
                workers: 0,
            },
            storage: RawStorage {
                data_dir: PathBuf::from("data"),
                retention_days: 0,
            },
            ingest: RawIngest {
                max_body_bytes: 50 * 1024,
                max_bulk_bytes: 10 * 1024 * 1024,
                queue_capacity: 50_000,
                max_message_bytes: limits.max_message_bytes as i64,
                max_service_chars: limits.max_service_chars as i64,
                max_attributes: limits.max_attributes as i64,
                max_attribute_key_bytes: limits.max_attribute_key_bytes as i64,
                max_attribute_value_bytes: limits.max_attribute_value_bytes as i64,
            },
            process: RawProcess {
                batch_size: 5000,
                flush_timeout: "200ms".into(),
                max_retries: 3,
            },
            nats: RawNats {
                url: String::new(),
                stream: "OGLOGSTREAM".into(),
                subject_prefix: "oglogstream".into(),
                consumer: "oglogstream-process".into(),
                stream_max_bytes: 1 << 30,
                stream_max_age: "168h".into(),
                ack_wait: "30s".into(),
            },
            clickhouse: RawUrl::default(),
            log: RawLog {
                level: "info".into(),
                format: "text".into(),
            },
            security: RawSecurity {
                cors_allowed_origins: Vec::new(),
                ingest_keys: Vec::new(),
                read_keys: Vec::new(),
                trusted_proxies: Vec::new(),
            },
            rate_limit: RawRateLimit {
                ingest_per_second: 0.0,
                ingest_burst: 0.0,
                query_per_second: 0.0,
                query_burst: 0.0,
            },
        }
    }
}

// ---- validated ----------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Process,
    Query,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Process => "process",
            Role::Query => "query",
        }
    }
}

/// Which roles this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub ingest: bool,
    pub process: bool,
    pub query: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        ingest: true,
        process: true,
        query: true,
    };

    pub fn parse(text: &str) -> Result<Roles, String> {
        let mut roles = Roles {
            ingest: false,
            process: false,
            query: false,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "all" => roles = Roles::ALL,
                "ingest" => roles.ingest = true,
                "process" => roles.process = true,
                "query" => roles.query = true,
                other => {
                    return Err(format!(
                        "unknown role {other:?}: use all, ingest, process, query or a comma list"
                    ));
                }
            }
        }
        if roles.list().is_empty() {
            return Err("no role given: use all, ingest, process, query or a comma list".into());
        }
        Ok(roles)
    }

    pub fn list(self) -> Vec<Role> {
        [
            (self.ingest, Role::Ingest),
            (self.process, Role::Process),
            (self.query, Role::Query),
        ]
        .into_iter()
        .filter_map(|(on, role)| on.then_some(role))
        .collect()
    }

    pub fn is_all(self) -> bool {
        self == Roles::ALL
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.list().into_iter().map(Role::as_str).collect();
        f.write_str(&names.join(","))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub roles: Roles,
    pub server: ServerConfig,
    pub data_dir: PathBuf,
    pub ingest: IngestConfig,
    pub process: ProcessConfig,
    pub nats_url: Option<String>,
    pub nats: NatsConfig,
    pub clickhouse_url: Option<String>,
    pub log: LogConfig,
    /// Days of logs to keep; `None` keeps everything.
    pub retention_days: Option<u32>,
    pub security: SecurityConfig,
}

#[derive(Clone, Debug)]
pub struct SecurityConfig {
    pub cors_allowed_origins: Vec<String>,
    pub ingest_keys: KeySet,
    pub read_keys: KeySet,
    pub trusted_proxies: Vec<IpNet>,
    pub ingest_rate: Option<RateLimit>,
    pub query_rate: Option<RateLimit>,
}

#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// JetStream names and limits; used only when `nats_url` is set.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// The JetStream stream holding batches until a process instance stores them.
    pub stream: String,
    /// Subjects are `<prefix>.logs` (work queue) and `<prefix>.live` (live tail).
    pub subject_prefix: String,
    /// The durable pull consumer shared by every process instance.
    pub consumer: String,
    /// When the stream holds this many bytes, publishes fail (ingest answers 503).
    pub stream_max_bytes: i64,
    /// Batches still unprocessed after this long are dropped by the broker.
    pub stream_max_age: Duration,
    /// How long a delivery may stay unacknowledged before it is redelivered.
    pub ack_wait: Duration,
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `host:port`, resolved when binding.
    pub listen: String,
    pub shutdown_timeout: Duration,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
}

#[derive(Clone, Debug)]
pub struct IngestConfig {
    pub body_read_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_bulk_bytes: usize,
    pub queue_capacity: usize,
    pub limits: LogLimits,
}

#[derive(Clone, Debug)]
pub struct ProcessConfig {
    pub batch_size: usize,
    pub flush_timeout: Duration,
    pub max_retries: u32,
}

#[derive(Clone, Debug)]
pub struct LogConfig {
    /// A tracing filter directive; a plain level is the common case.
    pub level: String,
    pub format: LogFormat,
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
        Config::validate(raw)
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
        let port = raw.server.port;
        if !(0..=65535).contains(&port) {
            return Err(invalid(
                "server.port",
                format!("{port} is not a port (0-65535)"),
            ));
        }
        if raw.server.host.trim().is_empty() {
            return Err(invalid("server.host", "must not be empty"));
        }
        let host = &raw.server.host;
        let listen = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let shutdown_timeout = duration("server.shutdown_timeout", &raw.server.shutdown_timeout)?;
        let workers = in_range("server.workers", raw.server.workers, 0, 256)?;

        let ingest = &raw.ingest;
        let limits = LogLimits {
            max_message_bytes: in_range(
                "ingest.max_message_bytes",
                ingest.max_message_bytes,
                1,
                1 << 20,
            )?,
            max_service_chars: in_range(
                "ingest.max_service_chars",
                ingest.max_service_chars,
                1,
                1000,
            )?,
            max_attributes: in_range("ingest.max_attributes", ingest.max_attributes, 0, 1000)?,
            max_attribute_key_bytes: in_range(
                "ingest.max_attribute_key_bytes",
                ingest.max_attribute_key_bytes,
                1,
                4096,
            )?,
            max_attribute_value_bytes: in_range(
                "ingest.max_attribute_value_bytes",
                ingest.max_attribute_value_bytes,
                1,
                1 << 20,
            )?,
        };
        let ingest = IngestConfig {
            body_read_timeout: duration("server.body_read_timeout", &raw.server.body_read_timeout)?,
            max_body_bytes: in_range("ingest.max_body_bytes", ingest.max_body_bytes, 256, 1 << 30)?,
            max_bulk_bytes: in_range("ingest.max_bulk_bytes", ingest.max_bulk_bytes, 256, 1 << 30)?,
            queue_capacity: in_range(
                "ingest.queue_capacity",
                ingest.queue_capacity,
                1,
                100_000_000,
            )?,
            limits,
        };
        let process = ProcessConfig {
            batch_size: in_range("process.batch_size", raw.process.batch_size, 1, 1_000_000)?,
            flush_timeout: duration("process.flush_timeout", &raw.process.flush_timeout)?,
            max_retries: in_range("process.max_retries", raw.process.max_retries, 0, 100)? as u32,
        };
        if process.flush_timeout.is_zero() {
            return Err(invalid("process.flush_timeout", "must be more than 0"));
        }
        let level = raw.log.level.trim().to_ascii_lowercase();
        if !matches!(
            level.as_str(),
            "trace" | "debug" | "info" | "warn" | "error" | "off"
        ) {
            return Err(invalid(
                "log.level",
                format!(
                    "unknown level {:?}: use trace, debug, info, warn, error or off",
                    raw.log.level
                ),
            ));
        }
        let format = match raw.log.format.trim().to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "log.format",
                    format!("unknown format {other:?}: use text or json"),
                ));
            }
        };
        let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let nats_url = non_empty(&raw.nats.url);
        let nats = nats_config(&raw.nats)?;
        let clickhouse_url = non_empty(&raw.clickhouse.url);
        if !roles.is_all() && nats_url.is_none() {
            return Err(invalid(
                "nats.url",
                format!(
                    "role {roles} runs without the other roles, so it needs NATS to reach them; set NATS_URL or run --role all"
                ),
            ));
        }
        let retention_days = in_range(
            "storage.retention_days",
            raw.storage.retention_days,
            0,
            36_500,
        )?;
        let security = &raw.security;
        let security = SecurityConfig {
            cors_allowed_origins: security.cors_allowed_origins.clone(),
            ingest_keys: KeySet::parse(&security.ingest_keys)
                .map_err(|e| invalid("security.ingest_keys", e))?,
            read_keys: KeySet::parse(&security.read_keys)
                .map_err(|e| invalid("security.read_keys", e))?,
            trusted_proxies: security
                .trusted_proxies
                .iter()
                .map(|entry| IpNet::parse(entry))
                .collect::<Result<_, _>>()
                .map_err(|e| invalid("security.trusted_proxies", e))?,
            ingest_rate: rate_limit(
                "rate_limit.ingest",
                raw.rate_limit.ingest_per_second,
                raw.rate_limit.ingest_burst,
            )?,
            query_rate: rate_limit(
                "rate_limit.query",
                raw.rate_limit.query_per_second,
                raw.rate_limit.query_burst,
            )?,
        };
        Ok(Config {
            retention_days: (retention_days > 0).then_some(retention_days as u32),
            security,
            roles,
            server: ServerConfig {
                listen,
                shutdown_timeout,
                workers,
            },
            data_dir: raw.storage.data_dir,
            ingest,
            process,
            nats_url,
            nats,
            clickhouse_url,
            log: LogConfig { level, format },
        })
    }
}

/// NATS names end up in subjects and API subjects, where `.`, `*`, `>` and
/// whitespace have meaning; the prefix may hold dots (it is a subject prefix).
fn nats_config(raw: &RawNats) -> Result<NatsConfig, ConfigError> {
    let name_ok = |name: &str, dots: bool| {
        !name.is_empty()
            && name.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
            && (dots || !name.contains('.'))
    };
    for (key, value, dots) in [
        ("nats.stream", &raw.stream, false),
        ("nats.consumer", &raw.consumer, false),
        ("nats.subject_prefix", &raw.subject_prefix, true),
    ] {
        if !name_ok(value, dots) {
            return Err(invalid(
                key,
                format!(
                    "{value:?}: use letters, digits, '-' and '_'{}",
                    if dots { " (and '.' between parts)" } else { "" }
                ),
            ));
        }
    }
    let ack_wait = duration("nats.ack_wait", &raw.ack_wait)?;
    if ack_wait < Duration::from_secs(1) {
        return Err(invalid("nats.ack_wait", "must be at least 1s"));
    }
    let stream_max_age = duration("nats.stream_max_age", &raw.stream_max_age)?;
    if stream_max_age < Duration::from_secs(60) {
        return Err(invalid("nats.stream_max_age", "must be at least 1m"));
    }
    Ok(NatsConfig {
        stream: raw.stream.clone(),
        subject_prefix: raw.subject_prefix.clone(),
        consumer: raw.consumer.clone(),
        stream_max_bytes: in_range(
            "nats.stream_max_bytes",
            raw.stream_max_bytes,
            1 << 16,
            i64::MAX,
        )? as i64,
        stream_max_age,
        ack_wait,
    })
}

/// `per_second = 0` turns the limit off; `burst = 0` means twice the rate
/// (at least one request).
fn rate_limit(key: &str, per_second: f64, burst: f64) -> Result<Option<RateLimit>, ConfigError> {
    if !per_second.is_finite() || per_second < 0.0 {
        return Err(invalid(
            &format!("{key}_per_second"),
            "must be 0 (off) or more",
        ));
    }
    if !burst.is_finite() || burst < 0.0 {
        return Err(invalid(
            &format!("{key}_burst"),
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

fn split_listen(listen: &str) -> Option<(String, i64)> {
    let (host, port) = listen.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
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
            "roles={} listen={} data_dir={} nats={} clickhouse={} batch_size={} flush_timeout={:?} queue_capacity={} retention_days={} ingest_keys={} read_keys={} rate_limits={}",
            self.roles,
            self.server.listen,
            self.data_dir.display(),
            self.nats_url
                .as_deref()
                .map(redact_url)
                .unwrap_or_else(|| "-".into()),
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
        )
    }
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
mod tests {
    use super::*;
    use figment::Jail;

    fn load(cli: Cli) -> Result<Config, String> {
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
    fn security_and_rate_limits_from_the_environment() {
        Jail::expect_with(|jail| {
            jail.set_env("OGLOGSTREAM_RATE_LIMIT__INGEST_PER_SECOND", "2.5");
            jail.set_env(
                "OGLOGSTREAM_SECURITY__READ_KEYS",
                "[\"read-key-0123456789abcdef\"]",
            );
            jail.set_env("OGLOGSTREAM_SECURITY__TRUSTED_PROXIES", "[\"10.0.0.0/8\"]");
            let config = load(Cli::default()).unwrap();
            let rate = config.security.ingest_rate.expect("ingest rate limit");
            assert_eq!((rate.per_second, rate.burst), (2.5, 5.0));
            assert!(config.security.query_rate.is_none());
            assert!(!config.security.read_keys.is_open());
            assert!(config.security.ingest_keys.is_open());
            assert_eq!(config.security.trusted_proxies.len(), 1);
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
    fn nats_settings_have_defaults_and_are_checked() {
        Jail::expect_with(|jail| {
            let config = load(Cli::default()).unwrap();
            assert_eq!(config.nats.stream, "OGLOGSTREAM");
            assert_eq!(config.nats.subject_prefix, "oglogstream");
            assert_eq!(config.nats.ack_wait, Duration::from_secs(30));
            jail.set_env("OGLOGSTREAM_NATS__STREAM_MAX_BYTES", "1048576");
            jail.set_env("OGLOGSTREAM_NATS__SUBJECT_PREFIX", "team.logs");
            let config = load(Cli::default()).unwrap();
            assert_eq!(config.nats.stream_max_bytes, 1 << 20);
            assert_eq!(config.nats.subject_prefix, "team.logs");
            jail.set_env("OGLOGSTREAM_NATS__STREAM", "with.dot");
            assert!(load(Cli::default()).unwrap_err().contains("nats.stream"));
            jail.set_env("OGLOGSTREAM_NATS__STREAM", "OK");
            jail.set_env("OGLOGSTREAM_NATS__SUBJECT_PREFIX", "wild.*");
            assert!(
                load(Cli::default())
                    .unwrap_err()
                    .contains("nats.subject_prefix")
            );
            jail.set_env("OGLOGSTREAM_NATS__SUBJECT_PREFIX", "ok");
            jail.set_env("OGLOGSTREAM_NATS__ACK_WAIT", "10ms");
            assert!(load(Cli::default()).unwrap_err().contains("nats.ack_wait"));
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
