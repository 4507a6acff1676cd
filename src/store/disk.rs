//! Free space on the filesystem that holds the embedded store.
//!
//! SQLite answers `SQLITE_FULL` only once a write has already failed, and by
//! then ingest has acknowledged logs that no write can take. So the store
//! watches the filesystem itself (a `statvfs` every [`POLL`] on a thread of
//! its own) and ingest asks [`DiskWatch::admit`] before acknowledging: a
//! batch is taken only while the free space, less what the logs already
//! queued will need, stays above `storage.min_free_bytes`. A write that fails
//! for want of space closes the gate too, until space returns.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the free space is read. A bulk load of 300k logs/s writes about
/// 30 MB in this time at most, well inside the default reserve.
const POLL: Duration = Duration::from_millis(100);

/// Bytes on disk per byte of a queued log's estimate: the row, its page
/// index entry, the search and facet blocks, the rollups, and the WAL copy
/// of each page before a checkpoint moves it into the database (measured
/// about 2.1 with the load generator's logs; doubled for safety).
pub const STORED_BYTES_PER_QUEUED_BYTE: u64 = 4;

/// The default `storage.min_free_bytes`: 1% of the filesystem or 256 MiB,
/// whichever is smaller.
pub fn default_min_free_bytes(total_bytes: u64) -> u64 {
    (total_bytes / 100).min(256 << 20)
}

/// The size and free space of the filesystem holding `path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    pub total_bytes: u64,
    /// Free to an unprivileged process (`f_bavail`), which is what SQLite
    /// may use.
    pub free_bytes: u64,
}

pub fn space_of(path: &Path) -> std::io::Result<Space> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path holds a NUL"))?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string and `stat` a writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let block = stat.f_frsize as u64;
    Ok(Space {
        total_bytes: (stat.f_blocks as u64).saturating_mul(block),
        free_bytes: (stat.f_bavail as u64).saturating_mul(block),
    })
}

/// What `/health` and `/metrics` show (a gauge of `/metrics`, so defined
/// there).
pub use crate::metrics::DiskStatus;

/// Why a batch was refused, for the client's error message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the store's disk is full ({free} free, {reserve} must stay free{queued}): logs are taken again once space is freed"
)]
pub struct DiskFull {
    free: Bytes,
    reserve: Bytes,
    queued: QueuedNote,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct QueuedNote(u64);

impl std::fmt::Display for QueuedNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 > 0 {
            write!(f, ", {} held for logs waiting to be stored", Bytes(self.0))
        } else {
            Ok(())
        }
    }
}

/// A byte count for people: `12.5 MiB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

