//! The dead-letter file: batches the store would not take after every retry,
//! one log per line in the ingest shape, so the file can be replayed with
//! `curl --data-binary @dead-letter.ndjson -H 'Content-Type: application/x-ndjson' .../log/bulk`.

use crate::domain::LogRecord;
use crate::domain::time::format_rfc3339;
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "dead-letter.ndjson";

pub struct DeadLetterFile {
    path: PathBuf,
}

#[derive(Serialize)]
struct Replayable<'a> {
    level: &'a str,
    message: &'a str,
    service: &'a str,
    timestamp: String,
    attributes: &'a crate::domain::Attributes,
}

impl DeadLetterFile {
    pub fn new(data_dir: &Path) -> DeadLetterFile {
        DeadLetterFile {
            path: data_dir.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs already in the file (from earlier runs too).
    pub fn count_existing(&self) -> u64 {
        match std::fs::File::open(&self.path) {
            Ok(file) => BufReader::new(file).lines().count() as u64,
            Err(_) => 0,
        }
    }

    /// Appends and syncs; `Ok` means the logs are on disk.
    pub fn append<'a>(&self, records: impl Iterator<Item = &'a LogRecord>) -> std::io::Result<u64> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut lines = Vec::new();
        let mut count = 0;
        for record in records {
            serde_json::to_writer(
                &mut lines,
                &Replayable {
                    level: record.level.as_str(),
                    message: &record.message,
                    service: &record.service,
                    timestamp: format_rfc3339(record.timestamp),
                    attributes: &record.attributes,
                },
            )?;
            lines.push(b'\n');
            count += 1;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&lines)?;
        file.sync_data()?;
        Ok(count)
    }
}
