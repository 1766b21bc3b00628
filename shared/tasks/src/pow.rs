//! The `hash` kind: proof of work over a prefix derived from the seed.

use sha2::{Digest, Sha256};

/// The task's 16-byte prefix: `sha256("uwl/hash-prefix/v1" || seed_le8)[..16]`.
pub fn hash_prefix(seed: u64) -> Vec<u8> {
    let d = Sha256::new().chain_update(b"uwl/hash-prefix/v1").chain_update(seed.to_le_bytes()).finalize();
    d[..16].to_vec()
}

/// Leading zero bits of a byte string.
pub fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut n = 0;
    for b in bytes {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

fn digest(prefix: &[u8], nonce: u64) -> [u8; 32] {
    Sha256::new().chain_update(prefix).chain_update(nonce.to_le_bytes()).finalize().into()
}

/// `sha256(prefix || nonce as 8 little-endian bytes)` has at least
/// `difficulty_bits` leading zero bits.
pub fn verify_hash(prefix: &[u8], difficulty_bits: u32, nonce: u64) -> bool {
    leading_zero_bits(&digest(prefix, nonce)) >= difficulty_bits
}

/// The smallest nonce that satisfies the task.
pub fn solve_hash(prefix: &[u8], difficulty_bits: u32) -> u64 {
    (0u64..).find(|n| verify_hash(prefix, difficulty_bits, *n)).unwrap_or(u64::MAX)
}
