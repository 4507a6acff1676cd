//! The process's own logs: the `[log]` settings and the tracing subscriber
//! they set up.

use crate::domain::settings::InvalidSetting;
use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub level: String,
    pub format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct LogConfig {
    /// A tracing filter directive; a plain level is the common case.
    pub level: String,
    pub format: LogFormat,
}

impl RawLog {
    pub fn validate(&self) -> Result<LogConfig, InvalidSetting> {
        let level = self.level.trim().to_ascii_lowercase();
        if !matches!(
            level.as_str(),
            "trace" | "debug" | "info" | "warn" | "error" | "off"
        ) {
            return Err(InvalidSetting::new(
                "log.level",
                format!(
                    "unknown level {:?}: use trace, debug, info, warn, error or off",
                    self.level
                ),
            ));
        }
        let format = match self.format.trim().to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(InvalidSetting::new(
                    "log.format",
                    format!("unknown format {other:?}: use text or json"),
                ));
            }
        };
        Ok(LogConfig { level, format })
    }
}

/// Sends the process's logs to stderr at `config.level`, as text or JSON.
/// `RUST_LOG`, when set, refines the level (per module, say).
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},actix_server=warn", config.level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
