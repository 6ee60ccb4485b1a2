//! Operations whose completion creates a resource (an fd) and whose future is dropped while
//! they are in flight: the kernel may still create the fd, and then nobody is left to own it.
//! The driver must close it. Thousands of dropped opens and accepts, dropped at every stage
//! (queued but not submitted, in flight, completed but not yet taken), must leave the
//! process's fd count where it started.
//!
//! One test in its own binary: it counts the process's open fds, which parallel tests in the
//! same process would disturb.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use faultless_runtime::fs::{File, OpenOptions};
use faultless_runtime::net::{TcpListener, TcpStream};
use faultless_runtime::{spawn, time, yield_now, Runtime};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Polls every future once (which queues its operation), then drops them all at `stage`:
/// 0: right away (queued, not yet submitted); 1, 2: after that many executor turns
/// (submitted, in flight); 3: after 5 ms of sleep (completed and reaped, result not taken).
/// Returns how many finished on their first poll.
async fn poll_once_then_drop<F: Future>(futs: Vec<F>, stage: u32) -> usize {
    let mut pending: Vec<Pin<Box<F>>> = Vec::with_capacity(futs.len());
    let mut ready = 0;
    for f in futs {
        let mut f = Box::pin(f);
        match futures::poll!(f.as_mut()) {
            Poll::Ready(_) => ready += 1,
            Poll::Pending => pending.push(f),
        }
    }
    if stage == 3 {
        time::sleep(Duration::from_millis(5)).await;
    } else {
        for _ in 0..stage {
            yield_now().await;
        }
    }
    drop(pending);
    ready
}

async fn wait_for_no_ops_in_flight() {
    for _ in 0..500 {
        if faultless_runtime::stats().unwrap().ops_in_flight == 0 {
            return;
        }
        time::sleep(Duration::from_millis(2)).await;
    }
    panic!(
        "operations still in flight: {:?}",
        faultless_runtime::stats()
    );
}

#[test]
fn dropped_in_flight_opens_and_accepts_leak_no_fd() {
    let dir = std::env::temp_dir().join(format!("faultless-orphan-fds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("file");
    std::fs::write(&path, b"hello").unwrap();
    const ROUNDS: u32 = 40;
    const PER_ROUND: usize = 100;

    let baseline = open_fds();
    {
        let rt = Runtime::new().unwrap();
        let ring_fds = open_fds() - baseline;
        let (opens_ready, accepts_ready) = rt.block_on(async {
            let mut opens_ready = 0;
            for round in 0..ROUNDS {
                // Half the rounds open read-only, half create files: both make fds.
                let futs: Vec<_> = (0..PER_ROUND)
                    .map(|i| {
                        let path = if round % 2 == 0 {
                            path.clone()
                        } else {
                            dir.join(format!("created-{i}"))
                        };
                        async move {
                            if round % 2 == 0 {
                                File::open(&path).await
                            } else {
                                OpenOptions::new()
                                    .write(true)
                                    .create(true)
                                    .truncate(true)
                                    .open(&path)
                                    .await
                            }
                        }
                    })
                    .collect();
                opens_ready += poll_once_then_drop(futs, round % 4).await;
            }
            wait_for_no_ops_in_flight().await;
            // While the open futures were dropped, fds may have been created and not closed.
            // (Nothing else in this process opens fds meanwhile.)

            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut accepts_ready = 0;
            for round in 0..ROUNDS {
                // Clients race the accepts in every other round.
                let clients: Vec<_> = (0..if round % 2 == 0 { PER_ROUND / 4 } else { 0 })
                    .map(|_| {
                        spawn(async move {
                            let _ = TcpStream::connect(addr).await;
                        })
                    })
                    .collect();
                let futs: Vec<_> = (0..PER_ROUND).map(|_| listener.accept()).collect();
                accepts_ready += poll_once_then_drop(futs, round % 4).await;
                for c in clients {
                    let _ = c.await;
                }
            }
            drop(listener);
            wait_for_no_ops_in_flight().await;
            (opens_ready, accepts_ready)
        });
        let stats = rt.stats();
        assert_eq!(stats.tasks_alive, 0);
        assert!(
            stats.ops_cancelled > 1000,
            "the test must really drop operations in flight: {stats:?}"
        );
        assert!(
            stats.orphan_fds_closed > 0,
            "some dropped open must have completed with an fd: {stats:?}"
        );
        eprintln!(
            "dropped {} operations in flight; the runtime closed {} fds they created",
            stats.ops_cancelled, stats.orphan_fds_closed
        );
        let leaked = open_fds() as isize - (baseline + ring_fds) as isize;
        assert_eq!(
            leaked, 0,
            "fds left open by dropped operations (opens ready at first poll: {opens_ready}, \
             accepts ready at first poll: {accepts_ready}): {stats:?}"
        );
    }
    assert_eq!(open_fds(), baseline, "every fd (ring, eventfd) is closed");
    std::fs::remove_dir_all(&dir).unwrap();
}
