//! Where named tables live in the one keyspace: the reserved prefix, the key of an entry of
//! a table, the catalog's keys, and the default keyspace's ranges cut around the reserved
//! region.
//!
//! Every key that begins with [`RESERVED_PREFIX`] belongs to the tables; no other key does.
//! An entry of table `id` is stored under `RESERVED_PREFIX ++ id (u32, big-endian) ++ user
//! key`, so a table's entries are one contiguous run of the tree, in the order of their user
//! keys, and a range over a table is one range of the tree bounded by the table's prefix.
//! The catalog is table id [`CATALOG_ID`] (`name -> id`), and the next id to hand out is
//! kept under table id [`COUNTER_ID`] with no user key.

use std::ops::Bound;

use crate::error::{Error, Result};
use crate::options::MAX_KEY_LEN;
use crate::range::{is_empty, prefix_bounds};

/// The first bytes of every key that belongs to the named tables (`0xFF 0xFF "tbl"`). Keys
/// of the default keyspace may not begin with them: writes of such keys fail with
/// [`Error::BadInput`], and the default keyspace's ranges skip the region.
pub const RESERVED_PREFIX: &[u8] = b"\xFF\xFFtbl";

/// Bytes before a table's user key: the reserved prefix and the table's id.
pub(crate) const TABLE_KEY_OVERHEAD: usize = RESERVED_PREFIX.len() + 4;

/// The longest key inside a named table: the store's [`MAX_KEY_LEN`] less the reserved
/// prefix and the table's id (512 - 9 = 503 bytes).
pub const MAX_TABLE_KEY_LEN: usize = MAX_KEY_LEN - TABLE_KEY_OVERHEAD;

/// The longest name of a named table, in bytes (names are 1 to 64 bytes of UTF-8).
pub const MAX_TABLE_NAME_LEN: usize = 64;

/// The catalog's table id: its entries are `name -> id (u32, big-endian)`.
pub(crate) const CATALOG_ID: u32 = u32::MAX;
/// The id under which (with no user key) the next table id is kept (u32, big-endian).
pub(crate) const COUNTER_ID: u32 = u32::MAX - 1;
/// The largest id a table can have.
pub(crate) const MAX_TABLE_ID: u32 = u32::MAX - 2;

/// The prefix of every key of table `id`.
pub(crate) fn table_prefix(id: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(TABLE_KEY_OVERHEAD + 16);
    p.extend_from_slice(RESERVED_PREFIX);
    p.extend_from_slice(&id.to_be_bytes());
    p
}

/// The store key of `key` in table `id`.
pub(crate) fn table_key(id: u32, key: &[u8]) -> Vec<u8> {
    let mut k = table_prefix(id);
    k.extend_from_slice(key);
    k
}

/// The store key of the catalog entry of `name`.
pub(crate) fn catalog_key(name: &str) -> Vec<u8> {
    table_key(CATALOG_ID, name.as_bytes())
}

/// The store key of the next-id counter.
pub(crate) fn counter_key() -> Vec<u8> {
    table_prefix(COUNTER_ID)
}

/// Fails unless `key` may be a key inside a table (1 to [`MAX_TABLE_KEY_LEN`] bytes).
pub(crate) fn check_table_key(key: &[u8]) -> Result<()> {
    if key.is_empty() || key.len() > MAX_TABLE_KEY_LEN {
        return Err(Error::BadInput(format!(
            "table key of {} bytes: keys in a named table must be 1 to {MAX_TABLE_KEY_LEN} bytes",
            key.len()
        )));
    }
    Ok(())
}

/// Fails unless `name` may name a table (1 to [`MAX_TABLE_NAME_LEN`] bytes).
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_TABLE_NAME_LEN {
        return Err(Error::BadInput(format!(
            "table name of {} bytes: names must be 1 to {MAX_TABLE_NAME_LEN} bytes",
            name.len()
        )));
    }
    Ok(())
}

/// True if `key` lies in the tables' reserved region.
pub(crate) fn is_reserved(key: &[u8]) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

/// Fails if `key` lies in the tables' reserved region (for the default keyspace's API).
pub(crate) fn check_unreserved(key: &[u8]) -> Result<()> {
    if is_reserved(key) {
        return Err(Error::BadInput(format!(
            "keys beginning with {RESERVED_PREFIX:02X?} are reserved for named tables \
             (use the table API)"
        )));
    }
    Ok(())
}

