//! Compressed request bodies: gzip (`Content-Encoding: gzip`, any HTTP
//! shipper) and snappy's block format (Loki's protobuf bodies). The output
//! is capped: a small body that inflates without end (a zip bomb) is
//! refused with [`DecodeError::TooLarge`] once it passes `limit`, having
//! never held more than `limit` bytes.

use super::DecodeError;
use std::io::Read;

pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut inflated = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    // One byte over the limit is enough to know it is too large.
    let mut decoder = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut inflated)
        .map_err(|e| DecodeError::Malformed(format!("the gzip body cannot be inflated: {e}")))?;
    if inflated.len() > limit {
        return Err(DecodeError::TooLarge(limit));
    }
    Ok(inflated)
}

/// Snappy's block format announces its inflated length up front, so an
/// oversized body is refused before anything is allocated.
pub fn unsnappy(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let length = snap::raw::decompress_len(body).map_err(|e| {
        DecodeError::Malformed(format!("the body is not snappy (block format): {e}"))
    })?;
    if length > limit {
        return Err(DecodeError::TooLarge(limit));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Malformed(format!("the snappy body cannot be inflated: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_round_trip_and_bomb() {
        assert_eq!(gunzip(&gzip(b"hello"), 5).unwrap(), b"hello");
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20_000, "{} bytes", bomb.len());
        assert_eq!(gunzip(&bomb, 1 << 20), Err(DecodeError::TooLarge(1 << 20)));
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn snappy_round_trip_and_declared_length() {
        let packed = snap::raw::Encoder::new()
            .compress_vec(b"hello hello hello")
            .unwrap();
        assert_eq!(unsnappy(&packed, 100).unwrap(), b"hello hello hello");
        assert_eq!(unsnappy(&packed, 5), Err(DecodeError::TooLarge(5)));
        assert!(matches!(
            unsnappy(&[0xff], 100),
            Err(DecodeError::Malformed(_))
        ));
    }
}
