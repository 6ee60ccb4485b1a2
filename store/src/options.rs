//! [`StoreOptions`], [`Durability`], and the limits on keys and values.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use faultless_runtime::mem::{Backend, ResidencyMode};

use crate::error::{Error, Result};

/// Longest key, in bytes (keys are 1 to this many bytes).
pub const MAX_KEY_LEN: usize = 512;
/// Longest value, in bytes.
pub const MAX_VALUE_LEN: usize = 1 << 30;

/// When a commit's log record reaches stable storage: the levels Redis users know as
/// `appendfsync always|everysec|no`. Parse one from those words with [`str::parse`]; its
/// [`Display`](fmt::Display) writes the same word.
///
/// Whatever the level, a commit is visible to readers once its record is written, the log
/// is never left corrupt by a crash (a record that did not reach the disk whole is cut off
/// at recovery, with everything after it), and checkpoints sync the data file before they
/// drop any of the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// A commit returns once its record is on stable storage (the record is written with
    /// `O_DSYNC`, many commits per write: group commit). The default.
    #[default]
    Always,
    /// A commit returns once its record is written to the log file (the page cache); a
    /// background timer syncs the log about once a second, so a machine crash loses at most
    /// about the last second of acknowledged commits. A process crash loses none.
    EverySec,
    /// A commit returns once its record is written to the log file; the OS decides when it
    /// reaches the disk (checkpoints still sync the data file, so at most the commits since
    /// the last checkpoint are at risk from a machine crash).
    No,
}

impl Durability {
    /// The word for this level: `always`, `everysec` or `no`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Always => "always",
            Durability::EverySec => "everysec",
            Durability::No => "no",
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Durability {
    type Err = Error;
    /// Parses `always`, `everysec` or `no` (ASCII case-insensitive, as Redis does).
    fn from_str(s: &str) -> Result<Durability> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Ok(Durability::Always),
            "everysec" => Ok(Durability::EverySec),
            "no" => Ok(Durability::No),
            _ => Err(Error::BadInput(format!(
                "durability must be always, everysec or no, not {s:?}"
            ))),
        }
    }
}

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub(crate) backend: Backend,
    pub(crate) reserve: u64,
    pub(crate) read_only: bool,
    pub(crate) create: bool,
    pub(crate) durability: Durability,
    pub(crate) checkpoint_interval: Duration,
    pub(crate) checkpoint_log_bytes: u64,
    pub(crate) memtable_bytes: u64,
    pub(crate) residency: ResidencyMode,
    pub(crate) resident_budget: Option<u64>,
    pub(crate) page_in_nice: Option<i32>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions::new()
    }
}

impl StoreOptions {
    /// Defaults: the `auto` prefetch path, 64 GiB of address space reserved, read-write,
    /// created if missing, [`Durability::Always`], a checkpoint at least every 3 seconds
    /// while there are writes, or after 32 MiB of log, or 256 MiB of recent writes in memory.
    pub fn new() -> StoreOptions {
        StoreOptions {
            backend: Backend::Auto,
            reserve: 64 << 30,
            read_only: false,
            create: true,
            durability: Durability::Always,
            checkpoint_interval: Duration::from_secs(3),
            checkpoint_log_bytes: 32 << 20,
            memtable_bytes: 256 << 20,
            residency: ResidencyMode::Auto,
            resident_budget: None,
            page_in_nice: None,
        }
    }
    /// When a commit's log record must be on stable storage before the commit returns; see
    /// [`Durability`]. It can be changed on an open store with
    /// [`Store::set_durability`](crate::Store::set_durability).
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }
    /// The longest a commit's changes stay only in the log (and in memory) before a
    /// checkpoint writes them into the tree (default 3 s). A crash replays the log written
    /// since the last checkpoint, so this and [`checkpoint_log_bytes`](Self::checkpoint_log_bytes)
    /// bound the replay at reopen: about this long, or that many bytes, plus the checkpoint
    /// in progress, of writes (replaying is in-memory work: 305,088 commits, 36 MB of log,
    /// in 308 ms measured). Longer intervals make checkpoints cheaper per commit when writes
    /// are spread over a large store (more changed keys per rewritten leaf: at 64 random
    /// writers on 1,000,000 keys, 1 s gave ~40% more puts/s than 500 ms, and 3 s 1.4x-1.6x
    /// more than 1 s, checkpoints included; see `docs/results.md`), at the cost of memory
    /// for the recent writes and a longer replay.
    /// `Duration::MAX` leaves checkpoints to the size limits and
    /// [`Store::checkpoint`](crate::Store::checkpoint).
    pub fn checkpoint_interval(mut self, d: Duration) -> Self {
        self.checkpoint_interval = d;
        self
    }
    /// Bytes of log since the last checkpoint that start the next one at once (default
    /// 32 MiB: with the checkpoint in progress, a replay of at most ~64 MiB, well under a
    /// second).
    pub fn checkpoint_log_bytes(mut self, bytes: u64) -> Self {
        self.checkpoint_log_bytes = bytes.max(1);
        self
    }
    /// Bytes of recent writes held in memory (keys and values not yet checkpointed) that
    /// start a checkpoint at once (default 256 MiB). At twice this, writers wait for the
    /// checkpoint in progress, so memory stays bounded when writes outrun checkpoints.
    pub fn memtable_bytes(mut self, bytes: u64) -> Self {
        self.memtable_bytes = bytes.max(1);
        self
    }
    /// The prefetch path page reads use.
    pub fn backend(mut self, b: Backend) -> Self {
        self.backend = b;
        self
    }
    /// How the mapping keeps its residency record true when the kernel reclaims pages
    /// (default [`ResidencyMode::Auto`]: pinned where the process may lock memory, else
    /// scrubbed). See `docs/faults.md`.
    pub fn residency(mut self, mode: ResidencyMode) -> Self {
        self.residency = mode;
        self
    }
    /// Pinned residency: the most bytes of the file kept pinned (default: half of what the
    /// process could take at open).
    pub fn resident_budget(mut self, bytes: u64) -> Self {
        self.resident_budget = Some(bytes);
        self
    }
    /// The nice value of the mapping's page-in threads (default
    /// [`PAGE_IN_NICE`](faultless_runtime::mem::PAGE_IN_NICE), the lowest priority; see
    /// [`MapOptions::page_in_nice`](faultless_runtime::mem::MapOptions::page_in_nice)).
    pub fn page_in_nice(mut self, nice: i32) -> Self {
        self.page_in_nice = Some(nice);
        self
    }
    /// Address space reserved for the mapping: the file grows up to this size without a
    /// remap, and past it only by reopening.
    pub fn reserve(mut self, bytes: u64) -> Self {
        self.reserve = bytes;
        self
    }
    /// Open without the write lock; writes fail with `Error::ReadOnly`.
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }
    /// Create the store if it does not exist (default true).
    pub fn create(mut self, on: bool) -> Self {
        self.create = on;
        self
    }
}

/// Fails unless `key` may be a key of the default keyspace: 1 to [`MAX_KEY_LEN`] bytes,
/// outside the named tables' reserved region.
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    check_raw_key(key)?;
    crate::table::layout::check_unreserved(key)
}

/// Fails unless `key` may be a key of the store (1 to [`MAX_KEY_LEN`] bytes).
pub(crate) fn check_raw_key(key: &[u8]) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::KeyTooLarge(key.len()));
    }
    Ok(())
}

pub(crate) fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::ValueTooLarge(value.len()));
    }
    Ok(())
}
