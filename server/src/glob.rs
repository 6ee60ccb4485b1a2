//! Redis-style glob patterns, as SCAN's `MATCH` takes them.

/// Redis-style glob matching: `*`, `?`, `[abc]`, and `\` escapes.
pub fn matches(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => matches(&p[1..], s) || (!s.is_empty() && matches(p, &s[1..])),
        (Some(b'?'), Some(_)) => matches(&p[1..], &s[1..]),
        (Some(b'['), Some(&c)) => match p.iter().position(|&b| b == b']') {
            Some(end) => p[1..end].contains(&c) && matches(&p[end + 1..], &s[1..]),
            None => false,
        },
        (Some(b'\\'), Some(&c)) if p.len() > 1 => p[1] == c && matches(&p[2..], &s[1..]),
        (Some(&a), Some(&b)) => a == b && matches(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_redis() {
        assert!(matches(b"user:*", b"user:42"));
        assert!(matches(b"h?llo", b"hello"));
        assert!(matches(b"h[ae]llo", b"hallo"));
        assert!(!matches(b"h[ae]llo", b"hillo"));
        assert!(matches(b"*", b""));
        assert!(!matches(b"a*b", b"acd"));
    }
}
