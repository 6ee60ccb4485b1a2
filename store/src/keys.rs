//! Key order: byte-wise lexicographic, compared eight bytes at a time.
//!
//! A lookup compares the key with dozens of others (the memtable's ordered map, then a
//! binary search in each page on the way down the tree). `<[u8]>::cmp` calls `memcmp` for
//! each: for the short keys of a typical workload (10-30 bytes, often with a long common
//! prefix such as `user:000000`) the call costs more than the comparison, and it was the
//! largest single item of the server's SET profile (14% of its thread). [`compare`] gives
//! the same order inline, as big-endian 64-bit words. [`MemKey`] is a byte string ordered
//! by it, for ordered maps; [`HeadKey`] also keeps its first word beside the pointer to its
//! bytes, for the memtable (below).
//!
//! In a map of hundreds of thousands of boxed keys, each comparison of a search follows a
//! pointer to a key's bytes, and most of those are cache misses: the memtable's lookups were
//! 15% of the server's SET profile. A [`HeadKey`] carries the key's first eight bytes as a
//! word in the map's node, so a search compares words it already has and follows a pointer
//! only between keys that share those bytes (the server's keys begin with a type byte and a
//! hash, so almost never). A lookup passes a borrowed [`KeyView`] (`&Probe::new(key) as &dyn
//! KeyView`): the map's `Borrow` of its keys, without building an owned key.

use std::cmp::Ordering;

