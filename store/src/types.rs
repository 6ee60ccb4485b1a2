//! Newtypes for the two numbers the store passes around most: page numbers and
//! transaction ids. Both are `u64` on disk; in memory they cannot be mixed up.

use std::fmt;

/// The number of a page: page `n` starts at byte `n * page_size` of the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageNo(pub u64);

/// The id of a commit. Commit `n` writes meta slot `n % 2`; 0 is a new store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxId(pub u64);

impl PageNo {
    /// "No page": the root of an empty tree. Page 0 is a meta page, never a tree page.
    pub const NONE: PageNo = PageNo(0);

    /// The page `n` pages after this one.
    pub fn plus(self, n: u64) -> PageNo {
        PageNo(self.0 + n)
    }
}

impl fmt::Display for PageNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TxId {
    /// The commit after this one.
    pub fn next(self) -> TxId {
        TxId(self.0 + 1)
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<PageNo> for Option<u64> {
    fn from(p: PageNo) -> Option<u64> {
        Some(p.0)
    }
}
