//! # faultless-server
//!
//! A Redis-compatible (RESP2/RESP3) key-value server on the faultless store: what
//! `faultless serve` runs. Strings, hashes, sets and lists with expiry; MULTI/EXEC
//! transactions; SCAN with 64-bit cursors; HELLO, AUTH, CLIENT, CONFIG, INFO, COMMAND.
//! `docs/server.md` describes the design and every limit.
//!
//! ```
//! use faultless_runtime::net::TcpStream;
//! use faultless_server::{Options, Server};
//!
//! let data = std::env::temp_dir().join(format!("faultless-doc-{}.db", std::process::id()));
//! let rt = faultless_runtime::Runtime::new()?;
//! rt.block_on(async {
//!     let server = Server::bind(Options { port: 0, data: data.clone(), ..Options::default() }).await?;
//!     let addr = server.local_addr();
//!     let running = faultless_runtime::spawn(server.run());
//!
//!     let client = TcpStream::connect(addr).await?;
//!     let (sent, _) = client.send_all(b"SET greeting hello\r\nGET greeting\r\nSHUTDOWN\r\n".to_vec()).await;
//!     sent?;
//!     let mut replies = Vec::new();
//!     loop {
//!         let (n, buf) = client.recv(Vec::with_capacity(1024)).await;
//!         if n? == 0 {
//!             break;
//!         }
//!         replies.extend_from_slice(&buf);
//!     }
//!     assert_eq!(replies, b"+OK\r\n$5\r\nhello\r\n+OK\r\n");
//!     running.await.expect("the server task")?; // SHUTDOWN stops it
//!     std::io::Result::Ok(())
//! })?;
//! # std::fs::remove_file(&data).ok();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! How it works, top to bottom:
//!
//! * **One task per connection** on a single-threaded io_uring runtime (`connection`). A
//!   task reads into a buffer, parses every complete request in it ([`protocol`]), executes
//!   them in order (`cmd`), and sends all the replies with one write: pipelined requests
//!   cost one read and one write.
//! * **Data lives in the store**, a memory-mapped B+tree. A `GET` of a cold key reads its
//!   pages through the runtime's non-blocking page access: the task yields while the page is
//!   read, and every other connection keeps being served. Nothing blocks the thread.
//! * **Writes are acknowledged only when durable.** Every write command, from every
//!   connection, goes to one committer task ([`db`]), which applies everything queued in one
//!   store write transaction, in order, and commits once (one fsync for all) before answering
//!   each writer. Within one connection, consecutive writes of a pipeline wait for
//!   durability together, and a read that follows them waits for them first, so a client
//!   always reads its own writes. `MULTI`/`EXEC` is one committer job: atomic, durable once.
//! * **Types and expiry live in the records.** A key's store record starts with a header
//!   (type, expiry); hash fields and set members are one store key each under the
//!   container's id; an index of expiry times drives active expiry; keys are ordered by a
//!   64-bit hash, so SCAN's cursors are 64-bit numbers ([`db::keys`], [`cursor`]).
//! * **No client can hold up the others.** A malformed request, or one over `--max-request`
//!   bytes, gets a RESP error and, since the stream cannot be resynchronised, the connection
//!   is closed; unknown commands just get an error. Long work yields to the loop every
//!   millisecond or so (`work`); glob patterns and cursors cost bounded work ([`glob`],
//!   [`cursor`]); request buffers of all clients together are bounded (`memory`); clients
//!   past `--max-clients` or the open-file limit get Redis's error instead of a hang
//!   (`accept`, [`limits`]). `docs/server.md` lists every limit and what a client sees.
//! * **No reply carries bytes the file did not hold.** A reply built from the store is
//!   checked against a store file truncated under the server after it is copied and before it
//!   is sent (`connection::output`).
//!
//! The modules, by job: [`protocol`] (request parsing and reply encoding), `cmd` (the command
//! table, and command execution, one module per family), [`db`] (the data's layout on the
//! store, the committer, expiry), `config` (CONFIG), [`glob`] (SCAN's MATCH patterns),
//! [`cursor`] (SCAN cursors), `connection` (the per-connection loop, its buffers), `server`
//! (binding, the state every connection shares), `accept` (admitting connections), [`limits`]
//! (open files), `memory` (the request budget), `work` (the work budget), `info` and `stats`
//! (INFO), `options`.

mod accept;
mod cmd;
mod config;
mod connection;
pub mod cursor;
pub mod db;
pub mod glob;
mod info;
pub mod limits;
mod log;
mod memory;
mod options;
pub mod protocol;
mod server;
mod stats;
mod work;

pub use options::Options;
pub use server::{serve, Server};
