//! The one `unsafe` contract every io_uring operation type signs: [`OpCode`].
//!
//! An operation type (a `struct` in [`ops`](super::ops), or next to the code that owns its
//! resources) holds everything the kernel touches while the operation is in flight and builds
//! its submission entry from pointers into those resources. It implements `OpCode` once, with
//! the justification once; submitting it ([`Op::submit`](super::Op::submit)) is then a safe
//! call, wherever it happens.
//!
//! The driver keeps the operation value alive from submission until its completion is reaped,
//! also when the [`Op`](super::Op) future is dropped first (the value then moves into the
//! driver's slot for the operation). So the contract is about where the entry's pointers
//! point, not about how long the value lives.

use io_uring::squeue;

/// What a successful completion's result is, and so what the driver must do with it when
/// the operation's future was dropped and nobody will ever read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResultKind {
    /// A count or a status: nothing to release.
    Plain,
    /// A new file descriptor that belongs to whoever takes the result. If the future was
    /// dropped, the driver closes it.
    Fd,
}

/// An io_uring operation type.
///
/// # Safety
///
/// For every entry `create_entry` returns, the implementation promises:
///
/// * every pointer in the entry points into memory that `self` owns and that stays at the
///   same address when `self` is moved (a heap allocation such as a `Box`, `Vec`, `CString`
///   or an [`IoBuf`](crate::IoBuf)), or into `'static` memory, and is valid for what the
///   operation does with it (reads of initialised bytes, writes within the length given);
/// * every fd the entry names is kept open by `self` (an `Rc<OwnedFd>`), or is a special
///   value that names no open file (`AT_FDCWD`);
/// * if [`RESULT`](Self::RESULT) is [`ResultKind::Fd`], a non-negative completion result is a
///   new fd that nothing else in the process owns.
///
/// In return the driver never drops `self` (it may move it) before the completion is
/// reaped, and calls `create_entry` once per submission.
pub(crate) unsafe trait OpCode: 'static {
    /// What a successful result is; see [`ResultKind`].
    const RESULT: ResultKind = ResultKind::Plain;

    /// Builds the submission entry. The driver sets its `user_data`.
    fn create_entry(&mut self) -> squeue::Entry;
}
