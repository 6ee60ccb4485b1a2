//! # faultless
//!
//! An async coroutine runtime for Linux whose tasks never block the thread on a page fault,
//! and a memory-mapped B+tree store built on it.
//!
//! This crate re-exports the workspace's crates:
//!
//! * [`runtime`]: the single-threaded io_uring executor, with time, net and fs
//!   (crate `faultless-runtime`);
//! * [`store`]: the memory-mapped copy-on-write B+tree (crate `faultless-store`);
//! * `server` (with the `server` feature): the Redis-compatible server (crate
//!   `faultless-server`).
//!
//! It depends on nothing else: the benchmark and the `faultless` command live in the
//! workspace's `cli/` crate.
//!
//! Most programs start with [`Runtime`]:
//!
//! ```
//! let rt = faultless::Runtime::new()?;
//! let answer = rt.block_on(async {
//!     let task = faultless::spawn(async { 6 * 7 });
//!     task.await.unwrap()
//! });
//! assert_eq!(answer, 42);
//! # Ok::<(), std::io::Error>(())
//! ```

pub use faultless_runtime as runtime;
#[cfg(feature = "server")]
pub use faultless_server as server;
pub use faultless_store as store;

pub use faultless_runtime::{spawn, yield_now, Builder, JoinHandle, Runtime};
