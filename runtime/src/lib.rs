//! # faultless-runtime
//!
//! A single-threaded async runtime on io_uring, built so that tasks never block the thread:
//! not on I/O, and (with the page-access module) not on page faults of memory-mapped files.
//!
//! ```no_run
//! use faultless_runtime::{net::TcpListener, Runtime};
//!
//! let rt = Runtime::new()?;
//! rt.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:7000")?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         faultless_runtime::spawn(async move {
//!             let mut buf = Vec::with_capacity(4096);
//!             loop {
//!                 let (n, b) = stream.recv(buf).await;
//!                 match n {
//!                     Ok(0) | Err(_) => return,
//!                     Ok(_) => {}
//!                 }
//!                 let (res, b) = stream.send_all(b).await;
//!                 if res.is_err() {
//!                     return;
//!                 }
//!                 buf = b;
//!             }
//!         })
//!         .detach();
//!     }
//!     #[allow(unreachable_code)]
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Design
//!
//! * **Executor** ([`Runtime`]): tasks live in a slab; a run queue of slab keys; a poll
//!   budget per turn so an always-ready task cannot starve I/O or timers; a turn-end hook
//!   ([`Runtime::on_turn_end`]) marking the loop's quiescent point. Wakers are `Send + Sync`;
//!   a wake from another thread reaches a parked executor through an eventfd that the ring
//!   has a read armed on. See `docs/architecture.md` in the repository.
//! * **Reactor**: every operation is an io_uring entry whose future owns its buffers and fds
//!   until the completion arrives. Dropping the future cancels the operation and hands its
//!   resources to the reactor, which frees them only when the kernel is done.
//! * **[`time`]**, **[`net`]**, **[`fs`]**: timers, sockets and files on top of that.

mod buf;
mod core;
mod driver;
pub mod fs;
pub mod mem;
pub mod net;
mod runtime;
mod task;
pub mod time;
mod wake;

pub use buf::{BufResult, IoBuf, IoBufMut};
pub use runtime::{
    current_turn, on_turn_end, spawn, stats, Builder, RingMode, Runtime, RuntimeStats,
};
pub use task::{yield_now, JoinError, JoinHandle, YieldNow};
