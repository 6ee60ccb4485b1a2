//! Signals: deliveries counted, the process survives signals whose default action would kill
//! it, every listener sees a delivery, thread-directed signals on other threads reach the
//! runtime, dropped listeners leak nothing. Each test uses its own signal (tests run in
//! parallel threads of one process).

use std::time::Duration;

use faultless_runtime::signal::{ctrl_c, signal, SignalKind};
use faultless_runtime::time::timeout;
use faultless_runtime::{spawn_blocking, Runtime};

fn kill_self(sig: libc::c_int) {
    // SAFETY: kill(2) with our own pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

#[test]
fn every_delivery_is_received_and_the_process_survives() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
        for _ in 0..20 {
            // Sent from a blocking-pool thread (it inherits the blocked mask), one at a time:
            // standard signals coalesce while pending.
            spawn_blocking(|| kill_self(libc::SIGUSR1)).await.unwrap();
            timeout(Duration::from_secs(10), usr1.recv())
                .await
                .expect("SIGUSR1 arrives")
                .expect("the reader is alive");
        }
    });
    let stats = rt.stats();
    assert_eq!(
        stats.tasks_alive, 0,
        "the signal reader is an internal task"
    );
    assert_eq!(stats.internal_tasks_alive, 1, "the reader waits for more");
}

#[test]
fn ctrl_c_resolves_on_sigint() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let waiter = faultless_runtime::spawn(ctrl_c());
        faultless_runtime::yield_now().await; // the waiter registers
                                              // From a thread that does not block SIGINT: the process-wide handler forwards it.
        std::thread::spawn(|| kill_self(libc::SIGINT))
            .join()
            .unwrap();
        timeout(Duration::from_secs(10), waiter)
            .await
            .expect("ctrl_c resolved")
            .unwrap()
            .unwrap();
    });
}

#[test]
fn every_listener_sees_a_delivery_and_dropped_ones_are_forgotten() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let mut a = signal(SignalKind::user_defined2()).unwrap();
        let mut b = signal(SignalKind::user_defined2()).unwrap();
        // 1000 listeners created and dropped, half of them after being polled once.
        for i in 0..1000 {
            let mut s = signal(SignalKind::user_defined2()).unwrap();
            if i % 2 == 0 {
                let _ = timeout(Duration::ZERO, s.recv()).await;
            }
        }
        // A thread-directed signal to another thread that does not block it. (A thread
        // started from the executor thread inherits its mask, so this one unblocks the
        // signal first, as a thread started elsewhere would have it.)
        std::thread::spawn(|| {
            // SAFETY: sigset calls on a local set; pthread_sigmask and pthread_kill act on
            // the calling thread; no other memory is involved.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR2);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::pthread_kill(libc::pthread_self(), libc::SIGUSR2);
            }
        })
        .join()
        .unwrap();
        for s in [&mut a, &mut b] {
            timeout(Duration::from_secs(10), s.recv())
                .await
                .expect("both listeners see SIGUSR2")
                .unwrap();
        }
        // Nothing more is pending for either.
        assert!(timeout(Duration::from_millis(20), a.recv()).await.is_err());
    });
}

#[test]
fn signals_that_cannot_be_listened_for_are_errors() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        for sig in [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            0,
            65,
        ] {
            let e = signal(SignalKind::from_raw(sig)).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{sig}");
        }
    });
    assert!(signal(SignalKind::hangup()).is_err(), "outside a runtime");
}
