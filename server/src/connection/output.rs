//! A connection's reply buffer: replies are encoded into it and sent in one write per batch,
//! or whenever [`FLUSH_AT`] bytes are waiting, so a connection never holds more than about
//! that much of replies (plus one reply under construction) however much it asks for.
//!
//! **No reply carries bytes the store's file did not hold.** Values (and keys, and anything
//! computed from them) are copied from the store's mapping, and if the file is truncated under
//! the server, the runtime's SIGBUS net maps zeros where the file ended and marks the mapping
//! damaged. So each reply built from the store is checked (`Store::check_intact`) after it is
//! written into the buffer and before any of it is sent: at its end ([`Output::end`]), and
//! before a send in its middle (a large value goes out in pieces). A reply found damaged is
//! replaced by an error reply; if part of it was already sent (it was checked then), the
//! connection is closed instead, so the client sees a cut connection, never wrong bytes.
//! Replies that do not come from the store (`PING`, `INFO`, ...) are not affected.

use faultless_runtime::net::TcpStream;
use faultless_store::{Error as StoreError, Store};

use crate::protocol::reply::bulk_header;
use crate::protocol::Reply;

/// Bytes of replies waiting that trigger a send (as Redis writes up to 64 KiB per event).
pub(crate) const FLUSH_AT: usize = 64 * 1024;

/// The reply buffer's normal capacity; it is shrunk back to this after a large reply.
const BASE: usize = 16 * 1024;

/// Why a command stopped before finishing its reply.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The peer is gone (a send failed), or a damaged reply was partly sent: stop serving the
    /// connection.
    Gone,
    /// The store's mapping was found damaged while the reply was written: the reply must be
    /// replaced by an error ([`Output::fail`]).
    Damaged(StoreError),
}

/// A connection's reply buffer; see the module docs.
pub(crate) struct Output<'s> {
    stream: &'s TcpStream,
    store: &'s Store,
    buf: Vec<u8>,
    /// Where the reply being written starts in `buf`, while none of it has been sent.
    reply_start: Option<usize>,
    /// Between [`begin`](Output::begin) and [`end`](Output::end) of a reply built from the
    /// store.
    in_reply: bool,
    /// Replies are encoded in RESP3 (the client sent HELLO 3).
    pub(crate) resp3: bool,
}

impl<'s> Output<'s> {
    /// An empty buffer sending to `stream`, for replies built from `store`.
    pub(crate) fn new(stream: &'s TcpStream, store: &'s Store) -> Output<'s> {
        Output {
            stream,
            store,
            buf: Vec::with_capacity(BASE),
            reply_start: None,
            in_reply: false,
            resp3: false,
        }
    }

    /// Marks the start of a reply; `from_store` if it is built from the store's data.
    pub(crate) fn begin(&mut self, from_store: bool) {
        self.reply_start = Some(self.buf.len());
        self.in_reply = from_store;
    }

    /// Marks the end of the reply: if it was built from the store, checks that the store's
    /// mapping is intact now that it is written, and if not, replaces it by an error (see
    /// [`fail`](Output::fail)).
    pub(crate) fn end(&mut self) -> Result<(), Stop> {
        if !std::mem::take(&mut self.in_reply) {
            return Ok(());
        }
        match self.store.check_intact() {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    /// Replaces the reply being written by the error `e`; fails with [`Stop::Gone`] if part
    /// of the reply was already sent (the connection must then be closed).
    pub(crate) fn fail(&mut self, e: StoreError) -> Result<(), Stop> {
        self.in_reply = false;
        match self.reply_start.take() {
            Some(start) => {
                self.buf.truncate(start);
                crate::protocol::Reply::err(e).encode(&mut self.buf, self.resp3);
                Ok(())
            }
            None => Err(Stop::Gone),
        }
    }

    /// Appends a reply.
    pub(crate) fn reply(&mut self, reply: &Reply) {
        reply.encode(&mut self.buf, self.resp3);
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

    /// Sends everything buffered; in the middle of a reply, only once the store's mapping is
    /// found intact ([`Stop::Damaged`] if not: nothing is sent).
    pub(crate) async fn flush(&mut self) -> Result<(), Stop> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.in_reply {
            self.store.check_intact().map_err(Stop::Damaged)?;
            self.reply_start = None;
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
