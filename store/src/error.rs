//! The store's error type.

use std::fmt;
use std::io;

/// Everything that can go wrong in the store.
#[derive(Debug)]
pub enum Error {
    /// An I/O error from the OS.
    Io(io::Error),
    /// The file is not a faultless store, or a page failed its checks.
    Corrupt {
        /// The page at fault, if one is.
        page: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// Another process holds the store open for writing.
    Locked,
    /// A key longer than [`MAX_KEY_LEN`](crate::MAX_KEY_LEN), or empty.
    KeyTooLarge(usize),
    /// A value longer than [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN).
    ValueTooLarge(usize),
    /// The store was opened read-only.
    ReadOnly,
    /// Bad input to the bulk loader (unsorted or duplicate keys, malformed lines).
    BadInput(String),
}

impl Error {
    /// The same error again, for a second waiter (errors are not `Clone`: an I/O error keeps
    /// its kind and OS code and message).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io(io) => Error::Io(match io.raw_os_error() {
                Some(code) if io.get_ref().is_none() => io::Error::from_raw_os_error(code),
                _ => io::Error::new(io.kind(), io.to_string()),
            }),
            Error::Corrupt { page, reason } => Error::Corrupt {
                page: *page,
                reason: reason.clone(),
            },
            Error::Locked => Error::Locked,
            Error::KeyTooLarge(n) => Error::KeyTooLarge(*n),
            Error::ValueTooLarge(n) => Error::ValueTooLarge(*n),
            Error::ReadOnly => Error::ReadOnly,
            Error::BadInput(s) => Error::BadInput(s.clone()),
        }
    }

    /// True for an I/O error that means "no room" (a full disk, a file size limit, a quota):
    /// a write that failed so changed nothing that matters, and writes resume when there is
    /// room again.
    pub(crate) fn is_no_space(&self) -> bool {
        matches!(self, Error::Io(e) if matches!(
            e.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::EDQUOT)
        ))
    }

    pub(crate) fn corrupt(page: impl Into<Option<u64>>, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            page: page.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Corrupt {
                page: Some(p),
                reason,
            } => write!(f, "corrupt store: page {p}: {reason}"),
            Error::Corrupt { page: None, reason } => write!(f, "corrupt store: {reason}"),
            Error::Locked => f.write_str(
                "the store is open for writing by another process (its file lock is held)",
            ),
            Error::KeyTooLarge(n) => write!(
                f,
                "key of {n} bytes: keys must be 1 to {} bytes",
                crate::MAX_KEY_LEN
            ),
            Error::ValueTooLarge(n) => write!(
                f,
                "value of {n} bytes: values are at most {} bytes",
                crate::MAX_VALUE_LEN
            ),
            Error::ReadOnly => f.write_str("the store was opened read-only"),
            Error::BadInput(s) => write!(f, "bad input: {s}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            Error::Corrupt { .. } => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
            Error::Locked => io::Error::new(io::ErrorKind::WouldBlock, e.to_string()),
            Error::KeyTooLarge(_) | Error::ValueTooLarge(_) | Error::BadInput(_) => {
                io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
            }
            Error::ReadOnly => io::Error::new(io::ErrorKind::PermissionDenied, e.to_string()),
        }
    }
}

/// The store's result type.
pub type Result<T> = std::result::Result<T, Error>;
