//! SCAN cursors: 64-bit numbers, as every client expects (redis-cli parses them with
//! `strtoull`).
//!
//! Keys (and a hash's fields, a set's members) are stored in the order of a 64-bit hash of
//! their name (see `db::keys`). A cursor is the hash a scan resumes at: a call returns keys
//! in hash order from there, always finishing every key of the last hash it reached, and the
//! next cursor is the hash of the first key it did not return. So a key present for the
//! whole scan is returned exactly when the scan passes its hash: at least once, as Redis
//! guarantees (and, unlike Redis, exactly once while it is not deleted and recreated). `0`
//! starts a scan and ends it: no key's position is below the first one returned.

/// A cursor that is not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCursor;

impl std::fmt::Display for InvalidCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid cursor")
    }
}

/// The hash a scan resumes at (`0`: the start).
pub fn decode(cursor: &[u8]) -> Result<u64, InvalidCursor> {
    if cursor.is_empty() || cursor.len() > 20 || !cursor.iter().all(u8::is_ascii_digit) {
        return Err(InvalidCursor);
    }
    std::str::from_utf8(cursor)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(InvalidCursor)
}

/// The cursor of a scan that resumes at hash `next` (`None`: the scan is complete).
pub fn encode(next: Option<u64>) -> String {
    next.unwrap_or(0).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_64_bit_numbers() {
        assert_eq!(decode(b"0"), Ok(0));
        assert_eq!(decode(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [
            &b""[..],
            b"-1",
            b"12a",
            b"18446744073709551616",
            &[b'1'; 300_000],
        ] {
            assert_eq!(decode(bad), Err(InvalidCursor));
        }
        assert_eq!(encode(None), "0");
        assert_eq!(encode(Some(42)), "42");
    }
}
