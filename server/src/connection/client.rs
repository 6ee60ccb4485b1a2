//! A client's state: what its connection keeps (protocol, authentication, MULTI queue,
//! WATCH), and what other connections may read or change (CLIENT LIST, CLIENT KILL).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use crate::db::watch::WatchState;
use crate::protocol::OwnedArgs;

/// What CLIENT LIST/INFO/KILL see of a connection; registered in `Shared::clients` for the
/// connection's life.
pub(crate) struct ClientInfo {
    pub(crate) id: u64,
    pub(crate) addr: String,
    pub(crate) laddr: String,
    pub(crate) fd: i32,
    pub(crate) created: Instant,
    pub(crate) last: Cell<Instant>,
    pub(crate) name: RefCell<Vec<u8>>,
    pub(crate) lib_name: RefCell<Vec<u8>>,
    pub(crate) lib_ver: RefCell<Vec<u8>>,
    pub(crate) resp: Cell<u8>,
    pub(crate) cmd: Cell<&'static str>,
    /// Commands queued in MULTI, or -1 outside one.
    pub(crate) multi: Cell<i64>,
    /// CLIENT KILL: stop serving the connection.
    pub(crate) killed: Cell<bool>,
}

impl ClientInfo {
    /// A new client's record.
    pub(crate) fn new(
        id: u64,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        fd: i32,
    ) -> ClientInfo {
        let now = Instant::now();
        ClientInfo {
            id,
            addr: peer.map_or("?:0".into(), |a| a.to_string()),
            laddr: local.map_or("?:0".into(), |a| a.to_string()),
            fd,
            created: now,
            last: Cell::new(now),
            name: RefCell::default(),
            lib_name: RefCell::default(),
            lib_ver: RefCell::default(),
            resp: Cell::new(2),
            cmd: Cell::new("NULL"),
            multi: Cell::new(-1),
            killed: Cell::new(false),
        }
    }

    /// The line CLIENT LIST and CLIENT INFO print for this client (Redis's fields).
    pub(crate) fn line(&self) -> String {
        let now = Instant::now();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=32768 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            String::from_utf8_lossy(&self.name.borrow()),
            now.duration_since(self.created).as_secs(),
            now.duration_since(self.last.get()).as_secs(),
            if self.multi.get() >= 0 { "x" } else { "N" },
            self.multi.get(),
            self.cmd.get(),
            self.resp.get(),
            String::from_utf8_lossy(&self.lib_name.borrow()),
            String::from_utf8_lossy(&self.lib_ver.borrow()),
        )
    }
}

/// The connection's own state.
pub(crate) struct Client {
    pub(crate) info: Rc<ClientInfo>,
    /// Replies in RESP3 (HELLO 3).
    pub(crate) resp3: bool,
    /// Authenticated (or no password is required).
    pub(crate) authed: bool,
    /// Inside MULTI: the commands queued.
    pub(crate) multi: Option<Vec<OwnedArgs>>,
    /// A command queued in MULTI was refused: EXEC answers EXECABORT.
    pub(crate) multi_failed: bool,
    /// Bytes of arguments queued in MULTI (bounded by `--max-request`).
    pub(crate) multi_bytes: usize,
    /// The keys this client WATCHes.
    pub(crate) watch: Rc<WatchState>,
}

impl Client {
    /// A client that has sent nothing yet.
    pub(crate) fn new(info: Rc<ClientInfo>, authed: bool) -> Client {
        Client {
            info,
            resp3: false,
            authed,
            multi: None,
            multi_failed: false,
            multi_bytes: 0,
            watch: Rc::new(WatchState::default()),
        }
    }

    /// Leaves MULTI (EXEC, DISCARD, RESET).
    pub(crate) fn end_multi(&mut self) {
        self.multi = None;
        self.multi_failed = false;
        self.multi_bytes = 0;
        self.info.multi.set(-1);
    }
}
