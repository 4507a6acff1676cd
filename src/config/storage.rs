//! `[storage]`: the embedded store's directory and how long logs are kept.

use super::{ConfigError, in_range};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub data_dir: PathBuf,
    pub retention_days: i64,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            data_dir: PathBuf::from("data"),
            retention_days: 0,
        }
    }
}

impl RawStorage {
    /// Days of logs to keep; `None` keeps everything.
    pub(super) fn retention_days(&self) -> Result<Option<u32>, ConfigError> {
        let days = in_range("storage.retention_days", self.retention_days, 0, 36_500)?;
        Ok((days > 0).then_some(days as u32))
    }
}
