//! Path operations: rename, directories, links, metadata by path.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use super::{cstring, with_path, Metadata};
use crate::driver::ops::fs::{LinkAt, MkDirAt, RenameAt, Statx, SymlinkAt, UnlinkAt};
use crate::driver::{Op, OpCode};

/// Runs `op`; if the kernel lacks the operation (`EINVAL`), runs `fallback` on the blocking
/// pool instead. Errors name `path`.
async fn run<T: OpCode>(
    op: T,
    path: CString,
    fallback: impl FnOnce() -> io::Result<()> + Send + 'static,
) -> io::Result<()> {
    let done = Op::submit(op).await;
    match done.result.into_io() {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => crate::spawn_blocking(fallback)
            .await?
            .map_err(|e| with_path(e, &path)),
        Err(e) => Err(with_path(e, &path)),
    }
}

/// Removes the file at `path` (`unlink`).
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let p = path.as_ref().to_path_buf();
    let c = cstring(&p)?;
    let op = UnlinkAt {
        path: c.clone(),
        flags: 0,
    };
    run(op, c, move || std::fs::remove_file(p)).await
}

/// Removes the empty directory at `path`.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let p = path.as_ref().to_path_buf();
    let c = cstring(&p)?;
    let op = UnlinkAt {
        path: c.clone(),
        flags: libc::AT_REMOVEDIR,
    };
    run(op, c, move || std::fs::remove_dir(p)).await
}

/// Renames `from` to `to`, replacing `to` if it exists (atomically, on one filesystem).
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (f, t) = (from.as_ref().to_path_buf(), to.as_ref().to_path_buf());
    let c = cstring(&f)?;
    let op = RenameAt {
        from: c.clone(),
        to: cstring(&t)?,
    };
    run(op, c, move || std::fs::rename(f, t)).await
}

/// Creates the directory `path` (mode 0o777 before the umask); fails if it exists.
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let p = path.as_ref().to_path_buf();
    let c = cstring(&p)?;
    let op = MkDirAt {
        path: c.clone(),
        mode: 0o777,
    };
    run(op, c, move || std::fs::create_dir(p)).await
}

/// Creates `path` and every missing parent; succeeds if it exists as a directory already.
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    // Find the deepest ancestor that exists, then create downwards from it.
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut at = Some(path);
    while let Some(p) = at {
        if p.as_os_str().is_empty() {
            break;
        }
        match metadata(p).await {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{}: exists and is not a directory", p.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(p.to_path_buf()),
            Err(e) => return Err(e),
        }
        at = p.parent();
    }
    for dir in missing.iter().rev() {
        match create_dir(dir).await {
            Ok(()) => {}
            // Created meanwhile by someone else: fine if it is a directory.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !metadata(dir).await?.is_dir() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creates a symbolic link at `link` pointing to `target`.
pub async fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (t, l) = (target.as_ref().to_path_buf(), link.as_ref().to_path_buf());
    let c = cstring(&l)?;
    let op = SymlinkAt {
        target: cstring(&t)?,
        link: c.clone(),
    };
    run(op, c, move || std::os::unix::fs::symlink(t, l)).await
}

/// Creates a hard link `to` of the file `from`.
pub async fn hard_link(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (f, t) = (from.as_ref().to_path_buf(), to.as_ref().to_path_buf());
    let c = cstring(&t)?;
    let op = LinkAt {
        from: cstring(&f)?,
        to: c.clone(),
    };
    run(op, c, move || std::fs::hard_link(f, t)).await
}

async fn statx(path: &Path, flags: i32) -> io::Result<Metadata> {
    let done = Op::submit(Statx::path(cstring(path)?, flags)).await;
    match done.result.into_io() {
        Ok(_) => Ok(Metadata::from_statx(done.data.result())),
        Err(e) => Err(with_path(
            e,
            done.data.path_ref().expect("a path statx has a path"),
        )),
    }
}

/// Metadata of the file `path` names, following symbolic links.
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    statx(path.as_ref(), 0).await
}

/// Metadata of `path` itself: a symbolic link is described, not followed.
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    statx(path.as_ref(), libc::AT_SYMLINK_NOFOLLOW).await
}
