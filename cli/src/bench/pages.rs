//! Which page a cold reader reads next: every cold page once (`once`), or with replacement,
//! uniformly (`uniform`) or Zipfian with theta 0.99 (`zipf`), so that pages are read again
//! after the kernel may have taken them away: the only way a benchmark sees reclaim.

use std::fmt;
use std::io;
use std::str::FromStr;

use super::workload::HOT_PAGES;

/// The order in which cold readers pick pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Every cold page once, in a scattered order: no page is ever read twice.
    Once,
    /// Uniformly random pages over the whole file, with replacement.
    Uniform,
    /// Zipfian (theta 0.99) over the whole file, popular pages scattered by a hash.
    Zipf,
}

impl Workload {
    /// The name used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Once => "once",
            Workload::Uniform => "uniform",
            Workload::Zipf => "zipf",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = io::Error;
    fn from_str(s: &str) -> io::Result<Workload> {
        match s {
            "once" => Ok(Workload::Once),
            "uniform" => Ok(Workload::Uniform),
            "zipf" => Ok(Workload::Zipf),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown workload {s:?} (expected once, uniform or zipf)"),
            )),
        }
    }
}

/// The page sequence of one run, shared by its readers (one executor thread).
pub enum Chooser {
    /// `Workload::Once`: the next index into the order.
    Once(ColdOrder, u64),
    /// `Workload::Uniform`.
    Uniform(Rng, u64),
    /// `Workload::Zipf`.
    Zipf(Zipf, Rng),
}

impl Chooser {
    /// The chooser of `workload` over a file of `total_pages` (the first `HOT_PAGES` are
    /// the hot requests' and never chosen).
    pub fn new(workload: Workload, total_pages: u64, seed: u64) -> Chooser {
        let cold = total_pages.saturating_sub(HOT_PAGES).max(1);
        match workload {
            Workload::Once => Chooser::Once(ColdOrder::new(total_pages, seed), 0),
            Workload::Uniform => Chooser::Uniform(Rng::new(seed), cold),
            Workload::Zipf => Chooser::Zipf(Zipf::new(cold, 0.99), Rng::new(seed)),
        }
    }

    /// The next page to read.
    pub fn next_page(&mut self) -> u64 {
        match self {
            Chooser::Once(order, i) => {
                *i += 1;
                order.page(*i - 1)
            }
            Chooser::Uniform(rng, n) => HOT_PAGES + rng.below(*n),
            Chooser::Zipf(z, rng) => HOT_PAGES + z.sample(rng),
        }
    }
}

/// Visits every cold page once, in a scattered order: page `i` of the sequence is
/// `HOT_PAGES + (start + i * stride) mod n`, with `stride` coprime to `n`.
#[derive(Clone, Copy)]
pub struct ColdOrder {
    n: u64,
    start: u64,
    stride: u64,
}

impl ColdOrder {
    pub fn new(total_pages: u64, seed: u64) -> ColdOrder {
        let n = total_pages.saturating_sub(HOT_PAGES).max(1);
        let mut stride = (0x9E37_79B9_7F4A_7C15u64 % n).max(1);
        while gcd(stride, n) != 1 {
            stride += 1;
        }
        ColdOrder {
            n,
            start: seed.wrapping_mul(0x2545_F491_4F6C_DD1D) % n,
            stride,
        }
    }

    pub fn page(&self, i: u64) -> u64 {
        HOT_PAGES + ((self.start as u128 + i as u128 * self.stride as u128) % self.n as u128) as u64
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

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

    #[test]
    fn cold_order_visits_every_cold_page_once() {
        for total in [HOT_PAGES + 1, HOT_PAGES + 1000, 16384, 65536 + 17] {
            let order = ColdOrder::new(total, 7);
            let n = total - HOT_PAGES;
            let mut seen = vec![false; total as usize];
            for i in 0..n {
                let p = order.page(i);
                assert!(
                    (HOT_PAGES..total).contains(&p),
                    "page {p} out of the cold range"
                );
                assert!(!seen[p as usize], "page {p} visited twice");
                seen[p as usize] = true;
            }
        }
    }
}
