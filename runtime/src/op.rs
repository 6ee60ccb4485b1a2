//! `Op<T>`: the future of one io_uring operation that owns its resources.
//!
//! `T` holds everything the kernel may touch while the operation is in flight: buffers,
//! boxed socket addresses, path strings, and `Rc`s to the fds. The entry is built from
//! pointers into `T`'s heap allocations, so moving the `Op` does not move what the kernel
//! sees. On completion the `Op` hands `T` back with the result. If the `Op` is dropped first,
//! `T` moves into the reactor's slot for the operation, a cancel is submitted, and `T` is
//! dropped only when the completion arrives.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use io_uring::squeue;

use crate::core::{current, Core};
use crate::reactor::CqeResult;

/// A submitted operation. Resolves to its completion and the resources it owned.
pub(crate) struct Op<T: 'static> {
    core: Rc<Core>,
    key: usize,
    data: Option<T>,
}

/// What an `Op` resolves to.
pub(crate) struct Completion<T> {
    pub(crate) result: CqeResult,
    pub(crate) data: T,
}

impl<T: 'static> Op<T> {
    /// Submits the entry that `build` makes from `data` on the current runtime.
    ///
    /// # Safety
    /// The entry returned by `build` may only point at memory owned by `data` that does not
    /// move when `data` moves (heap allocations), or at `'static` memory, and may only use fds
    /// that `data` keeps open.
    pub(crate) unsafe fn submit(mut data: T, build: impl FnOnce(&mut T) -> squeue::Entry) -> Op<T> {
        let core = current();
        let entry = build(&mut data);
        // SAFETY: forwarded from this function's contract; `data` is kept alive in the Op,
        // and in the reactor slot if the Op is dropped before completion.
        let key = unsafe { core.reactor.borrow_mut().submit(entry) };
        Op {
            core,
            key,
            data: Some(data),
        }
    }
}

impl<T: 'static> Future for Op<T> {
    type Output = Completion<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Completion<T>> {
        let this = &mut *self;
        if this.data.is_none() {
            panic!("an io_uring operation future was polled after it completed");
        }
        let result = match this.core.reactor.borrow_mut().poll_op(this.key, cx) {
            Poll::Ready(r) => r,
            Poll::Pending => return Poll::Pending,
        };
        let data = this.data.take().expect("checked above");
        Poll::Ready(Completion { result, data })
    }
}

// `Op` never pins `T`: the kernel sees heap memory owned by `T`, not `T` itself.
impl<T: 'static> Unpin for Op<T> {}

impl<T: 'static> Drop for Op<T> {
    fn drop(&mut self) {
        let Some(data) = self.data.take() else {
            return;
        };
        match self.core.reactor.try_borrow_mut() {
            Ok(mut reactor) => reactor.abandon(self.key, Box::new(data)),
            // Dropped from inside the reactor (cannot happen with the runtime's own types):
            // leaking is the only choice that cannot free memory the kernel may still write.
            Err(_) => std::mem::forget(data),
        }
    }
}
