//! Page choosers for re-read workloads: uniform and Zipfian, with replacement, so a page is
//! read again after the kernel may have taken it away.

/// A small, fast pseudo-random generator (xorshift64*), seeded per run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform value in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Zipfian ranks over `0..n` with parameter `theta` (Gray et al., "Quickly generating
/// billion-record synthetic databases", as YCSB does), scrambled by a hash so the popular
/// items are spread over the whole file rather than packed at its start.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

impl Zipf {
    /// A Zipfian distribution over `n > 0` items; `theta` in `(0, 1)` (0.99 is YCSB's).
    pub fn new(n: u64, theta: f64) -> Zipf {
        assert!(
            n > 0 && theta > 0.0 && theta < 1.0,
            "Zipf needs n > 0, 0 < theta < 1"
        );
        let zetan = zeta(n, theta);
        let zeta2 = zeta(2.min(n), theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Zipf {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta,
        }
    }

    /// The rank drawn for `u` uniform in `[0, 1)`: 0 is the most popular.
    fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }

    /// The next item: a rank, scrambled over `0..n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        let rank = self.rank(rng.next_f64());
        scramble(rank) % self.n
    }
}

/// FNV-1a of the rank's bytes: a fixed permutation-like spread of ranks over the items.
fn scramble(rank: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in rank.to_le_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(7);
        let mut seen = [false; 100];
        for _ in 0..10_000 {
            let v = rng.below(100);
            assert!(v < 100);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn zipf_is_skewed_like_theta_099() {
        let n = 100_000;
        let z = Zipf::new(n, 0.99);
        let mut rng = Rng::new(3);
        let mut counts = std::collections::HashMap::new();
        let draws = 200_000;
        for _ in 0..draws {
            let v = z.sample(&mut rng);
            assert!(v < n);
            *counts.entry(v).or_insert(0u64) += 1;
        }
        let mut sorted: Vec<u64> = counts.values().copied().collect();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        // With theta 0.99 the most popular item takes several percent of all draws, the top
        // 1% of items well over a third, and many items are never drawn.
        let top: u64 = sorted.iter().take((n / 100) as usize).sum();
        assert!(sorted[0] > draws / 50, "top item {}", sorted[0]);
        assert!(top > draws * 35 / 100, "top 1% drew {top}");
        assert!((counts.len() as u64) < n * 9 / 10);
    }
}
