//! The `tracing` feature: the runtime's spans and events reach the program's subscriber.
#![cfg(feature = "tracing")]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use faultless_runtime::{spawn, task, Runtime};

/// Counts "poll" spans and "spawn" events.
#[derive(Clone, Default)]
struct Counter(Arc<Counts>);

#[derive(Default)]
struct Counts {
    polls: AtomicUsize,
    spawns: AtomicUsize,
    next: AtomicU64,
}

impl Subscriber for Counter {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        if span.metadata().name() == "poll" {
            self.0.polls.fetch_add(1, Ordering::Relaxed);
        }
        Id::from_u64(self.0.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut spawn = false;
        event.record(&mut |f: &tracing::field::Field, v: &dyn std::fmt::Debug| {
            if f.name() == "message" && format!("{v:?}") == "spawn" {
                spawn = true;
            }
        });
        if spawn {
            self.0.spawns.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn spawns_and_polls_are_traced() {
    let counter = Counter::default();
    tracing::subscriber::with_default(counter.clone(), || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            for i in 0..10 {
                let named = task::Builder::new().name(&format!("t{i}"));
                named.spawn(faultless_runtime::yield_now()).await.unwrap();
            }
            spawn(async {}).await.unwrap();
        });
    });
    assert_eq!(counter.0.spawns.load(Ordering::Relaxed), 11);
    assert!(
        counter.0.polls.load(Ordering::Relaxed) >= 21,
        "each task polled at least once, the yielding ones twice"
    );
}
