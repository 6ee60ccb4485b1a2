//! The per-connection loop: read, parse every complete request, execute them in order
//! ([`batch`]), send all the replies with one write ([`output`]).
//!
//! Bad input never hurts anyone else: a malformed request, or one over `--max-request` bytes,
//! gets `-ERR Protocol error: ...` and the connection is closed (the stream cannot be
//! resynchronised). A connection does a bounded amount of work between yields to the loop
//! (see `work`), however much its requests ask for, and holds a bounded amount of memory
//! ([`input`], `memory`), however large and slow its requests.

mod batch;
mod client;
mod input;
mod lookahead;
mod output;

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use faultless_runtime::net::TcpStream;
use faultless_runtime::time::timeout;

pub(crate) use client::{Client, ClientInfo};
pub(crate) use output::Output;

use crate::cmd::Flow;
use crate::protocol::{Parsed, Parser, Reply};
use crate::server::Shared;
use crate::stats::bump;
use crate::work::Work;
use batch::Batch;
use input::Input;

/// How a batch ended.
enum End {
    /// Everything complete was executed; the request in progress needs this many bytes.
    More(usize),
    /// A command asked to close the connection after its reply (QUIT, SHUTDOWN).
    Close,
    /// Bad input: send this error and close.
    Fatal(String),
}

/// Stops serving another client (CLIENT KILL): it is marked, and its socket shut down so
/// that a receive in progress ends.
pub(crate) fn kill(info: &ClientInfo) {
    info.killed.set(true);
    // SAFETY: `info.fd` is the socket of a connection that is still registered, so still
    // open (a connection unregisters before its socket is closed, and this single-threaded
    // server runs nothing in between); shutdown touches no memory.
    unsafe {
        libc::shutdown(info.fd, libc::SHUT_RDWR);
    }
}

/// Serves one connection until it closes, errs, or sends QUIT.
pub(crate) async fn serve(shared: Rc<Shared>, stream: TcpStream) {
    let id = shared.next_client_id.get();
    shared.next_client_id.set(id + 1);
    let info = Rc::new(ClientInfo::new(
        id,
        stream.peer_addr().ok(),
        stream.local_addr().ok(),
        stream.as_raw_fd(),
    ));
    shared.clients.borrow_mut().insert(id, info.clone());
    let authed = shared.config.borrow().requirepass.is_none();
    let mut client = Client::new(info, authed);
    crate::log::event!(debug, client = id, peer = ?stream.peer_addr().ok(), "client connected");
    serve_client(&shared, &stream, &mut client).await;
    crate::log::event!(debug, client = id, "client gone");
    shared.watches.unwatch(&client.watch);
    shared.clients.borrow_mut().remove(&id);
}

async fn serve_client(shared_rc: &Rc<Shared>, stream: &TcpStream, client: &mut Client) {
    let shared = &**shared_rc;
    let max_request = shared.options.max_request;
    let mut input = Input::new(shared.request_memory.grant());
    let mut parser = Parser::new();
    let mut out = Output::new(stream, &shared.store);
    let mut work = Work::new(&shared.stats.work_yields);
    loop {
        let timeout_secs = shared.config.borrow().timeout;
        let idle = (timeout_secs > 0).then(|| Duration::from_secs(timeout_secs));
        let mut used = 0;
        let end = {
            let buf = input.data();
            let mut batch = Batch::new(shared_rc);
            let end = loop {
                match parser.parse(&buf[used..], max_request) {
                    Ok(Parsed::Complete(n)) if n > max_request => {
                        break End::Fatal(too_large(max_request));
                    }
                    Ok(Parsed::Complete(n)) => {
                        let args = parser.args(&buf[used..used + n]);
                        used += n;
                        if args.is_empty() {
                            continue;
                        }
                        if client.info.killed.get() {
                            return;
                        }
                        match batch
                            .run(args, &buf[used..], &mut out, &mut work, client)
                            .await
                        {
                            Ok(Flow::Continue) => {}
                            Ok(Flow::Close) => break End::Close,
                            Err(_) => return,
                        }
                    }
                    Ok(Parsed::Incomplete { need }) if need > max_request => {
                        break End::Fatal(too_large(max_request));
                    }
                    Ok(Parsed::Incomplete { need }) => break End::More(need),
                    Err(e) => break End::Fatal(format!("ERR {e}")),
                }
            };
            if batch.drain(&mut out).await.is_err() {
                return;
            }
            end
        };
        input.consume(used);
        let need = match end {
            End::More(need) => need,
            End::Close => return close(stream, &mut out).await,
            End::Fatal(e) => {
                out.reply(&Reply::Error(e));
                return close(stream, &mut out).await;
            }
        };
        if out.flush().await.is_err() {
            return;
        }
        parser.shrink();
        if input.prepare(need, max_request, parser.memory()).is_err() {
            out.reply(&Reply::Error(format!(
                "ERR request refused: the server's buffers for incoming requests are full \
                 (max-request-memory {} bytes); try again later",
                shared.request_memory.limit()
            )));
            return close(stream, &mut out).await;
        }
        if client.info.killed.get() {
            return;
        }
        let received = match idle {
            None => input.recv(stream).await,
            Some(idle) => match timeout(idle, input.recv(stream)).await {
                Ok(r) => r,
                Err(_) => {
                    // Idle too long: close without a word, as Redis does.
                    bump(&shared.stats.idle_timeouts);
                    return;
                }
            },
        };
        match received {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                work.refill();
                client.info.last.set(std::time::Instant::now());
            }
        }
    }
}

fn too_large(max_request: usize) -> String {
    format!("ERR Protocol error: request larger than {max_request} bytes")
}

/// Sends what is buffered and closes our side.
async fn close(stream: &TcpStream, out: &mut Output<'_>) {
    if out.flush().await.is_ok() {
        let _ = stream.shutdown(std::net::Shutdown::Write).await;
    }
}
