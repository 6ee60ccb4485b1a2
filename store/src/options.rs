//! [`StoreOptions`] and the limits on keys and values.

use faultless_runtime::mem::Backend;

use crate::error::{Error, Result};

/// Longest key, in bytes (keys are 1 to this many bytes).
pub const MAX_KEY_LEN: usize = 512;
/// Longest value, in bytes.
pub const MAX_VALUE_LEN: usize = 1 << 30;

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub(crate) backend: Backend,
    pub(crate) reserve: u64,
    pub(crate) read_only: bool,
    pub(crate) create: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions::new()
    }
}

impl StoreOptions {
    /// Defaults: the `auto` prefetch path, 64 GiB of address space reserved, read-write,
    /// created if missing.
    pub fn new() -> StoreOptions {
        StoreOptions {
            backend: Backend::Auto,
            reserve: 64 << 30,
            read_only: false,
            create: true,
        }
    }
    /// The prefetch path page reads use.
    pub fn backend(mut self, b: Backend) -> Self {
        self.backend = b;
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

pub(crate) fn check_key(key: &[u8]) -> Result<()> {
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
