//! The harness's random numbers: SplitMix64, written out here rather than taken from
//! `rand`, so that an input's seed names the same bytes in every later version of the
//! harness whatever `rand` does to its generators — a finding's seed must replay.

/// A small, fast generator; one per input, seeded with the input's number.
pub struct Rng(u64);

impl Rng {
    /// The generator for input `seed`.
    pub fn new(seed: u64) -> Self {
        // Mixed once so that neighbouring seeds start far apart.
        let mut rng = Rng(seed ^ 0x6a09_e667_f3bc_c909);
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // The bias of a plain modulo is below 2⁻³² for the sizes used here.
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}
