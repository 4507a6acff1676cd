//! The spill file: logs a stop acknowledged but could not store (the disk is
//! full, the store is away), written out so the next start stores them
//! first. Only an in-memory queue needs it: a durable bus's broker keeps
//! what was not acknowledged to it.
//!
//! A disk full enough to fail the store's writes can fail the spill too, so
//! the file's room is reserved ahead: `spill.reserve`, a file of the queue's
//! byte bound (`ingest.queue_max_bytes`) allocated at start, is deleted to
//! make room when the spill cannot be written otherwise, and made again once
//! the spill is stored.

use crate::domain::{Attributes, Level, LogBatch, LogRecord, TenantId};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const FILE_NAME: &str = "spill.ndjson";
pub const RESERVE_NAME: &str = "spill.reserve";

/// One log as spilled: everything it was acknowledged with, its id and
/// timestamp included, so storing it again is recognised as the same log.
#[derive(Serialize, Deserialize)]
struct Spilled<'a> {
    id: std::borrow::Cow<'a, str>,
    /// Microseconds since the epoch.
    ts: i64,
    level: std::borrow::Cow<'a, str>,
    service: std::borrow::Cow<'a, str>,
    message: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    attributes: Attributes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    span_id: Option<std::borrow::Cow<'a, str>>,
}

pub struct SpillFile {
    path: PathBuf,
    reserve: PathBuf,
    reserve_bytes: u64,
}

impl SpillFile {
    /// The spill file of `data_dir`, with `reserve_bytes` kept for it.
    pub fn new(data_dir: &Path, reserve_bytes: u64) -> SpillFile {
        SpillFile {
            path: data_dir.join(FILE_NAME),
            reserve: data_dir.join(RESERVE_NAME),
            reserve_bytes,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes sure the reserve exists at its full size. Not while a spill is
    /// waiting: its space may be all the disk has.
    pub fn reserve_room(&self) -> std::io::Result<()> {
        if self.path.exists() {
            return Ok(());
        }
        let current = std::fs::metadata(&self.reserve).map(|m| m.len()).ok();
        if current == Some(self.reserve_bytes) {
            return Ok(());
        }
        if let Some(parent) = self.reserve.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.reserve)?;
        allocate(&file, self.reserve_bytes).inspect_err(|_| {
            let _ = std::fs::remove_file(&self.reserve);
        })?;
        file.sync_all()
    }

    /// Appends `records` and syncs. When the disk has no room, the reserve
    /// is given up for them and the write tried again. `Ok` means every
    /// record is on disk.
    pub fn write(&self, records: &[&LogRecord]) -> std::io::Result<u64> {
        if records.is_empty() {
            return Ok(0);
        }
        let mut lines = Vec::new();
        for record in records {
            serde_json::to_writer(
                &mut lines,
                &Spilled {
                    id: record.id.as_str().into(),
                    ts: record.timestamp,
                    level: record.level.as_str().into(),
                    service: record.service.as_str().into(),
                    message: record.message.as_str().into(),
                    attributes: record.attributes.clone(),
                    tenant: (!record.tenant.is_default()).then(|| record.tenant.as_str().into()),
                    trace_id: record.trace_id.as_deref().map(Into::into),
                    span_id: record.span_id.as_deref().map(Into::into),
                },
            )?;
            lines.push(b'\n');
        }
        match self.append(&lines) {
            Err(error) if is_out_of_space(&error) && self.reserve.exists() => {
                tracing::warn!(
                    reserve = %self.reserve.display(),
                    "no room for the spill file: using the space reserved for it"
                );
                std::fs::remove_file(&self.reserve)?;
                self.append(&lines)?;
            }
            other => other?,
        }
        Ok(records.len() as u64)
    }

    /// Appends whole lines: a failed write is cut back to where it began, so
    /// a later append never follows half a line.
    fn append(&self, lines: &[u8]) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let before = file.metadata()?.len();
        let written = file.write_all(lines).and_then(|()| file.sync_data());
        if written.is_err() {
            let _ = file.set_len(before);
        }
        written
    }

    /// The logs a previous stop spilled (none without a file).
    pub fn read(&self) -> std::io::Result<Vec<LogRecord>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut records = Vec::new();
        for (number, line) in BufReader::new(file).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let spilled: Spilled = serde_json::from_str(&line).map_err(|error| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} line {}: {error}", self.path.display(), number + 1),
                )
            })?;
            let tenant = match &spilled.tenant {
                None => TenantId::default(),
                Some(name) => TenantId::parse(name).map_err(|error| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} line {}: {error}", self.path.display(), number + 1),
                    )
                })?,
            };
            records.push(LogRecord {
                id: spilled.id.into_owned(),
                timestamp: spilled.ts,
                level: Level::parse(&spilled.level).unwrap_or(Level::Info),
                service: spilled.service.into_owned(),
                message: spilled.message.into_owned(),
                attributes: spilled.attributes,
                tenant,
                trace_id: spilled.trace_id.map(|id| id.into_owned()),
                span_id: spilled.span_id.map(|id| id.into_owned()),
            });
        }
        Ok(records)
    }

    /// Once its logs are stored: the file goes, the reserve comes back.
    pub fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        if let Err(error) = self.reserve_room() {
            tracing::warn!(%error, "could not reserve room for a spill file again");
        }
        Ok(())
    }
}

