//! Timers: ordering, timeout, interval, cancellation.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use faultless_runtime::{spawn, time, Runtime};

#[test]
fn timers_fire_in_deadline_order() {
    let rt = Runtime::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    rt.block_on({
        let order = order.clone();
        async move {
            // Registered in scrambled order, with duplicates.
            let delays = [30u64, 5, 20, 5, 0, 25, 10, 15, 1];
            let hs: Vec<_> = delays
                .iter()
                .enumerate()
                .map(|(i, &ms)| {
                    let order = order.clone();
                    spawn(async move {
                        time::sleep(Duration::from_millis(ms)).await;
                        order.borrow_mut().push((ms, i));
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        }
    });
    let order = order.borrow();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(
        *order, sorted,
        "timers must fire in deadline order, ties in spawn order"
    );
}

#[test]
fn sleep_waits_at_least_its_duration() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let start = Instant::now();
        time::sleep(Duration::from_millis(15)).await;
        assert!(start.elapsed() >= Duration::from_millis(15));
        let deadline = Instant::now() + Duration::from_millis(5);
        time::sleep_until(deadline).await;
        assert!(Instant::now() >= deadline);
        // A deadline in the past completes at once.
        time::sleep_until(Instant::now() - Duration::from_millis(1)).await;
    });
}

#[test]
fn timeout_fires_and_cancels_the_inner_future() {
    struct Flag(Rc<RefCell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            *self.0.borrow_mut() = true;
        }
    }
    let rt = Runtime::new().unwrap();
    let dropped = Rc::new(RefCell::new(false));
    let d = dropped.clone();
    let res = rt.block_on(async move {
        time::timeout(Duration::from_millis(10), async move {
            let _f = Flag(d);
            time::sleep(Duration::from_secs(3600)).await;
            1
        })
        .await
    });
    assert_eq!(res, Err(time::Elapsed));
    assert!(*dropped.borrow(), "the timed-out future must be dropped");
    assert_eq!(
        rt.stats().timers_pending,
        0,
        "the inner sleep's timer is gone"
    );
}

#[test]
fn timeout_passes_through_a_fast_future() {
    let rt = Runtime::new().unwrap();
    let res = rt.block_on(time::timeout(Duration::from_secs(5), async { 3 }));
    assert_eq!(res, Ok(3));
    assert_eq!(rt.stats().timers_pending, 0);
}

#[test]
fn interval_ticks_evenly_and_skips_missed_ticks() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let period = Duration::from_millis(10);
        let mut iv = time::interval(period);
        let first = iv.tick().await;
        let second = iv.tick().await;
        assert_eq!(second - first, period);
        let third = iv.tick().await;
        assert_eq!(third - second, period);
        // Miss several ticks: the next one is immediate, then the schedule restarts.
        std::thread::sleep(Duration::from_millis(35));
        let late = iv.tick().await;
        assert_eq!(late, third + period);
        let before = Instant::now();
        let next = iv.tick().await;
        assert!(next >= before + period - Duration::from_millis(1));
    });
}

#[test]
fn dropped_sleeps_leave_no_timers() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        for _ in 0..1000 {
            let _ = time::timeout(Duration::from_secs(60), async {}).await;
            let mut s = std::pin::pin!(time::sleep(Duration::from_secs(60)));
            assert!(futures::poll!(s.as_mut()).is_pending());
        }
        assert_eq!(faultless_runtime::stats().unwrap().timers_pending, 0);
    });
}

/// `Duration::MAX` means "until cancelled", not a panic on overflow.
#[test]
fn huge_durations_do_not_overflow() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let forever = faultless_runtime::time::sleep(Duration::MAX);
        let r = faultless_runtime::time::timeout(Duration::from_millis(1), forever).await;
        assert!(r.is_err());
        let r = faultless_runtime::time::timeout(Duration::MAX, async { 5 }).await;
        assert_eq!(r.unwrap(), 5);
        let mut i = faultless_runtime::time::interval(Duration::MAX);
        i.tick().await; // the first tick is immediate
        let r = faultless_runtime::time::timeout(Duration::from_millis(1), i.tick()).await;
        assert!(r.is_err());
    });
    assert_eq!(rt.stats().timers_pending, 0);
}
