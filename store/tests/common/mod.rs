//! Helpers shared by the store's tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A fresh path under the target directory, removed on drop.
pub struct TempPath(pub PathBuf);

impl TempPath {
    pub fn new(name: &str) -> TempPath {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("store-{}-{name}-{n}", std::process::id()));
        let t = TempPath(p);
        let _ = std::fs::remove_file(&t.0);
        for slot in 0..3 {
            let _ = std::fs::remove_file(t.wal(slot));
        }
        t
    }
}

impl TempPath {
    /// The path of log segment `slot` of the store at this path.
    pub fn wal(&self, slot: usize) -> PathBuf {
        let mut name = self.0.as_os_str().to_owned();
        name.push(format!("-wal.{slot}"));
        PathBuf::from(name)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        for slot in 0..3 {
            let _ = std::fs::remove_file(self.wal(slot));
        }
    }
}

pub fn key(i: u64) -> Vec<u8> {
    format!("key-{i:08}").into_bytes()
}

pub fn value(i: u64, len: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(len.max(v.len()), (i % 251) as u8);
    v
}

/// `tasks` tasks each put `each` keys (task `t`'s are `key(t * 100 + i)`, values of `len`
/// bytes), concurrently, so their commits group; returns once every put is committed.
pub async fn put_from_tasks(store: &faultless_store::Store, tasks: u64, each: u64, len: usize) {
    let tasks: Vec<_> = (0..tasks)
        .map(|t| {
            let store = store.clone();
            faultless_runtime::spawn(async move {
                for i in 0..each {
                    store.put(&key(t * 100 + i), &value(i, len)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Drops the pages of the file at `path` from the page cache: a store opened just before
/// (its mapping has no page yet) then reads every page it looks at from the disk. Only clean
/// pages go: write damage back (sync) before calling this.
pub fn drop_from_page_cache(path: &std::path::Path) {
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: advice about our own descriptor's file; it changes no memory of ours.
    let r = unsafe {
        libc::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
            0,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    assert_eq!(r, 0, "posix_fadvise");
}

/// XORs the byte of the file at `path` at offset `at` with `mask` (damage for the
/// corruption and log tests).
pub fn flip(path: &std::path::Path, at: u64, mask: u8) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= mask;
    f.write_all_at(&b, at).unwrap();
}
