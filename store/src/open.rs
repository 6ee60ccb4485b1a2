//! Opening a store's file: refusing what is not a regular file before reading from it,
//! initialising an empty file, and choosing the meta page (reporting a damaged one).
//!
//! * **Non-regular files** (FIFOs, directories, devices, sockets) are refused: the path is
//!   checked with `stat` before it is opened, and the opened file again with `fstat` (it is
//!   opened `O_NONBLOCK`, so a FIFO swapped in between cannot block the open either; the flag
//!   is cleared once the file is known to be regular).
//! * **An existing empty file** is an empty store that was never initialised (what `touch`,
//!   `mktemp`, or a crash between creating the file and writing its meta pages leaves): a
//!   read-write open initialises it, a read-only open reads it as an empty store without
//!   writing. The library, the CLI and the server therefore all see the same thing: an empty
//!   store.
//! * **Meta pages**: both are read; the valid one with the larger txid is used. If one is
//!   invalid, the store still opens, and [`MetaRecovery`] says which page, why, and which
//!   commit was lost if the damaged page held the newer one.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{get_u64, Meta, PAGE_SIZE, VERSION};
use crate::types::{PageNo, TxId};

/// What opening found wrong with one of the two meta pages (the other one was used). See
/// [`Store::recovery_report`](crate::Store::recovery_report).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaRecovery {
    /// The meta page (0 or 1) that failed its checks.
    pub slot: u64,
    /// Why it failed.
    pub reason: String,
    /// The commit the store opened at: the other meta page's.
    pub opened_txid: u64,
    /// The commit the damaged page held, as far as its two copies of the txid (header and
    /// body) still tell; `None` when they are unreadable.
    pub damaged_txid: Option<u64>,
}

impl MetaRecovery {
    /// The tree commit (checkpoint) lost: the damaged page held a newer one than the store
    /// opened at. It either never completed (its meta write was torn by a crash) or completed
    /// and was damaged since; the store cannot tell which. The log's commits after the older
    /// checkpoint are replayed on top, so its data is lost only where the log no longer holds
    /// it.
    pub fn lost_txid(&self) -> Option<u64> {
        self.damaged_txid.filter(|&t| t > self.opened_txid)
    }
}

impl fmt::Display for MetaRecovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (slot, opened) = (self.slot, self.opened_txid);
        write!(f, "meta page {slot} is invalid ({}); ", self.reason)?;
        match (self.lost_txid(), self.damaged_txid) {
            (Some(lost), _) => write!(
                f,
                "the store opened at tree commit {opened}, and tree commit {lost}, which that \
                 page recorded, is LOST (a torn write of a checkpoint that never completed, or \
                 damage to one that did); the log's commits after the older checkpoint were \
                 replayed on top, so only what the log no longer held is missing"
            ),
            (None, Some(held)) => write!(
                f,
                "it held tree commit {held}, older than tree commit {opened} the store opened \
                 at: nothing is lost, and the next checkpoint rewrites that page"
            ),
            (None, None) => write!(
                f,
                "its commit id is unreadable; the store opened at tree commit {opened}: if \
                 tree commit {} completed, what it held is lost unless the log still holds it",
                opened + 1
            ),
        }
    }
}

fn kind_name(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else {
        "not a regular file"
    }
}

fn not_regular(path: &Path, t: std::fs::FileType) -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{}: is {}; a store is a regular file",
            path.display(),
            kind_name(t)
        ),
    ))
}

/// Opens the store's file: a regular file, or (with `create`) a new one. Anything else is
/// refused before it is read from.
pub(crate) fn open_file(path: &Path, read_only: bool, create: bool) -> Result<std::fs::File> {
    let with_path =
        |e: io::Error| Error::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
    match std::fs::metadata(path) {
        Ok(m) if !m.file_type().is_file() => return Err(not_regular(path, m.file_type())),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(with_path(e)),
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(!read_only)
        .create(create && !read_only)
        .truncate(false)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(with_path)?;
    let t = file.metadata().map_err(with_path)?.file_type();
    if !t.is_file() {
        return Err(not_regular(path, t));
    }
    // The file is regular: blocking reads are what the store wants from here on.
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on an fd we own; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(Error::Io(io::Error::last_os_error()));
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(Error::Io(io::Error::last_os_error()));
    }
    Ok(file)
}

