//! The blocking pool: results come back through the cross-thread wake path, the pool is
//! bounded, aborts cancel queued jobs, panics become errors, shutdown cancels what is
//! queued; host names resolve on it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use faultless_runtime::net::{lookup_host, TcpListener, TcpStream};
use faultless_runtime::{spawn_blocking, Runtime};

#[test]
fn results_come_back_and_the_pool_is_bounded() {
    let rt = Runtime::builder().max_blocking_threads(4).build().unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let sum = rt.block_on(async {
        let handles: Vec<_> = (0..64u64)
            .map(|i| {
                let (running, peak) = (running.clone(), peak.clone());
                spawn_blocking(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..64).sum::<u64>());
    assert!(
        peak.load(Ordering::SeqCst) <= 4,
        "never more than 4 jobs at once"
    );
    let stats = rt.stats();
    assert!(stats.blocking_threads <= 4);
    assert_eq!(stats.blocking_spawned, 64);
    assert_eq!(stats.blocking_completed, 64);
    assert_eq!(stats.blocking_queued, 0);
    // The results woke the executor through the remote queue.
    assert!(stats.remote_wakes >= 1, "{stats:?}");
    assert_eq!(stats.tasks_spawned, 0, "jobs are not tasks");
}

#[test]
fn aborted_jobs_do_not_run_and_panics_are_errors() {
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let gate = Arc::new(Barrier::new(2));
        let g = gate.clone();
        let busy = spawn_blocking(move || {
            g.wait();
            std::thread::sleep(Duration::from_millis(20));
        });
        gate.wait(); // the only thread is busy: the next jobs queue
        let queued: Vec<_> = (0..10)
            .map(|_| {
                let ran = ran.clone();
                spawn_blocking(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in &queued {
            h.abort();
        }
        for h in queued {
            assert!(h.await.unwrap_err().is_cancelled());
        }
        busy.await.unwrap();
        let e = spawn_blocking(|| panic!("in the pool")).await.unwrap_err();
        assert!(e.is_panic());
        assert_eq!(e.panic_message(), Some("in the pool"));
        // A detached job still runs.
        let r = ran.clone();
        spawn_blocking(move || r.fetch_add(100, Ordering::SeqCst)).detach();
        spawn_blocking(|| ()).await.unwrap(); // one thread, FIFO: the detached one ran first
    });
    assert_eq!(ran.load(Ordering::SeqCst), 100, "no aborted job ran");
}

#[test]
fn dropping_the_runtime_cancels_queued_jobs() {
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Barrier::new(2));
    rt.block_on(async {
        let g = gate.clone();
        spawn_blocking(move || {
            g.wait();
            g.wait();
        })
        .detach();
        gate.wait();
        for _ in 0..100 {
            let ran = ran.clone();
            spawn_blocking(move || ran.fetch_add(1, Ordering::SeqCst)).detach();
        }
    });
    drop(rt); // must not wait for the running job
    gate.wait(); // release the running job
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "queued jobs were dropped, not run"
    );
}

#[test]
fn host_names_resolve_on_the_pool() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        // Literals: no job.
        let v: Vec<_> = lookup_host("127.0.0.1:80").await.unwrap().collect();
        assert_eq!(v, ["127.0.0.1:80".parse().unwrap()]);
        let v: Vec<_> = lookup_host(("::1", 80)).await.unwrap().collect();
        assert_eq!(v, ["[::1]:80".parse().unwrap()]);
        assert_eq!(faultless_runtime::stats().unwrap().blocking_spawned, 0);
        // The machine's own name (in /etc/hosts on a container): the system resolver, on
        // the pool, answers as std's blocking lookup does.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let name = format!("{}:80", host.trim());
        let v: Vec<_> = lookup_host(name.as_str()).await.unwrap().collect();
        let std: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(&name)
            .unwrap()
            .collect();
        assert_eq!(v, std);
        assert_eq!(faultless_runtime::stats().unwrap().blocking_spawned, 1);
        let Err(e) = lookup_host("no-port").await else {
            panic!("no port: an error")
        };
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);

        // connect with a host name resolves on the pool too.
        let ip = std[0].ip();
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = faultless_runtime::spawn(async move { listener.accept().await.map(|_| ()) });
        let s = TcpStream::connect(format!("{}:{port}", host.trim()))
            .await
            .unwrap();
        accept.await.unwrap().unwrap();
        drop(s);
        assert_eq!(faultless_runtime::stats().unwrap().blocking_spawned, 2);

        // A synchronous bind will not block the executor on a lookup.
        let e = TcpListener::bind("some-host.invalid:0").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("lookup_host"), "{e}");
    });
}
