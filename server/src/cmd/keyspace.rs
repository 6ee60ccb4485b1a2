//! Keyspace commands: EXISTS, TYPE, TTL and friends, KEYS, SCAN, RANDOMKEY, OBJECT, MEMORY,
//! DEL, the EXPIRE family, PERSIST, RENAME, COPY, FLUSHDB.

use std::ops::Bound::{self, Excluded, Included};

use faultless_store::Result as StoreResult;

use super::strings::expire_time;
use super::{int, int_arg, Cmd};
use crate::cursor;
use crate::db::keys::{self, MAX_KEY};
use crate::db::{decode, lookup, Bytes, Kind, Meta, Txn, View};
use crate::glob::Pattern;
use crate::protocol::{Args, Reply};
use crate::work::{Work, GLOB_STEPS_PER_UNIT};

/// Most bytes of names one SCAN reply carries: past this a SCAN returns early (at a hash
/// boundary), with a cursor that goes on from there (COUNT is a hint, as in Redis).
pub(crate) const SCAN_REPLY_BYTES: usize = 1 << 20;

/// Pattern bytes compiled between two accountings of work.
const COMPILE_SLICE: usize = 64 * 1024;

/// Entries read from the store per range call.
const CHUNK: usize = 256;

/// `EXISTS key...` (and TOUCH): how many of the keys exist (repeats counted).
pub(crate) async fn exists<V: View>(
    v: &V,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    let mut n = 0;
    for key in a.iter_from(1) {
        n += lookup(v, key, now).await?.is_some() as i64;
        work.spend(1).await;
    }
    Ok(Reply::Int(n))
}

/// `TYPE key`.
pub(crate) async fn type_of<V: View>(v: &V, a: &Args<'_>, now: u64) -> StoreResult<Reply> {
    Ok(Reply::Simple(match lookup(v, a.get(1), now).await? {
        Some(e) => e.meta.kind.name().to_string(),
        None => "none".to_string(),
    }))
}

/// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`.
pub(crate) async fn ttl<V: View>(v: &V, cmd: Cmd, a: &Args<'_>, now: u64) -> StoreResult<Reply> {
    let Some(e) = lookup(v, a.get(1), now).await? else {
        return Ok(Reply::Int(-2));
    };
    let Some(when) = e.meta.expire else {
        return Ok(Reply::Int(-1));
    };
    let left = when.saturating_sub(now) as i64;
    Ok(Reply::Int(match cmd {
        Cmd::Ttl => (left + 500) / 1000,
        Cmd::Pttl => left,
        Cmd::Expiretime => (when / 1000) as i64,
        _ => when as i64,
    }))
}

/// Compiles a MATCH pattern a slice at a time (a pattern may be as long as a request);
/// `None` for no pattern or `*`, which filters nothing.
pub(crate) async fn compile(
    pattern: Option<&[u8]>,
    max: usize,
    work: &mut Work<'_>,
) -> Option<Pattern> {
    match pattern {
        None | Some(b"*") => None,
        Some(p) => {
            let mut builder = Pattern::builder(p, max);
            while !builder.advance(COMPILE_SLICE) {
                work.spend(COMPILE_SLICE as u64 / 1024).await;
            }
            Some(builder.finish())
        }
    }
}

/// True if `name` matches `pattern` (no pattern: everything); accounts for the work.
pub(crate) async fn matches(pattern: &Option<Pattern>, name: &[u8], work: &mut Work<'_>) -> bool {
    let mut steps = 0;
    let m = pattern.as_ref().is_none_or(|p| p.matches(name, &mut steps));
    work.spend(1 + steps / GLOB_STEPS_PER_UNIT).await;
    m
}

/// `KEYS pattern`: every live key matching it.
pub(crate) async fn keys<V: View>(
    v: &V,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    let pattern = compile(Some(a.get(1)), MAX_KEY, work).await;
    let mut out = Vec::new();
    let mut from = Included(keys::top_at(0));
    loop {
        let chunk = v
            .raw_range(from.clone(), Excluded(keys::top_end()), CHUNK)
            .await?;
        let Some((last, _)) = chunk.last() else { break };
        from = Excluded(last.clone());
        for (skey, value) in chunk {
            let (_, key) = keys::decode_top(&skey).ok_or_else(|| crate::db::bad_record(&skey))?;
            let meta = decode(key, value)?.meta;
            if !meta.expired(now) && matches(&pattern, key, work).await {
                out.push(Reply::bulk(key));
            }
        }
    }
    Ok(Reply::Array(out))
}

