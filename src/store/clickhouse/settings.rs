//! `[clickhouse]`: the production store's settings; an empty `url` keeps the
//! embedded store. [`Options`] is what the store is opened with: these plus
//! the query role's read timeout.

use super::client::STATEMENT_TIMEOUT;
use super::windows::Stepping;
use crate::domain::settings::{InvalidSetting, Secret};
use crate::tls::client::ClientTls;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClickHouse {
    pub url: String,
    /// A cluster of the servers' `remote_servers`; empty for one server.
    pub cluster: String,
    /// `ReplicatedMergeTree` (the servers need ZooKeeper and the `{shard}`
    /// and `{replica}` macros).
    pub replicated: bool,
    /// The CA (PEM) that signed the server's certificate: TLS to the
    /// secure port, trusting only it. `secure=true` in the DSN asks for TLS
    /// trusting the system's roots.
    pub tls_ca: String,
    /// A file holding the password, instead of writing it in the DSN.
    pub password_file: String,
}

/// How the ClickHouse store lays out its tables; used only when
/// `clickhouse_url` is set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// `Some(name)`: local tables on every shard of `name`, `Distributed`
    /// tables over them.
    pub cluster: Option<String>,
    pub replicated: bool,
    pub tls: ClientTls,
    /// From `password_file`; the DSN's password otherwise.
    pub password: Option<Secret>,
}

impl RawClickHouse {
    pub fn validate(&self) -> Result<ClickHouseConfig, InvalidSetting> {
        let cluster = self.cluster.trim();
        // The name is written into DDL (`ON CLUSTER name`, `Distributed(name, …)`).
        let identifier = cluster
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !cluster.starts_with(|c: char| c.is_ascii_digit());
        if !identifier {
            return Err(InvalidSetting::new(
                "clickhouse.cluster",
                format!("{cluster:?}: use letters, digits and '_' (a name from remote_servers)"),
            ));
        }
        if self.replicated && cluster.is_empty() {
            return Err(InvalidSetting::new(
                "clickhouse.replicated",
                "needs clickhouse.cluster: the cluster names the replicas of each shard",
            ));
        }
        let password = match self.password_file.trim() {
            "" => None,
            path => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    InvalidSetting::new(
                        "clickhouse.password_file",
                        format!("{path}: cannot read it: {error}"),
                    )
                })?;
                Some(Secret::from_file_text(
                    "clickhouse.password_file",
                    path,
                    &text,
                )?)
            }
        };
        Ok(ClickHouseConfig {
            cluster: (!cluster.is_empty()).then(|| cluster.to_string()),
            replicated: self.replicated,
            tls: ClientTls::from_settings("clickhouse", &self.tls_ca, "", "")?,
            password,
        })
    }
}

/// Tuning of the store; the defaults are what the server runs with.
#[derive(Clone, Debug)]
pub struct Options {
    /// A cluster from the servers' `remote_servers`: local tables on every
    /// host, `Distributed` ones over them (see `schema.rs`).
    pub cluster: Option<String>,
    /// `Replicated*MergeTree` local tables (with `cluster`).
    pub replicated: bool,
    /// Every read (all the statements of one answer together) is bounded by
    /// this, on the server too (`max_execution_time`).
    pub read_timeout: Duration,
    /// How page queries step through time windows.
    pub stepping: Stepping,
    /// TLS settings (`clickhouse.tls_ca`); with the DSN's `secure=`.
    pub tls: ClientTls,
    /// Replaces the DSN's password (`clickhouse.password_file`).
    pub password: Option<Secret>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cluster: None,
            replicated: false,
            read_timeout: STATEMENT_TIMEOUT,
            stepping: Stepping::default(),
            tls: ClientTls::default(),
            password: None,
        }
    }
}
