//! The blocking facade: a round trip, use from several threads at once, close racing with
//! callers, drops that must not hang (the last handle dropped on a caller's thread and on the
//! store's own thread), calls from inside a job, panics in a job, and errors at open.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::TempPath;
use faultless_store::{blocking, Error, StoreOptions};

fn open(path: &TempPath) -> blocking::Store {
    blocking::Store::open(&path.0, StoreOptions::new()).unwrap()
}

/// Opens `path` again, retrying while a closing store's lock is still held (the store's
/// thread lets go of the file as it ends): fails if it never becomes free.
fn reopen(path: &TempPath) -> blocking::Store {
    for _ in 0..50 {
        match blocking::Store::open(&path.0, StoreOptions::new()) {
            Ok(s) => return s,
            Err(Error::Locked) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("reopen: {e}"),
        }
    }
    panic!("the store's file stayed locked: its thread did not end");
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<blocking::Store>();
}

#[test]
fn round_trip_and_reopen() {
    let path = TempPath::new("blocking-rt");
    let store = open(&path);
    assert!(store.is_empty().unwrap());
    for i in 0..300u64 {
        store.put(&common::key(i), &common::value(i, 100)).unwrap();
    }
    store.put(b"big", &vec![7u8; 20_000]).unwrap();
    store.checkpoint().unwrap();
    assert!(store.delete(&common::key(5)).unwrap());
    assert!(!store.delete(&common::key(5)).unwrap());
    assert_eq!(
        store.get(&common::key(6)).unwrap(),
        Some(common::value(6, 100))
    );
    assert_eq!(store.get(&common::key(5)).unwrap(), None);
    assert_eq!(store.get(b"big").unwrap().unwrap().len(), 20_000);
    assert_eq!(store.len().unwrap(), 300);
    let r = store.range(common::key(3)..common::key(8), 100).unwrap();
    let keys: Vec<_> = r.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, [3, 4, 6, 7].map(common::key));
    let r = store.range_rev(..common::key(8), 3).unwrap();
    let keys: Vec<_> = r.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, [7, 6, 4].map(common::key));
    assert_eq!(store.prefix(b"key-0000001", 1000).unwrap().len(), 10);
    assert_eq!(
        store.prefix(b"key-", 7).unwrap().len(),
        7,
        "the limit holds"
    );
    assert!(store.range(.., 0).unwrap().is_empty());
    // A write transaction through `call`, reading its own range before committing.
    let seen = store
        .call(|s| async move {
            let mut txn = s.write_txn().await?;
            txn.put(b"key-00000005", b"back").await?;
            let mut n = 0;
            let mut r = txn.range(b"key-00000004".to_vec()..=b"key-00000006".to_vec());
            while let Some(e) = futures::StreamExt::next(&mut r).await {
                e?;
                n += 1;
            }
            txn.commit().await?;
            Ok(n)
        })
        .unwrap();
    assert_eq!(seen, 3);
    store.close().unwrap();
    let store = reopen(&path);
    assert_eq!(store.len().unwrap(), 301);
    assert_eq!(
        store.get(b"key-00000005").unwrap().as_deref(),
        Some(&b"back"[..])
    );
    store.close().unwrap();
}

#[test]
fn several_threads_share_one_store() {
    let path = TempPath::new("blocking-threads");
    let store = open(&path);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let store = store.clone();
            s.spawn(move || {
                for i in 0..150u64 {
                    let k = common::key(t * 1000 + i);
                    store.put(&k, &k).unwrap();
                    assert_eq!(store.get(&k).unwrap().as_deref(), Some(&k[..]));
                }
                // Readers see a consistent, ordered snapshot while the others write.
                let r = store.range(.., usize::MAX).unwrap();
                assert!(r.windows(2).all(|w| w[0].0 < w[1].0));
            });
        }
    });
    assert_eq!(store.len().unwrap(), 600);
    assert_eq!(store.range_rev(.., usize::MAX).unwrap().len(), 600);
    drop(store);
    let store = reopen(&path);
    assert_eq!(store.len().unwrap(), 600);
}