/// Walks a hash-ordered region from `start` (inclusive) to `end` (exclusive) as SCAN does:
/// calls `visit` for entries until `count` were visited or the reply holds
/// [`SCAN_REPLY_BYTES`], then finishes the last hash reached. Returns the next cursor
/// (`None`: the region is done). `hash_of` reads an entry's hash from its store key.
pub(crate) async fn scan_region<V: View>(
    v: &V,
    start: Vec<u8>,
    end: Vec<u8>,
    count: usize,
    hash_of: fn(&[u8]) -> Option<u64>,
    work: &mut Work<'_>,
    mut visit: impl AsyncVisit,
) -> StoreResult<Option<u64>> {
    let mut from: Bound<Vec<u8>> = Included(start);
    let (mut seen, mut bytes) = (0usize, 0usize);
    let mut last_hash: Option<u64> = None;
    loop {
        let chunk = v
            .raw_range(from.clone(), Excluded(end.clone()), CHUNK)
            .await?;
        let Some((last, _)) = chunk.last() else {
            return Ok(None);
        };
        from = Excluded(last.clone());
        for (skey, value) in chunk {
            let h = hash_of(&skey).ok_or_else(|| crate::db::bad_record(&skey))?;
            if (seen >= count || bytes >= SCAN_REPLY_BYTES) && last_hash != Some(h) {
                return Ok(Some(h));
            }
            last_hash = Some(h);
            seen += 1;
            bytes += visit.visit(&skey, value, work).await?;
        }
    }
}

/// What [`scan_region`] calls for each entry; returns the bytes it added to the reply.
#[allow(async_fn_in_trait)]
pub(crate) trait AsyncVisit {
    async fn visit(&mut self, skey: &[u8], value: Bytes, work: &mut Work<'_>)
        -> StoreResult<usize>;
}

/// SCAN's and HSCAN's options: count, MATCH pattern, TYPE.
pub(crate) type ScanOptions<'a> = (usize, Option<&'a [u8]>, Option<&'a [u8]>);

/// SCAN's and HSCAN's options: `(count, pattern, type)` or the error reply.
pub(crate) fn scan_options<'a>(
    a: &Args<'a>,
    from: usize,
    allow_type: bool,
) -> Result<ScanOptions<'a>, Reply> {
    let (mut count, mut pattern, mut kind) = (10usize, None, None);
    let mut i = from;
    while i < a.len() {
        let opt = a.get(i).to_ascii_uppercase();
        let Some(arg) = (i + 1 < a.len()).then(|| a.get(i + 1)) else {
            return Err(Reply::syntax());
        };
        match opt.as_slice() {
            b"COUNT" => match int(arg) {
                Some(c) if c >= 1 => count = c as usize,
                Some(_) => return Err(Reply::syntax()),
                None => return Err(Reply::not_integer()),
            },
            b"MATCH" => pattern = Some(arg),
            b"TYPE" if allow_type => kind = Some(arg),
            _ => return Err(Reply::syntax()),
        }
        i += 2;
    }
    Ok((count, pattern, kind))
}

struct KeyVisit {
    pattern: Option<Pattern>,
    kind: Option<Vec<u8>>,
    now: u64,
    out: Vec<Reply>,
}

