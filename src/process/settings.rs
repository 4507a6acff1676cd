//! `[process]`: how the batcher groups and retries store writes; and
//! `[retention]`, the global retention rules.

use crate::domain::settings::{InvalidSetting, duration, in_range};
use crate::tenants::{RawRetentionRule, RetentionRule};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcess {
    pub batch_size: i64,
    pub flush_timeout: String,
    pub max_retries: i64,
}

impl Default for RawProcess {
    fn default() -> Self {
        RawProcess {
            batch_size: 5000,
            flush_timeout: "200ms".into(),
            max_retries: 3,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ProcessConfig {
    pub batch_size: usize,
    pub flush_timeout: Duration,
    pub max_retries: u32,
    /// Testing only (the hidden `--stall-after-store` flag): after its first
    /// store write the batcher stops before acknowledging, so a test can kill
    /// the process between the insert and the ack.
    pub stall_after_store: bool,
}

impl RawProcess {
    pub fn validate(&self) -> Result<ProcessConfig, InvalidSetting> {
        let process = ProcessConfig {
            batch_size: in_range("process.batch_size", self.batch_size, 1, 1_000_000)?,
            flush_timeout: duration("process.flush_timeout", &self.flush_timeout)?,
            max_retries: in_range("process.max_retries", self.max_retries, 0, 100)? as u32,
            stall_after_store: false,
        };
        if process.flush_timeout.is_zero() {
            return Err(InvalidSetting::new(
                "process.flush_timeout",
                "must be more than 0",
            ));
        }
        Ok(process)
    }
}

/// `[retention]`: the global retention rules, `[[retention.rules]]` with a
/// `query` and how long to `keep` what it matches. A tenant's own
/// `retention_rules` come first (see `process::retention`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetention {
    pub rules: Vec<RawRetentionRule>,
}

impl RawRetention {
    pub fn validate(&self) -> Result<Vec<RetentionRule>, InvalidSetting> {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, rule)| rule.validate(&format!("retention.rules[{i}]")))
            .collect()
    }
}
