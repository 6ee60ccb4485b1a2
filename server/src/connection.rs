//! The per-connection loop: read, parse every complete request, execute them in order, send
//! all the replies with one write.

use std::rc::Rc;

use faultless_runtime::net::TcpStream;
use faultless_store::ReadTxn;
use futures::stream::{FuturesOrdered, StreamExt};

use crate::cmd::{self, store_err};
use crate::protocol::{parse_ranges, Reply};
use crate::server::Shared;

/// A reply still being computed (a write waiting for its commit).
type LocalReply = std::pin::Pin<Box<dyn std::future::Future<Output = Reply>>>;

/// Sends everything in `out` (keeping its allocation); false if the connection is gone.
async fn flush(stream: &TcpStream, out: &mut Vec<u8>) -> bool {
    let (res, buf) = stream.send_all(std::mem::take(out)).await;
    *out = buf;
    out.clear();
    res.is_ok()
}

/// Serves one connection until it closes, errs, or sends QUIT.
pub(crate) async fn serve(shared: Rc<Shared>, stream: TcpStream) {
    let max_request = shared.options.max_request;
    let mut input: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut recv_buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    loop {
        // Execute every complete request in the buffer, in order. Consecutive grouped writes
        // wait for durability together; GETs share one snapshot until the next write (and
        // never past this batch, so an idle connection pins no old version).
        let mut pending: FuturesOrdered<LocalReply> = FuturesOrdered::new();
        let mut snapshot: Option<ReadTxn> = None;
        let mut close = false;
        let mut fatal = None;
        let mut used = 0;
        loop {
            let base = used;
            match parse_ranges(&input[base..], max_request, &mut ranges) {
                Ok(Some(n)) => used += n,
                Ok(None) => break,
                Err(why) => {
                    fatal = Some(format!("ERR Protocol error: {why}"));
                    break;
                }
            }
            if ranges.is_empty() {
                continue;
            }
            let arg = |i: usize| &input[base + ranges[i].0..base + ranges[i].1];
            if ranges.len() == 2 && arg(0).eq_ignore_ascii_case(b"GET") {
                while let Some(r) = pending.next().await {
                    r.encode(&mut out);
                }
                let txn = snapshot.get_or_insert_with(|| shared.store.read_txn());
                match txn.get(arg(1)).await {
                    Ok(Some(v)) => {
                        // Straight from the mapped page into the reply buffer.
                        crate::protocol::reply::bulk_header(&mut out, v.len());
                        out.extend_from_slice(&v);
                        out.extend_from_slice(b"\r\n");
                    }
                    Ok(None) => out.extend_from_slice(b"$-1\r\n"),
                    Err(e) => store_err(e).encode(&mut out),
                }
                // Large replies: send what is ready so memory stays bounded.
                if out.len() >= 1 << 20 && !flush(&stream, &mut out).await {
                    return;
                }
                continue;
            }
            let args: Vec<Vec<u8>> = (0..ranges.len()).map(|i| arg(i).to_vec()).collect();
            snapshot = None;
            if cmd::is_grouped_write(&args) {
                pending.push_back(Box::pin(cmd::grouped_write(shared.clone(), args)));
                continue;
            }
            while let Some(r) = pending.next().await {
                r.encode(&mut out);
            }
            let (reply, quit) = cmd::execute(&shared, &args).await;
            reply.encode(&mut out);
            if quit {
                close = true;
                break;
            }
            if out.len() >= 1 << 20 && !flush(&stream, &mut out).await {
                return;
            }
        }
        drop(snapshot);
        input.drain(..used);
        if fatal.is_none() && input.len() > max_request {
            fatal = Some(format!(
                "ERR Protocol error: request larger than {max_request} bytes"
            ));
        }
        while let Some(r) = pending.next().await {
            r.encode(&mut out);
        }
        if let Some(e) = &fatal {
            Reply::Error(e.clone()).encode(&mut out);
            close = true;
        }
        if !out.is_empty() && !flush(&stream, &mut out).await {
            return;
        }
        if close {
            let _ = stream.shutdown(std::net::Shutdown::Write).await;
            return;
        }
        // Read more.
        let (res, buf) = stream.recv(std::mem::take(&mut recv_buf)).await;
        recv_buf = buf;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => input.extend_from_slice(&recv_buf),
        }
    }
}
