//! Files: [`File`] with positional reads and writes, syncs, metadata and space allocation,
//! every one an io_uring operation.
//!
//! There is no cursor: every read and write names its offset (`read_at`, `write_at`), which
//! is what a storage engine wants and what io_uring does best.

mod file;
mod metadata;
mod open_options;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use file::File;
pub use metadata::Metadata;
pub use open_options::OpenOptions;

use crate::driver::ops::fs::UnlinkAt;
use crate::driver::Op;

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path contains a NUL byte: {}", path.display()),
        )
    })
}

/// Adds the path to an error, keeping its kind and OS code visible in the message.
fn with_path(e: io::Error, path: &CString) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.to_string_lossy()))
}

/// Removes the file at `path`.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = cstring(path.as_ref())?;
    let done = Op::submit(UnlinkAt { path }).await;
    done.result
        .into_io()
        .map(|_| ())
        .map_err(|e| with_path(e, &done.data.path))
}
