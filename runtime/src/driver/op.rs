//! `Op<T>`: the future of one io_uring operation that owns its resources.
//!
//! `T` is an [`OpCode`]: it holds everything the kernel may touch while the operation is in
//! flight (buffers, boxed socket addresses, path strings, `Rc`s of the fds) and builds the
//! entry from pointers into its heap allocations, so moving the `Op` does not move what the
//! kernel sees. On completion the `Op` hands `T` back with the result. If the `Op` is dropped
//! first, `T` moves into the driver's slot for the operation, a cancel is submitted, and `T`
//! is dropped only when the completion arrives; a result that is a new fd
//! ([`ResultKind::Fd`]) is closed then, since nobody is left to own it.

use std::future::Future;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::opcode::{OpCode, ResultKind};
use super::CqeResult;
use crate::executor::{current, Executor};

/// A submitted operation. Resolves to its completion and the operation value it owned.
pub(crate) struct Op<T: OpCode> {
    executor: Rc<Executor>,
    key: usize,
    data: Option<T>,
}

/// What an `Op` resolves to.
pub(crate) struct Completion<T> {
    pub(crate) result: CqeResult,
    pub(crate) data: T,
}

impl<T: OpCode> Completion<T> {
    /// The new fd made by an operation whose result is an fd. Only compiles for such
    /// operations.
    pub(crate) fn into_fd(self) -> (io::Result<OwnedFd>, T) {
        const { assert!(matches!(T::RESULT, ResultKind::Fd)) };
        let fd = self.result.into_io().map(|fd| {
            // SAFETY: `T::RESULT` is `Fd`, so by the `OpCode` contract a non-negative result
            // is a new fd that nothing else owns; this completion is its only holder.
            unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
        });
        (fd, self.data)
    }
}

impl<T: OpCode> Op<T> {
    /// Submits `op` on the current runtime.
    ///
    /// # Panics
    /// Outside a runtime.
    pub(crate) fn submit(mut op: T) -> Op<T> {
        let executor = current();
        let entry = op.create_entry();
        // SAFETY: `T: OpCode` promises that the entry points only into memory `op` owns that
        // does not move when `op` moves (or into static memory), and uses only fds `op` keeps
        // open. `op` lives in this `Op`, and in the driver's slot if the `Op` is dropped before
        // the completion (see `Drop`), until the completion is reaped.
        let key = unsafe { executor.driver.borrow_mut().submit(entry) };
        Op {
            executor,
            key,
            data: Some(op),
        }
    }
}

impl<T: OpCode> Future for Op<T> {
    type Output = Completion<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Completion<T>> {
        let this = &mut *self;
        if this.data.is_none() {
            panic!("an io_uring operation future was polled after it completed");
        }
        let result = match this.executor.driver.borrow_mut().poll_op(this.key, cx) {
            Poll::Ready(r) => r,
            Poll::Pending => return Poll::Pending,
        };
        let data = this.data.take().expect("checked above");
        Poll::Ready(Completion { result, data })
    }
}

// `Op` never pins `T`: the kernel sees heap memory owned by `T`, not `T` itself.
impl<T: OpCode> Unpin for Op<T> {}

impl<T: OpCode> Drop for Op<T> {
    fn drop(&mut self) {
        let Some(data) = self.data.take() else {
            return;
        };
        match self.executor.driver.try_borrow_mut() {
            Ok(mut driver) => driver.abandon(self.key, Box::new(data), T::RESULT),
            // Dropped from inside the driver (cannot happen with the runtime's own types):
            // leaking is the only choice that cannot free memory the kernel may still write.
            Err(_) => std::mem::forget(data),
        }
    }
}