impl AsyncVisit for &mut KeyVisit {
    async fn visit(
        &mut self,
        skey: &[u8],
        value: Bytes,
        work: &mut Work<'_>,
    ) -> StoreResult<usize> {
        let (_, key) = keys::decode_top(skey).ok_or_else(|| crate::db::bad_record(skey))?;
        let meta = decode(key, value)?.meta;
        if meta.expired(self.now)
            || self
                .kind
                .as_ref()
                .is_some_and(|k| !k.eq_ignore_ascii_case(meta.kind.name().as_bytes()))
        {
            work.spend(1).await;
            return Ok(0);
        }
        if matches(&self.pattern, key, work).await {
            self.out.push(Reply::bulk(key));
            return Ok(key.len());
        }
        Ok(0)
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
pub(crate) async fn scan<V: View>(
    v: &V,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    let Ok(start) = cursor::decode(a.get(1)) else {
        return Ok(Reply::err("invalid cursor"));
    };
    let (count, pattern, kind) = match scan_options(a, 2, true) {
        Ok(o) => o,
        Err(r) => return Ok(r),
    };
    let mut visit = KeyVisit {
        pattern: compile(pattern, MAX_KEY, work).await,
        kind: kind.map(<[u8]>::to_vec),
        now,
        out: Vec::new(),
    };
    let hash_of = |skey: &[u8]| keys::decode_top(skey).map(|(h, _)| h);
    let next = scan_region(
        v,
        keys::top_at(start),
        keys::top_end(),
        count,
        hash_of,
        work,
        &mut visit,
    )
    .await?;
    Ok(Reply::Array(vec![
        Reply::Bulk(Some(cursor::encode(next).into_bytes())),
        Reply::Array(visit.out),
    ]))
}

/// `RANDOMKEY`: the first live key at or after a random hash (wrapping around).
pub(crate) async fn randomkey<V: View>(v: &V, now: u64, work: &mut Work<'_>) -> StoreResult<Reply> {
    if v.counts().keys == 0 {
        return Ok(Reply::Null);
    }
    for _ in 0..100 {
        let at = fastrand::u64(..);
        for (from, to) in [
            (keys::top_at(at), keys::top_end()),
            (keys::top_at(0), keys::top_at(at)),
        ] {
            let first = v.raw_range(Included(from), Excluded(to), 1).await?;
            if let Some((skey, value)) = first.into_iter().next() {
                let (_, key) =
                    keys::decode_top(&skey).ok_or_else(|| crate::db::bad_record(&skey))?;
                if !decode(key, value)?.meta.expired(now) {
                    return Ok(Reply::bulk(key));
                }
                break;
            }
        }
        work.spend(1).await;
    }
    Ok(Reply::Null)
}

/// `OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ|HELP key`.
pub(crate) async fn object<V: View>(v: &V, a: &Args<'_>, now: u64) -> StoreResult<Reply> {
    let sub = a.get(1).to_ascii_uppercase();
    if sub == b"HELP" {
        return Ok(Reply::Array(
            [
                "OBJECT <subcommand>",
                "ENCODING <key>",
                "REFCOUNT <key>",
                "IDLETIME <key>",
            ]
            .iter()
            .map(|s| Reply::Simple(s.to_string()))
            .collect(),
        ));
    }
    if a.len() != 3 {
        return Ok(Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try OBJECT HELP.",
            String::from_utf8_lossy(a.get(1))
        )));
    }
    let Some(e) = lookup(v, a.get(2), now).await? else {
        return Ok(Reply::Null);
    };
    Ok(match sub.as_slice() {
        b"ENCODING" => Reply::bulk(
            match e.meta.kind {
                Kind::String => super::strings::encoding(&e),
                Kind::Hash if e.meta.hint => "hashtable",
                Kind::Hash => "listpack",
                Kind::Set if e.meta.hint => "hashtable",
                Kind::Set => "intset",
                Kind::List => "quicklist",
            }
            .as_bytes(),
        ),
        b"REFCOUNT" => Reply::Int(1),
        b"IDLETIME" => Reply::Int(0),
        b"FREQ" => Reply::err("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
        _ => Reply::err(format!(
            "unknown subcommand '{}'. Try OBJECT HELP.",
            String::from_utf8_lossy(a.get(1))
        )),
    })
}

/// `MEMORY USAGE key`: the bytes its records take in the store (estimated for containers).
pub(crate) async fn memory<V: View>(v: &V, a: &Args<'_>, now: u64) -> StoreResult<Reply> {
    let sub = a.get(1).to_ascii_uppercase();
    match sub.as_slice() {
        b"USAGE" if a.len() >= 3 => {
            let key = a.get(2);
            Ok(match lookup(v, key, now).await? {
                None => Reply::Null,
                Some(e) => {
                    let record = 9 + key.len() + e.meta.len() + e.payload().len();
                    Reply::Int((record + 32 * e.meta.container.len as usize) as i64)
                }
            })
        }
        b"DOCTOR" => Ok(Reply::Verbatim(
            "txt",
            b"Sam, I detected no issues in this Redis instance.".to_vec(),
        )),
        _ => Ok(Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try MEMORY HELP.",
            String::from_utf8_lossy(a.get(1))
        ))),
    }
}

/// `DEL`/`UNLINK key...` (a container's items are left to the garbage collector, so both
/// are O(1) per key).
pub(crate) async fn delete(
    t: &mut Txn<'_>,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    let mut n = 0;
    for key in a.iter_from(1) {
        if let Some(e) = t.lookup_mut(key, now).await? {
            t.remove(key, &e.meta).await?;
            n += 1;
        }
        work.spend(1).await;
    }
    Ok(Reply::Int(n))
}

/// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT key time [NX|XX|GT|LT]`.
pub(crate) async fn expire(
    t: &mut Txn<'_>,
    cmd: Cmd,
    a: &Args<'_>,
    now: u64,
) -> StoreResult<Reply> {
    let name = match cmd {
        Cmd::Expire => "expire",
        Cmd::Pexpire => "pexpire",
        Cmd::Expireat => "expireat",
        _ => "pexpireat",
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in a.iter_from(3) {
        match opt.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => {
                return Ok(Reply::err(format!(
                    "Unsupported option {}",
                    String::from_utf8_lossy(opt)
                )))
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Ok(Reply::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Ok(Reply::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    let ms = matches!(cmd, Cmd::Pexpire | Cmd::Pexpireat);
    let absolute = matches!(cmd, Cmd::Expireat | Cmd::Pexpireat);
    let when = match expire_time(a.get(2), ms, absolute, now, name) {
        Ok(w) => w,
        Err(r) => return Ok(r),
    };
    let key = a.get(1);
    let Some(e) = t.lookup_mut(key, now).await? else {
        return Ok(Reply::Int(0));
    };
    let current = e.meta.expire.map(|c| c as i64);
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refused {
        return Ok(Reply::Int(0));
    }
    if when <= now as i64 {
        t.remove(key, &e.meta).await?;
    } else {
        let meta = Meta {
            expire: Some(when as u64),
            ..e.meta
        };
        t.store(key, Some(&e.meta), &meta, e.payload()).await?;
    }
    Ok(Reply::Int(1))
}

/// `PERSIST key`.
pub(crate) async fn persist(t: &mut Txn<'_>, a: &Args<'_>, now: u64) -> StoreResult<Reply> {
    let key = a.get(1);
    match t.lookup_mut(key, now).await? {
        Some(e) if e.meta.expire.is_some() => {
            let meta = Meta {
                expire: None,
                ..e.meta
            };
            t.store(key, Some(&e.meta), &meta, e.payload()).await?;
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}

/// `RENAME`/`RENAMENX src dst`: moves the record (with its TTL); a container's items stay
/// where they are, named by its id.
pub(crate) async fn rename(
    t: &mut Txn<'_>,
    cmd: Cmd,
    a: &Args<'_>,
    now: u64,
) -> StoreResult<Reply> {
    let (src, dst) = (a.get(1), a.get(2));
    let Some(e) = t.lookup_mut(src, now).await? else {
        return Ok(Reply::err("no such key"));
    };
    if src == dst {
        return Ok(if cmd == Cmd::Renamenx {
            Reply::Int(0)
        } else {
            Reply::OK
        });
    }
    let old = t.lookup_mut(dst, now).await?.map(|d| d.meta);
    if cmd == Cmd::Renamenx && old.is_some() {
        return Ok(Reply::Int(0));
    }
    let (meta, payload) = (e.meta, e.payload().to_vec());
    // Remove the source's record without giving its container to the garbage collector.
    let string = Meta {
        kind: Kind::String,
        container: Default::default(),
        ..meta
    };
    t.remove(src, &string).await?;
    t.store(dst, old.as_ref(), &meta, &payload).await?;
    Ok(if cmd == Cmd::Renamenx {
        Reply::Int(1)
    } else {
        Reply::OK
    })
}

/// `COPY src dst [DB 0] [REPLACE]`.
pub(crate) async fn copy(
    t: &mut Txn<'_>,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    let (src, dst) = (a.get(1), a.get(2));
    let mut replace = false;
    let mut i = 3;
    while i < a.len() {
        match a.get(i).to_ascii_uppercase().as_slice() {
            b"REPLACE" => replace = true,
            b"DB" if i + 1 < a.len() => {
                match int_arg(a.get(i + 1)) {
                    Ok(0) => {}
                    Ok(_) => return Ok(Reply::err("DB index is out of range")),
                    Err(r) => return Ok(r),
                }
                i += 1;
            }
            _ => return Ok(Reply::syntax()),
        }
        i += 1;
    }
    if src == dst {
        return Ok(Reply::err("source and destination objects are the same"));
    }
    let Some(e) = t.lookup_mut(src, now).await? else {
        return Ok(Reply::Int(0));
    };
    let old = t.lookup_mut(dst, now).await?.map(|d| d.meta);
    if old.is_some() && !replace {
        return Ok(Reply::Int(0));
    }
    let (mut meta, payload) = (e.meta, e.payload().to_vec());
    if meta.kind != Kind::String {
        let (from, id) = (meta.container.id, t.new_id());
        meta.container.id = id;
        let mut at = Included(keys::items_start(from));
        loop {
            let chunk = t
                .raw_range(at.clone(), Excluded(keys::items_end(from)), CHUNK)
                .await?;
            let Some((last, _)) = chunk.last() else { break };
            at = Excluded(last.clone());
            for (k, v) in chunk {
                let mut nk = keys::items_start(id);
                nk.extend_from_slice(&k[9..]);
                t.raw_put(&nk, &v).await?;
                work.spend(1).await;
            }
        }
    }
    t.store(dst, old.as_ref(), &meta, &payload).await?;
    Ok(Reply::Int(1))
}

/// `FLUSHDB`/`FLUSHALL [ASYNC|SYNC]`.
pub(crate) async fn flush(
    t: &mut Txn<'_>,
    a: &Args<'_>,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    match a.len() {
        1 => {}
        2 if a.get(1).eq_ignore_ascii_case(b"ASYNC") || a.get(1).eq_ignore_ascii_case(b"SYNC") => {}
        _ => return Ok(Reply::syntax()),
    }
    t.clear_all(work).await?;
    Ok(Reply::OK)
}
