//! A key's record: a small header, then the string or the container's metadata.
//!
//! ```text
//! byte 0     type (low 4 bits) | 0x10 has an expiry | 0x20 encoding hint
//! [8 bytes]  expiry, ms since the epoch (big-endian), if flagged
//! string:    the value's bytes
//! container: id (8), length (8); a list also head and tail positions (8 + 8)
//! ```
//!
//! The expiry lives in the header, so a read learns whether a key has expired from the same
//! lookup that finds it, and it is as durable as the value. The encoding hint records what
//! Redis would report for `OBJECT ENCODING` where that depends on history (a string modified
//! in place is `raw`; a hash that once outgrew the listpack limits stays `hashtable`).

/// The type of a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    String = 0,
    /// A hash.
    Hash = 1,
    /// A set.
    Set = 2,
    /// A list.
    List = 3,
}

impl Kind {
    /// The name TYPE answers.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::List => "list",
        }
    }

    fn from_bits(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::String,
            1 => Kind::Hash,
            2 => Kind::Set,
            3 => Kind::List,
            _ => return None,
        })
    }
}

/// A container's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Container {
    /// The id naming its items (never reused).
    pub id: u64,
    /// Number of items.
    pub len: u64,
    /// Lists: position of the first element.
    pub head: i64,
    /// Lists: position after the last element.
    pub tail: i64,
}

/// A key's header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The value's type.
    pub kind: Kind,
    /// When the key expires (ms since the epoch), if it does.
    pub expire: Option<u64>,
    /// The encoding hint (see the module docs).
    pub hint: bool,
    /// A container's metadata (zero for strings).
    pub container: Container,
}

const EXPIRE_FLAG: u8 = 0x10;
const HINT_FLAG: u8 = 0x20;

impl Meta {
    /// A string's header.
    pub fn string(expire: Option<u64>, hint: bool) -> Meta {
        Meta {
            kind: Kind::String,
            expire,
            hint,
            container: Container::default(),
        }
    }

    /// A new, empty container's header.
    pub fn container(kind: Kind, id: u64) -> Meta {
        Meta {
            kind,
            expire: None,
            hint: false,
            container: Container {
                id,
                ..Container::default()
            },
        }
    }

    /// True if the key has expired at `now` (ms).
    pub fn expired(&self, now: u64) -> bool {
        self.expire.is_some_and(|t| t <= now)
    }

    /// Appends the encoded header.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut b0 = self.kind as u8;
        if self.expire.is_some() {
            b0 |= EXPIRE_FLAG;
        }
        if self.hint {
            b0 |= HINT_FLAG;
        }
        out.push(b0);
        if let Some(t) = self.expire {
            out.extend_from_slice(&t.to_be_bytes());
        }
        if self.kind != Kind::String {
            out.extend_from_slice(&self.container.id.to_be_bytes());
            out.extend_from_slice(&self.container.len.to_be_bytes());
            if self.kind == Kind::List {
                out.extend_from_slice(&self.container.head.to_be_bytes());
                out.extend_from_slice(&self.container.tail.to_be_bytes());
            }
        }
    }

    /// The encoded header followed by `payload`.
    pub fn with_payload(&self, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len() + payload.len());
        self.encode(&mut v);
        v.extend_from_slice(payload);
        v
    }

    /// Length of the encoded header.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        let mut n = 1 + if self.expire.is_some() { 8 } else { 0 };
        match self.kind {
            Kind::String => {}
            Kind::List => n += 32,
            _ => n += 16,
        }
        n
    }

    /// Decodes the header at the start of `value`; returns it and where the payload starts.
    /// `None` if the bytes are not a header this server wrote.
    pub fn decode(value: &[u8]) -> Option<(Meta, usize)> {
        let b0 = *value.first()?;
        let kind = Kind::from_bits(b0 & 0x0f)?;
        if b0 & !(0x0f | EXPIRE_FLAG | HINT_FLAG) != 0 {
            return None;
        }
        let mut at = 1;
        let word = |at: &mut usize| -> Option<u64> {
            let w = u64::from_be_bytes(value.get(*at..*at + 8)?.try_into().ok()?);
            *at += 8;
            Some(w)
        };
        let expire = if b0 & EXPIRE_FLAG != 0 {
            Some(word(&mut at)?)
        } else {
            None
        };
        let mut container = Container::default();
        if kind != Kind::String {
            container.id = word(&mut at)?;
            container.len = word(&mut at)?;
            if kind == Kind::List {
                container.head = word(&mut at)? as i64;
                container.tail = word(&mut at)? as i64;
            }
        }
        Some((
            Meta {
                kind,
                expire,
                hint: b0 & HINT_FLAG != 0,
                container,
            },
            at,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let mut list = Meta::container(Kind::List, 9);
        list.container.head = -3;
        list.container.tail = 4;
        list.container.len = 7;
        list.expire = Some(123);
        for m in [
            Meta::string(None, false),
            Meta::string(Some(u64::MAX), true),
            Meta::container(Kind::Hash, 1),
            Meta::container(Kind::Set, u64::MAX),
            list,
        ] {
            let v = m.with_payload(b"payload");
            assert_eq!(Meta::decode(&v), Some((m, m.len())));
            assert_eq!(&v[m.len()..], b"payload");
        }
        assert_eq!(Meta::decode(b""), None);
        assert_eq!(Meta::decode(b"\x09"), None);
        assert_eq!(Meta::decode(b"\x11\x00"), None);
        assert!(Meta::string(Some(5), false).expired(5));
        assert!(!Meta::string(Some(5), false).expired(4));
    }
}
