//! The per-connection loop: read, parse every complete request, execute them in order
//! ([`batch`]), send all the replies with one write ([`output`]).
//!
//! Bad input never hurts anyone else: a malformed request, or one over `--max-request` bytes,
//! gets `-ERR Protocol error: ...` and the connection is closed (the stream cannot be
//! resynchronised). A connection does a bounded amount of work between yields to the loop
//! (see `work`), however much its requests ask for.

mod batch;
mod output;

use std::rc::Rc;

use faultless_runtime::net::TcpStream;

pub(crate) use output::{Output, Stop};

use crate::cmd::Flow;
use crate::protocol::{Parsed, Parser, Reply};
use crate::server::Shared;
use crate::work::Work;
use batch::Batch;

/// How a batch ended.
enum End {
    /// Everything complete was executed: read more.
    More,
    /// A command asked to close the connection after its reply (QUIT, SHUTDOWN).
    Close,
    /// Bad input: send this error and close.
    Fatal(String),
}

/// Serves one connection until it closes, errs, or sends QUIT.
pub(crate) async fn serve(shared: Rc<Shared>, stream: TcpStream) {
    let shared = &*shared;
    let max_request = shared.options.max_request;
    let mut input: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut recv_buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut parser = Parser::new();
    let mut out = Output::new(&stream);
    let mut work = Work::new(&shared.stats.work_yields);
    loop {
        let mut used = 0;
        let end = {
            let buf = input.as_slice();
            let mut batch = Batch::new(shared);
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
                        match batch.run(args, &mut out, &mut work).await {
                            Ok(Flow::Continue) => {}
                            Ok(Flow::Close) => break End::Close,
                            Err(Stop::Gone) => return,
                        }
                    }
                    Ok(Parsed::Incomplete { need }) if need > max_request => {
                        break End::Fatal(too_large(max_request));
                    }
                    Ok(Parsed::Incomplete { .. }) => break End::More,
                    Err(e) => break End::Fatal(format!("ERR {e}")),
                }
            };
            if batch.drain(&mut out).await.is_err() {
                return;
            }
            end
        };
        input.drain(..used);
        match end {
            End::More => {}
            End::Close => return close(&stream, &mut out).await,
            End::Fatal(e) => {
                out.reply(&Reply::Error(e));
                return close(&stream, &mut out).await;
            }
        }
        if out.flush().await.is_err() {
            return;
        }
        // Read more.
        let (res, buf) = stream.recv(std::mem::take(&mut recv_buf)).await;
        recv_buf = buf;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => input.extend_from_slice(&recv_buf),
        }
        work.refill();
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
