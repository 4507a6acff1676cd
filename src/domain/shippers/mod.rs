//! What the decoders of the shippers' protocols share (OTLP/HTTP logs, Loki
//! push, Elasticsearch bulk and syslog; each decoder lives with its handler
//! in `ingest/<protocol>/decoder.rs`). Each decoder is a pure function from
//! the bytes of a request (or a syslog frame) to our [`NewLog`]s plus the
//! records it refused ([`Decoded`]), and maps its protocol through one table
//! of data (severities, which label or field names the service).
//!
//! What the four share lives here once, so they cannot drift apart:
//! - [`record`]: one log from a shipper's record within `LogLimits`,
//!   truncating (with an attribute saying so) where the protocol has no way
//!   to refuse a single record;
//! - [`flatten`]: nested attributes to dotted keys;
//! - [`framing`]: where one message ends in a byte stream (syslog over TCP);
//! - [`protobuf`]: a small zero-copy protobuf wire reader and writer (OTLP,
//!   Loki), and [`compression`]: gzip and snappy with a cap on the output.
//!
//! Levels go through `Level::parse_alias`, the one level-name table.

pub mod compression;
pub mod flatten;
pub mod framing;
pub mod protobuf;
pub mod quoted;
pub mod record;

use super::parse::NewLog;
use std::fmt;

/// The logs a request carried and the records refused one by one.
#[derive(Debug, Default)]
pub struct Decoded {
    pub logs: Vec<NewLog>,
    pub rejected: Vec<RejectedRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedRecord {
    /// Position among the request's records, from 0.
    pub index: usize,
    pub error: String,
}

/// Why a whole request cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not this protocol's format (400): what is wrong and where.
    Malformed(String),
    /// The body inflates beyond this many bytes (413).
    TooLarge(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(message) => f.write_str(message),
            DecodeError::TooLarge(limit) => write!(
                f,
                "the request body inflates to more than the limit of {limit} bytes"
            ),
        }
    }
}

impl From<protobuf::ProtobufError> for DecodeError {
    fn from(error: protobuf::ProtobufError) -> DecodeError {
        DecodeError::Malformed(format!("malformed protobuf: {error}"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::NewLog;

    /// A log's attributes in key order, easy to compare with a literal.
    pub fn attribute_pairs(log: &NewLog) -> Vec<(&str, &str)> {
        log.attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect()
    }
}
