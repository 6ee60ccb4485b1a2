//! String commands: GET and its relatives (reads), SET and its options, MSET(NX), the
//! in-place modifications (APPEND, SETRANGE, SETBIT) and the counters (INCR...).

use faultless_store::Result as StoreResult;

use super::{float, format_float, int, int_arg, Cmd, MAX_STRING};
use crate::db::{lookup, Entry, Kind, Meta, Txn, View};
use crate::protocol::{Args, Reply};
use crate::work::Work;

/// A string's value, `Ok(None)` if missing, WRONGTYPE for another type.
fn string_of(e: &Option<Entry>) -> Result<Option<&[u8]>, Reply> {
    match e {
        None => Ok(None),
        Some(e) if e.meta.kind == Kind::String => Ok(Some(e.payload())),
        Some(_) => Err(Reply::wrong_type()),
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(reply) => return Ok(reply),
        }
    };
}

/// `GET key`.
pub(crate) async fn get<V: View>(v: &V, a: &Args<'_>, now: u64) -> StoreResult<Reply> {
    let e = lookup(v, a.get(1), now).await?;
    Ok(match tri!(string_of(&e)) {
        Some(s) => Reply::bulk(s),
        None => Reply::Null,
    })
}

/// `MGET key...`: values of strings, nulls for anything else.
pub(crate) async fn mget<V: View>(
    v: &V,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    let mut out = Vec::with_capacity(a.len() - 1);
    for key in a.iter_from(1) {
        let e = lookup(v, key, now).await?;
        out.push(match string_of(&e) {
            Ok(Some(s)) => Reply::bulk(s),
            _ => Reply::Null,
        });
        work.spend(1).await;
    }
    Ok(Reply::Array(out))
}

/// `STRLEN key`.
pub(crate) async fn strlen<V: View>(v: &V, a: &Args<'_>, now: u64) -> StoreResult<Reply> {
    let e = lookup(v, a.get(1), now).await?;
    Ok(Reply::Int(tri!(string_of(&e)).map_or(0, |s| s.len()) as i64))
}

/// Redis's range arithmetic for GETRANGE: `(start, end)` inclusive, or `None` for empty.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return None;
    }
    let fix = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (s, e) = (fix(start), fix(end).min(len - 1));
    (s <= e && s < len).then_some((s as usize, e as usize))
}

/// `GETRANGE key start end`.
pub(crate) async fn getrange<V: View>(v: &V, a: &Args<'_>, now: u64) -> StoreResult<Reply> {
    let (start, end) = (tri!(int_arg(a.get(2))), tri!(int_arg(a.get(3))));
    let e = lookup(v, a.get(1), now).await?;
    let s = tri!(string_of(&e)).unwrap_or(b"");
    Ok(match clamp_range(start, end, s.len()) {
        Some((from, to)) => Reply::bulk(&s[from..=to]),
        None => Reply::bulk(b""),
    })
}

fn bit_offset(a: &[u8]) -> Result<u64, Reply> {
    match int(a) {
        Some(n) if (0..(MAX_STRING as i64) * 8).contains(&n) => Ok(n as u64),
        _ => Err(Reply::err("bit offset is not an integer or out of range")),
    }
}