/// Logs stored from the spill file per store write.
const RECOVERY_CHUNK: usize = 5000;
/// How long to wait before trying a spill again when the store refuses it.
const RECOVERY_RETRY: Duration = Duration::from_secs(5);

/// Stores what an earlier stop spilled, then removes the file (and makes
/// the reserve again); tried again every few seconds while the store cannot
/// take it (its disk still full, say). Logs of the file the store already
/// holds (a spill interrupted by a crash, stored once already) are skipped.
pub async fn store_spilled(spill: SpillFile, store: Arc<dyn Store>) {
    let records = match spill.read() {
        Ok(records) => records,
        Err(error) => {
            tracing::error!(%error, file = %spill.path().display(), "cannot read the spill file; its logs stay in it");
            return;
        }
    };
    if records.is_empty() {
        return;
    }
    tracing::info!(logs = records.len(), file = %spill.path().display(), "storing the logs spilled at the last stop");
    loop {
        match store_all(&records, store.as_ref()).await {
            Ok(()) => {
                if let Err(error) = spill.remove() {
                    tracing::error!(%error, file = %spill.path().display(), "spilled logs stored, but the spill file cannot be removed");
                } else {
                    tracing::info!(
                        logs = records.len(),
                        "stored the logs spilled at the last stop"
                    );
                }
                return;
            }
            Err(error) => {
                tracing::warn!(%error, logs = records.len(), "cannot store the spilled logs yet; retrying");
                tokio::time::sleep(RECOVERY_RETRY).await;
            }
        }
    }
}

async fn store_all(records: &[LogRecord], store: &dyn Store) -> Result<(), StoreError> {
    for chunk in records.chunks(RECOVERY_CHUNK) {
        let batch: LogBatch = chunk.to_vec().into();
        let stored = store.existing_ids(std::slice::from_ref(&batch)).await?;
        let rest: LogBatch = batch
            .iter()
            .filter(|record| !stored.contains(&record.id))
            .cloned()
            .collect();
        if !rest.is_empty() {
            store.insert(&[rest]).await?;
        }
    }
    Ok(())
}

fn is_out_of_space(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
        || error.kind() == std::io::ErrorKind::StorageFull
}

/// Really takes the blocks (a sparse file would reserve nothing).
fn allocate(file: &std::fs::File, bytes: u64) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: a valid open file descriptor and a non-negative length.
    let result = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, bytes as libc::off_t) };
    match result {
        0 => Ok(()),
        // Filesystems without fallocate: write the zeros.
        libc::EOPNOTSUPP | libc::EINVAL => {
            let zeros = vec![0u8; 1 << 20];
            let mut remaining = bytes;
            let mut writer = std::io::BufWriter::new(file);
            while remaining > 0 {
                let chunk = remaining.min(zeros.len() as u64) as usize;
                writer.write_all(&zeros[..chunk])?;
                remaining -= chunk as u64;
            }
            writer.flush()
        }
        code => Err(std::io::Error::from_raw_os_error(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> LogRecord {
        LogRecord {
            id: format!("id-{n}"),
            timestamp: 1_700_000_000_000_000 + n as i64,
            level: Level::Warn,
            service: "svc".into(),
            message: format!("line \"{n}\"\nsecond"),
            attributes: [("k.1".to_string(), "v".to_string())].into(),
            tenant: TenantId::parse(["default", "team-a"][n % 2]).unwrap(),
            trace_id: (n % 2 == 0).then(|| format!("{n:032x}")),
            span_id: None,
        }
    }

    #[test]
    fn spilled_logs_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let spill = SpillFile::new(dir.path(), 64 << 10);
        assert!(spill.read().unwrap().is_empty());
        let records: Vec<LogRecord> = (0..3).map(record).collect();
        let refs: Vec<&LogRecord> = records.iter().collect();
        assert_eq!(spill.write(&refs[..2]).unwrap(), 2);
        assert_eq!(spill.write(&refs[2..]).unwrap(), 1);
        assert_eq!(spill.read().unwrap(), records);
        spill.remove().unwrap();
        assert!(spill.read().unwrap().is_empty());
        assert_eq!(
            std::fs::metadata(dir.path().join(RESERVE_NAME))
                .unwrap()
                .len(),
            64 << 10,
            "the reserve is made again"
        );
    }

    #[test]
    fn the_reserve_is_not_made_while_a_spill_waits() {
        let dir = tempfile::tempdir().unwrap();
        let spill = SpillFile::new(dir.path(), 4096);
        spill.write(&[&record(1)]).unwrap();
        spill.reserve_room().unwrap();
        assert!(!dir.path().join(RESERVE_NAME).exists());
    }
}
