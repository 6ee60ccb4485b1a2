//! How much memory the process may still take: the kernel's `MemAvailable`, and, where the
//! process runs in a memory cgroup with a limit, what is left under that limit.
//!
//! Pinned pages cannot be reclaimed, so the keeper keeps the pinned set well inside this
//! headroom: when it shrinks (another process grows, or the cgroup fills with anonymous
//! memory), the keeper unpins pages before anyone else has to fail an allocation.

use std::fs;

/// Free memory the process could use, in bytes: the smaller of the system's `MemAvailable`
/// and its memory cgroup's unused limit (v1 or v2). `None` if neither can be read.
pub(crate) fn headroom() -> Option<u64> {
    let system = mem_available();
    let cgroup = cgroup_headroom();
    match (system, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Total memory the process may use: the smaller of the machine's and its cgroup's limit.
pub(crate) fn total() -> Option<u64> {
    let system = meminfo("MemTotal:");
    let cgroup = cgroup_paths().and_then(|c| c.limit());
    match (system, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn meminfo(field: &str) -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib << 10)
}

fn mem_available() -> Option<u64> {
    meminfo("MemAvailable:")
}

/// The memory cgroup of this process: its directory and whether it is cgroup v2.
struct Cgroup {
    dir: std::path::PathBuf,
    v2: bool,
}

impl Cgroup {
    fn read_u64(&self, file: &str) -> Option<u64> {
        fs::read_to_string(self.dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The limit, if one is set (v2 `max` and v1's huge "unlimited" value read as none).
    fn limit(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        self.read_u64(file).filter(|&l| l < 1 << 60)
    }

    /// Memory charged to the cgroup that reclaim cannot free: anonymous and unevictable
    /// (locked) pages. With no swap, anonymous memory stays.
    fn unreclaimable(&self) -> Option<u64> {
        let stat = fs::read_to_string(self.dir.join("memory.stat")).ok()?;
        let field = |name: &str| -> u64 {
            stat.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        Some(if self.v2 {
            field("anon") + field("unevictable") + field("kernel")
        } else {
            field("total_rss") + field("total_unevictable")
        })
    }
}

fn cgroup_paths() -> Option<Cgroup> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "memory") {
            let dir =
                std::path::Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
            return dir.exists().then_some(Cgroup { dir, v2: false });
        }
    }
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let dir = std::path::Path::new(root).join(path.trim_start_matches('/'));
        if dir.join("memory.max").exists() {
            return Some(Cgroup { dir, v2: true });
        }
    }
    None
}

fn cgroup_headroom() -> Option<u64> {
    let cg = cgroup_paths()?;
    let limit = cg.limit()?;
    Some(limit.saturating_sub(cg.unreclaimable()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn headroom_and_total_are_read() {
        let total = super::total().expect("/proc/meminfo is readable");
        let headroom = super::headroom().expect("/proc/meminfo is readable");
        assert!(total > 0 && headroom > 0);
        assert!(headroom <= total, "{headroom} > {total}");
    }
}
