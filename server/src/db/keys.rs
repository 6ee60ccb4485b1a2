//! How the server's data is laid out in the store's one ordered keyspace: every store key
//! starts with a byte naming its region.
//!
//! | region | store key | value |
//! |---|---|---|
//! | meta | `00 "meta"` | the server's record: format, key and expiry counts, next container id |
//! | keys | `01` hash(key) key | a value header, then the string, or a container's metadata |
//! | items | `02` id hash(field) field | a hash field's value, or empty for a set member |
//! | list items | `02` id position | a list element |
//! | expiries | `03` when-ms hash(key) key | empty: the index active expiry walks in time order |
//! | garbage | `04` id | empty: a deleted container whose items are still to be removed |
//!
//! Keys are ordered by a 64-bit hash first ([`hash`], SipHash-1-3 with fixed keys), then by
//! the key itself. That order is what makes SCAN's 64-bit cursors possible: a cursor is the
//! hash to resume at, and a key present for the whole scan is returned exactly when the scan
//! passes its hash (SCAN never stops between two keys of one hash). Hash fields and set
//! members are ordered the same way inside their container, for HSCAN/SSCAN.
//!
//! Containers (hashes, sets, lists) are named by an id that is never reused, not by their key:
//! deleting, overwriting or expiring one is O(1) (its items are left for the garbage
//! collector, and are invisible because nothing refers to the id any more), and RENAME moves
//! only the key's record.

use std::hash::Hasher;

use faultless_store::MAX_KEY_LEN;
use siphasher::sip::SipHasher13;

/// The server's record in the store.
pub(crate) const META: &[u8] = b"\x00meta";
/// Region of keys.
pub(crate) const TOP: u8 = 1;
/// Region of container items.
pub(crate) const ITEM: u8 = 2;
/// Region of the expiry index.
pub(crate) const EXPIRY: u8 = 3;
/// Region of containers waiting for the garbage collector.
pub(crate) const GARBAGE: u8 = 4;

/// Longest key the server keeps, in bytes: the store's key limit less the expiry index's
/// prefix (region, time, hash). The empty key is a valid key.
pub const MAX_KEY: usize = MAX_KEY_LEN - 17;
/// Longest hash field or set member, in bytes (the store's limit less region, id, hash).
pub const MAX_FIELD: usize = MAX_KEY_LEN - 17;

/// The 64-bit hash that orders keys and fields. Fixed for the life of a store file: it is
/// part of the format.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(0x6661_756c_746c_6573, 0x7365_7276_6572_2121);
    h.write(bytes);
    h.finish()
}

