//! Glob-style patterns with Redis's semantics (`stringmatchlen` in Redis's `util.c`), as
//! SCAN's `MATCH` takes them, matched without recursion and in bounded work.
//!
//! The syntax, exactly as Redis reads it:
//!
//! * `*` matches any run of bytes, `?` any one byte;
//! * `[abc]` one byte of a set, `[^abc]` one byte not in it, `[a-z]` a range (the ends may
//!   come in either order), `\x` inside a set a literal `x`; a set missing its `]` runs to the
//!   end of the pattern;
//! * `\x` a literal `x` (a `\` at the very end is itself literal);
//! * everything else matches itself, byte for byte.
//!
//! Two of Redis's quirks are kept on purpose, so that a pattern means here what it means to
//! Redis: an empty subject is matched only by the empty pattern (`*` does not match `""`), and
//! range ends compare as C's signed `char`, so a range reaching past `\x7f` is read in signed
//! order (`[a-\xff]` is the range `\xff..a`, that is -1..97).
//!
//! **Why not Redis's code.** Redis matches recursively: one stack frame per `*` (a pattern of
//! a million `*` overflowed the stack here) and, before Redis 7, time exponential in the number
//! of `*` (a 27-byte `*a*a*...*b` froze the server for minutes). Here a pattern is compiled once
//! ([`Pattern::builder`], linear in its length and resumable, so a huge pattern can be compiled
//! in slices between which the caller yields) into single-byte matchers and stars, consecutive
//! stars merged; a set becomes a 256-bit table. Matching is the classic two-pointer algorithm,
//! which on a mismatch backtracks only to the most recent star: each star's attempts start at
//! increasing subject positions, so a match takes at most `(tokens + 1) * (subject length +
//! stars + 1)` steps, with no allocation and no recursion. A pattern needing
//! more single bytes than `max_subject` (the longest subject it will be asked about, the
//! store's key limit) can never match, so compiling stops there and the pattern's size never
//! enters the matching cost: a subject of `n` bytes costs at most about `4n²` steps.

/// One element of a compiled pattern.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Token {
    /// `*`: any run of bytes.
    Star,
    /// `?`: any one byte.
    Any,
    /// One literal byte.
    Byte(u8),
    /// One byte of a set: an index into [`Pattern::sets`].
    Set(u32),
}

/// A compiled pattern; see the module docs.
#[derive(Clone, Debug)]
pub struct Pattern {
    tokens: Vec<Token>,
    sets: Vec<[u64; 4]>,
    /// Single-byte tokens: the shortest subject that can match.
    min_len: usize,
    /// The pattern needs more bytes than any subject it will see: it matches nothing.
    impossible: bool,
}

/// Compiles a pattern a slice at a time; see [`Pattern::builder`].
#[derive(Debug)]
pub struct Builder<'p> {
    pattern: &'p [u8],
    at: usize,
    max_subject: usize,
    out: Pattern,
}

impl Pattern {
    /// Compiles `pattern` in one go. `max_subject` is the longest subject it will be matched
    /// against (longer subjects never match).
    pub fn new(pattern: &[u8], max_subject: usize) -> Pattern {
        let mut b = Pattern::builder(pattern, max_subject);
        while !b.advance(usize::MAX) {}
        b.finish()
    }

    /// A builder that compiles `pattern` in slices: call [`Builder::advance`] until it
    /// returns true, then [`Builder::finish`].
    pub fn builder(pattern: &[u8], max_subject: usize) -> Builder<'_> {
        Builder {
            pattern,
            at: 0,
            max_subject,
            out: Pattern {
                tokens: Vec::new(),
                sets: Vec::new(),
                min_len: 0,
                impossible: false,
            },
        }
    }

    /// True if the pattern matches all of `subject`. Adds the steps taken to `steps` (at most
    /// `(tokens + 1) * (subject.len() + stars + 1)`), so callers can account for the work.
    pub fn matches(&self, subject: &[u8], steps: &mut u64) -> bool {
        if self.impossible || subject.len() < self.min_len {
            return false;
        }
        if subject.is_empty() {
            // Redis: only the empty pattern matches the empty subject.
            return self.tokens.is_empty();
        }
        let tokens = &self.tokens;
        let (mut t, mut s) = (0, 0);
        // After the most recent star: (the token after it, the subject position it took to).
        let mut star: Option<(usize, usize)> = None;
        loop {
            *steps += 1;
            if t < tokens.len() {
                match tokens[t] {
                    Token::Star => {
                        star = Some((t + 1, s));
                        t += 1;
                        continue;
                    }
                    tok if s < subject.len() && self.one(tok, subject[s]) => {
                        t += 1;
                        s += 1;
                        continue;
                    }
                    _ => {}
                }
            } else if s == subject.len() {
                return true;
            }
            // A mismatch: let the last star take one more byte, or fail.
            match star {
                Some((after, taken)) if taken < subject.len() => {
                    star = Some((after, taken + 1));
                    t = after;
                    s = taken + 1;
                }
                _ => return false,
            }
        }
    }

    fn one(&self, tok: Token, c: u8) -> bool {
        match tok {
            Token::Any => true,
            Token::Byte(b) => b == c,
            Token::Set(i) => self.sets[i as usize][c as usize / 64] >> (c % 64) & 1 == 1,
            Token::Star => false,
        }
    }
}

