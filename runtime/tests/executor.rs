//! Executor behaviour: spawn, join, abort, yield, fairness, cross-thread wakes, turn hooks.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use faultless_runtime::{spawn, time, yield_now, JoinError, Runtime};

#[test]
fn block_on_returns_value() {
    let rt = Runtime::new().unwrap();
    assert_eq!(rt.block_on(async { 40 + 2 }), 42);
}

#[test]
fn spawn_and_join_many() {
    let rt = Runtime::new().unwrap();
    let sum = rt.block_on(async {
        let handles: Vec<_> = (0..1000u64).map(|i| spawn(async move { i * 2 })).collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..1000u64).map(|i| i * 2).sum());
    assert_eq!(rt.stats().tasks_alive, 0);
}

#[test]
fn spawn_before_block_on_runs_inside_it() {
    let rt = Runtime::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = rt.spawn(async move { r.set(true) });
    assert!(!ran.get());
    rt.block_on(h).unwrap();
    assert!(ran.get());
}

#[test]
fn abort_cancels_a_pending_task_and_drops_its_future() {
    struct SetOnDrop(Rc<Cell<bool>>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let rt = Runtime::new().unwrap();
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let res = rt.block_on(async move {
        let h = spawn(async move {
            let _guard = SetOnDrop(d);
            futures::future::pending::<()>().await;
        });
        yield_now().await; // let it start and park
        h.abort();
        h.await
    });
    assert!(res.as_ref().is_err_and(JoinError::is_cancelled));
    assert!(dropped.get());
    assert_eq!(rt.stats().tasks_alive, 0);
}

#[test]
fn abort_after_finish_keeps_the_output() {
    let rt = Runtime::new().unwrap();
    let out = rt.block_on(async {
        let h = spawn(async { 7 });
        yield_now().await;
        yield_now().await;
        assert!(h.is_finished());
        h.abort();
        h.await
    });
    assert_eq!(out.unwrap(), 7);
}

#[test]
fn panicking_task_reports_panic_and_runtime_survives() {
    let rt = Runtime::new().unwrap();
    let res = rt.block_on(async {
        let h = spawn(async {
            if true {
                panic!("boom");
            }
        });
        h.await
    });
    let err = res.unwrap_err();
    assert!(err.is_panic());
    assert!(err.to_string().contains("boom"));
    assert_eq!(rt.block_on(async { spawn(async { 1 }).await.unwrap() }), 1);
}

#[test]
fn detached_task_runs_to_completion() {
    let rt = Runtime::new().unwrap();
    let hit = Rc::new(Cell::new(0));
    let h = hit.clone();
    rt.block_on(async move {
        spawn(async move {
            time::sleep(Duration::from_millis(5)).await;
            h.set(1);
        })
        .detach();
        time::sleep(Duration::from_millis(30)).await;
    });
    assert_eq!(hit.get(), 1);
}

#[test]
fn yield_now_interleaves_tasks() {
    let rt = Runtime::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    rt.block_on({
        let log = log.clone();
        async move {
            let mut hs = Vec::new();
            for id in 0..2 {
                let log = log.clone();
                hs.push(spawn(async move {
                    for step in 0..3 {
                        log.borrow_mut().push((id, step));
                        yield_now().await;
                    }
                }));
            }
            for h in hs {
                h.await.unwrap();
            }
        }
    });
    let log = log.borrow();
    assert_eq!(
        *log,
        vec![(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)],
        "yield_now must let the other task run"
    );
}

/// An always-ready task (it yields forever) must not starve timers or I/O.
#[test]
fn always_ready_task_does_not_starve_timers_or_io() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let stop = Rc::new(Cell::new(false));
        let s = stop.clone();
        let spinner = spawn(async move {
            let mut spins = 0u64;
            while !s.get() {
                spins += 1;
                yield_now().await;
            }
            spins
        });
        time::sleep(Duration::from_millis(20)).await;
        let (a, b) = faultless_runtime::net::UnixStream::pair().unwrap();
        let (res, _) = a.send_all(b"ping".to_vec()).await;
        res.unwrap();
        let (n, buf) = b.recv(Vec::with_capacity(16)).await;
        assert_eq!(n.unwrap(), 4);
        assert_eq!(&buf, b"ping");
        stop.set(true);
        assert!(spinner.await.unwrap() > 0);
    });
}

