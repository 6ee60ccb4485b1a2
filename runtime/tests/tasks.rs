//! Task facilities: `JoinError` is `Send + Sync`, `JoinSet`, task ids and names, and the
//! runtime's own tasks counted apart from the program's.

use std::cell::Cell;
use std::error::Error;
use std::rc::Rc;

use faultless_runtime::mem::{Backend, MapOptions, Mapping};
use faultless_runtime::task::{self, JoinSet};
use faultless_runtime::{spawn, yield_now, JoinError, Runtime};

fn assert_send_sync<T: Send + Sync + 'static>() {}

#[test]
fn join_error_is_send_sync_and_boxes_into_dyn_error() {
    assert_send_sync::<JoinError>();
    fn run(rt: &Runtime) -> Result<u32, Box<dyn Error + Send + Sync>> {
        rt.block_on(async {
            let v = spawn(async { 1 }).await?;
            let n = std::hint::black_box(7);
            let e = spawn(async move { panic!("boom {n}") }).await;
            let e = e.expect_err("the task panicked");
            assert!(e.is_panic() && !e.is_cancelled());
            assert_eq!(e.panic_message(), Some("boom 7"));
            assert!(e.to_string().contains("boom 7"), "{e}");
            // Sent to another thread and back, as anyhow does with its errors.
            let e = std::thread::spawn(move || e).join().unwrap();
            let payload = e.into_panic();
            let payload = payload
                .downcast::<String>()
                .expect("the payload is the String");
            assert_eq!(*payload, "boom 7");
            let h = spawn(std::future::pending::<()>());
            h.abort();
            let e = h.await.expect_err("aborted");
            assert!(e.is_cancelled());
            assert!(e.try_into_panic().is_err());
            spawn(async { panic!("last") }).await?;
            Ok(v)
        })
    }
    let rt = Runtime::new().unwrap();
    let err = run(&rt).expect_err("the `?` on the last task propagates its JoinError");
    assert!(err.to_string().contains("last"));
    assert!(err.downcast_ref::<JoinError>().is_some());
}

#[test]
fn join_set_returns_results_in_completion_order() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let mut set = JoinSet::new();
        // Task i yields 100 - i times: the last spawned finishes first.
        for i in 0..100u32 {
            set.spawn(async move {
                for _ in 0..(100 - i) {
                    yield_now().await;
                }
                i
            });
        }
        assert_eq!(set.len(), 100);
        let mut order = Vec::new();
        while let Some(r) = set.join_next().await {
            order.push(r.unwrap());
        }
        assert_eq!(order, (0..100).rev().collect::<Vec<_>>());
        assert!(set.is_empty());
        assert!(set.join_next().await.is_none());
        assert!(set.try_join_next().is_none());
    });
    assert_eq!(rt.stats().tasks_alive, 0);
}

/// Counts drops of the futures a set holds.
struct DropCount(Rc<Cell<u32>>);
impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn join_set_drop_aborts_and_shutdown_waits() {
    let rt = Runtime::new().unwrap();
    let dropped = Rc::new(Cell::new(0));
    rt.block_on(async {
        let mut set = JoinSet::new();
        for _ in 0..1000 {
            let guard = DropCount(dropped.clone());
            set.spawn(async move {
                let _guard = guard;
                std::future::pending::<()>().await
            });
        }
        yield_now().await; // every task starts and parks
        drop(set);
        yield_now().await; // the aborted tasks are dropped at the next turn
        assert_eq!(dropped.get(), 1000, "dropping the set aborted every task");

        let mut set = JoinSet::new();
        for _ in 0..10 {
            set.spawn(std::future::pending::<()>());
        }
        set.spawn(async {});
        set.shutdown().await;
        assert!(set.is_empty());

        let mut set = JoinSet::new();
        set.spawn(async { yield_now().await });
        set.detach_all();
        assert!(set.is_empty());
        yield_now().await;
        yield_now().await; // the detached task ran to its end
    });
    assert_eq!(rt.stats().tasks_alive, 0);
}

#[test]
fn join_set_abort_all_reports_cancelled() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let mut set = JoinSet::new();
        let ids: Vec<_> = (0..5)
            .map(|_| set.spawn(std::future::pending::<()>()))
            .collect();
        set.abort_all();
        let mut seen = Vec::new();
        while let Some(r) = set.join_next().await {
            let e = r.expect_err("aborted");
            assert!(e.is_cancelled());
            seen.push(e.id());
        }
        seen.sort();
        let mut ids = ids;
        ids.sort();
        assert_eq!(seen, ids, "each error carries its task's id");
    });
}

#[test]
fn task_ids_are_unique_and_visible_inside_the_task() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        assert_eq!(task::try_id(), None, "block_on's future is not a task");
        let handles: Vec<_> = (0..100).map(|_| spawn(async { task::id() })).collect();
        let mut ids = Vec::new();
        for h in handles {
            let id = h.id();
            assert_eq!(h.await.unwrap(), id);
            ids.push(id);
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 100);
        let named = task::Builder::new()
            .name("named")
            .spawn(async { (task::try_name(), task::id()) });
        assert!(format!("{named:?}").contains("named"));
        let id = named.id();
        assert_eq!(named.await.unwrap(), (Some("named".to_string()), id));
        assert_eq!(spawn(async { task::try_name() }).await.unwrap(), None);
    });
    let h = task::Builder::new().name("on").spawn_on(&rt, async { 3 });
    assert_eq!(rt.block_on(h).unwrap(), 3);
}

/// The runtime's prefetch tasks (the `uring-read` engine spawns one per cold run) are counted
/// as internal tasks, not as the program's.
#[test]
fn internal_prefetch_tasks_are_counted_apart() {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tasks-internal-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; 64 * 4096]).unwrap();
    std::fs::File::open(&path).unwrap().sync_all().unwrap();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        // SAFETY: nothing writes or truncates the file while it is mapped.
        let map =
            unsafe { Mapping::open(&path, MapOptions::new().backend(Backend::UringRead)) }.unwrap();
        map.evict_all().unwrap();
        let user = spawn({
            let map = map.clone();
            async move {
                for p in (0..64u64).step_by(8) {
                    let g = map.read(p * 4096..p * 4096 + 1).await.unwrap();
                    assert_eq!(g[0], 7);
                }
            }
        });
        user.await.unwrap();
    });
    let stats = rt.stats();
    assert_eq!(stats.tasks_spawned, 1, "the program spawned one task");
    assert!(
        stats.internal_tasks_spawned >= 1,
        "cold reads spawned prefetch tasks: {stats:?}"
    );
    assert_eq!(stats.tasks_alive, 0);
    assert_eq!(stats.internal_tasks_alive, 0);
    std::fs::remove_file(&path).unwrap();
}