impl Builder<'_> {
    /// Compiles about `budget` more bytes of the pattern (a set is compiled whole); true once
    /// the whole pattern is compiled (or found unable to match anything).
    pub fn advance(&mut self, budget: usize) -> bool {
        let p = self.pattern;
        let stop = self.at.saturating_add(budget.max(1));
        while self.at < p.len() && self.at < stop {
            let (tok, next) = match p[self.at] {
                b'*' => (Token::Star, self.at + 1),
                b'?' => (Token::Any, self.at + 1),
                b'[' => self.set(),
                b'\\' if p.len() - self.at >= 2 => (Token::Byte(p[self.at + 1]), self.at + 2),
                c => (Token::Byte(c), self.at + 1),
            };
            self.at = next;
            if tok == Token::Star {
                if self.out.tokens.last() != Some(&Token::Star) {
                    self.out.tokens.push(tok);
                }
                continue;
            }
            self.out.min_len += 1;
            if self.out.min_len > self.max_subject {
                self.out.impossible = true;
                self.at = p.len();
                break;
            }
            self.out.tokens.push(tok);
        }
        self.at >= p.len()
    }

    /// The compiled pattern (complete only once [`advance`](Builder::advance) returned true).
    pub fn finish(self) -> Pattern {
        self.out
    }

    /// Compiles the set starting at `self.at` (a `[`), exactly as Redis reads one; returns
    /// its token and where the pattern goes on.
    fn set(&mut self) -> (Token, usize) {
        let p = self.pattern;
        let mut bits = [0u64; 4];
        let mut j = self.at + 1;
        let negate = p.get(j) == Some(&b'^');
        if negate {
            j += 1;
        }
        let next = loop {
            if j >= p.len() {
                break p.len(); // no `]`: the set runs to the end of the pattern
            }
            if p[j] == b'\\' && p.len() - j >= 2 {
                set_bit(&mut bits, p[j + 1]);
                j += 2;
            } else if p[j] == b']' {
                break j + 1;
            } else if p.len() - j >= 3 && p[j + 1] == b'-' {
                set_signed_range(&mut bits, p[j] as i8, p[j + 2] as i8);
                j += 3;
            } else {
                set_bit(&mut bits, p[j]);
                j += 1;
            }
        };
        if negate {
            for w in &mut bits {
                *w = !*w;
            }
        }
        self.out.sets.push(bits);
        (Token::Set(self.out.sets.len() as u32 - 1), next)
    }
}

fn set_bit(bits: &mut [u64; 4], c: u8) {
    bits[c as usize / 64] |= 1 << (c % 64);
}

