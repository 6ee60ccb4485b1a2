//! Dropping operations mid-flight, many times and at random points, leaves the runtime
//! healthy, every operation reaped, and every fd closed.
//!
//! One test in its own binary: it counts the process's open fds, which parallel tests in the
//! same process would disturb.

use std::time::Duration;

use faultless_runtime::fs::File;
use faultless_runtime::net::{TcpListener, TcpStream, UnixStream};
use faultless_runtime::{spawn, time, yield_now, Runtime};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// xorshift64*: deterministic randomness without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Polls `fut` for a random number of executor turns (0 = never polled), then drops it.
async fn run_then_drop<F: std::future::Future>(fut: F, rng: &mut Rng) -> Option<F::Output> {
    let micros = rng.below(4) * 150;
    if micros == 0 {
        let mut fut = std::pin::pin!(fut);
        // Submitted on the first poll, dropped right after.
        return match futures::poll!(fut.as_mut()) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        };
    }
    time::timeout(Duration::from_micros(micros), fut).await.ok()
}

#[test]
fn dropping_futures_mid_flight_is_safe_and_leaks_nothing() {
    let path = std::env::temp_dir().join(format!("faultless-cancel-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
    let baseline = open_fds();
    {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let file = File::open(&path).await.unwrap();
            let mut accepted = 0u32;
            let mut connected = 0u32;
            for _ in 0..600 {
                match rng.below(5) {
                    0 => {
                        // recv with no data: stays in flight until dropped
                        let (a, _b) = UnixStream::pair().unwrap();
                        run_then_drop(a.recv(Vec::with_capacity(4096)), &mut rng).await;
                    }
                    1 => {
                        // accept, sometimes with a client racing it
                        if rng.below(2) == 0 {
                            spawn(async move {
                                let _ = TcpStream::connect(addr).await;
                            })
                            .detach();
                        }
                        if let Some(Ok(_)) = run_then_drop(listener.accept(), &mut rng).await {
                            accepted += 1;
                        }
                    }
                    2 => {
                        if let Some(Ok(_)) = run_then_drop(TcpStream::connect(addr), &mut rng).await
                        {
                            connected += 1;
                        }
                    }
                    3 => {
                        let off = rng.below(256) * 4096;
                        run_then_drop(file.read_at(Vec::with_capacity(65536), off), &mut rng).await;
                    }
                    _ => {
                        // a task blocked in recv, aborted after a random number of yields
                        let (a, b) = UnixStream::pair().unwrap();
                        let h = spawn(async move {
                            let (_r, _buf) = a.recv(Vec::with_capacity(1024)).await;
                        });
                        for _ in 0..rng.below(3) {
                            yield_now().await;
                        }
                        h.abort();
                        drop(b);
                    }
                }
            }
            // Drain the listener's backlog of connections from cancelled accepts.
            while let Ok(Ok(_)) = time::timeout(Duration::from_millis(20), listener.accept()).await
            {
                accepted += 1;
            }
            // Let every cancellation complete.
            for _ in 0..50 {
                if faultless_runtime::stats().unwrap().ops_in_flight == 0 {
                    break;
                }
                time::sleep(Duration::from_millis(2)).await;
            }
            let stats = faultless_runtime::stats().unwrap();
            assert_eq!(
                stats.ops_in_flight, 0,
                "every cancelled op must complete: {stats:?}"
            );
            assert!(
                stats.ops_cancelled > 100,
                "the test must really cancel ops: {stats:?}"
            );
            assert!(accepted > 0 && connected > 0);

            // The runtime still serves a real exchange.
            let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
            let a2 = l2.local_addr().unwrap();
            let srv = spawn(async move {
                let (s, _) = l2.accept().await.unwrap();
                let (n, buf) = s.recv(Vec::with_capacity(64)).await;
                let n = n.unwrap();
                let (r, _) = s.send_all(buf[..n].to_vec()).await;
                r.unwrap();
            });
            let c = TcpStream::connect(a2).await.unwrap();
            let (r, _) = c.send_all(&b"still alive"[..]).await;
            r.unwrap();
            let (n, buf) = c.recv(Vec::with_capacity(64)).await;
            assert_eq!(&buf[..n.unwrap()], b"still alive");
            srv.await.unwrap();
        });
        assert_eq!(rt.stats().tasks_alive, 0, "all tasks finished or aborted");
    }
    assert_eq!(
        open_fds(),
        baseline,
        "every fd (sockets, file, ring, eventfd) is closed"
    );
    std::fs::remove_file(&path).unwrap();
}