/// The meta of a new, empty store with id `store_id`.
pub(crate) fn empty_meta(store_id: u64) -> Meta {
    Meta {
        page_size: PAGE_SIZE as u32,
        txid: TxId(0),
        root: PageNo::NONE,
        free_root: PageNo::NONE,
        page_count: 2,
        entries: 0,
        log_txid: 0,
        store_id,
        version: VERSION,
    }
}

/// Writes the two meta pages of an empty store into an empty file.
pub(crate) fn initialise(file: &std::fs::File, store_id: u64) -> Result<u64> {
    let meta = empty_meta(store_id);
    file.write_all_at(&meta.to_page(0), 0)?;
    file.write_all_at(&meta.to_page(1), PAGE_SIZE as u64)?;
    file.sync_all()?;
    Ok(2 * PAGE_SIZE as u64)
}

/// Commits `meta` by itself (its page, then a sync), before the store is mapped: the
/// upgrade of a store from an earlier format version.
pub(crate) fn write_meta(file: &std::fs::File, meta: &Meta) -> Result<()> {
    let slot = meta.txid.0 % 2;
    file.write_all_at(&meta.to_page(slot), slot * meta.page_size as u64)?;
    file.sync_data()?;
    Ok(())
}

/// The commit a damaged meta page held, from its header and body copies of the txid.
fn damaged_txid(page: &[u8], opened: u64) -> Option<u64> {
    let (header, body) = (get_u64(page, 16), get_u64(page, 48));
    if header == body {
        return Some(header);
    }
    [header, body]
        .into_iter()
        .find(|&t| t == opened + 1 || t.checked_add(1) == Some(opened))
}

/// Reads and validates both meta pages of a file of `len` bytes; returns the newest valid
/// one, and what was wrong with the other if it was invalid.
pub(crate) fn read_meta(file: &std::fs::File, len: u64) -> Result<(Meta, Option<MetaRecovery>)> {
    if len < 2 * 512 {
        return Err(Error::corrupt(
            None,
            format!("file is {len} bytes, shorter than its two meta pages"),
        ));
    }
    let mut first = vec![0u8; PAGE_SIZE.min(len as usize)];
    file.read_exact_at(&mut first, 0)?;
    // The page size is in the meta; fall back to the default if page 0 is damaged.
    let ps = match Meta::from_page(0, &first) {
        Ok(m) => m.page_size as u64,
        Err(_) => PAGE_SIZE as u64,
    };
    if len < 2 * ps {
        return Err(Error::corrupt(
            None,
            format!("file is {len} bytes, shorter than its two meta pages"),
        ));
    }
    let mut pages = Vec::with_capacity(2);
    let mut metas = Vec::with_capacity(2);
    for slot in 0..2u64 {
        let mut page = vec![0u8; ps as usize];
        file.read_exact_at(&mut page, slot * ps)?;
        metas.push(Meta::from_page(slot, &page));
        pages.push(page);
    }
    let (meta, recovery) = match (&metas[0], &metas[1]) {
        (Ok(a), Ok(b)) => (if b.txid > a.txid { *b } else { *a }, None),
        (Err(e), Ok(m)) | (Ok(m), Err(e)) => {
            let slot = if metas[0].is_err() { 0 } else { 1 };
            let reason = match e {
                Error::Corrupt { reason, .. } => reason.clone(),
                other => other.to_string(),
            };
            let recovery = MetaRecovery {
                slot,
                reason,
                opened_txid: m.txid.0,
                damaged_txid: damaged_txid(&pages[slot as usize], m.txid.0),
            };
            (*m, Some(recovery))
        }
        (Err(a), Err(b)) => {
            return Err(Error::corrupt(
                None,
                format!("no valid meta page: {a}; {b}"),
            ));
        }
    };
    if meta.page_count * meta.page_size as u64 > len {
        return Err(Error::corrupt(
            None,
            format!(
                "file truncated: the last commit uses {} pages ({} bytes) but the file has {len} bytes",
                meta.page_count,
                meta.page_count * meta.page_size as u64
            ),
        ));
    }
    Ok((meta, recovery))
}
