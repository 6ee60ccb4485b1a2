//! [`read_dir`]: directory listings, read on the blocking pool (io_uring has no `getdents`).
//!
//! Entries are read in batches of 256 by one blocking job each, so a huge directory never
//! sits whole in memory and the executor thread never waits on the disk.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::FileType;
use std::io;
use std::path::{Path, PathBuf};

const BATCH: usize = 256;

/// One entry of a directory.
#[derive(Debug)]
pub struct DirEntry {
    path: PathBuf,
    file_name: OsString,
    file_type: io::Result<FileType>,
}

impl DirEntry {
    /// The entry's full path (the directory's path joined with the name).
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The entry's name within its directory.
    pub fn file_name(&self) -> OsString {
        self.file_name.clone()
    }

    /// The entry's type (from the directory listing, without following symbolic links).
    pub fn file_type(&self) -> io::Result<FileType> {
        match &self.file_type {
            Ok(t) => Ok(*t),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// The entries of a directory; see [`read_dir`].
#[derive(Debug)]
pub struct ReadDir {
    ready: VecDeque<DirEntry>,
    /// The std iterator, between batches (a batch in flight has it).
    inner: Option<std::fs::ReadDir>,
    /// An error met in the last batch, returned after the entries read before it.
    error: Option<io::Error>,
    done: bool,
}

/// Lists the directory `path` (without `.` and `..`); read its entries with
/// [`ReadDir::next_entry`].
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_path_buf();
    let inner = crate::spawn_blocking(move || {
        std::fs::read_dir(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    })
    .await??;
    Ok(ReadDir {
        ready: VecDeque::new(),
        inner: Some(inner),
        error: None,
        done: false,
    })
}

impl ReadDir {
    /// The next entry, or `None` at the end.
    ///
    /// Dropping this future while a batch is being read loses the rest of the listing: the
    /// next call returns an error.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        if let Some(e) = self.ready.pop_front() {
            return Ok(Some(e));
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.done {
            return Ok(None);
        }
        let Some(mut inner) = self.inner.take() else {
            return Err(io::Error::other(
                "read_dir: an earlier next_entry was cancelled mid-batch",
            ));
        };
        let (inner, batch, done) = crate::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut done = false;
            while batch.len() < BATCH {
                match inner.next() {
                    Some(Ok(e)) => batch.push(Ok(DirEntry {
                        path: e.path(),
                        file_name: e.file_name(),
                        file_type: e.file_type(),
                    })),
                    Some(Err(e)) => {
                        batch.push(Err(e));
                        break;
                    }
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            (inner, batch, done)
        })
        .await?;
        self.inner = Some(inner);
        self.done = done;
        for e in batch {
            match e {
                Ok(e) => self.ready.push_back(e),
                Err(e) => self.error = Some(e),
            }
        }
        match self.ready.pop_front() {
            Some(e) => Ok(Some(e)),
            None => self.error.take().map_or(Ok(None), Err),
        }
    }
}
