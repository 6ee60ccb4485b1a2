//! [`JoinError`]: why a task did not produce its output.
//!
//! `JoinError` is `Send + Sync` (so `anyhow::Error` and `Box<dyn Error + Send + Sync>` take
//! it, and `?` works in functions returning them): the panic payload, which is only `Send`,
//! sits behind a mutex, and the panic message is copied out of it when the error is made.

use std::any::Any;
use std::fmt;
use std::sync::Mutex;

use super::id::Id;

/// Why a task did not produce its output: it was cancelled (aborted, or the runtime shut
/// down first), or it panicked.
pub struct JoinError {
    id: Id,
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panicked {
        /// The payload's message, when it is a `&str` or a `String` (the usual case).
        message: Option<String>,
        /// The payload, behind a mutex only so that the error is `Sync`.
        payload: Mutex<Box<dyn Any + Send + 'static>>,
    },
}

impl JoinError {
    pub(crate) fn cancelled(id: Id) -> JoinError {
        JoinError {
            id,
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panicked(id: Id, payload: Box<dyn Any + Send + 'static>) -> JoinError {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        JoinError {
            id,
            repr: Repr::Panicked {
                message,
                payload: Mutex::new(payload),
            },
        }
    }

    /// True if the task was aborted or dropped at shutdown.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// True if the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panicked { .. })
    }

    /// The id of the task that failed.
    pub fn id(&self) -> Id {
        self.id
    }

    /// The panic's message, if the task panicked with a string.
    pub fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panicked { message, .. } => message.as_deref(),
            Repr::Cancelled => None,
        }
    }

    /// The panic payload, to resume the panic with `std::panic::resume_unwind`.
    ///
    /// # Panics
    /// If the task was cancelled rather than panicked.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("JoinError::into_panic called on a cancelled task's error")
    }

    /// The panic payload, or the error back if the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panicked { payload, .. } => {
                Ok(payload.into_inner().unwrap_or_else(|e| e.into_inner()))
            }
            Repr::Cancelled => Err(self),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => write!(f, "JoinError::Cancelled({})", self.id),
            Repr::Panicked { message, .. } => {
                write!(f, "JoinError::Panicked({}, {:?})", self.id, message)
            }
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => write!(f, "task {} was cancelled", self.id),
            Repr::Panicked { message, .. } => write!(
                f,
                "task {} panicked: {}",
                self.id,
                message.as_deref().unwrap_or("(non-string payload)")
            ),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        std::io::Error::other(e)
    }
}
