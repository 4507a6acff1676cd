//! `[log]`: the process's own logs.

use super::{ConfigError, invalid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
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
    pub(super) fn validate(&self) -> Result<LogConfig, ConfigError> {
        let level = self.level.trim().to_ascii_lowercase();
        if !matches!(
            level.as_str(),
            "trace" | "debug" | "info" | "warn" | "error" | "off"
        ) {
            return Err(invalid(
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
                return Err(invalid(
                    "log.format",
                    format!("unknown format {other:?}: use text or json"),
                ));
            }
        };
        Ok(LogConfig { level, format })
    }
}
