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
//! * Turning a client away takes no task and holds no descriptor afterwards: non-blocking
//!   calls send the error (into an empty socket buffer, so it always fits), shut our side
//!   down, and read what the client had already sent, so that closing sends a FIN after the
//!   error rather than a reset that could discard it.
//! * Accept errors are logged at most once a second, with a count of those not logged.

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use faultless_runtime::net::TcpStream;

use crate::server::Shared;
use crate::stats::bump;

/// What a client past the limit reads (Redis's exact words).
pub(crate) const MAX_CLIENTS_ERROR: &[u8] = b"-ERR max number of clients reached\r\n";

/// The acceptor's state besides the listener.
pub(crate) struct Acceptor {
    shared: Rc<Shared>,
    /// A descriptor held in reserve for turning clients away when there are none left.
    spare: Option<std::fs::File>,
    /// The spare was closed so that the next accept can succeed.
    spare_released: bool,
    log: RateLimitedLog,
}

impl Acceptor {
    /// An acceptor for `shared`, holding its spare descriptor.
    pub(crate) fn new(shared: Rc<Shared>) -> Acceptor {
        Acceptor {
            shared,
            spare: open_spare(),
            spare_released: false,
            log: RateLimitedLog::default(),
        }
    }

    /// Handles a newly accepted connection: serves it, or turns it away if the server is
    /// full or just ran out of descriptors.
    pub(crate) fn admit(&mut self, stream: TcpStream) {
        let shared = &self.shared;
        if self.spare_released {
            // Accepted into the spare's slot after EMFILE: turn it away, take the slot back.
            bump(&shared.stats.rejected_connections);
            turn_away(stream, MAX_CLIENTS_ERROR);
            self.spare = open_spare();
            self.spare_released = false;
            return;
        }
        if shared.stats.connected.get() >= shared.client_limit() as u64 {
            bump(&shared.stats.rejected_connections);
            turn_away(stream, MAX_CLIENTS_ERROR);
            return;
        }
        let protected = {
            let c = shared.config.borrow();
            c.protected_mode && c.requirepass.is_none()
        };
        if protected {
            if let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) {
                if refused_by_protected_mode(local.ip().to_canonical(), peer.ip().to_canonical()) {
                    bump(&shared.stats.rejected_connections);
                    turn_away(stream, PROTECTED_MODE_ERROR);
                    return;
                }
            }
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
        if out_of_fds && self.spare.take().is_some() {
            // The next accept gets the freed descriptor; `admit` turns that client away.
            self.spare_released = true;
            return None;
        }
        // Out of descriptors without a spare, or out of memory: back off a little.
        Some(Duration::from_millis(10))
    }
}

/// What a client refused by protected mode reads (Redis's words, shortened).
pub(crate) const PROTECTED_MODE_ERROR: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers, set a password (--requirepass), or disable protected mode (--protected-mode no).\r\n";

/// Redis's protected mode: with no password, a client from another host is refused when
/// the server listens on a non-loopback address (`local`, the address the client reached).
pub(crate) fn refused_by_protected_mode(local: std::net::IpAddr, peer: std::net::IpAddr) -> bool {
    !local.is_loopback() && !peer.is_loopback()
}

/// Sends `error` and closes, without waiting for anything (see the module docs).
fn turn_away(stream: TcpStream, error: &'static [u8]) {
    let fd = stream.as_raw_fd();
    let mut sink = [0u8; 4096];
    // SAFETY: `fd` is the open socket that `stream` owns until it is dropped below, and no
    // operation is in flight on it. With MSG_DONTWAIT none of these calls blocks; send reads
    // only the static error, recv writes only into `sink`, within its length.
    unsafe {
        libc::send(
            fd,
            error.as_ptr().cast(),
            error.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        );
        libc::shutdown(fd, libc::SHUT_WR);
        for _ in 0..16 {
            let n = libc::recv(fd, sink.as_mut_ptr().cast(), sink.len(), libc::MSG_DONTWAIT);
            if n <= 0 {
                break;
            }
        }
    }
    drop(stream);
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
            crate::log::warning!(
                "accept: {e} ({} more since the last message)",
                self.suppressed
            );
        } else {
            crate::log::warning!("accept: {e}");
        }
        self.last = Some(now);
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_refuses_only_remote_clients_of_a_public_listener() {
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: std::net::IpAddr = "::1".parse().unwrap();
        let public: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let other: std::net::IpAddr = "198.51.100.9".parse().unwrap();
        assert!(!refused_by_protected_mode(lo, lo));
        assert!(!refused_by_protected_mode(public, lo));
        assert!(!refused_by_protected_mode(public, lo6));
        assert!(refused_by_protected_mode(public, other));
        assert!(
            PROTECTED_MODE_ERROR.ends_with(b"\r\n") && PROTECTED_MODE_ERROR.starts_with(b"-DENIED")
        );
    }
}