/// A range of store keys: its start and end bounds.
pub(crate) type KeyBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The store's bounds of the user-key bounds `start..end` inside table `id`.
pub(crate) fn table_bounds(id: u32, start: Bound<&[u8]>, end: Bound<&[u8]>) -> KeyBounds {
    let (whole_start, whole_end) = prefix_bounds(&table_prefix(id));
    let start = match start {
        Bound::Included(k) => Bound::Included(table_key(id, k)),
        Bound::Excluded(k) => Bound::Excluded(table_key(id, k)),
        Bound::Unbounded => whole_start,
    };
    let end = match end {
        Bound::Included(k) => Bound::Included(table_key(id, k)),
        Bound::Excluded(k) => Bound::Excluded(table_key(id, k)),
        Bound::Unbounded => whole_end,
    };
    (start, end)
}

/// The store's bounds of the keys beginning with `prefix` inside table `id`.
pub(crate) fn table_prefix_bounds(id: u32, prefix: &[u8]) -> KeyBounds {
    prefix_bounds(&table_key(id, prefix))
}

/// A range of the default keyspace cut around the reserved region: at most two ranges of
/// the store, in ascending order, that together hold the keys of `start..end` that are not
/// in the reserved region (none of them empty).
pub(crate) fn default_pieces(start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> Vec<KeyBounds> {
    let (_, reserved_end) = prefix_bounds(RESERVED_PREFIX);
    let Bound::Excluded(reserved_end) = reserved_end else {
        unreachable!("the reserved prefix does not end in 0xFF");
    };
    // Below the region: `end` capped at (excluded) the prefix.
    let below_end = match &end {
        Bound::Included(e) | Bound::Excluded(e) if e.as_slice() < RESERVED_PREFIX => end.clone(),
        _ => Bound::Excluded(RESERVED_PREFIX.to_vec()),
    };
    // Above the region: `start` raised to the first key past it.
    let above_start = match &start {
        Bound::Included(s) | Bound::Excluded(s) if *s >= reserved_end => start.clone(),
        _ => Bound::Included(reserved_end),
    };
    [(start, below_end), (above_start, end)]
        .into_iter()
        .filter(|(s, e)| !is_empty(crate::range::as_ref(s), crate::range::as_ref(e)))
        .collect()
}

/// The default keyspace's entries in `start..end`: `stream` over each piece of
/// [`default_pieces`] (in the direction of `reverse`), chained.
pub(crate) fn default_stream(
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    reverse: bool,
    mut stream: impl FnMut(Bound<Vec<u8>>, Bound<Vec<u8>>) -> crate::RangeStream,
) -> crate::RangeStream {
    use futures::StreamExt;
    let mut pieces = default_pieces(start, end);
    if reverse {
        pieces.reverse();
    }
    let mut streams = pieces.into_iter().map(|(s, e)| stream(s, e));
    match (streams.next(), streams.next()) {
        (Some(first), Some(second)) => Box::pin(first.chain(second)),
        (Some(only), None) => only,
        _ => Box::pin(futures::stream::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(pieces: &[KeyBounds], key: &[u8]) -> bool {
        use std::ops::RangeBounds;
        pieces
            .iter()
            .any(|(s, e)| (s.clone(), e.clone()).contains(&key.to_vec()))
    }

    #[test]
    fn default_pieces_skip_exactly_the_reserved_region() {
        let probes: Vec<Vec<u8>> = vec![
            vec![0x00],
            b"a".to_vec(),
            vec![0xFF],
            vec![0xFF, 0xFF],
            vec![0xFF, 0xFF, b't', b'b'],
            RESERVED_PREFIX.to_vec(),
            table_key(0, b"x"),
            table_key(CATALOG_ID, b"name"),
            vec![0xFF, 0xFF, b't', b'b', b'm'],
            vec![0xFF, 0xFF, 0xFF],
        ];
        let bounds = [
            (Bound::Unbounded, Bound::Unbounded),
            (Bound::Included(vec![0xFF]), Bound::Unbounded),
            (Bound::Unbounded, Bound::Included(table_key(3, b"z"))),
            (Bound::Excluded(table_key(3, b"z")), Bound::Unbounded),
            (Bound::Included(vec![0x01]), Bound::Excluded(vec![0x02])),
        ];
        for (s, e) in bounds {
            let pieces = default_pieces(s.clone(), e.clone());
            for k in &probes {
                use std::ops::RangeBounds;
                let want = (s.clone(), e.clone()).contains(k) && !is_reserved(k);
                assert_eq!(covers(&pieces, k), want, "{k:02X?} in {s:?}..{e:?}");
            }
        }
    }

    #[test]
    fn a_table_prefix_never_reaches_the_next_table() {
        for id in [0u32, 0xFF, 0xFFFF, MAX_TABLE_ID] {
            let (s, e) = table_prefix_bounds(id, &[0xFF, 0xFF]);
            use std::ops::RangeBounds;
            let r = (s, e);
            assert!(r.contains(&table_key(id, &[0xFF, 0xFF, 0x00])));
            assert!(!r.contains(&table_key(id + 1, b"")));
            assert!(!r.contains(&table_key(id + 1, &[0x00])));
        }
    }
}