/// A waker woken from another thread reaches an executor parked in io_uring_enter.
#[test]
fn wake_from_another_thread_wakes_parked_executor() {
    let rt = Runtime::new().unwrap();
    for _ in 0..20 {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let before = rt.stats();
        rt.block_on(async move {
            let mut started = false;
            std::future::poll_fn(|cx| {
                if flag.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                if !started {
                    started = true;
                    let waker: Waker = cx.waker().clone();
                    let flag = f.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(5));
                        flag.store(true, Ordering::Release);
                        waker.wake();
                    });
                }
                Poll::Pending
            })
            .await;
        });
        let after = rt.stats();
        assert!(after.parks > before.parks, "executor should have parked");
        assert!(after.remote_wakes > before.remote_wakes);
    }
    assert!(rt.stats().eventfd_signals > 0);
}

/// Spawned tasks woken from a foreign thread are run (not just the block_on future).
#[test]
fn foreign_wake_of_spawned_tasks() {
    let rt = Runtime::new().unwrap();
    let total = rt.block_on(async {
        let (tx, rx) = std::sync::mpsc::channel::<Waker>();
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let waker_thread = std::thread::spawn(move || {
            let mut wakers = Vec::new();
            for _ in 0..50 {
                wakers.push(rx.recv().unwrap());
            }
            d2.store(true, Ordering::Release);
            for w in wakers {
                w.wake();
            }
        });
        let mut hs = Vec::new();
        for i in 0..50u32 {
            let tx = tx.clone();
            let done = done.clone();
            hs.push(spawn(async move {
                let mut sent = false;
                std::future::poll_fn(|cx| {
                    if done.load(Ordering::Acquire) {
                        return Poll::Ready(());
                    }
                    if !sent {
                        sent = true;
                        tx.send(cx.waker().clone()).unwrap();
                    }
                    Poll::Pending
                })
                .await;
                i
            }));
        }
        let mut total = 0;
        for h in hs {
            total += h.await.unwrap();
        }
        waker_thread.join().unwrap();
        total
    });
    assert_eq!(total, (0..50).sum());
}

#[test]
fn turn_hooks_run_at_quiescent_points() {
    let rt = Runtime::new().unwrap();
    let count = Rc::new(Cell::new(0u64));
    let c = count.clone();
    rt.on_turn_end(move || c.set(c.get() + 1));
    rt.block_on(async {
        for _ in 0..10 {
            time::sleep(Duration::from_millis(1)).await;
        }
    });
    assert!(count.get() >= 10);
    assert_eq!(count.get(), rt.stats().turns);
}

#[test]
fn tasks_left_at_drop_are_dropped() {
    struct SetOnDrop(Rc<Cell<bool>>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    {
        let rt = Runtime::new().unwrap();
        let d = dropped.clone();
        rt.spawn(async move {
            let _g = SetOnDrop(d);
            time::sleep(Duration::from_secs(3600)).await;
        })
        .detach();
        rt.block_on(yield_now());
        assert!(!dropped.get());
    }
    assert!(dropped.get());
}

#[test]
#[should_panic(expected = "within a faultless runtime")]
fn spawn_outside_runtime_panics_clearly() {
    drop(spawn(async {}));
}

/// A future whose destructor panics, around `F`.
struct PanicsWhenDropped<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for PanicsWhenDropped<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<F::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl<F> Drop for PanicsWhenDropped<F> {
    fn drop(&mut self) {
        panic!("this future's destructor panics (expected by the test)");
    }
}

/// Counts its drops.
struct Counted(Rc<Cell<u32>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn output_reaches_the_join_handle_when_the_future_destructor_panics() {
    let rt = Runtime::new().unwrap();
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let res = rt.block_on(async move {
        let h = spawn(PanicsWhenDropped(Box::pin(async move {
            yield_now().await;
            Counted(d)
        })));
        h.await
    });
    let out = res.expect("the task returned its output before its future was dropped");
    assert_eq!(drops.get(), 0);
    drop(out);
    assert_eq!(drops.get(), 1, "the output is dropped exactly once");
    assert_eq!(rt.stats().tasks_alive, 0);
}

#[test]
fn detached_output_is_dropped_when_the_future_destructor_panics() {
    let rt = Runtime::new().unwrap();
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    rt.block_on(async move {
        spawn(PanicsWhenDropped(Box::pin(async move {
            yield_now().await;
            Counted(d)
        })))
        .detach();
        for _ in 0..4 {
            yield_now().await;
        }
    });
    assert_eq!(
        drops.get(),
        1,
        "nobody awaits the output: it is dropped, not leaked"
    );
    assert_eq!(rt.stats().tasks_alive, 0);
}
