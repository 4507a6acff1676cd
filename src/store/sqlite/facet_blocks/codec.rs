//! A block's blob: format byte, row count, the block's dictionary of
//! (key id, value) pairs, then each row (timestamp delta, level, service
//! id, tenant id, dictionary positions of its attributes), all varints. Written by
//! [`Encoder`], read by [`Block`], which checks every length and position,
//! so a damaged blob is an error, never a panic.

use super::bloom::{BLOOM_BYTES, key_positions, pair_positions, set_bits};
use crate::domain::time::Micros;
use std::collections::HashMap;

/// Must match the search blocks' grouping (`seq >> 10`), so both describe
/// the same logs.
pub const BLOCK_SHIFT: u32 = 10;
/// 2 since schema 7 (rows carry their tenant); schema 7 drops format-1 blocks.
const FORMAT: u8 = 2;

/// One block's rows, being encoded.
#[derive(Default)]
pub struct Encoder {
    pub rows: i64,
    pub min_ts: Micros,
    pub max_ts: Micros,
    last_ts: Micros,
    body: Vec<u8>,
    dictionary: Vec<(i64, String)>,
    index: HashMap<(i64, String), u32>,
    bloom: Vec<u8>,
}

impl Encoder {
    pub fn row(
        &mut self,
        ts: Micros,
        level: u8,
        service_id: i64,
        tenant_id: i64,
        pairs: &[(i64, String)],
    ) {
        if self.rows == 0 {
            self.min_ts = ts;
            self.max_ts = ts;
            self.bloom = vec![0; BLOOM_BYTES];
        }
        self.rows += 1;
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        put_signed(&mut self.body, ts - self.last_ts);
        self.last_ts = ts;
        self.body.push(level);
        put_varint(&mut self.body, service_id as u64);
        put_varint(&mut self.body, tenant_id as u64);
        put_varint(&mut self.body, pairs.len() as u64);
        for (key_id, value) in pairs {
            let next = self.dictionary.len() as u32;
            let at = *self
                .index
                .entry((*key_id, value.clone()))
                .or_insert_with(|| {
                    self.dictionary.push((*key_id, value.clone()));
                    next
                });
            if at == next {
                set_bits(&mut self.bloom, key_positions(*key_id));
                set_bits(
                    &mut self.bloom,
                    pair_positions(*key_id, &crate::domain::query::lowercase(value)),
                );
            }
            put_varint(&mut self.body, u64::from(at));
        }
    }

    /// The blob (format, dictionary, rows) and the Bloom filter.
    pub fn finish(self) -> (Vec<u8>, Vec<u8>) {
        let mut data = Vec::with_capacity(self.body.len() + self.dictionary.len() * 24 + 16);
        data.push(FORMAT);
        put_varint(&mut data, self.rows as u64);
        put_varint(&mut data, self.dictionary.len() as u64);
        for (key_id, value) in &self.dictionary {
            put_varint(&mut data, *key_id as u64);
            put_varint(&mut data, value.len() as u64);
            data.extend_from_slice(value.as_bytes());
        }
        data.extend_from_slice(&self.body);
        let bloom = if self.bloom.is_empty() {
            vec![0; BLOOM_BYTES]
        } else {
            self.bloom
        };
        (data, bloom)
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_signed(out: &mut Vec<u8>, value: i64) {
    put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Reads a block's blob.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn signed(&mut self) -> Option<i64> {
        let raw = self.varint()?;
        Some((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let bytes = self.bytes.get(self.at..self.at + len)?;
        self.at += len;
        Some(bytes)
    }
}

/// A block's dictionary, decoded; its rows are read as they are used.
/// Values stay bytes: they are UTF-8 (the encoder wrote `&str`s), checked
/// only where a value is tested or listed.
pub struct Block<'a> {
    pub dictionary: Vec<(i64, &'a [u8])>,
    rows: usize,
    body: &'a [u8],
}

/// One log of a block.
pub struct Row<'b> {
    pub ts: Micros,
    pub level: u8,
    pub service: i64,
    pub tenant: i64,
    /// Dictionary positions of its attributes.
    pub pairs: &'b [u32],
}

impl<'a> Block<'a> {
    pub fn decode(bytes: &'a [u8]) -> Option<Block<'a>> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.byte()? != FORMAT {
            return None;
        }
        let rows = reader.varint()? as usize;
        let entries = reader.varint()? as usize;
        let mut dictionary = Vec::with_capacity(entries.min(1 << 16));
        for _ in 0..entries {
            let key = reader.varint()? as i64;
            let len = reader.varint()? as usize;
            dictionary.push((key, reader.bytes(len)?));
        }
        Some(Block {
            dictionary,
            rows,
            body: &bytes[reader.at..],
        })
    }

    /// Calls `each` with every row; `None` when the blob is damaged.
    pub fn for_each_row(&self, mut each: impl FnMut(&Row)) -> Option<()> {
        let mut reader = Reader {
            bytes: self.body,
            at: 0,
        };
        let mut pairs: Vec<u32> = Vec::with_capacity(16);
        let mut ts = 0;
        for _ in 0..self.rows {
            ts += reader.signed()?;
            let level = reader.byte()?;
            let service = reader.varint()? as i64;
            let tenant = reader.varint()? as i64;
            let count = reader.varint()? as usize;
            pairs.clear();
            for _ in 0..count {
                let at = reader.varint()? as u32;
                if at as usize >= self.dictionary.len() {
                    return None;
                }
                pairs.push(at);
            }
            each(&Row {
                ts,
                level,
                service,
                tenant,
                pairs: &pairs,
            });
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::bloom::has_bits;
    use super::*;

    #[test]
    fn blocks_round_trip() {
        let mut encoder = Encoder::default();
        encoder.row(100, 3, 7, 0, &[(1, "eu".into()), (2, "503".into())]);
        encoder.row(90, 1, 7, 0, &[(1, "eu".into())]);
        encoder.row(5_000_000, 4, 300, 0, &[]);
        let (min, max) = (encoder.min_ts, encoder.max_ts);
        let (data, bloom) = encoder.finish();
        assert_eq!((min, max), (90, 5_000_000));
        let block = Block::decode(&data).unwrap();
        assert_eq!(block.dictionary, [(1, &b"eu"[..]), (2, &b"503"[..])]);
        let mut rows = Vec::new();
        block
            .for_each_row(|row| rows.push((row.ts, row.level, row.service, row.pairs.to_vec())))
            .unwrap();
        assert_eq!(
            rows,
            [
                (100, 3, 7, vec![0, 1]),
                (90, 1, 7, vec![0]),
                (5_000_000, 4, 300, vec![])
            ]
        );
        assert!(has_bits(&bloom, pair_positions(1, "eu")));
        assert!(has_bits(&bloom, key_positions(2)));
        assert!(!has_bits(&bloom, pair_positions(1, "us-east-1")));
        let cut = Block::decode(&data[..data.len() - 1]).unwrap();
        assert!(cut.for_each_row(|_| {}).is_none(), "cut");
    }
}
