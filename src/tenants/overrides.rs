//! The overrides file (`tenants.overrides_file`): per-tenant limits changed
//! without a restart, as Loki's runtime configuration is. The file holds
//! `[defaults]` and `[overrides.<tenant>]` sections like `[tenants]`; it is
//! re-read when its modification time changes (checked every
//! [`POLL`]) and on SIGHUP. A file that does not parse or validate keeps
//! the last good limits, and the log says why.

use super::limits::TenantLimiter;
use super::settings::{LimitsTable, RawLimits, limits_table};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOverridesFile {
    defaults: Option<RawLimits>,
    overrides: BTreeMap<String, RawLimits>,
}

/// The limits of the configuration with the file's on top: its
/// `[defaults]` replace the configured ones, its overrides add to (and win
/// over) the configured overrides.
pub fn load(
    path: &Path,
    configured_defaults: &RawLimits,
    configured_overrides: &BTreeMap<String, RawLimits>,
) -> Result<LimitsTable, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    use figment::providers::Format;
    let file: RawOverridesFile = figment::Figment::from(figment::providers::Toml::string(&text))
        .extract()
        .map_err(|error| format!("{}: {error}", path.display()))?;
    let defaults = file.defaults.unwrap_or_else(|| configured_defaults.clone());
    let mut overrides = configured_overrides.clone();
    overrides.extend(file.overrides);
    limits_table(&defaults, &overrides, &path.display().to_string()).map_err(|e| e.to_string())
}

/// Re-reads the file when it changes or on SIGHUP until `stop` turns true.
pub async fn watch_file(
    path: PathBuf,
    configured_defaults: RawLimits,
    configured_overrides: BTreeMap<String, RawLimits>,
    limiter: Arc<TenantLimiter>,
    mut stop: watch::Receiver<bool>,
) {
    let modified = |path: &Path| -> Option<SystemTime> {
        std::fs::metadata(path).and_then(|m| m.modified()).ok()
    };
    let reload = |reason: &str| match load(&path, &configured_defaults, &configured_overrides) {
        Ok(table) => {
            limiter.replace(table);
            tracing::info!(file = %path.display(), reason, "tenant limits reloaded");
        }
        Err(error) => {
            tracing::error!(%error, "tenant limits file refused; the last good limits stay")
        }
    };
    let mut last = modified(&path);
    reload("start");
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut ticks = tokio::time::interval(POLL);
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hangup.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<()>();
        tokio::select! {
            _ = ticks.tick() => {
                let now = modified(&path);
                if now != last {
                    last = now;
                    reload("the file changed");
                }
            }
            () = signalled => reload("SIGHUP"),
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TenantId;

    #[test]
    fn the_file_adds_to_the_configuration_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("overrides.toml");
        std::fs::write(
            &path,
            "[overrides.team-a]\ningest_rate = 10\n[overrides.team-b]\nretention = \"2d\"\n",
        )
        .unwrap();
        let configured: BTreeMap<String, RawLimits> = [(
            "team-a".to_string(),
            RawLimits {
                ingest_rate: Some(99.0),
                ..Default::default()
            },
        )]
        .into();
        let table = load(&path, &RawLimits::default(), &configured).unwrap();
        let team_a = table.of(&TenantId::parse("team-a").unwrap());
        assert_eq!(team_a.ingest_rate, Some((10.0, 20.0)), "the file wins");
        assert!(
            table
                .of(&TenantId::parse("team-b").unwrap())
                .retention
                .is_some()
        );
        std::fs::write(&path, "[overrides.team-a]\ningest_rate = \"fast\"\n").unwrap();
        assert!(load(&path, &RawLimits::default(), &configured).is_err());
    }
}
