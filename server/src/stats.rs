//! Counters the server keeps about itself, shown by INFO.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// The server's own counters (the store and the runtime keep theirs).
#[derive(Default)]
pub(crate) struct Stats {
    /// Connections being served.
    pub(crate) connected: Cell<u64>,
    /// Connections accepted since start.
    pub(crate) accepted: Cell<u64>,
    /// Connections turned away with the max-clients error.
    pub(crate) rejected_connections: Cell<u64>,
    /// Connections closed for being idle longer than `--timeout`.
    pub(crate) idle_timeouts: Cell<u64>,
    /// Times a connection yielded to the loop in the middle of its work (see `work`).
    pub(crate) work_yields: Cell<u64>,
    /// Lookups started ahead of their GET because an earlier GET of the pipeline waited
    /// for cold pages (see `connection::lookahead`).
    pub(crate) read_ahead_lookups: Cell<u64>,
    /// Keys deleted because their time came.
    pub(crate) expired_keys: Cell<u64>,
    /// Commits by the committer, and the jobs they carried.
    pub(crate) commits: Cell<u64>,
    pub(crate) grouped_jobs: Cell<u64>,
    /// Commands processed.
    pub(crate) commands: Cell<u64>,
    /// Per command (by table index): calls, microseconds, rejected, failed.
    pub(crate) per_command: RefCell<Vec<CommandStat>>,
    /// Error replies, by their first word (ERR, WRONGTYPE...).
    pub(crate) errors: RefCell<BTreeMap<String, u64>>,
    /// Keyspace lookups of data commands that found / did not find the key.
    pub(crate) keyspace_hits: Cell<u64>,
    pub(crate) keyspace_misses: Cell<u64>,
}

/// One command's counters (INFO commandstats).
#[derive(Default, Clone, Copy)]
pub(crate) struct CommandStat {
    pub(crate) calls: u64,
    pub(crate) usec: u64,
    pub(crate) rejected: u64,
    pub(crate) failed: u64,
}

impl Stats {
    /// Counts a call of command `index` that took `usec` and answered `reply`; `rejected` if
    /// it was refused before running (arity, authentication, a queued-command error).
    pub(crate) fn count(&self, index: usize, usec: u64, error: Option<&str>, rejected: bool) {
        bump(&self.commands);
        let mut all = self.per_command.borrow_mut();
        if all.len() <= index {
            all.resize(index + 1, CommandStat::default());
        }
        let s = &mut all[index];
        if rejected {
            s.rejected += 1;
        } else {
            s.calls += 1;
            s.usec += usec;
            if error.is_some() {
                s.failed += 1;
            }
        }
        drop(all);
        if let Some(e) = error {
            self.error(e);
        }
    }

    /// Counts an error reply.
    pub(crate) fn error(&self, text: &str) {
        let code = text.split(' ').next().unwrap_or("ERR");
        *self
            .errors
            .borrow_mut()
            .entry(code.to_string())
            .or_default() += 1;
    }
}

/// Adds one to a counter.
pub(crate) fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}
