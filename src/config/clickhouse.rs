//! `[clickhouse]`: the production store; empty `url` keeps the embedded one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClickHouse {
    pub url: String,
}
