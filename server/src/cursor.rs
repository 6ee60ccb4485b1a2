//! SCAN cursors: the last key returned, written as a decimal number so that clients that
//! check a cursor is digits accept it. `"0"` starts (and ends) a scan.
//!
//! A cursor is `1` followed by each byte of the key as three decimal digits (`000` to `255`):
//! `"abc"` resumes after key `abc` as `1097098099`. Encoding and decoding are linear in the
//! key's length, and a cursor longer than the longest key can produce
//! ([`MAX_CURSOR_LEN`]) is refused before any work is done, with Redis's `ERR invalid
//! cursor`. (Before this encoding, a cursor was the key read as one base-256 number and
//! converted to base 10, which is quadratic: a 300,000-digit cursor took 26 s to refuse.)
//!
//! Everything about the cursor's encoding lives here, so that another design (cursors that
//! fit in 64 bits, as most clients expect) replaces this module alone.

use faultless_store::MAX_KEY_LEN;

/// The longest cursor [`encode`] produces: for a key of the store's maximum length.
pub const MAX_CURSOR_LEN: usize = 1 + 3 * MAX_KEY_LEN;

/// A cursor that [`encode`] cannot have produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCursor;

impl std::fmt::Display for InvalidCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid cursor")
    }
}

/// The cursor that resumes a scan after `key`.
pub fn encode(key: &[u8]) -> String {
    let mut out = String::with_capacity(1 + 3 * key.len());
    out.push('1');
    for &b in key {
        out.push((b'0' + b / 100) as char);
        out.push((b'0' + b / 10 % 10) as char);
        out.push((b'0' + b % 10) as char);
    }
    out
}

/// Where a cursor resumes: `None` for `"0"` (the start), else after the key it names.
pub fn decode(cursor: &[u8]) -> Result<Option<Vec<u8>>, InvalidCursor> {
    if cursor == b"0" {
        return Ok(None);
    }
    if cursor.len() > MAX_CURSOR_LEN || cursor.len() % 3 != 1 || cursor[0] != b'1' {
        return Err(InvalidCursor);
    }
    cursor[1..]
        .chunks_exact(3)
        .map(|d| {
            if !d.iter().all(u8::is_ascii_digit) {
                return Err(InvalidCursor);
            }
            let v = d.iter().fold(0u32, |v, &c| v * 10 + (c - b'0') as u32);
            u8::try_from(v).map_err(|_| InvalidCursor)
        })
        .collect::<Result<Vec<u8>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for k in [
            &b"a"[..],
            b"\x00\x00",
            b"key000123",
            &[0xff; 40],
            &[7; MAX_KEY_LEN],
        ] {
            let c = encode(k);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
            assert_ne!(c, "0");
            assert!(c.len() <= MAX_CURSOR_LEN);
            assert_eq!(decode(c.as_bytes()), Ok(Some(k.to_vec())));
        }
        assert_eq!(encode(b"abc"), "1097098099");
        assert_eq!(decode(b"0"), Ok(None));
    }

    #[test]
    fn refuses_what_it_did_not_make() {
        for bad in [
            &b""[..],
            b"12a4",
            b"1256",
            b"2097",
            b"10970",
            b"00",
            b"-1",
            &[b'1'; 1 + 3 * (MAX_KEY_LEN + 1)],
        ] {
            assert_eq!(decode(bad), Err(InvalidCursor), "{:?}", bad.escape_ascii());
        }
        // A 300,000-digit cursor is refused by its length alone.
        let huge = vec![b'1'; 300_001];
        assert_eq!(decode(&huge), Err(InvalidCursor));
    }
}
