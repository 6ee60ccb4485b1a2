//! SCAN cursors: the last key returned, encoded as a decimal number so that clients that
//! parse cursors as integers work. `"0"` starts (and ends) a scan.
//!
//! Everything about the cursor's encoding lives here, so that a different design (64-bit
//! cursors) replaces this module alone.

/// The cursor that resumes a scan after `key`.
pub fn encode(key: &[u8]) -> String {
    // Base-256 digits (a 1 in front keeps leading zero bytes) to base 10.
    let mut digits: Vec<u8> = std::iter::once(1).chain(key.iter().copied()).collect();
    let mut out = Vec::new();
    while !digits.is_empty() {
        let mut rem = 0u32;
        let mut next = Vec::with_capacity(digits.len());
        for &d in &digits {
            let cur = rem * 256 + d as u32;
            let q = cur / 10;
            rem = cur % 10;
            if !(next.is_empty() && q == 0) {
                next.push(q as u8);
            }
        }
        out.push(b'0' + rem as u8);
        digits = next;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii digits")
}

/// The key a cursor resumes after, or `None` if `cursor` is not one this module made.
pub fn decode(cursor: &[u8]) -> Option<Vec<u8>> {
    let mut bytes: Vec<u8> = Vec::new(); // base 256, most significant first
    for &c in cursor {
        if !c.is_ascii_digit() {
            return None;
        }
        let mut carry = (c - b'0') as u32;
        for b in bytes.iter_mut().rev() {
            let cur = *b as u32 * 10 + carry;
            *b = (cur % 256) as u8;
            carry = cur / 256;
        }
        while carry > 0 {
            bytes.insert(0, (carry % 256) as u8);
            carry /= 256;
        }
    }
    match bytes.split_first() {
        Some((1, key)) => Some(key.to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_cursors_round_trip() {
        for k in [&b"a"[..], b"\x00\x00", b"key000123", &[0xff; 40]] {
            let c = encode(k);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
            assert_ne!(c, "0");
            assert_eq!(decode(c.as_bytes()).as_deref(), Some(k));
        }
        assert_eq!(decode(b"12a"), None);
    }
}