#[test]
fn drop_without_close_ends_the_thread_and_keeps_the_data() {
    let path = TempPath::new("blocking-drop");
    let store = open(&path);
    let other = store.clone();
    store.put(b"a", b"1").unwrap();
    drop(store);
    other.put(b"b", b"2").unwrap(); // one handle gone, the store stays open
    drop(other); // the last: closes and joins
                 // Reopening at once works (the lock is free) and nothing was lost.
    let store = blocking::Store::open(&path.0, StoreOptions::new()).unwrap();
    assert_eq!(store.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(store.len().unwrap(), 2);
}

#[test]
fn last_handle_dropped_on_the_stores_own_thread_does_not_hang() {
    let path = TempPath::new("blocking-drop-inside");
    let store = open(&path);
    store.put(b"k", b"v").unwrap();
    let inner = store.clone();
    // The job parks a handle in a task that outlives the call, then drops it on the store's
    // thread after the caller's handle is gone: that drop must not join its own thread.
    store
        .call(move |_| async move {
            faultless_runtime::spawn(async move {
                faultless_runtime::time::sleep(Duration::from_millis(50)).await;
                drop(inner);
            })
            .detach();
            Ok(())
        })
        .unwrap();
    drop(store); // not the last handle: returns at once
    let store = reopen(&path);
    assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn close_racing_with_callers_never_hangs() {
    let path = TempPath::new("blocking-close-race");
    let store = open(&path);
    let ok = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..3u64)
        .map(|t| {
            let store = store.clone();
            let (ok, refused) = (ok.clone(), refused.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    match store.put(&common::key(t * 100_000 + i), b"x") {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotConnected => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(e) => panic!("unexpected error: {e}"),
                    };
                }
            })
        })
        .collect();
    while ok.load(Ordering::Relaxed) < 100 {
        std::thread::sleep(Duration::from_millis(1));
    }
    store.close().unwrap();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(refused.load(Ordering::Relaxed), 3, "every worker was told");
    // Every acknowledged put survived the close.
    let store = reopen(&path);
    assert_eq!(store.len().unwrap(), ok.load(Ordering::Relaxed) as u64);
}

#[test]
fn calls_from_inside_a_job_fail_instead_of_deadlocking() {
    let path = TempPath::new("blocking-reentrant");
    let store = open(&path);
    let handle = store.clone();
    let inner = store
        .call(move |_| async move { Ok(handle.get(b"x")) })
        .unwrap();
    assert!(matches!(inner, Err(Error::BadInput(_))), "{inner:?}");
    store.close().unwrap();
}

#[test]
fn a_panic_in_a_job_reaches_the_caller_and_the_store_lives_on() {
    let path = TempPath::new("blocking-panic");
    let store = open(&path);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.call::<(), _, _>(|_| async { panic!("boom in a job") })
    }));
    let payload = caught.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in a job"));
    store.put(b"after", b"ok").unwrap();
    assert_eq!(store.get(b"after").unwrap().as_deref(), Some(&b"ok"[..]));
    store.close().unwrap();
}

#[test]
fn open_errors_come_back_as_store_errors() {
    let path = TempPath::new("blocking-open-err");
    let store = open(&path);
    // Held by the first store: the second open reports the lock, and leaves no thread.
    assert!(matches!(
        blocking::Store::open(&path.0, StoreOptions::new()),
        Err(Error::Locked)
    ));
    drop(store);
    let missing = TempPath::new("blocking-missing");
    let err = blocking::Store::open(&missing.0, StoreOptions::new().create(false)).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    // Bad input from a blocking call is an error, not a panic.
    let store = reopen(&path);
    assert!(matches!(store.put(b"", b"v"), Err(Error::KeyTooLarge(0))));
}
