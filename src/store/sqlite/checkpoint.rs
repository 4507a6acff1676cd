//! WAL checkpoints on a thread of their own.
//!
//! With SQLite's automatic checkpoints, the transaction that pushes the WAL
//! past 1000 pages copies them into the database file before it returns:
//! perf showed that at 17% of the writer's time during bulk ingest, and the
//! writer is the bottleneck. So the writer connection turns them off and
//! this thread runs a PASSIVE checkpoint (it never blocks the writer or
//! readers) every `INTERVAL`. The WAL stays bounded: once a checkpoint has
//! copied everything, the next write starts the WAL file over.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the WAL is checkpointed while there are commits. Rarer
/// checkpoints copy a page modified by many batches (the right edge of the
/// page index, the rollups) once instead of once per batch: at every commit
/// the thread used 0.56 µs of CPU per stored log, at most once a second
/// about half that. The WAL then holds up to a second of writes.
const INTERVAL: Duration = Duration::from_secs(1);

pub struct Checkpointer {
    /// Dropping it stops the thread.
    stop: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to the database at `path`.
    pub fn start(path: &Path) -> rusqlite::Result<Checkpointer> {
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
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
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
