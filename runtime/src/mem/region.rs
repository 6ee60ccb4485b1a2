//! [`Region`]: the mapped address range of a file and its SIGBUS registration, which live
//! and die together.
//!
//! Everything that may touch the mapping's memory after the `Mapping` itself is gone (a
//! helper job, an io_uring operation, the task that maps pages in after a read) holds an
//! `Arc<Region>`. Holding the registration too matters: a job that touches a page of a file
//! truncated meanwhile raises SIGBUS, and only a registered range is caught by the safety net
//! (see `sigbus.rs`); an unregistered one kills the process.

use std::fs::File;
use std::io;
use std::sync::atomic::AtomicBool;

use super::sigbus::{self, Registration};

/// A read-only shared mapping of a file, registered with the SIGBUS safety net.
pub(crate) struct Region {
    // Field order is drop order: the range is unregistered before it is unmapped, so a new
    // mapping placed at the same addresses is never mistaken for this one by the handler.
    sigbus: Registration,
    mmap: memmap2::Mmap,
}

impl Region {
    /// Maps `len` bytes of `file` read-only and shared (more than the file holds is allowed:
    /// the reservation a growing file grows into) and registers the range.
    ///
    /// # Safety
    /// As for [`Mapping::from_file`](super::Mapping::from_file): while bytes of the region are
    /// borrowed, nobody may change them in the file.
    pub(super) unsafe fn map(file: &File, len: usize) -> io::Result<Region> {
        // SAFETY: a read-only shared mapping; the caller promises the bytes lent out do not
        // change. Mapping past the end of the file is allowed by mmap (touching there raises
        // SIGBUS, which the registration below catches).
        let mmap = unsafe { memmap2::MmapOptions::new().len(len).map(file)? };
        let sigbus = sigbus::register(mmap.as_ptr() as usize, len);
        Ok(Region { sigbus, mmap })
    }

    /// The address of the first byte.
    pub(super) fn base(&self) -> usize {
        self.mmap.as_ptr() as usize
    }

    /// Length in bytes (the reservation).
    pub(super) fn len(&self) -> usize {
        self.mmap.len()
    }

    /// True if `addr..addr + len` lies inside the region.
    pub(super) fn contains(&self, addr: usize, len: usize) -> bool {
        addr >= self.base() && addr.saturating_add(len) <= self.base() + self.len()
    }

    /// The flag set once a SIGBUS hits the region (its file shrank under it). Valid for as
    /// long as the region lives: a holder of the flag must hold the region too.
    pub(super) fn damaged_flag(&self) -> &'static AtomicBool {
        self.sigbus.damaged_flag()
    }

    /// `madvise(MADV_NOHUGEPAGE)`: map the file's pages 4 KiB at a time, never a 2 MiB
    /// folio at once.
    pub(super) fn advise_no_huge_pages(&self) -> io::Result<()> {
        self.mmap.advise(memmap2::Advice::NoHugePage)
    }

    /// `madvise(MADV_RANDOM)`: one fault reads one page, not megabytes of readahead.
    pub(super) fn advise_random(&self) -> io::Result<()> {
        self.mmap.advise(memmap2::Advice::Random)
    }
}
