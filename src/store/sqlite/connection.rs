//! Connections: opening one with the store's pragmas, the blocking pool
//! reads and writes run on, and SQLite errors as store errors.

use super::{READER_CACHE_KIB, WRITER_CACHE_KIB, expr};
use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Arc;

/// SQLite virtual-machine steps between two checks for cancellation:
/// about a millisecond of work.
pub(super) const PROGRESS_STEPS: i32 = 10_000;

/// Sets its flag when dropped before `disarm`: the read's future was
/// dropped, so its SQL should stop.
#[derive(Default)]
pub(super) struct CancelOnDrop {
    pub(super) flag: Arc<std::sync::atomic::AtomicBool>,
    pub(super) disarmed: bool,
}

impl CancelOnDrop {
    pub(super) fn disarm(mut self) {
        self.disarmed = true;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.disarmed {
            self.flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

pub(super) fn poisoned<T>(_: T) -> StoreError {
    StoreError::Internal("sqlite connection lock poisoned".into())
}

pub(super) async fn run_blocking<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Internal(format!("sqlite task failed: {e}")))?
}

pub(super) fn sql_error(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(error.to_string())
        }
        Some(ErrorCode::DiskFull) => StoreError::DiskFull(error.to_string()),
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen) => {
            StoreError::Unavailable(error.to_string())
        }
        _ => StoreError::Internal(error.to_string()),
    }
}

pub(super) fn open_connection(path: &Path, writer: bool) -> Result<Connection, StoreError> {
    let flags = if writer {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    // WAL lets readers run beside the writer. synchronous=NORMAL keeps every
    // committed batch through a process crash; only an OS crash or power loss
    // can take back the last few commits (never corrupting the file).
    //
    // Page caches are small on purpose (they count in the process's RSS, the
    // operating system caches the file anyway): the writer only touches the
    // right edge of the table, the page index and the rollups; a reader's
    // scan streams through its cache rather than living in it.
    let cache_kib = if writer {
        WRITER_CACHE_KIB
    } else {
        READER_CACHE_KIB
    };
    connection
        .execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -{cache_kib};
             PRAGMA temp_store = MEMORY;"
        ))
        .map_err(sql_error)?;
    expr::register_functions(&connection).map_err(sql_error)?;
    Ok(connection)
}
