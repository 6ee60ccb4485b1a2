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
//! The crate is laid out by concept (see `docs/architecture.md` in the repository):
//!
//! * **`executor/`** ([`Runtime`], [`Builder`]): the loop, the run queue, the thread-local
//!   "current runtime", and the park/wake protocol. Tasks live in a slab; a poll budget per
//!   turn keeps an always-ready task from starving I/O or timers; a turn-end hook
//!   ([`Runtime::on_turn_end`]) marks the loop's quiescent point. Wakers are `Send + Sync`; a
//!   wake from another thread reaches a parked executor through an eventfd that the ring has a
//!   read armed on.
//! * **`task/`** ([`JoinHandle`], [`JoinError`], [`yield_now`]): the task cell, its waker and
//!   its join handle.
//! * **`driver/`**: the io_uring ring and the life cycle of an operation. Every operation type
//!   signs one `unsafe` contract, `OpCode`: its entry points only into memory and fds the
//!   operation value owns. The value stays with the driver until the kernel is done with it,
//!   also when its future is dropped; a result that is a new fd nobody is left to take is
//!   closed.
//! * **[`time`]**, **[`net`]**, **[`fs`]**: timers, sockets and files on top of that.
//! * **[`mem`]**: memory-mapped files whose cold pages make the task yield, not the thread
//!   block.

mod buf;
mod builder;
mod driver;
mod executor;
pub mod fs;
pub mod mem;
pub mod net;
mod runtime;
mod stats;
mod task;
pub mod time;

pub use buf::{BufResult, IoBuf, IoBufMut};
pub use builder::Builder;
pub use driver::RingMode;
pub use runtime::{current_turn, on_turn_end, spawn, stats, Runtime};
pub use stats::RuntimeStats;
pub use task::{yield_now, JoinError, JoinHandle, YieldNow};
