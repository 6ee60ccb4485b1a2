//! # faultless-runtime
//!
//! A single-threaded async runtime on io_uring, built so that tasks never block the thread:
//! not on I/O, and (with the page-access module) not on page faults of memory-mapped files.
//!
//! ```
//! use faultless_runtime::net::{TcpListener, TcpStream};
//!
//! let rt = faultless_runtime::Runtime::new()?;
//! rt.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     // An echo server: a task per connection, buffers moved into the kernel and back.
//!     faultless_runtime::spawn(async move {
//!         loop {
//!             let Ok((stream, _)) = listener.accept().await else { return };
//!             faultless_runtime::spawn(async move {
//!                 let mut buf = Vec::with_capacity(4096);
//!                 loop {
//!                     let (n, b) = stream.recv(buf).await;
//!                     if !matches!(n, Ok(n) if n > 0) {
//!                         return;
//!                     }
//!                     let (res, b) = stream.send_all(b).await;
//!                     if res.is_err() {
//!                         return;
//!                     }
//!                     buf = b;
//!                 }
//!             })
//!             .detach();
//!         }
//!     })
//!     .detach();
//!
//!     let client = TcpStream::connect(addr).await?;
//!     client.send_all(b"hello".to_vec()).await.0?;
//!     let (n, reply) = client.recv(Vec::with_capacity(16)).await;
//!     assert_eq!(&reply[..n?], b"hello");
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
//!   its join handle; `JoinError` is `Send + Sync`.
//! * **`driver/`**: the io_uring ring and the life cycle of an operation. Every operation type
//!   signs one `unsafe` contract, `OpCode`: its entry points only into memory and fds the
//!   operation value owns. The value stays with the driver until the kernel is done with it,
//!   also when its future is dropped; a result that is a new fd nobody is left to take is
//!   closed.
//! * **[`time`]**, **[`net`]**, **[`fs`]**: timers, sockets and files on top of that. With
//!   the `tokio-io` feature, the stream sockets also implement tokio's I/O traits (hyper,
//!   tokio-util and the TLS stacks run on them).
//! * **`blocking/`** ([`spawn_blocking`]): a bounded thread pool for blocking calls, whose
//!   results wake their tasks through the same eventfd path as the page helpers; host-name
//!   lookups ([`net::lookup_host`]) and directory listings run there.
//! * **[`signal`]**: `ctrl_c()` and signal streams, from a signalfd the ring watches.
//! * **[`task`]**: ids, names, [`JoinSet`].
//! * **[`mem`]**: memory-mapped files whose cold pages make the task yield, not the thread
//!   block.
//!
//! Features: `tokio-io` (tokio's `AsyncRead`/`AsyncWrite` on the sockets) and `tracing`
//! (spans and events; compiled out without it, leaving only the one-line warnings a user must
//! see on stderr).

mod blocking;
mod buf;
mod builder;
mod driver;
mod executor;
pub mod fs;
mod log;
pub mod mem;
pub mod net;
mod runtime;
pub mod signal;
mod stats;
pub mod task;
pub mod time;

pub use blocking::spawn_blocking;
pub use buf::{BufResult, IoBuf, IoBufMut};
pub use builder::Builder;
pub use driver::RingMode;
pub use runtime::{current_turn, on_turn_end, spawn, stats, Runtime};
pub use stats::RuntimeStats;
pub use task::{yield_now, JoinError, JoinHandle, JoinSet, YieldNow};
