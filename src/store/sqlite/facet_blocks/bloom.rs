//! A block's Bloom filter: one bit pair per attribute key and per (key,
//! lowercased value) pair of its logs, so a search for a rare value reads
//! only the few blocks that may hold it.

const BLOOM_BITS: usize = 16 * 1024;
pub const BLOOM_BYTES: usize = BLOOM_BITS / 8;

/// Bit positions of an attribute key's presence and of a (key, lowercased
/// value) pair in a block's Bloom filter.
pub fn key_positions(key_id: i64) -> [usize; 2] {
    hash_positions(u64::from_le_bytes(key_id.to_le_bytes()) ^ 0x5bd1_e995)
}

pub fn pair_positions(key_id: i64, lowered_value: &str) -> [usize; 2] {
    // FNV-1a over the value, mixed with the key.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ (key_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for byte in lowered_value.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
    }
    hash_positions(hash)
}

fn hash_positions(hash: u64) -> [usize; 2] {
    let hash = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    [(hash >> 50) as usize, ((hash >> 36) & 0x3FFF) as usize]
}

pub fn set_bits(bloom: &mut [u8], positions: [usize; 2]) {
    for position in positions {
        bloom[position >> 3] |= 1 << (position & 7);
    }
}

pub fn has_bits(bloom: &[u8], positions: [usize; 2]) -> bool {
    bloom.len() == BLOOM_BYTES
        && positions
            .iter()
            .all(|&position| bloom[position >> 3] & (1 << (position & 7)) != 0)
}
