//! `[query]`: limits on the reads the query role runs.

use crate::domain::settings::{InvalidSetting, duration};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    pub timeout: String,
}

impl Default for RawQuery {
    fn default() -> Self {
        RawQuery {
            timeout: "30s".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct QueryConfig {
    /// A store read running longer is cancelled and answered `503`.
    pub timeout: Duration,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            timeout: Duration::from_secs(30),
        }
    }
}

impl RawQuery {
    pub fn validate(&self) -> Result<QueryConfig, InvalidSetting> {
        let timeout = duration("query.timeout", &self.timeout)?;
        if timeout < Duration::from_millis(10) || timeout > Duration::from_secs(3600) {
            return Err(InvalidSetting::new(
                "query.timeout",
                "must be from 10ms to 1h",
            ));
        }
        Ok(QueryConfig { timeout })
    }
}
