//! The `matmul` kind: matrices from a seed, and Freivalds' check.
//!
//! PRNG (documented so any implementation can rebuild a task): SplitMix64
//! seeded with the contract's `seed`; `a` is filled row by row, then `b`,
//! each entry being the top 16 bits of the next output (`next() >> 48`), so
//! entries are below 2^16.
//!
//! Verification: Freivalds' algorithm over the integers with `r` drawn
//! uniformly from `[0, 2^32)^n` by the operating system's RNG. For a wrong
//! `c`, `D = c - ab` has a nonzero row `d`; `d . r = 0` fixes `r_j` for some
//! `j` with `d_j != 0` once the other coordinates are drawn, so one round
//! accepts a wrong result with probability at most 2^-32 (Schwartz-Zippel).
//! With [`FREIVALDS_ROUNDS`] = 2 rounds the false-accept probability is at
//! most 2^-64, for O(k n^2) work against O(n^3) to compute. Arithmetic is
//! exact (u128): with n <= 2^16 nothing can overflow.

use rand::RngCore;

pub type Matrix = Vec<Vec<u64>>;

/// k: rounds of Freivalds' check; false accept <= 2^(-32 k).
pub const FREIVALDS_ROUNDS: u32 = 2;

/// SplitMix64 (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The task's `a` and `b`.
pub fn matrices(seed: u64, n: usize) -> (Matrix, Matrix) {
    let mut rng = SplitMix64(seed);
    let mut m = || (0..n).map(|_| (0..n).map(|_| rng.next_u64() >> 48).collect()).collect::<Matrix>();
    let a = m();
    let b = m();
    (a, b)
}

/// The largest entry a product of `n x n` matrices of 16-bit entries can have.
pub(crate) fn max_entry(n: usize) -> u64 {
    (n as u64).saturating_mul(0xFFFF * 0xFFFF)
}

/// `a x b`, exactly.
pub fn multiply(a: &Matrix, b: &Matrix) -> Matrix {
    let n = a.len();
    (0..n)
        .map(|i| (0..n).map(|j| (0..n).map(|k| a[i][k] * b[k][j]).sum()).collect())
        .collect()
}

fn mul_vec(m: &Matrix, v: &[u128]) -> Vec<u128> {
    m.iter().map(|row| row.iter().zip(v).map(|(x, y)| *x as u128 * y).sum()).collect()
}

/// Freivalds' check that `c = a x b`; `rounds` independent vectors.
/// Square matrices of one size are expected (shapes are checked before).
pub fn verify_matmul(a: &Matrix, b: &Matrix, c: &Matrix, rounds: u32, rng: &mut impl RngCore) -> bool {
    let n = a.len();
    if [b, c].iter().any(|m| m.len() != n) || [a, b, c].iter().any(|m| m.iter().any(|r| r.len() != n)) {
        return false;
    }
    (0..rounds).all(|_| {
        let r: Vec<u128> = (0..n).map(|_| rng.next_u32() as u128).collect();
        mul_vec(a, &mul_vec(b, &r)) == mul_vec(c, &r)
    })
}