/// Adds every byte whose value as a C `char` (signed, as on x86-64 Linux) lies between `a`
/// and `b`: Redis compares range ends that way.
fn set_signed_range(bits: &mut [u64; 4], a: i8, b: i8) {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    for c in lo..=hi {
        set_bit(bits, c as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &[u8], s: &[u8]) -> bool {
        Pattern::new(p, 1 << 20).matches(s, &mut 0)
    }

    /// Redis's `stringmatchlen` (src/util.c, Redis 7), ported line by line with its recursion,
    /// `skipLongerMatches`, NUL-terminated reads past the end, and signed `char`s: the
    /// reference the compiled matcher must agree with.
    fn redis(p: &[u8], s: &[u8]) -> bool {
        fn at(b: &[u8], i: usize) -> u8 {
            b.get(i).copied().unwrap_or(0)
        }
        fn imp(p: &[u8], s: &[u8], skip: &mut bool, nesting: u32) -> bool {
            if nesting > 1000 {
                return false;
            }
            let (mut p, mut s) = (p, s);
            while !p.is_empty() && !s.is_empty() {
                match p[0] {
                    b'*' => {
                        while !p.is_empty() && at(p, 1) == b'*' {
                            p = &p[1..];
                        }
                        if p.len() == 1 {
                            return true;
                        }
                        while !s.is_empty() {
                            if imp(&p[1..], s, skip, nesting + 1) {
                                return true;
                            }
                            if *skip {
                                return false;
                            }
                            s = &s[1..];
                        }
                        *skip = true;
                        return false;
                    }
                    b'?' => s = &s[1..],
                    b'[' => {
                        // Indices into the original slice emulate the C pointer walk.
                        let mut q = 1usize; // pattern[0] after `pattern++`
                        let not = at(p, q) == b'^';
                        if not {
                            q += 1;
                        }
                        let mut matched = false;
                        loop {
                            let len = p.len() as isize - q as isize;
                            if at(p, q) == b'\\' && len >= 2 {
                                q += 1;
                                if at(p, q) == s[0] {
                                    matched = true;
                                }
                            } else if at(p, q) == b']' {
                                break;
                            } else if len <= 0 {
                                q -= 1;
                                break;
                            } else if len >= 3 && at(p, q + 1) == b'-' {
                                let (mut lo, mut hi) = (at(p, q) as i8, at(p, q + 2) as i8);
                                let c = s[0] as i8;
                                if lo > hi {
                                    std::mem::swap(&mut lo, &mut hi);
                                }
                                q += 2;
                                if c >= lo && c <= hi {
                                    matched = true;
                                }
                            } else if at(p, q) == s[0] {
                                matched = true;
                            }
                            q += 1;
                        }
                        if not {
                            matched = !matched;
                        }
                        if !matched {
                            return false;
                        }
                        s = &s[1..];
                        p = &p[q..]; // the common `pattern++` below then skips the `]`
                    }
                    b'\\' => {
                        if p.len() >= 2 {
                            p = &p[1..];
                        }
                        if p[0] != s[0] {
                            return false;
                        }
                        s = &s[1..];
                    }
                    c => {
                        if c != s[0] {
                            return false;
                        }
                        s = &s[1..];
                    }
                }
                p = &p[1..];
                if s.is_empty() {
                    while at(p, 0) == b'*' {
                        p = &p[1..];
                    }
                    break;
                }
            }
            p.is_empty() && s.is_empty()
        }
        imp(p, s, &mut false, 0)
    }

    #[test]
    fn matches_like_redis() {
        for (p, s, want) in [
            (&b"user:*"[..], &b"user:42"[..], true),
            (b"h?llo", b"hello", true),
            (b"h[ae]llo", b"hallo", true),
            (b"h[ae]llo", b"hillo", false),
            (b"h[^e]llo", b"hallo", true),
            (b"h[^e]llo", b"hello", false),
            (b"h[a-b]llo", b"hbllo", true),
            (b"h[b-a]llo", b"hbllo", true),
            (b"h\\*llo", b"h*llo", true),
            (b"h\\*llo", b"hello", false),
            (b"a*b", b"acd", false),
            (b"a*", b"a", true),
            (b"*", b"", false),
            (b"", b"", true),
            (b"[abc", b"c", true),
            (b"\\", b"\\", true),
            (b"[a-]x", b"]", true),
        ] {
            assert_eq!(
                glob(p, s),
                want,
                "{:?} {:?}",
                p.escape_ascii(),
                s.escape_ascii()
            );
            assert_eq!(redis(p, s), want, "reference: {p:?} {s:?}");
        }
    }

    #[test]
    fn agrees_with_redis_on_random_patterns() {
        // A small alphabet full of pattern syntax, so sets, ranges, escapes, negations and
        // unterminated sets all come up often. xorshift keeps the test deterministic.
        let alphabet = b"ab*?[]^-\\\x80\xff";
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..300_000 {
            let plen = (next() % 9) as usize;
            let slen = (next() % 7) as usize;
            let p: Vec<u8> = (0..plen)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let s: Vec<u8> = (0..slen)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            assert_eq!(
                glob(&p, &s),
                redis(&p, &s),
                "pattern {:?} subject {:?}",
                p.escape_ascii().to_string(),
                s.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn hostile_patterns_cost_bounded_work() {
        // A million stars: one token, no recursion.
        let stars = vec![b'*'; 1_000_000];
        let p = Pattern::new(&stars, 512);
        assert_eq!(p.tokens, [Token::Star]);
        assert!(p.matches(b"anything", &mut 0));
        // The pattern that is exponential for a naive backtracker, against the longest key.
        let mut evil = b"*a".repeat(13);
        evil.extend_from_slice(b"*b");
        let key = vec![b'a'; 512];
        let mut steps = 0;
        assert!(!Pattern::new(&evil, 512).matches(&key, &mut steps));
        assert!(steps <= 28 * (512 + 14 + 1), "{steps} steps");
        assert!(redis(&evil, &key[..40]) == Pattern::new(&evil, 512).matches(&key[..40], &mut 0));
        // More single bytes than the longest subject: compiling stops early, nothing matches.
        let long = vec![b'x'; 10_000];
        let mut b = Pattern::builder(&long, 512);
        assert!(b.advance(usize::MAX));
        assert!(!b.finish().matches(&long[..512], &mut 0));
        // Compiling in slices gives the same pattern.
        let mut b = Pattern::builder(&stars, 512);
        let mut rounds = 0;
        while !b.advance(4096) {
            rounds += 1;
        }
        assert!(rounds >= 200);
        assert_eq!(b.finish().tokens, [Token::Star]);
    }
}