/// `GETBIT key offset`.
pub(crate) async fn getbit<V: View>(v: &V, a: &Args<'_>, now: u64) -> StoreResult<Reply> {
    let offset = tri!(bit_offset(a.get(2)));
    let e = lookup(v, a.get(1), now).await?;
    let s = tri!(string_of(&e)).unwrap_or(b"");
    let byte = s.get((offset / 8) as usize).copied().unwrap_or(0);
    Ok(Reply::Int(((byte >> (7 - offset % 8)) & 1) as i64))
}

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]`.
pub(crate) async fn lcs<V: View>(
    v: &V,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    let (mut len_only, mut idx, mut with_len, mut min_len) = (false, false, false, 0i64);
    let mut i = 3;
    while i < a.len() {
        let opt = a.get(i).to_ascii_uppercase();
        match opt.as_slice() {
            b"LEN" => len_only = true,
            b"IDX" => idx = true,
            b"WITHMATCHLEN" => with_len = true,
            b"MINMATCHLEN" if i + 1 < a.len() => {
                min_len = tri!(int_arg(a.get(i + 1))).max(0);
                i += 1;
            }
            _ => return Ok(Reply::syntax()),
        }
        i += 1;
    }
    if len_only && idx {
        return Ok(Reply::err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    let (ea, eb) = (
        lookup(v, a.get(1), now).await?,
        lookup(v, a.get(2), now).await?,
    );
    let (sa, sb) = match (string_of(&ea), string_of(&eb)) {
        (Ok(x), Ok(y)) => (x.unwrap_or(b""), y.unwrap_or(b"")),
        _ => return Ok(Reply::err("The specified keys must contain string values")),
    };
    if (sa.len() + 1).saturating_mul(sb.len() + 1) > super::MAX_LCS_CELLS {
        return Ok(Reply::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    // The classic dynamic programme, as Redis computes it.
    let w = sb.len() + 1;
    let mut dp = vec![0u32; (sa.len() + 1) * w];
    for i in 1..=sa.len() {
        for j in 1..=sb.len() {
            dp[i * w + j] = if sa[i - 1] == sb[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
        work.spend(1 + sb.len() as u64 / 1000).await;
    }
    let total = dp[sa.len() * w + sb.len()] as usize;
    if len_only {
        return Ok(Reply::Int(total as i64));
    }
    let mut result = vec![0u8; total];
    let mut matches = Vec::new();
    let (mut i, mut j, mut k) = (sa.len(), sb.len(), total);
    let mut range: Option<(usize, usize, usize, usize)> = None; // a_start, a_end, b_start, b_end
    let push = |r: (usize, usize, usize, usize), matches: &mut Vec<Reply>| {
        let mlen = r.1 - r.0 + 1;
        if (mlen as i64) >= min_len {
            let mut m = vec![
                Reply::Array(vec![Reply::Int(r.0 as i64), Reply::Int(r.1 as i64)]),
                Reply::Array(vec![Reply::Int(r.2 as i64), Reply::Int(r.3 as i64)]),
            ];
            if with_len {
                m.push(Reply::Int(mlen as i64));
            }
            matches.push(Reply::Array(m));
        }
    };
    while i > 0 && j > 0 {
        if sa[i - 1] == sb[j - 1] {
            k -= 1;
            result[k] = sa[i - 1];
            let (ai, bj) = (i - 1, j - 1);
            range = match range {
                Some((s, e, bs, be)) if s == ai + 1 && bs == bj + 1 => Some((ai, e, bj, be)),
                Some(r) => {
                    push(r, &mut matches);
                    Some((ai, ai, bj, bj))
                }
                None => Some((ai, ai, bj, bj)),
            };
            i -= 1;
            j -= 1;
        } else if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    if let Some(r) = range {
        push(r, &mut matches);
    }
    if idx {
        return Ok(Reply::Map(vec![
            (Reply::bulk(b"matches"), Reply::Array(matches)),
            (Reply::bulk(b"len"), Reply::Int(total as i64)),
        ]));
    }
    Ok(Reply::Bulk(Some(result)))
}

/// Options of SET and GETEX.
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<u64>,
}

/// An absolute expiry time from a relative or absolute time argument, or Redis's error.
pub(crate) fn expire_time(
    arg: &[u8],
    unit_ms: bool,
    absolute: bool,
    now: u64,
    cmd: &str,
) -> Result<i64, Reply> {
    let invalid = || Reply::err(format!("invalid expire time in '{cmd}' command"));
    let mut t = int_arg(arg)?;
    if !unit_ms {
        t = t.checked_mul(1000).ok_or_else(invalid)?;
    }
    if !absolute {
        t = t.checked_add(now as i64).ok_or_else(invalid)?;
    }
    Ok(t)
}

fn parse_set_options(
    a: &Args<'_>,
    from: usize,
    getex: bool,
    now: u64,
) -> Result<SetOptions, Reply> {
    let cmd = if getex { "getex" } else { "set" };
    let mut o = SetOptions {
        nx: false,
        xx: false,
        get: false,
        keepttl: false,
        persist: false,
        expire: None,
    };
    let mut has_expire = false;
    let mut i = from;
    while i < a.len() {
        let opt = a.get(i).to_ascii_uppercase();
        let next = (i + 1 < a.len()).then(|| a.get(i + 1));
        match (opt.as_slice(), next) {
            (b"NX", _) if !getex && !o.xx => o.nx = true,
            (b"XX", _) if !getex && !o.nx => o.xx = true,
            (b"GET", _) if !getex => o.get = true,
            (b"KEEPTTL", _) if !getex && !has_expire => o.keepttl = true,
            (b"PERSIST", _) if getex && !has_expire => o.persist = true,
            (b"EX" | b"PX" | b"EXAT" | b"PXAT", Some(t))
                if !has_expire && !o.keepttl && !o.persist =>
            {
                let ms = opt.starts_with(b"P");
                let abs = opt.ends_with(b"AT");
                let when = expire_time(t, ms, abs, now, cmd)?;
                // The argument itself must be positive (Redis checks before adding `now`).
                let raw = int(t).unwrap_or(0);
                if raw <= 0 {
                    return Err(Reply::err(format!(
                        "invalid expire time in '{cmd}' command"
                    )));
                }
                o.expire = Some(when.max(0) as u64);
                has_expire = true;
                i += 1;
            }
            _ => return Err(Reply::syntax()),
        }
        i += 1;
    }
    Ok(o)
}

/// SET (all options), SETNX, SETEX, PSETEX, GETSET, GETDEL, GETEX.
pub(crate) async fn set_family(
    t: &mut Txn<'_>,
    cmd: Cmd,
    a: &Args<'_>,
    now: u64,
) -> StoreResult<Reply> {
    let key = a.get(1);
    let (value, opts) = match cmd {
        Cmd::Set => (a.get(2), tri!(parse_set_options(a, 3, false, now))),
        Cmd::Setnx => (
            a.get(2),
            SetOptions {
                nx: true,
                xx: false,
                get: false,
                keepttl: false,
                persist: false,
                expire: None,
            },
        ),
        Cmd::Getset => (
            a.get(2),
            SetOptions {
                nx: false,
                xx: false,
                get: true,
                keepttl: false,
                persist: false,
                expire: None,
            },
        ),
        Cmd::Setex | Cmd::Psetex => {
            let name = if cmd == Cmd::Setex { "setex" } else { "psetex" };
            let when = tri!(expire_time(a.get(2), cmd == Cmd::Psetex, false, now, name));
            if int(a.get(2)).unwrap_or(0) <= 0 {
                return Ok(Reply::err(format!(
                    "invalid expire time in '{name}' command"
                )));
            }
            (
                a.get(3),
                SetOptions {
                    nx: false,
                    xx: false,
                    get: false,
                    keepttl: false,
                    persist: false,
                    expire: Some(when as u64),
                },
            )
        }
        Cmd::Getdel => {
            let e = t.lookup_mut(key, now).await?;
            let Some(s) = tri!(string_of(&e)).map(<[u8]>::to_vec) else {
                return Ok(Reply::Null);
            };
            let meta = e.expect("found").meta;
            t.remove(key, &meta).await?;
            return Ok(Reply::Bulk(Some(s)));
        }
        _ => {
            // GETEX
            let opts = tri!(parse_set_options(a, 2, true, now));
            let e = t.lookup_mut(key, now).await?;
            let Some(s) = tri!(string_of(&e)).map(<[u8]>::to_vec) else {
                return Ok(Reply::Null);
            };
            let meta = e.expect("found").meta;
            if let Some(when) = opts.expire {
                if when <= now {
                    t.remove(key, &meta).await?;
                } else {
                    t.store(
                        key,
                        Some(&meta),
                        &Meta {
                            expire: Some(when),
                            ..meta
                        },
                        &s,
                    )
                    .await?;
                }
            } else if opts.persist && meta.expire.is_some() {
                t.store(
                    key,
                    Some(&meta),
                    &Meta {
                        expire: None,
                        ..meta
                    },
                    &s,
                )
                .await?;
            }
            return Ok(Reply::Bulk(Some(s)));
        }
    };
    if value.len() > MAX_STRING {
        return Ok(Reply::err(
            "string exceeds maximum allowed size (proto-max-bulk-len)",
        ));
    }
    let old = t.lookup_mut(key, now).await?;
    let old_value = if opts.get {
        tri!(string_of(&old)).map(<[u8]>::to_vec)
    } else {
        None
    };
    let exists = old.is_some();
    let refused = (opts.nx && exists) || (opts.xx && !exists);
    let reply = |done: bool| match cmd {
        Cmd::Setnx => Reply::Int(done as i64),
        _ if opts.get => Reply::Bulk(old_value.clone()),
        _ if done => Reply::OK,
        _ => Reply::Null,
    };
    if refused {
        return Ok(reply(false));
    }
    let old_meta = old.map(|e| e.meta);
    let expire = if opts.keepttl {
        old_meta.and_then(|m| m.expire)
    } else {
        opts.expire
    };
    match expire {
        Some(when) if when <= now => {
            if let Some(m) = old_meta {
                t.remove(key, &m).await?;
            }
        }
        _ => {
            t.store(key, old_meta.as_ref(), &Meta::string(expire, false), value)
                .await?
        }
    }
    Ok(reply(true))
}

/// `MSET` and `MSETNX`, atomically.
pub(crate) async fn mset(
    t: &mut Txn<'_>,
    cmd: Cmd,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    if a.len() % 2 == 0 {
        return Ok(Reply::wrong_args(a.get(0)));
    }
    if cmd == Cmd::Msetnx {
        for key in a.iter_from(1).step_by(2) {
            if t.lookup_mut(key, now).await?.is_some() {
                return Ok(Reply::Int(0));
            }
            work.spend(1).await;
        }
    }
    let mut pairs = a.iter_from(1);
    while let (Some(k), Some(v)) = (pairs.next(), pairs.next()) {
        let old = t.lookup_mut(k, now).await?.map(|e| e.meta);
        t.store(k, old.as_ref(), &Meta::string(None, false), v)
            .await?;
        work.spend(1).await;
    }
    Ok(if cmd == Cmd::Msetnx {
        Reply::Int(1)
    } else {
        Reply::OK
    })
}

/// `APPEND`, `SETRANGE`, `SETBIT`: modify a string in place (its TTL kept).
pub(crate) async fn modify(
    t: &mut Txn<'_>,
    cmd: Cmd,
    a: &Args<'_>,
    now: u64,
) -> StoreResult<Reply> {
    let key = a.get(1);
    let max = MAX_STRING.min(t.shared.options.max_request);
    let too_big = || Reply::err("string exceeds maximum allowed size (proto-max-bulk-len)");
    // Validate the arguments before reading anything.
    let (offset, bit) = match cmd {
        Cmd::Setrange => match int(a.get(2)) {
            Some(o) if o >= 0 => (o as u64, 0),
            Some(_) => return Ok(Reply::err("offset is out of range")),
            None => return Ok(Reply::not_integer()),
        },
        Cmd::Setbit => {
            let off = tri!(bit_offset(a.get(2)));
            match a.get(3) {
                b"0" => (off, 0),
                b"1" => (off, 1),
                _ => return Ok(Reply::err("bit is not an integer or out of range")),
            }
        }
        _ => (0, 0),
    };
    let e = t.lookup_mut(key, now).await?;
    let current = tri!(string_of(&e));
    let meta = e.as_ref().map(|e| e.meta);
    let mut value = current.unwrap_or(b"").to_vec();
    let reply = match cmd {
        Cmd::Append => {
            if value.len() + a.get(2).len() > max {
                return Ok(too_big());
            }
            value.extend_from_slice(a.get(2));
            Reply::Int(value.len() as i64)
        }
        Cmd::Setrange => {
            let patch = a.get(3);
            if patch.is_empty() {
                return Ok(Reply::Int(value.len() as i64));
            }
            let end = offset as usize + patch.len();
            if offset as usize > max || end > max {
                return Ok(too_big());
            }
            if value.len() < end {
                value.resize(end, 0);
            }
            value[offset as usize..end].copy_from_slice(patch);
            Reply::Int(value.len() as i64)
        }
        _ => {
            let byte = (offset / 8) as usize;
            if byte >= max {
                return Ok(too_big());
            }
            if value.len() <= byte {
                value.resize(byte + 1, 0);
            }
            let mask = 1u8 << (7 - offset % 8);
            let old = (value[byte] & mask != 0) as i64;
            if bit == 1 {
                value[byte] |= mask;
            } else {
                value[byte] &= !mask;
            }
            Reply::Int(old)
        }
    };
    let expire = meta.and_then(|m| m.expire);
    t.store(key, meta.as_ref(), &Meta::string(expire, true), &value)
        .await?;
    Ok(reply)
}

/// `INCR`, `DECR`, `INCRBY`, `DECRBY`, `INCRBYFLOAT` (the TTL is kept).
pub(crate) async fn incr(t: &mut Txn<'_>, cmd: Cmd, a: &Args<'_>, now: u64) -> StoreResult<Reply> {
    let key = a.get(1);
    let by = match cmd {
        Cmd::Incr => 1,
        Cmd::Decr => -1,
        Cmd::Incrby => tri!(int_arg(a.get(2))),
        Cmd::Decrby => match tri!(int_arg(a.get(2))).checked_neg() {
            Some(n) => n,
            None => return Ok(Reply::err("decrement would overflow")),
        },
        _ => 0,
    };
    let e = t.lookup_mut(key, now).await?;
    let current = tri!(string_of(&e));
    let meta = e.as_ref().map(|e| e.meta);
    let expire = meta.and_then(|m| m.expire);
    if cmd == Cmd::Incrbyfloat {
        let invalid = || Reply::err("value is not a valid float");
        let Some(by) = float(a.get(2)) else {
            return Ok(invalid());
        };
        let base = match current {
            None => 0.0,
            Some(s) => match float(s) {
                Some(v) => v,
                None => return Ok(invalid()),
            },
        };
        let next = base + by;
        if next.is_nan() || next.is_infinite() {
            return Ok(Reply::err("increment would produce NaN or Infinity"));
        }
        let text = format_float(next);
        t.store(
            key,
            meta.as_ref(),
            &Meta::string(expire, false),
            text.as_bytes(),
        )
        .await?;
        return Ok(Reply::Bulk(Some(text.into_bytes())));
    }
    let base = match current {
        None => 0,
        Some(s) => tri!(int(s).ok_or_else(Reply::not_integer)),
    };
    let Some(next) = base.checked_add(by) else {
        return Ok(Reply::err("increment or decrement would overflow"));
    };
    t.store(
        key,
        meta.as_ref(),
        &Meta::string(expire, false),
        next.to_string().as_bytes(),
    )
    .await?;
    Ok(Reply::Int(next))
}

/// What `OBJECT ENCODING` reports for a string.
pub(crate) fn encoding(e: &Entry) -> &'static str {
    let s = e.payload();
    if !e.meta.hint && s.len() <= 20 && int(s).is_some() {
        "int"
    } else if !e.meta.hint && s.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_clamps_like_redis() {
        let r = |s: i64, e: i64| clamp_range(s, e, 11);
        assert_eq!(r(0, 3), Some((0, 3)));
        assert_eq!(r(0, -1), Some((0, 10)));
        assert_eq!(r(-4, -1), Some((7, 10)));
        assert_eq!(r(5, 3), None);
        assert_eq!(r(5, 5000), Some((5, 10)));
        assert_eq!(r(-5000, 10000), Some((0, 10)));
        assert_eq!(clamp_range(0, 4294967297, 3), Some((0, 2)));
        assert_eq!(clamp_range(0, -1, 0), None);
    }
}
