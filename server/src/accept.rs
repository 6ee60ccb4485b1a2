//! The accept loop: admits a connection, or turns it away with Redis's error when the server
//! is full, and survives running out of file descriptors.
//!
//! * Past `--max-clients` (reduced to what the open-file limit fits, see `limits`), a new
//!   connection is answered `-ERR max number of clients reached` and closed, as Redis does.
//! * If `accept` fails for lack of file descriptors (`EMFILE`/`ENFILE`: other files took them),
//!   the pending connection would sit in the listen queue, its client waiting forever. So the
//!   acceptor keeps one spare descriptor (`/dev/null`) open: it closes it, accepts the
//!   connection into the freed slot, sends the same error, closes it, and takes the spare
//!   again. Clients never hang.
//! * Accept errors are logged at most once a second, with a count of those not logged.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use faultless_runtime::net::TcpStream;

use crate::server::Shared;
use crate::stats::bump;

/// What a client past the limit reads (Redis's exact words).
pub(crate) const MAX_CLIENTS_ERROR: &[u8] = b"-ERR max number of clients reached\r\n";

/// Turned-away connections kept open at once to let their client read the error.
const MAX_LINGERING: u64 = 128;

/// How long a turned-away connection waits for its client to read the error and close.
const LINGER: Duration = Duration::from_secs(1);

/// The acceptor's state besides the listener.
pub(crate) struct Acceptor {
    shared: Rc<Shared>,
    /// The spare descriptor; empty while its slot is lent to a connection being turned away.
    spare: Rc<RefCell<Option<std::fs::File>>>,
    /// The spare was closed to accept a connection that is to be turned away.
    spare_released: bool,
    log: RateLimitedLog,
    lingering: Rc<Cell<u64>>,
}

impl Acceptor {
    /// An acceptor for `shared`, holding its spare descriptor.
    pub(crate) fn new(shared: Rc<Shared>) -> Acceptor {
        Acceptor {
            shared,
            spare: Rc::new(RefCell::new(open_spare())),
            spare_released: false,
            log: RateLimitedLog::default(),
            lingering: Rc::new(Cell::new(0)),
        }
    }

    /// Handles a newly accepted connection: serves it, or turns it away if the server is
    /// full or just ran out of descriptors.
    pub(crate) fn admit(&mut self, stream: TcpStream) {
        let shared = &self.shared;
        if self.spare_released {
            // Accepted into the spare's slot after EMFILE: turn it away; the slot goes back
            // to the spare once the client is gone.
            self.spare_released = false;
            bump(&shared.stats.rejected_connections);
            self.turn_away(stream, true, Some(self.spare.clone()));
            return;
        }
        if shared.stats.connected.get() >= shared.max_clients as u64 {
            bump(&shared.stats.rejected_connections);
            let linger = self.lingering.get() < MAX_LINGERING;
            self.turn_away(stream, linger, None);
            return;
        }
        let _ = stream.set_nodelay(true);
        bump(&shared.stats.accepted);
        bump(&shared.stats.connected);
        let shared = shared.clone();
        faultless_runtime::spawn(async move {
            crate::connection::serve(shared.clone(), stream).await;
            let connected = &shared.stats.connected;
            connected.set(connected.get() - 1);
        })
        .detach();
    }

    /// Handles a failed accept. Returns how long to wait before accepting again.
    pub(crate) fn failed(&mut self, e: io::Error) -> Option<Duration> {
        self.log.log(&e);
        let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
        if out_of_fds && self.spare.borrow_mut().take().is_some() {
            // The next accept gets the freed descriptor; `admit` turns that client away.
            self.spare_released = true;
            return None;
        }
        // Out of descriptors without a spare, or out of memory: back off a little.
        Some(Duration::from_millis(10))
    }

    /// Sends the max-clients error and closes, in a task of its own. With `linger`, it shuts
    /// our side down and waits (briefly) for the client to close first, so that what the
    /// client had sent does not turn our close into a reset that discards the error before it
    /// is read. Then it puts the spare descriptor back, if it was given one.
    fn turn_away(
        &mut self,
        stream: TcpStream,
        linger: bool,
        spare: Option<Rc<RefCell<Option<std::fs::File>>>>,
    ) {
        let lingering = self.lingering.clone();
        if linger {
            lingering.set(lingering.get() + 1);
        }
        faultless_runtime::spawn(async move {
            let sent = faultless_runtime::time::timeout(
                Duration::from_millis(100),
                stream.send_all(MAX_CLIENTS_ERROR),
            )
            .await;
            if linger {
                if matches!(sent, Ok((Ok(()), _))) {
                    let _ = stream.shutdown(std::net::Shutdown::Write).await;
                    let _ = faultless_runtime::time::timeout(LINGER, drain(&stream)).await;
                }
                lingering.set(lingering.get() - 1);
            }
            drop(stream);
            if let Some(spare) = spare {
                *spare.borrow_mut() = open_spare();
            }
        })
        .detach();
    }
}

/// Reads and discards until the peer closes (or 64 KiB have come).
async fn drain(stream: &TcpStream) {
    let mut buf = Vec::with_capacity(4096);
    for _ in 0..16 {
        let (res, b) = stream.recv(buf).await;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => buf = b,
        }
        buf.clear();
    }
}

fn open_spare() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Writes accept errors to stderr at most once a second.
#[derive(Default)]
struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    fn log(&mut self, e: &io::Error) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            eprintln!(
                "accept: {e} ({} more since the last message)",
                self.suppressed
            );
        } else {
            eprintln!("accept: {e}");
        }
        self.last = Some(now);
        self.suppressed = 0;
    }
}