/// The watcher: shared by the store (which reports failed writes) and the
/// ingest side (which asks before acknowledging).
pub struct DiskWatch {
    state: Arc<State>,
    /// Dropping it stops the thread.
    stop: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

struct State {
    dir: PathBuf,
    /// `None` in the settings: the default for the filesystem's size.
    configured_min_free: Option<u64>,
    min_free: AtomicU64,
    free: AtomicU64,
    total: AtomicU64,
    /// A write failed for want of space and no read of the free space has
    /// shown room since.
    write_failed: AtomicBool,
}

impl State {
    fn refresh(&self) {
        match space_of(&self.dir) {
            Ok(space) => {
                self.free.store(space.free_bytes, Ordering::Relaxed);
                self.total.store(space.total_bytes, Ordering::Relaxed);
                let min_free = self
                    .configured_min_free
                    .unwrap_or_else(|| default_min_free_bytes(space.total_bytes));
                self.min_free.store(min_free, Ordering::Relaxed);
                // A failed write opened no room: only more free space than
                // the reserve (with a margin, so the gate does not flap
                // around one value) says the next write can succeed.
                if space.free_bytes
                    > min_free
                        .saturating_mul(2)
                        .max(min_free.saturating_add(1 << 20))
                {
                    self.write_failed.store(false, Ordering::Relaxed);
                }
            }
            Err(error) => {
                tracing::warn!(%error, dir = %self.dir.display(), "cannot read the free space of the data directory");
            }
        }
    }
}

impl DiskWatch {
    /// Starts watching the filesystem of `dir`. `min_free_bytes`: the space
    /// that must stay free (`None`: [`default_min_free_bytes`]).
    pub fn start(dir: &Path, min_free_bytes: Option<u64>) -> std::io::Result<DiskWatch> {
        let state = Arc::new(State {
            dir: dir.to_path_buf(),
            configured_min_free: min_free_bytes,
            min_free: AtomicU64::new(0),
            free: AtomicU64::new(u64::MAX),
            total: AtomicU64::new(0),
            write_failed: AtomicBool::new(false),
        });
        // Fails here, at start, when the directory cannot be read at all.
        space_of(dir)?;
        state.refresh();
        let (stop, stopped) = sync_channel::<()>(0);
        let watched = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("disk-watch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(POLL) {
                    watched.refresh();
                }
            })?;
        Ok(DiskWatch {
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn status(&self) -> DiskStatus {
        let free = self.state.free.load(Ordering::Relaxed);
        let min_free = self.state.min_free.load(Ordering::Relaxed);
        DiskStatus {
            free_bytes: free,
            total_bytes: self.state.total.load(Ordering::Relaxed),
            min_free_bytes: min_free,
            full: self.state.write_failed.load(Ordering::Relaxed) || free < min_free,
        }
    }

    /// Whether a batch estimated at `incoming` bytes may be acknowledged
    /// while logs estimated at `queued` bytes wait to be written: the space
    /// both will take must leave `min_free_bytes` free.
    pub fn admit(&self, queued: u64, incoming: u64) -> Result<(), DiskFull> {
        let status = self.status();
        let needed = queued
            .saturating_add(incoming)
            .saturating_mul(STORED_BYTES_PER_QUEUED_BYTE);
        if status.full || status.free_bytes < needed.saturating_add(status.min_free_bytes) {
            return Err(DiskFull {
                free: Bytes(status.free_bytes),
                reserve: Bytes(status.min_free_bytes),
                queued: QueuedNote(queued.saturating_mul(STORED_BYTES_PER_QUEUED_BYTE)),
            });
        }
        Ok(())
    }

    /// A write failed for want of space: refuse until space returns.
    pub fn write_failed_for_space(&self) {
        self.state.write_failed.store(true, Ordering::Relaxed);
        self.state.refresh();
    }

    /// A write succeeded: whatever failed before has room now.
    pub fn write_succeeded(&self) {
        self.state.write_failed.store(false, Ordering::Relaxed);
    }

    /// Reads the free space now rather than at the next poll (tests, and a
    /// caller that has just freed space).
    pub fn refresh(&self) {
        self.state.refresh();
    }
}

impl Drop for DiskWatch {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_reserve_is_one_percent_or_256_mib() {
        assert_eq!(default_min_free_bytes(64 << 20), (64 << 20) / 100);
        assert_eq!(default_min_free_bytes(1 << 40), 256 << 20);
    }

    #[test]
    fn admission_leaves_the_reserve_free() {
        let dir = tempfile::tempdir().unwrap();
        let watch = DiskWatch::start(dir.path(), Some(0)).unwrap();
        let free = watch.status().free_bytes;
        assert!(watch.admit(0, 1000).is_ok());
        // A queue that would take more than all the free space is refused.
        let too_much = free / STORED_BYTES_PER_QUEUED_BYTE + 1;
        let refused = watch.admit(too_much, 0).unwrap_err();
        assert!(refused.to_string().contains("disk is full"), "{refused}");
        // A reserve larger than the filesystem is never met.
        let strict = DiskWatch::start(dir.path(), Some(u64::MAX)).unwrap();
        assert!(strict.status().full);
        assert!(strict.admit(0, 1).is_err());
    }

    #[test]
    fn a_failed_write_closes_the_gate_until_space_shows() {
        let dir = tempfile::tempdir().unwrap();
        // Every byte must stay free: no read of the free space can reopen it.
        let watch = DiskWatch::start(dir.path(), Some(u64::MAX / 4)).unwrap();
        watch.write_failed_for_space();
        assert!(watch.status().full);
        watch.write_succeeded();
        assert!(!watch.state.write_failed.load(Ordering::Relaxed));
        // With no reserve, a refresh alone reopens it.
        let open = DiskWatch::start(dir.path(), Some(0)).unwrap();
        open.write_failed_for_space();
        assert!(!open.status().full, "free space above the margin reopens");
    }

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(3 << 20).to_string(), "3.0 MiB");
    }
}
