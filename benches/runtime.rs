//! Runtime micro-benchmarks, each measured side by side against tokio's current_thread
//! runtime in the same run: spawn+join, yield ping-pong, timer churn, TCP echo over loopback.
//!
//! ```text
//! cargo bench --bench runtime
//! ```
//!
//! Results and ratios are recorded in docs/results.md.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SPAWN_TASKS: usize = 1000;
const YIELDS: usize = 1000;
const TIMER_TASKS: usize = 100;
const TIMEOUTS_PER_TASK: usize = 10;
const ECHO_CLIENTS: usize = 8;
const ECHO_BYTES: usize = 256 * 1024;
const ECHO_CHUNK: usize = 16 * 1024;

fn faultless_rt() -> faultless::Runtime {
    faultless::Runtime::new().expect("io_uring runtime")
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join");
    g.throughput(Throughput::Elements(SPAWN_TASKS as u64));
    let rt = faultless_rt();
    g.bench_function(BenchmarkId::new("faultless", SPAWN_TASKS), |b| {
        b.iter(|| {
            rt.block_on(async {
                let hs: Vec<_> = (0..SPAWN_TASKS)
                    .map(|i| faultless::spawn(async move { i }))
                    .collect();
                let mut sum = 0;
                for h in hs {
                    sum += h.await.unwrap();
                }
                sum
            })
        })
    });
    let trt = tokio_rt();
    g.bench_function(BenchmarkId::new("tokio", SPAWN_TASKS), |b| {
        b.iter(|| {
            trt.block_on(async {
                let hs: Vec<_> = (0..SPAWN_TASKS)
                    .map(|i| tokio::spawn(async move { i }))
                    .collect();
                let mut sum = 0;
                for h in hs {
                    sum += h.await.unwrap();
                }
                sum
            })
        })
    });
    g.finish();
}

fn yield_ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield_ping_pong");
    g.throughput(Throughput::Elements(2 * YIELDS as u64));
    let rt = faultless_rt();
    g.bench_function(BenchmarkId::new("faultless", YIELDS), |b| {
        b.iter(|| {
            rt.block_on(async {
                let player = || async {
                    for _ in 0..YIELDS {
                        faultless::yield_now().await;
                    }
                };
                let a = faultless::spawn(player());
                let b = faultless::spawn(player());
                a.await.unwrap();
                b.await.unwrap();
            })
        })
    });
    let trt = tokio_rt();
    g.bench_function(BenchmarkId::new("tokio", YIELDS), |b| {
        b.iter(|| {
            trt.block_on(async {
                let player = || async {
                    for _ in 0..YIELDS {
                        tokio::task::yield_now().await;
                    }
                };
                let a = tokio::spawn(player());
                let b = tokio::spawn(player());
                a.await.unwrap();
                b.await.unwrap();
            })
        })
    });
    g.finish();
}

/// Each task arms and cancels `TIMEOUTS_PER_TASK` timeouts that never fire, then sleeps 1 ms:
/// the register/cancel churn of request timeouts plus real expiries.
fn timer_churn(c: &mut Criterion) {
    let mut g = c.benchmark_group("timer_churn");
    g.throughput(Throughput::Elements(
        (TIMER_TASKS * (TIMEOUTS_PER_TASK + 1)) as u64,
    ));
    let rt = faultless_rt();
    g.bench_function(BenchmarkId::new("faultless", TIMER_TASKS), |b| {
        b.iter(|| {
            rt.block_on(async {
                let hs: Vec<_> = (0..TIMER_TASKS)
                    .map(|_| {
                        faultless::spawn(async {
                            for _ in 0..TIMEOUTS_PER_TASK {
                                let _ = faultless::runtime::time::timeout(
                                    Duration::from_secs(1),
                                    faultless::yield_now(),
                                )
                                .await;
                            }
                            faultless::runtime::time::sleep(Duration::from_millis(1)).await;
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            })
        })
    });
    let trt = tokio_rt();
    g.bench_function(BenchmarkId::new("tokio", TIMER_TASKS), |b| {
        b.iter(|| {
            trt.block_on(async {
                let hs: Vec<_> = (0..TIMER_TASKS)
                    .map(|_| {
                        tokio::spawn(async {
                            for _ in 0..TIMEOUTS_PER_TASK {
                                let _ = tokio::time::timeout(
                                    Duration::from_secs(1),
                                    tokio::task::yield_now(),
                                )
                                .await;
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            })
        })
    });
    g.finish();
}

/// `ECHO_CLIENTS` connections each send `ECHO_BYTES` in `ECHO_CHUNK` pieces to an echo server
/// in the same runtime and read every piece back before sending the next.
fn tcp_echo(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp_echo");
    g.throughput(Throughput::Bytes((ECHO_CLIENTS * ECHO_BYTES * 2) as u64));
    g.sample_size(20);

    let rt = faultless_rt();
    let addr = rt.block_on(async {
        use faultless::runtime::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        faultless::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                faultless::spawn(async move {
                    let mut buf = Vec::with_capacity(ECHO_CHUNK);
                    loop {
                        let (n, b) = s.recv(buf).await;
                        if !matches!(n, Ok(n) if n > 0) {
                            return;
                        }
                        let (r, b) = s.send_all(b).await;
                        if r.is_err() {
                            return;
                        }
                        buf = b;
                    }
                })
                .detach();
            }
        })
        .detach();
        addr
    });
    g.bench_function(BenchmarkId::new("faultless", ECHO_CLIENTS), |b| {
        b.iter(|| {
            rt.block_on(async {
                let hs: Vec<_> = (0..ECHO_CLIENTS)
                    .map(|_| {
                        faultless::spawn(async move {
                            let s = faultless::runtime::net::TcpStream::connect(addr)
                                .await
                                .unwrap();
                            s.set_nodelay(true).unwrap();
                            let mut out = vec![1u8; ECHO_CHUNK];
                            let mut inb = Vec::with_capacity(ECHO_CHUNK);
                            for _ in 0..ECHO_BYTES / ECHO_CHUNK {
                                let (r, o) = s.send_all(out).await;
                                r.unwrap();
                                out = o;
                                let mut got = 0;
                                while got < ECHO_CHUNK {
                                    let (n, b) = s.recv(inb).await;
                                    got += n.unwrap();
                                    inb = b;
                                }
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            })
        })
    });

    let trt = tokio_rt();
    let taddr = trt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; ECHO_CHUNK];
                    loop {
                        let n = match s.read(&mut buf).await {
                            Ok(n) if n > 0 => n,
                            _ => return,
                        };
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    });
    g.bench_function(BenchmarkId::new("tokio", ECHO_CLIENTS), |b| {
        b.iter(|| {
            trt.block_on(async {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let hs: Vec<_> = (0..ECHO_CLIENTS)
                    .map(|_| {
                        tokio::spawn(async move {
                            let mut s = tokio::net::TcpStream::connect(taddr).await.unwrap();
                            s.set_nodelay(true).unwrap();
                            let out = vec![1u8; ECHO_CHUNK];
                            let mut inb = vec![0u8; ECHO_CHUNK];
                            for _ in 0..ECHO_BYTES / ECHO_CHUNK {
                                s.write_all(&out).await.unwrap();
                                let mut got = 0;
                                while got < ECHO_CHUNK {
                                    got += s.read(&mut inb).await.unwrap();
                                }
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            })
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = spawn_join, yield_ping_pong, timer_churn, tcp_echo
}
criterion_main!(benches);