/// Compares two keys byte-wise lexicographically (the order of `<[u8]>::cmp`), eight bytes
/// at a time: whole words from the start, then the last eight bytes of the common length
/// (overlapping the words already found equal), or where a key is shorter than eight bytes,
/// the keys' heads (their first eight bytes, zero-padded).
#[inline]
pub(crate) fn compare(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    if n >= 8 {
        let mut i = 0;
        while i + 8 <= n {
            let (x, y) = (word(&a[i..]), word(&b[i..]));
            if x != y {
                return x.cmp(&y);
            }
            i += 8;
        }
        if i < n {
            let (x, y) = (word(&a[n - 8..]), word(&b[n - 8..]));
            if x != y {
                return x.cmp(&y);
            }
        }
    } else {
        // Heads order like the keys (see `head`); equal heads with a key this short mean
        // one key is the other followed by zeros, which the lengths order.
        let (x, y) = (head(a), head(b));
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

/// The first eight bytes of `s` as a big-endian word.
#[inline(always)]
fn word(s: &[u8]) -> u64 {
    u64::from_be_bytes(s[..8].try_into().expect("eight bytes"))
}

/// A key as an ordered map's key, ordered by [`compare`]: look a `&[u8]` up with
/// [`MemKey::new`].
#[repr(transparent)]
#[derive(PartialEq, Eq, Debug)]
pub(crate) struct MemKey([u8]);

impl MemKey {
    /// `bytes` viewed as a key.
    #[inline]
    pub(crate) fn new(bytes: &[u8]) -> &MemKey {
        // SAFETY: `MemKey` is a `repr(transparent)` wrapper of `[u8]`, so the two unsized
        // types have the same layout and pointer metadata (the length).
        unsafe { &*(bytes as *const [u8] as *const MemKey) }
    }

    /// An owned key holding `bytes`.
    pub(crate) fn boxed(bytes: &[u8]) -> Box<MemKey> {
        let b: Box<[u8]> = bytes.into();
        // SAFETY: as in `new`: the same layout, and the allocation moves from one box to the
        // other unchanged (freed by `Box<MemKey>` with the layout it was allocated with).
        unsafe { Box::from_raw(Box::into_raw(b) as *mut MemKey) }
    }

    /// The key's bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Ord for MemKey {
    #[inline]
    fn cmp(&self, other: &MemKey) -> Ordering {
        compare(&self.0, &other.0)
    }
}

impl PartialOrd for MemKey {
    #[inline]
    fn partial_cmp(&self, other: &MemKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The first eight bytes of `key` as a big-endian word, zero-padded: a key's head. For any
/// keys `a <= b` (byte order), `head(a) <= head(b)`, so ordering by head first and then by
/// the whole key is byte order.
#[inline]
fn head(key: &[u8]) -> u64 {
    if key.len() >= 8 {
        word(key)
    } else {
        let mut w = [0u8; 8];
        w[..key.len()].copy_from_slice(key);
        u64::from_be_bytes(w)
    }
}

/// A key as a map sees it: its head and its bytes. Owned keys ([`HeadKey`]) and borrowed
/// lookups ([`Probe`]) compare through it.
pub(crate) trait KeyView {
    /// The key's first eight bytes as a word (see [`head`]).
    fn head(&self) -> u64;
    /// The key's bytes.
    fn bytes(&self) -> &[u8];
}

impl Ord for dyn KeyView + '_ {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.head()
            .cmp(&other.head())
            .then_with(|| compare(self.bytes(), other.bytes()))
    }
}

impl PartialOrd for dyn KeyView + '_ {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn KeyView + '_ {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for dyn KeyView + '_ {}

/// An owned key with its head beside it, for large ordered maps (the memtable).
#[derive(Debug)]
pub(crate) struct HeadKey {
    head: u64,
    bytes: Box<[u8]>,
}

impl HeadKey {
    /// An owned key holding `bytes`.
    pub(crate) fn new(bytes: &[u8]) -> HeadKey {
        HeadKey {
            head: head(bytes),
            bytes: bytes.into(),
        }
    }

    /// The key's bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl KeyView for HeadKey {
    #[inline]
    fn head(&self) -> u64 {
        self.head
    }
    #[inline]
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl Ord for HeadKey {
    #[inline]
    fn cmp(&self, other: &HeadKey) -> Ordering {
        (self as &dyn KeyView).cmp(other as &dyn KeyView)
    }
}

impl PartialOrd for HeadKey {
    #[inline]
    fn partial_cmp(&self, other: &HeadKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for HeadKey {
    #[inline]
    fn eq(&self, other: &HeadKey) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for HeadKey {}

impl<'a> std::borrow::Borrow<dyn KeyView + 'a> for HeadKey {
    #[inline]
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

/// A borrowed key to look a [`HeadKey`] map up with: `map.get(&Probe::new(k) as &dyn KeyView)`.
pub(crate) struct Probe<'a> {
    head: u64,
    bytes: &'a [u8],
}

impl<'a> Probe<'a> {
    /// `bytes` as a lookup key.
    #[inline]
    pub(crate) fn new(bytes: &'a [u8]) -> Probe<'a> {
        Probe {
            head: head(bytes),
            bytes,
        }
    }
}

impl KeyView for Probe<'_> {
    #[inline]
    fn head(&self) -> u64 {
        self.head
    }
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn compare_orders_like_slices(a in proptest::collection::vec(0u8..4, 0..40),
                                      b in proptest::collection::vec(0u8..4, 0..40),
                                      prefix in proptest::collection::vec(any::<u8>(), 0..20)) {
            let (a, b) = ([&prefix[..], &a].concat(), [&prefix[..], &b].concat());
            prop_assert_eq!(compare(&a, &b), a.as_slice().cmp(b.as_slice()));
            prop_assert_eq!(MemKey::new(&a).cmp(MemKey::new(&b)), a.cmp(&b));
            prop_assert_eq!(HeadKey::new(&a).cmp(&HeadKey::new(&b)), a.cmp(&b));
            let (pa, pb) = (Probe::new(&a), Probe::new(&b));
            prop_assert_eq!((&pa as &dyn KeyView).cmp(&pb as &dyn KeyView), a.cmp(&b));
            prop_assert_eq!(
                (&HeadKey::new(&a) as &dyn KeyView).cmp(&pb as &dyn KeyView),
                a.cmp(&b)
            );
        }
    }

    #[test]
    fn boxed_keys_keep_their_bytes() {
        let k = MemKey::boxed(b"user:0000001");
        assert_eq!(k.bytes(), b"user:0000001");
        assert_eq!(compare(b"abcdefgh1", b"abcdefgh"), Ordering::Greater);
        assert_eq!(compare(b"", b""), Ordering::Equal);
    }
}
