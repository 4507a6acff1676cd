//! Cursor tokens for keyset paging of `/api/logs`.
//!
//! A token names the last row of a page (its timestamp and id) and carries a
//! checksum over that position and the request's filters and order. So a
//! token that was cut, edited, or made for another search is refused with a
//! 400 instead of silently paging something else. It is a checksum, not a
//! signature: nothing is secret in a position, and any query instance can
//! check a token another one made.
//!
//! Layout, then base64url without padding: version (1 byte), timestamp
//! (8 bytes, big-endian), id (the rest), checksum (the last 12 bytes).

use crate::store::{LogFilter, LogKey, Order};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

const VERSION: u8 = 1;
const CHECKSUM_BYTES: usize = 12;
/// Ids are at most a few dozen bytes; anything longer is not ours.
const MAX_TOKEN_CHARS: usize = 512;

/// The token for the page after `last`.
pub fn encode(last: &LogKey, filter: &LogFilter, order: Order) -> String {
    let mut bytes = Vec::with_capacity(1 + 8 + last.id.len() + CHECKSUM_BYTES);
    bytes.push(VERSION);
    bytes.extend_from_slice(&last.timestamp.to_be_bytes());
    bytes.extend_from_slice(last.id.as_bytes());
    let checksum = checksum(&bytes, filter, order);
    bytes.extend_from_slice(&checksum);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The position a token names, if it was made for this filter and order.
pub fn decode(token: &str, filter: &LogFilter, order: Order) -> Result<LogKey, String> {
    const NOT_OURS: &str = "not a cursor from this search: use the X-Next-Cursor of the previous page, with the same filters and order";
    let token = token.trim();
    if token.len() > MAX_TOKEN_CHARS {
        return Err(NOT_OURS.into());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| NOT_OURS.to_string())?;
    if bytes.len() < 1 + 8 + CHECKSUM_BYTES || bytes[0] != VERSION {
        return Err(NOT_OURS.into());
    }
    let (content, sum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
    if checksum(content, filter, order) != sum {
        return Err(NOT_OURS.into());
    }
    let mut timestamp = [0u8; 8];
    timestamp.copy_from_slice(&content[1..9]);
    let id = std::str::from_utf8(&content[9..]).map_err(|_| NOT_OURS.to_string())?;
    Ok(LogKey {
        timestamp: i64::from_be_bytes(timestamp),
        id: id.to_string(),
    })
}

/// SHA-256 over the token's content, the filters and the order.
fn checksum(content: &[u8], filter: &LogFilter, order: Order) -> [u8; CHECKSUM_BYTES] {
    let mut hasher = Sha256::new();
    hasher.update(content);
    // Debug output of the parsed filter: equal filters (however the request
    // spelled them) give equal text within one version of the program.
    hasher.update(format!("{filter:?}|{order:?}").as_bytes());
    let digest = hasher.finalize();
    let mut out = [0u8; CHECKSUM_BYTES];
    out.copy_from_slice(&digest[..CHECKSUM_BYTES]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::query;

    fn filter(text: &str) -> LogFilter {
        LogFilter {
            expr: query::parse(text).unwrap(),
            ..LogFilter::default()
        }
    }

    #[test]
    fn a_token_round_trips_for_its_own_search_only() {
        let key = LogKey {
            timestamp: 1_735_689_600_123_456,
            id: "0194-é".into(),
        };
        let mine = filter("level:error region:eu-*");
        let token = encode(&key, &mine, Order::Desc);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode(&token, &mine, Order::Desc).unwrap(), key);
        assert!(decode(&token, &mine, Order::Asc).is_err(), "another order");
        assert!(
            decode(&token, &filter("level:error"), Order::Desc).is_err(),
            "another filter"
        );
        let mut narrower = mine.clone();
        narrower.from = Some(1);
        assert!(
            decode(&token, &narrower, Order::Desc).is_err(),
            "another range"
        );
    }

    #[test]
    fn altered_or_malformed_tokens_are_refused() {
        let key = LogKey {
            timestamp: 5,
            id: "abc".into(),
        };
        let any = LogFilter::default();
        let token = encode(&key, &any, Order::Asc);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[3] ^= 1;
        let altered = URL_SAFE_NO_PAD.encode(&bytes);
        for bad in [
            altered.as_str(),
            &token[..token.len() - 2],
            "not base64 !",
            "",
            "AQ",
            &"A".repeat(600),
        ] {
            assert!(decode(bad, &any, Order::Asc).is_err(), "{bad:?}");
        }
    }
}