/// The store key of `key`'s record.
pub(crate) fn top(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.push(TOP);
    k.extend_from_slice(&hash(key).to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Writes the store key of `key`'s record into `out`, which must hold `9 + key.len()` bytes
/// (a stack buffer on the GET path).
pub(crate) fn top_into(out: &mut [u8], key: &[u8]) {
    out[0] = TOP;
    out[1..9].copy_from_slice(&hash(key).to_be_bytes());
    out[9..9 + key.len()].copy_from_slice(key);
}

/// Where keys of hash `h` and above start.
pub(crate) fn top_at(h: u64) -> Vec<u8> {
    let mut k = vec![TOP];
    k.extend_from_slice(&h.to_be_bytes());
    k
}

/// The end (exclusive) of the keys region.
pub(crate) fn top_end() -> Vec<u8> {
    vec![TOP + 1]
}

/// A key record's store key, split: (hash, key). `None` if it is not one.
pub(crate) fn decode_top(skey: &[u8]) -> Option<(u64, &[u8])> {
    if skey.len() < 9 || skey[0] != TOP {
        return None;
    }
    Some((u64::from_be_bytes(skey[1..9].try_into().ok()?), &skey[9..]))
}

/// The store key of field `field` of container `id` (hashes and sets).
pub(crate) fn item(id: u64, field: &[u8]) -> Vec<u8> {
    let mut k = item_at(id, hash(field));
    k.extend_from_slice(field);
    k
}

/// Where the items of container `id` whose field hash is `h` or more start.
pub(crate) fn item_at(id: u64, h: u64) -> Vec<u8> {
    let mut k = items_start(id);
    k.extend_from_slice(&h.to_be_bytes());
    k
}

/// Where the items of container `id` start.
pub(crate) fn items_start(id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(ITEM);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Where the items of container `id` end (exclusive).
pub(crate) fn items_end(id: u64) -> Vec<u8> {
    items_start(id.saturating_add(1))
}

/// An item's store key, split: (field hash, field). `None` if it is not one.
pub(crate) fn decode_item(skey: &[u8]) -> Option<(u64, &[u8])> {
    if skey.len() < 17 || skey[0] != ITEM {
        return None;
    }
    Some((
        u64::from_be_bytes(skey[9..17].try_into().ok()?),
        &skey[17..],
    ))
}

/// The store key of list element at `position` of list `id` (positions are ordered as
/// signed numbers).
pub(crate) fn list_item(id: u64, position: i64) -> Vec<u8> {
    let mut k = items_start(id);
    k.extend_from_slice(&((position as u64) ^ (1 << 63)).to_be_bytes());
    k
}

/// The expiry index entry of `key` expiring at `when` (ms since the epoch).
pub(crate) fn expiry(when: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(17 + key.len());
    k.push(EXPIRY);
    k.extend_from_slice(&when.to_be_bytes());
    k.extend_from_slice(&hash(key).to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Where index entries of times `when` and later start.
pub(crate) fn expiry_at(when: u64) -> Vec<u8> {
    let mut k = vec![EXPIRY];
    k.extend_from_slice(&when.to_be_bytes());
    k
}

/// An expiry index entry, split: (when, the key). `None` if it is not one.
pub(crate) fn decode_expiry(skey: &[u8]) -> Option<(u64, &[u8])> {
    if skey.len() < 17 || skey[0] != EXPIRY {
        return None;
    }
    Some((u64::from_be_bytes(skey[1..9].try_into().ok()?), &skey[17..]))
}

/// The garbage record of container `id`.
pub(crate) fn garbage(id: u64) -> Vec<u8> {
    let mut k = vec![GARBAGE];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// A garbage record's container id.
pub(crate) fn decode_garbage(skey: &[u8]) -> Option<u64> {
    if skey.len() != 9 || skey[0] != GARBAGE {
        return None;
    }
    Some(u64::from_be_bytes(skey[1..9].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_keys_round_trip_and_stay_in_their_regions() {
        for key in [&b""[..], b"a", b"session:123", &[0xff; MAX_KEY]] {
            let t = top(key);
            assert!(t.len() <= MAX_KEY_LEN);
            assert_eq!(decode_top(&t), Some((hash(key), key)));
            let mut buf = vec![0; 9 + key.len()];
            top_into(&mut buf, key);
            assert_eq!(buf, t);
            assert!(t >= top_at(0) && t < top_end());
            let e = expiry(u64::MAX, key);
            assert!(e.len() <= MAX_KEY_LEN);
            assert_eq!(decode_expiry(&e), Some((u64::MAX, key)));
            let i = item(7, key);
            assert!(i.len() <= MAX_KEY_LEN);
            assert_eq!(decode_item(&i), Some((hash(key), key)));
            assert!(i >= items_start(7) && i < items_end(7));
        }
        assert!(list_item(1, -5) < list_item(1, 0) && list_item(1, 0) < list_item(1, 3));
        assert_eq!(decode_garbage(&garbage(42)), Some(42));
        // The hash is part of the format: it must never change.
        assert_eq!(hash(b"abc"), hash(b"abc"));
        assert_ne!(hash(b"abc"), hash(b"abd"));
    }

    #[test]
    fn expiry_index_is_in_time_order() {
        assert!(expiry(5, b"zzz") < expiry(6, b"aaa"));
        assert!(expiry(6, b"aaa") < expiry_at(7));
    }
}
