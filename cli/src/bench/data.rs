//! The benchmark's data file, making pages cold, and the block device's read counter.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Parses a number of seconds: finite and not negative (`Duration::from_secs_f64` panics on
/// anything else).
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid number of seconds {s:?}"))?;
    if (0.0..=1e9).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s:?} seconds is out of range (0 to 1e9)"))
    }
}

/// Parses sizes such as `4096`, `512K`, `512M`, `4G`, `1T` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&s[..s.len() - 1], 1 << 20),
        Some('g' | 'G') => (&s[..s.len() - 1], 1 << 30),
        Some('t' | 'T') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {s:?} (examples: 4096, 512M, 4G)"))?;
    n.checked_mul(mult)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("invalid size {s:?}"))
}

/// Creates `path` with `size` bytes of real data (written, not sparse or preallocated), or
/// reuses it if it already has that size and is fully allocated. Shows progress on stderr.
pub fn ensure_data_file(path: &Path, size: u64) -> io::Result<()> {
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.len() == size && meta.blocks() * 512 >= size {
            eprintln!("data: reusing {} ({} MiB)", path.display(), size >> 20);
            return Ok(());
        }
    }
    let mut file = std::fs::File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let chunk = 1 << 20;
    let mut buf = vec![0u8; chunk];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut written = 0u64;
    let mut progress =
        super::progress::ByteProgress::new(format!("data: writing {}", path.display()), size);
    while written < size {
        for word in buf.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = (size - written).min(chunk as u64) as usize;
        file.write_all(&buf[..n])?;
        written += n as u64;
        progress.set(written);
    }
    file.sync_all()?;
    progress.finish();
    Ok(())
}

/// Whether `drop_file_cache` may also drop the whole page cache (root only).
static DROP_CACHES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Disables the `drop_caches` step (`--no-drop-caches`).
pub fn disable_drop_caches() {
    DROP_CACHES.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// Drops the file's pages from the page cache: `POSIX_FADV_DONTNEED` always, plus
/// `drop_caches` when running as root. (Mappings evict their own pages first.)
pub fn drop_file_cache(path: &Path) -> io::Result<()> {
    let file = std::fs::File::open(path)?;
    use std::os::fd::AsRawFd;
    // SAFETY: advice on our own fd; no memory is passed.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && DROP_CACHES.load(std::sync::atomic::Ordering::Relaxed) {
        // SAFETY: sync has no preconditions.
        unsafe { libc::sync() };
        let _ = std::fs::write("/proc/sys/vm/drop_caches", "1");
    }
    Ok(())
}

/// Completed reads of the block device holding a file, from `/sys/dev/block/M:m/stat`.
pub struct DeviceReads {
    stat_path: Option<std::path::PathBuf>,
}

impl DeviceReads {
    /// Finds the device of `path`; reads report `None` where sysfs has no entry (tmpfs...).
    pub fn for_file(path: &Path) -> DeviceReads {
        let stat_path = std::fs::metadata(path).ok().and_then(|m| {
            let dev = m.dev();
            // SAFETY: major/minor are pure arithmetic on the device number.
            let (maj, min) = (libc::major(dev), libc::minor(dev));
            let p = std::path::PathBuf::from(format!("/sys/dev/block/{maj}:{min}/stat"));
            p.exists().then_some(p)
        });
        DeviceReads { stat_path }
    }

    /// Reads completed so far (the first field of the stat file).
    pub fn completed(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.stat_path.as_ref()?).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }

    /// The device name, for the report.
    pub fn name(&self) -> String {
        self.stat_path
            .as_ref()
            .and_then(|p| std::fs::canonicalize(p.parent()?).ok())
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "n/a".into())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert!(parse_size("").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
