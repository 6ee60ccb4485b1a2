//! A connection's reply buffer: replies are encoded into it and sent in one write per batch,
//! or whenever [`FLUSH_AT`] bytes are waiting, so a connection never holds more than about
//! that much of replies (plus one reply under construction) however much it asks for.

use faultless_runtime::net::TcpStream;

use crate::protocol::reply::bulk_header;
use crate::protocol::Reply;

/// Bytes of replies waiting that trigger a send (as Redis writes up to 64 KiB per event).
pub(crate) const FLUSH_AT: usize = 64 * 1024;

/// The reply buffer's normal capacity; it is shrunk back to this after a large reply.
const BASE: usize = 16 * 1024;

/// Why a command stopped before finishing its reply.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The peer is gone (a send failed): stop serving the connection.
    Gone,
}

/// A connection's reply buffer; see the module docs.
pub(crate) struct Output<'s> {
    stream: &'s TcpStream,
    buf: Vec<u8>,
}

impl<'s> Output<'s> {
    /// An empty buffer sending to `stream`.
    pub(crate) fn new(stream: &'s TcpStream) -> Output<'s> {
        Output {
            stream,
            buf: Vec::with_capacity(BASE),
        }
    }

    /// Appends a reply.
    pub(crate) fn reply(&mut self, reply: &Reply) {
        reply.encode(&mut self.buf);
    }

    /// The buffer itself, to encode headers into.
    pub(crate) fn raw(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Appends `value` as a bulk string, copying it in pieces and sending as the buffer fills,
    /// so a large value never sits in the buffer whole.
    pub(crate) async fn bulk(&mut self, value: &[u8]) -> Result<(), Stop> {
        bulk_header(&mut self.buf, value.len());
        let mut rest = value;
        while !rest.is_empty() {
            let room = FLUSH_AT.saturating_sub(self.buf.len()).max(4096);
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buf.extend_from_slice(now);
            rest = later;
            self.flush_if_full().await?;
        }
        self.buf.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// Sends the buffer if [`FLUSH_AT`] bytes or more are waiting.
    pub(crate) async fn flush_if_full(&mut self) -> Result<(), Stop> {
        if self.buf.len() >= FLUSH_AT {
            self.flush().await
        } else {
            Ok(())
        }
    }

    /// Sends everything buffered.
    pub(crate) async fn flush(&mut self) -> Result<(), Stop> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let (res, mut buf) = self.stream.send_all(std::mem::take(&mut self.buf)).await;
        buf.clear();
        if buf.capacity() > 2 * FLUSH_AT {
            buf = Vec::with_capacity(BASE);
        }
        self.buf = buf;
        res.map_err(|_| Stop::Gone)
    }
}
