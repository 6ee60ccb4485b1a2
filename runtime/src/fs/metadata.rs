//! [`Metadata`]: size, type and times of a file.

use std::time::{Duration, SystemTime};

/// Size, type and times of a file, from `statx`.
#[derive(Clone, Copy, Debug)]
pub struct Metadata {
    len: u64,
    mode: u32,
    blocks: u64,
    block_size: u32,
    modified: SystemTime,
}

impl Metadata {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// True if the length is zero.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    /// True for a symbolic link (only [`symlink_metadata`](super::symlink_metadata) sees
    /// one: the other calls follow links).
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
    /// Permission and type bits (`st_mode`).
    pub fn mode(&self) -> u32 {
        self.mode
    }
    /// Bytes of storage allocated (512-byte blocks times 512): less than `len` for a sparse
    /// file.
    pub fn allocated(&self) -> u64 {
        self.blocks * 512
    }
    /// The filesystem's preferred I/O block size.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }
    /// Last modification time.
    pub fn modified(&self) -> SystemTime {
        self.modified
    }
}

impl Metadata {
    /// The metadata in a `statx` result.
    pub(crate) fn from_statx(st: &libc::statx) -> Metadata {
        let modified = SystemTime::UNIX_EPOCH
            + Duration::new(st.stx_mtime.tv_sec.max(0) as u64, st.stx_mtime.tv_nsec);
        Metadata {
            len: st.stx_size,
            mode: st.stx_mode as u32,
            blocks: st.stx_blocks,
            block_size: st.stx_blksize,
            modified,
        }
    }
}
