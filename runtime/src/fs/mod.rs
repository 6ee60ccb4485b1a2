//! Files and directories: [`File`] with positional reads and writes, syncs, metadata and
//! space allocation, and path operations (rename, create and remove directories, links,
//! metadata, listing), every one an io_uring operation where the kernel has one.
//!
//! There is no cursor: every read and write names its offset (`read_at`, `write_at`), which
//! is what a storage engine wants and what io_uring does best.
//!
//! | call | how |
//! |---|---|
//! | [`rename`] | `IORING_OP_RENAMEAT` |
//! | [`create_dir`], [`create_dir_all`] | `IORING_OP_MKDIRAT` |
//! | [`remove_file`], [`remove_dir`] | `IORING_OP_UNLINKAT` (with `AT_REMOVEDIR`) |
//! | [`symlink`], [`hard_link`] | `IORING_OP_SYMLINKAT`, `IORING_OP_LINKAT` |
//! | [`metadata`], [`symlink_metadata`] | `IORING_OP_STATX` (following links or not) |
//! | [`read_dir`] | the blocking pool: io_uring has no `getdents` |
//!
//! A kernel without one of these operations answers `EINVAL`; the call then runs its std
//! equivalent on the blocking pool (a genuine `EINVAL`, such as renaming a directory into
//! itself, comes back the same way from there).
//!
//! ```
//! use faultless_runtime::fs;
//!
//! let rt = faultless_runtime::Runtime::new()?;
//! let dir = std::env::temp_dir().join(format!("faultless-fs-doc-{}", std::process::id()));
//! rt.block_on(async {
//!     fs::create_dir_all(dir.join("a/b")).await?;
//!     let f = fs::File::create(dir.join("a/b/one")).await?;
//!     f.write_all_at(b"hello".to_vec(), 0).await.0?;
//!     fs::rename(dir.join("a/b/one"), dir.join("a/two")).await?;
//!     assert_eq!(fs::metadata(dir.join("a/two")).await?.len(), 5);
//!     let mut names = Vec::new();
//!     let mut entries = fs::read_dir(dir.join("a")).await?;
//!     while let Some(entry) = entries.next_entry().await? {
//!         names.push(entry.file_name().to_string_lossy().into_owned());
//!     }
//!     names.sort();
//!     assert_eq!(names, ["b", "two"]);
//!     fs::remove_file(dir.join("a/two")).await?;
//!     fs::remove_dir(dir.join("a/b")).await?;
//!     fs::remove_dir(dir.join("a")).await?;
//!     fs::remove_dir(&dir).await
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod file;
mod metadata;
mod open_options;
mod path_ops;
mod read_dir;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use file::File;
pub use metadata::Metadata;
pub use open_options::OpenOptions;
pub use path_ops::{
    create_dir, create_dir_all, hard_link, metadata, remove_dir, remove_file, rename, symlink,
    symlink_metadata,
};
pub use read_dir::{read_dir, DirEntry, ReadDir};

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
