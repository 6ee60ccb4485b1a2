//! Connection limits: --max-clients, a low open-file limit, running out of descriptors under
//! a live server, the idle timeout, and restarting on the same port.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{faultless, read_reply, request, temp, Reply, Server};

const MAX_CLIENTS: &str = "ERR max number of clients reached";

/// What a new client gets: PONG (served) or the max-clients error and then EOF (turned
/// away). Anything else, or no answer within the harness's read timeout, fails.
fn ping_or_turned_away(s: &Server) -> Option<TcpStream> {
    let mut c = s.connect();
    c.write_all(b"PING\r\n").unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    match read_reply(&mut r) {
        Reply::Status(p) if p == "PONG" => Some(c),
        Reply::Error(e) if e == MAX_CLIENTS => {
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty(), "after the error: {rest:?}");
            None
        }
        other => panic!("unexpected reply {other:?}"),
    }
}

/// Retries until a new client is served (others may still be closing).
fn served_eventually(s: &Server) -> TcpStream {
    served_counting(s).0
}

/// Retries until a new client is served; also returns how many were turned away first.
fn served_counting(s: &Server) -> (TcpStream, u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut refused = 0;
    loop {
        if let Some(c) = ping_or_turned_away(s) {
            return (c, refused);
        }
        refused += 1;
        assert!(Instant::now() < deadline, "no client was served again");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn max_clients_get_redis_error() {
    let data = temp("max-clients");
    let s = Server::start(&data, &["--max-clients", "5"]);
    let clients: Vec<TcpStream> = (0..5)
        .map(|_| ping_or_turned_away(&s).expect("one of the first five was turned away"))
        .collect();
    // The sixth reads Redis's exact error, then the connection closes; it never hangs.
    for _ in 0..3 {
        assert!(ping_or_turned_away(&s).is_none());
    }
    let mut quiet = s.connect(); // a client that sends nothing gets the error too
    let mut got = Vec::new();
    quiet.read_to_end(&mut got).unwrap();
    assert_eq!(got, format!("-{MAX_CLIENTS}\r\n").as_bytes());
    // One leaves: a new client is served.
    drop(clients);
    // (The server may not have seen them leave yet: clients turned away meanwhile count.)
    let (mut c, refused_meanwhile) = served_counting(&s);
    let Reply::Bulk(Some(info)) = request(&mut c, &[b"INFO"]) else {
        panic!()
    };
    let info = String::from_utf8(info).unwrap();
    assert!(info.contains("maxclients:5\r\n"), "{info}");
    let rejected = format!("rejected_connections:{}\r\n", 4 + refused_meanwhile);
    assert!(info.contains(&rejected), "{info}");
}

/// Starts a server whose open-file limit is `limit` (soft and hard), logging to `log`.
fn start_with_fd_limit(data: &Path, limit: u64, log: &Path) -> Server {
    let mut cmd = faultless();
    cmd.stderr(Stdio::from(std::fs::File::create(log).unwrap()));
    // SAFETY: between fork and exec the closure only calls setrlimit, which is
    // async-signal-safe, on a struct on its own stack.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Server::start_with(data, &[], cmd)
}

/// Sets the live server's soft open-file limit.
fn set_fd_limit(s: &Server, soft: u64, hard: u64) {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: prlimit reads the struct we pass (and writes nothing: the old-limit pointer is
    // null); it only changes the limits of our own child.
    let r = unsafe {
        libc::prlimit(
            s.child.id() as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(r, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// The lowest file descriptor number the server does not have open, once the descriptors
/// of clients it just turned away are closed (a close can still be in flight in its ring:
/// wait until the set of open descriptors stops changing).
fn lowest_free_fd(s: &Server) -> u64 {
    let open = || -> std::collections::HashSet<u64> {
        std::fs::read_dir(format!("/proc/{}/fd", s.child.id()))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_string_lossy().parse().ok())
            .collect()
    };
    let mut before = open();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now = open();
        if now == before {
            return (0..).find(|fd| !now.contains(fd)).unwrap();
        }
        before = now;
    }
}

#[test]
fn a_low_fd_limit_never_leaves_a_client_hanging() {
    let data = temp("fd-limit");
    let log = temp("fd-limit-log");
    // 64 descriptors: the server serves at most 32 clients (64 minus 32 of its own).
    let s = start_with_fd_limit(&data, 64, &log);
    let mut served = Vec::new();
    let mut turned_away = 0;
    for _ in 0..60 {
        match ping_or_turned_away(&s) {
            Some(c) => served.push(c),
            None => turned_away += 1,
        }
    }
    assert_eq!(served.len(), 32, "{turned_away} turned away");
    assert_eq!(turned_away, 28);
    // Many idle connections that never read or close (1,100 of them locked out every new
    // client at a 1,024 limit): each is turned away at once, and holds nothing on the server.
    let idle: Vec<TcpStream> = (0..200).map(|_| s.connect()).collect();
    for _ in 0..10 {
        assert!(ping_or_turned_away(&s).is_none(), "served past max-clients");
    }

    // Now the descriptors run out under it (as when other files take them): the next
    // accept fails with EMFILE. Each new client must still get an answer, not wait forever
    // in the listen queue, and the log must not flood.
    //
    // The limit is the lowest free descriptor. A descriptor the server closes just after that
    // is measured (a connection it turned away) leaves a hole below the limit, and clients
    // are then turned away through the hole, never reaching EMFILE: so the limit is taken
    // again until an accept has failed (the log says so), and then 50 more clients come.
    let started = Instant::now();
    let mut attempts = 0;
    let mut after_emfile = 0;
    while after_emfile < 50 {
        if attempts % 10 == 0 && after_emfile == 0 {
            let free = lowest_free_fd(&s);
            set_fd_limit(&s, free, 64);
        }
        assert!(
            ping_or_turned_away(&s).is_none(),
            "served past the fd limit"
        );
        attempts += 1;
        if after_emfile > 0
            || std::fs::read_to_string(&log)
                .unwrap()
                .contains("Too many open files")
        {
            after_emfile += 1;
        }
        assert!(attempts < 500, "no accept failed in {attempts} attempts");
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    let lines = logged.lines().filter(|l| l.starts_with("accept:")).count();
    // At most one line a second.
    let allowed = started.elapsed().as_secs() as usize + 1;
    assert!(
        lines <= allowed,
        "{lines} log lines for {attempts} failed accepts in {:?}:\n{logged}",
        started.elapsed()
    );

    // Descriptors come back: clients are served again.
    set_fd_limit(&s, 64, 64);
    drop((served, idle));
    let mut c = served_eventually(&s);
    assert_eq!(
        request(&mut c, &[b"SET", b"k", b"v"]),
        Reply::Status("OK".into())
    );
}

#[test]
fn idle_clients_are_closed_after_the_timeout() {
    let data = temp("timeout");
    let s = Server::start(&data, &["--timeout", "1"]);
    let mut idle = s.connect();
    assert_eq!(request(&mut idle, &[b"PING"]), Reply::Status("PONG".into()));
    // Silence: the server closes the connection (read returns EOF, not the 20 s timeout).
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(s.info("idle_timeouts") >= 1);
}

#[test]
fn restart_right_after_a_crash_binds_the_same_port() {
    let data = temp("reuseaddr");
    let mut s = Server::start(&data, &[]);
    let port = s.port.clone();
    for _ in 0..5 {
        // A connection the server closes first leaves its socket in TIME_WAIT (binding needs
        // SO_REUSEADDR then), and a killed server's listener outlives it by a few ms (its
        // io_uring is torn down after the process is gone): the new server must bind anyway.
        let mut c = s.connect();
        assert_eq!(request(&mut c, &[b"PING"]), Reply::Status("PONG".into()));
        drop(s); // kill -9
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        drop(c);
        s = Server::start_with(&data, &["--port", &port], faultless());
    }
    let mut c = s.connect();
    assert_eq!(request(&mut c, &[b"PING"]), Reply::Status("PONG".into()));
}
