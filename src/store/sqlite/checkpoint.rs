//! WAL checkpoints on a thread of their own.
//!
//! With SQLite's automatic checkpoints, the transaction that pushes the WAL
//! past 1000 pages copies them into the database file before it returns:
//! perf showed that at 17% of the writer's time during bulk ingest, and the
//! writer is the bottleneck. So the writer connection turns them off and
//! this thread runs a PASSIVE checkpoint (it never blocks the writer or
//! readers) every `INTERVAL`. That alone does not bound the WAL file under
//! sustained writes: SQLite starts it over only when a transaction begins
//! with every frame copied, and with commits every few milliseconds that
//! moment never comes (a 10 s bulk load left a 1.4 GB WAL beside a 330 MB
//! database, disk that `storage.max_bytes` and the free-space watch count).
//! So the writer, between its transactions, truncates a WAL grown past
//! [`restart_bytes`] ([`Checkpointer::restart_if_large`]).

use crate::store::disk::{DiskStatus, DiskWatch};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the WAL is checkpointed while there are commits. Rarer
/// checkpoints copy a page modified by many batches (the right edge of the
/// page index, the rollups) once instead of once per batch: at every commit
/// the thread used 0.56 µs of CPU per stored log, at most once a second
/// about half that. The WAL then holds up to a second of writes.
const INTERVAL: Duration = Duration::from_secs(1);

/// A WAL file past [`restart_bytes`] is copied out and truncated by the
/// writer, which waits for the database's fsync meanwhile: the rarer, the
/// more the writer stores. Bulk into the embedded store stored +5% with the
/// WAL truncated at 256 MiB rather than 64 MiB (three interleaved pairs).
const WAL_RESTART_MAX_BYTES: u64 = 256 << 20;
/// The WAL is truncated at this size however little room the disk has
/// left: the free-space gate's estimate of the disk a queued log takes
/// (`STORED_BYTES_PER_QUEUED_BYTE`, which counts a WAL copy of each page)
/// was measured with the WAL truncated here.
const WAL_RESTART_MIN_BYTES: u64 = 64 << 20;
/// How long that truncation waits for readers of older snapshots before it
/// gives up (and tries again after the next transaction): it holds the
/// writer meanwhile, so a long read must not stall ingest behind it.
const RESTART_WAIT: Duration = Duration::from_millis(100);

pub struct Checkpointer {
    /// `<database>-wal`, where SQLite keeps the WAL.
    wal: PathBuf,
    /// The data directory's free space, which bounds the WAL's size.
    disk: Arc<DiskWatch>,
    /// Dropping it stops the thread.
    stop: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to the database at `path`.
    pub fn start(path: &Path, disk: Arc<DiskWatch>) -> rusqlite::Result<Checkpointer> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_secs(5))?;
        let (stop, stopped) = sync_channel(0);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(connection, stopped))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Checkpointer {
            wal: wal.into(),
            disk,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Called by the writer between transactions, on its own connection:
    /// a WAL file past [`restart_bytes`] is checkpointed to the end and
    /// truncated, waiting at most [`RESTART_WAIT`] for readers.
    pub fn restart_if_large(&self, writer: &Connection) {
        let wal_bytes = std::fs::metadata(&self.wal).map_or(0, |m| m.len());
        if wal_bytes <= restart_bytes(self.disk.status()) {
            return;
        }
        let _ = writer.busy_timeout(RESTART_WAIT);
        match writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            row.get::<_, i64>(0)
        }) {
            Ok(0) => tracing::debug!(wal_bytes, "WAL truncated"),
            Ok(_) => tracing::debug!(wal_bytes, "WAL truncation waited on a reader; next time"),
            Err(error) => tracing::warn!(%error, "sqlite WAL truncation failed; retrying"),
        }
        let _ = writer.busy_timeout(Duration::from_secs(5));
    }

    /// Stops the thread after one last checkpoint.
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The WAL size past which the writer truncates it: an eighth of the room
/// above the disk's reserve, between [`WAL_RESTART_MIN_BYTES`] and
/// [`WAL_RESTART_MAX_BYTES`]. The WAL is disk the free-space gate does not
/// foresee beyond the smaller size, so it grows larger only while the disk
/// has room to spare.
fn restart_bytes(disk: DiskStatus) -> u64 {
    let room = disk.free_bytes.saturating_sub(disk.min_free_bytes);
    (room / 8).clamp(WAL_RESTART_MIN_BYTES, WAL_RESTART_MAX_BYTES)
}

fn run(connection: Connection, stopped: Receiver<()>) {
    loop {
        let stop = matches!(
            stopped.recv_timeout(INTERVAL),
            Err(RecvTimeoutError::Disconnected) | Ok(())
        );
        // A PASSIVE checkpoint copies what no reader still needs and
        // returns (at once when there is nothing new); what it leaves is
        // taken by a later one.
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(0)
        }) {
            tracing::warn!(%error, "sqlite checkpoint failed; retrying");
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(free_bytes: u64, min_free_bytes: u64) -> DiskStatus {
        DiskStatus {
            free_bytes,
            total_bytes: 100 << 30,
            min_free_bytes,
            full: free_bytes < min_free_bytes,
        }
    }

    #[test]
    fn the_wal_grows_past_its_smallest_size_only_while_the_disk_has_room() {
        const MIB: u64 = 1 << 20;
        assert_eq!(restart_bytes(disk(50 << 30, 256 * MIB)), 256 * MIB);
        assert_eq!(
            restart_bytes(disk(256 * MIB + 1024 * MIB, 256 * MIB)),
            128 * MIB
        );
        assert_eq!(
            restart_bytes(disk(256 * MIB + 100 * MIB, 256 * MIB)),
            64 * MIB
        );
        assert_eq!(restart_bytes(disk(10 * MIB, 256 * MIB)), 64 * MIB);
    }
}
