//! WATCH: which clients watch which keys, and marking them when a key changes.
//!
//! Every write the committer applies calls [`Watches::touch`] for the keys it changes
//! (deletions by expiry included), which marks every client watching one of them; EXEC of a
//! marked client aborts. A key that expires between WATCH and EXEC also aborts it, as in
//! Redis: the watcher remembers the key's expiry time as WATCH saw it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// One client's watch: its keys and whether one of them changed.
#[derive(Default)]
pub(crate) struct WatchState {
    pub(crate) dirty: Cell<bool>,
    /// The watched keys, each with its expiry time when it was watched (if it had one).
    pub(crate) keys: RefCell<Vec<(Vec<u8>, Option<u64>)>>,
}

impl WatchState {
    /// True if EXEC must abort at `now`: a watched key changed, or expired since WATCH.
    pub(crate) fn aborts(&self, now: u64) -> bool {
        self.dirty.get()
            || self
                .keys
                .borrow()
                .iter()
                .any(|(_, t)| t.is_some_and(|t| t <= now))
    }
}

/// Every client's watches, by key.
#[derive(Default)]
pub(crate) struct Watches {
    map: RefCell<HashMap<Vec<u8>, Vec<Rc<WatchState>>>>,
}

impl Watches {
    /// `state` watches `key`, whose expiry time is `expire`.
    pub(crate) fn watch(&self, state: &Rc<WatchState>, key: &[u8], expire: Option<u64>) {
        let mut keys = state.keys.borrow_mut();
        if keys.iter().any(|(k, _)| k == key) {
            return;
        }
        keys.push((key.to_vec(), expire));
        self.map
            .borrow_mut()
            .entry(key.to_vec())
            .or_default()
            .push(state.clone());
    }

    /// `state` watches nothing any more (UNWATCH, EXEC, DISCARD, disconnection).
    pub(crate) fn unwatch(&self, state: &Rc<WatchState>) {
        let keys = std::mem::take(&mut *state.keys.borrow_mut());
        let mut map = self.map.borrow_mut();
        for (k, _) in keys {
            if let Some(list) = map.get_mut(&k) {
                list.retain(|s| !Rc::ptr_eq(s, state));
                if list.is_empty() {
                    map.remove(&k);
                }
            }
        }
        state.dirty.set(false);
    }

    /// `key` changed: every client watching it is marked.
    pub(crate) fn touch(&self, key: &[u8]) {
        let map = self.map.borrow();
        if map.is_empty() {
            return;
        }
        if let Some(list) = map.get(key) {
            list.iter().for_each(|s| s.dirty.set(true));
        }
    }

    /// Every key changed (FLUSHDB): every watching client is marked.
    pub(crate) fn touch_all(&self) {
        for list in self.map.borrow().values() {
            list.iter().for_each(|s| s.dirty.set(true));
        }
    }

    /// Keys watched, by all clients together (INFO `watching_clients` and friends).
    pub(crate) fn keys(&self) -> usize {
        self.map.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_marks_only_watchers_of_the_key() {
        let w = Watches::default();
        let a = Rc::new(WatchState::default());
        let b = Rc::new(WatchState::default());
        w.watch(&a, b"x", None);
        w.watch(&b, b"y", Some(100));
        w.touch(b"x");
        assert!(a.aborts(0) && !b.aborts(0));
        assert!(b.aborts(100), "expired since WATCH");
        w.unwatch(&a);
        assert!(!a.aborts(0) && a.keys.borrow().is_empty());
        w.touch(b"x");
        assert!(!a.aborts(0));
        w.touch_all();
        assert!(b.dirty.get());
        w.unwatch(&b);
        assert_eq!(w.keys(), 0);
    }
}
