//! Hashes and sets: containers whose items are stored one per store key (`db::keys`), so
//! HSET/HGET/HDEL/SADD/SISMEMBER are one O(log n) store operation each, and the key's
//! record holds the count (HLEN, SCARD are O(1)). A set is a hash whose values are empty.

use std::ops::Bound::{Excluded, Included};

use faultless_store::Result as StoreResult;

use super::keyspace::{compile, matches, scan_options, scan_region, AsyncVisit};
use super::{float, format_float, int, Cmd};
use crate::cursor;
use crate::db::keys::{self, MAX_FIELD};
use crate::db::{lookup, Bytes, Entry, Kind, Meta, Txn, View};
use crate::protocol::{Args, Reply};
use crate::work::Work;

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(reply) => return Ok(reply),
        }
    };
}

fn kind_of(cmd: Cmd) -> Kind {
    use Cmd::*;
    match cmd {
        Smembers | Sismember | Smismember | Scard | Srandmember | Sscan | Sadd | Srem | Spop => {
            Kind::Set
        }
        _ => Kind::Hash,
    }
}

/// `key`'s container of type `kind`: `None` if missing, WRONGTYPE if another type.
fn container(e: Option<Entry>, kind: Kind) -> Result<Option<Entry>, Reply> {
    match e {
        Some(e) if e.meta.kind != kind => Err(Reply::wrong_type()),
        e => Ok(e),
    }
}

/// Every item of container `id`: (field, value).
pub(crate) async fn all_items<V: View>(
    v: &V,
    id: u64,
    work: &mut Work<'_>,
) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut from = Included(keys::items_start(id));
    loop {
        let chunk = v
            .raw_range(from.clone(), Excluded(keys::items_end(id)), 256)
            .await?;
        let Some((last, _)) = chunk.last() else { break };
        from = Excluded(last.clone());
        for (k, val) in chunk {
            let (_, field) = keys::decode_item(&k).ok_or_else(|| crate::db::bad_record(&k))?;
            out.push((field.to_vec(), val.to_vec()));
        }
        work.spend(1 + out.len() as u64 / 256).await;
    }
    Ok(out)
}

fn field_too_long(f: &[u8]) -> Option<Reply> {
    (f.len() > MAX_FIELD).then(|| {
        Reply::err(format!(
            "field of {} bytes is too long: this server keeps hash fields and set members of up to {MAX_FIELD} bytes",
            f.len()
        ))
    })
}

/// Reads: HGET, HMGET, HEXISTS, HLEN, HKEYS, HVALS, HGETALL, HSTRLEN, HSCAN, HRANDFIELD,
/// SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SRANDMEMBER, SSCAN.
pub(crate) async fn read<V: View>(
    v: &V,
    cmd: Cmd,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    use Cmd::*;
    let kind = kind_of(cmd);
    let e = tri!(container(lookup(v, a.get(1), now).await?, kind));
    let id = e.as_ref().map(|e| e.meta.container.id);
    let len = e.as_ref().map_or(0, |e| e.meta.container.len);
    let get = |f: &[u8]| {
        let skey = id
            .filter(|_| f.len() <= MAX_FIELD)
            .map(|id| keys::item(id, f));
        async move {
            match skey {
                Some(k) => v.raw_get(&k).await,
                _ => Ok(None),
            }
        }
    };
    Ok(match cmd {
        Hget => get(a.get(2))
            .await?
            .map_or(Reply::Null, |b| Reply::bulk(&b)),
        Hmget => {
            let mut out = Vec::new();
            for f in a.iter_from(2) {
                out.push(get(f).await?.map_or(Reply::Null, |b| Reply::bulk(&b)));
                work.spend(1).await;
            }
            Reply::Array(out)
        }
        Hexists | Sismember => Reply::Int(get(a.get(2)).await?.is_some() as i64),
        Smismember => {
            let mut out = Vec::new();
            for f in a.iter_from(2) {
                out.push(Reply::Int(get(f).await?.is_some() as i64));
                work.spend(1).await;
            }
            Reply::Array(out)
        }
        Hstrlen => Reply::Int(get(a.get(2)).await?.map_or(0, |b| b.len()) as i64),
        Hlen | Scard => Reply::Int(len as i64),
        Hkeys | Hvals | Hgetall | Smembers => {
            let items = match id {
                Some(id) => all_items(v, id, work).await?,
                None => Vec::new(),
            };
            match cmd {
                Hkeys => Reply::Array(
                    items
                        .into_iter()
                        .map(|(f, _)| Reply::Bulk(Some(f)))
                        .collect(),
                ),
                Hvals => Reply::Array(
                    items
                        .into_iter()
                        .map(|(_, v)| Reply::Bulk(Some(v)))
                        .collect(),
                ),
                Smembers => Reply::Set(
                    items
                        .into_iter()
                        .map(|(f, _)| Reply::Bulk(Some(f)))
                        .collect(),
                ),
                _ => Reply::Map(
                    items
                        .into_iter()
                        .map(|(f, v)| (Reply::Bulk(Some(f)), Reply::Bulk(Some(v))))
                        .collect(),
                ),
            }
        }
        Hscan | Sscan => {
            let Ok(start) = cursor::decode(a.get(2)) else {
                return Ok(Reply::err("invalid cursor"));
            };
            let (count, pattern, _) = tri!(scan_options(a, 3, false));
            let mut visit = ItemVisit {
                pattern: compile(pattern, MAX_FIELD, work).await,
                values: cmd == Hscan,
                out: Vec::new(),
            };
            let next = match id {
                Some(id) => {
                    let hash_of = |k: &[u8]| keys::decode_item(k).map(|(h, _)| h);
                    scan_region(
                        v,
                        keys::item_at(id, start),
                        keys::items_end(id),
                        count,
                        hash_of,
                        work,
                        &mut visit,
                    )
                    .await?
                }
                None => None,
            };
            Reply::Array(vec![
                Reply::Bulk(Some(cursor::encode(next).into_bytes())),
                Reply::Array(visit.out),
            ])
        }
        _ => {
            // HRANDFIELD key [count [WITHVALUES]], SRANDMEMBER key [count]
            let with_values =
                cmd == Hrandfield && a.len() == 4 && a.get(3).eq_ignore_ascii_case(b"WITHVALUES");
            if a.len() > 4 || (a.len() == 4 && !with_values) {
                return Ok(Reply::syntax());
            }
            let count = if a.len() >= 3 {
                match int(a.get(2)) {
                    Some(c)
                        if (-i64::MAX..-super::MAX_RANDOM_ITEMS).contains(&c)
                            && (!with_values || -c <= i64::MAX / 2) =>
                    {
                        return Ok(Reply::err(format!(
                            "count is out of range: at most {} repeated items per call",
                            super::MAX_RANDOM_ITEMS
                        )))
                    }
                    Some(c) if c >= -i64::MAX && (c >= 0 || !with_values || -c <= i64::MAX / 2) => {
                        Some(c)
                    }
                    Some(_) => return Ok(Reply::err("value is out of range")),
                    None => return Ok(Reply::not_integer()),
                }
            } else {
                None
            };
            let items = match id {
                Some(id) => all_items(v, id, work).await?,
                None => Vec::new(),
            };
            random_items(items, count, with_values, cmd == Hrandfield)
        }
    })
}

fn random_items(
    mut items: Vec<(Vec<u8>, Vec<u8>)>,
    count: Option<i64>,
    with_values: bool,
    hash: bool,
) -> Reply {
    let Some(count) = count else {
        if items.is_empty() {
            return Reply::Null;
        }
        let i = fastrand::usize(..items.len());
        return Reply::Bulk(Some(items.swap_remove(i).0));
    };
    if items.is_empty() || count == 0 {
        return Reply::Array(Vec::new());
    }
    let picked: Vec<(Vec<u8>, Vec<u8>)> = if count < 0 {
        let n = (-count) as usize;
        (0..n)
            .map(|_| items[fastrand::usize(..items.len())].clone())
            .collect()
    } else {
        fastrand::shuffle(&mut items);
        items.truncate(count as usize);
        items
    };
    if with_values {
        Reply::Pairs(
            picked
                .into_iter()
                .map(|(f, v)| (Reply::Bulk(Some(f)), Reply::Bulk(Some(v))))
                .collect(),
        )
    } else if hash {
        Reply::Array(
            picked
                .into_iter()
                .map(|(f, _)| Reply::Bulk(Some(f)))
                .collect(),
        )
    } else {
        Reply::Array(
            picked
                .into_iter()
                .map(|(f, _)| Reply::Bulk(Some(f)))
                .collect(),
        )
    }
}

struct ItemVisit {
    pattern: Option<crate::glob::Pattern>,
    values: bool,
    out: Vec<Reply>,
}

impl AsyncVisit for &mut ItemVisit {
    async fn visit(
        &mut self,
        skey: &[u8],
        value: Bytes,
        work: &mut Work<'_>,
    ) -> StoreResult<usize> {
        let (_, field) = keys::decode_item(skey).ok_or_else(|| crate::db::bad_record(skey))?;
        if !matches(&self.pattern, field, work).await {
            return Ok(0);
        }
        self.out.push(Reply::bulk(field));
        if self.values {
            self.out.push(Reply::bulk(&value));
        }
        Ok(field.len() + value.len())
    }
}

/// Writes: HSET, HMSET, HSETNX, HDEL, HINCRBY, HINCRBYFLOAT, SADD, SREM, SPOP.
pub(crate) async fn write(
    t: &mut Txn<'_>,
    cmd: Cmd,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    use Cmd::*;
    let kind = kind_of(cmd);
    let key = a.get(1);
    // Check the arguments before anything is read or written.
    match cmd {
        Hset | Hmset if a.len() % 2 != 0 => return Ok(Reply::wrong_args(a.get(0))),
        Spop if a.len() > 3 => return Ok(Reply::syntax()),
        Spop => {}
        _ => {
            for f in a
                .iter_from(2)
                .step_by(if matches!(cmd, Hset | Hmset) { 2 } else { 1 })
            {
                if let Some(r) = field_too_long(f) {
                    return Ok(r);
                }
                if matches!(cmd, Hsetnx | Hincrby | Hincrbyfloat) {
                    break;
                }
            }
        }
    }
    let by_int = match cmd {
        Hincrby => Some(tri!(int(a.get(3)).ok_or_else(Reply::not_integer))),
        _ => None,
    };
    let by_float = match cmd {
        Hincrbyfloat => match float(a.get(3)) {
            Some(f) if f.is_finite() => Some(f),
            Some(_) => return Ok(Reply::err("value is NaN or Infinity")),
            None => return Ok(Reply::err("value is not a valid float")),
        },
        _ => None,
    };
    let spop_count = match (cmd, a.len()) {
        (Spop, 3) => match int(a.get(2)) {
            Some(c) if c >= 0 => Some(c as usize),
            _ => return Ok(Reply::err("value is out of range, must be positive")),
        },
        _ => None,
    };
    let e = tri!(container(t.lookup_mut(key, now).await?, kind));
    let creates = matches!(cmd, Hset | Hmset | Hsetnx | Hincrby | Hincrbyfloat | Sadd);
    let old = e.as_ref().map(|e| e.meta);
    let mut meta = match old {
        Some(m) => m,
        None if creates => Meta::container(kind, t.new_id()),
        None => {
            return Ok(match cmd {
                Spop if spop_count.is_some() => Reply::Array(Vec::new()),
                Spop => Reply::Null,
                _ => Reply::Int(0),
            })
        }
    };
    let id = meta.container.id;
    let (max_entries, max_value, max_intset) = {
        let c = t.shared.config.borrow();
        (
            c.hash_max_listpack_entries,
            c.hash_max_listpack_value,
            c.set_max_intset_entries,
        )
    };
    let note_sizes = |meta: &mut Meta, f: &[u8], v: &[u8]| {
        if kind == Kind::Hash && (f.len() > max_value || v.len() > max_value) {
            meta.hint = true;
        }
        if kind == Kind::Set && int(f).is_none() {
            meta.hint = true;
        }
    };
    let reply = match cmd {
        Hset | Hmset | Sadd => {
            let step = if kind == Kind::Hash { 2 } else { 1 };
            let mut added = 0;
            let mut i = 2;
            while i < a.len() {
                let (f, v) = (a.get(i), if step == 2 { a.get(i + 1) } else { b"" });
                let skey = keys::item(id, f);
                let existed = t.raw_get(&skey).await?.is_some();
                if !(existed && kind == Kind::Set) {
                    t.raw_put(&skey, v).await?;
                }
                if !existed {
                    added += 1;
                    meta.container.len += 1;
                }
                note_sizes(&mut meta, f, v);
                work.spend(1).await;
                i += step;
            }
            if cmd == Hmset {
                Reply::OK
            } else {
                Reply::Int(added)
            }
        }
        Hsetnx => {
            let (f, v) = (a.get(2), a.get(3));
            let skey = keys::item(id, f);
            if t.raw_get(&skey).await?.is_some() {
                return Ok(Reply::Int(0));
            }
            t.raw_put(&skey, v).await?;
            meta.container.len += 1;
            note_sizes(&mut meta, f, v);
            Reply::Int(1)
        }
        Hincrby | Hincrbyfloat => {
            let f = a.get(2);
            let skey = keys::item(id, f);
            let current = t.raw_get(&skey).await?.map(|b| b.to_vec());
            let text = if let Some(by) = by_int {
                let base = match &current {
                    None => 0,
                    Some(c) => {
                        tri!(int(c).ok_or_else(|| Reply::err("hash value is not an integer")))
                    }
                };
                let Some(next) = base.checked_add(by) else {
                    return Ok(Reply::err("increment or decrement would overflow"));
                };
                next.to_string()
            } else {
                let base = match &current {
                    None => 0.0,
                    Some(c) => {
                        tri!(float(c).ok_or_else(|| Reply::err("hash value is not a float")))
                    }
                };
                let next = base + by_float.unwrap_or(0.0);
                if !next.is_finite() {
                    return Ok(Reply::err("increment would produce NaN or Infinity"));
                }
                format_float(next)
            };
            t.raw_put(&skey, text.as_bytes()).await?;
            if current.is_none() {
                meta.container.len += 1;
            }
            note_sizes(&mut meta, f, text.as_bytes());
            if by_int.is_some() {
                Reply::Int(text.parse().unwrap_or(0))
            } else {
                Reply::Bulk(Some(text.into_bytes()))
            }
        }
        Hdel | Srem => {
            let mut n = 0;
            for f in a.iter_from(2) {
                if t.raw_delete(&keys::item(id, f)).await? {
                    n += 1;
                    meta.container.len = meta.container.len.saturating_sub(1);
                }
                work.spend(1).await;
            }
            Reply::Int(n)
        }
        _ => {
            // SPOP
            let mut items = all_items(&*t, id, work).await?;
            fastrand::shuffle(&mut items);
            items.truncate(spop_count.unwrap_or(1));
            for (f, _) in &items {
                t.raw_delete(&keys::item(id, f)).await?;
                meta.container.len = meta.container.len.saturating_sub(1);
            }
            let mut members = items.into_iter().map(|(f, _)| Reply::Bulk(Some(f)));
            if spop_count.is_some() {
                Reply::Set(members.collect())
            } else {
                members.next().unwrap_or(Reply::Null)
            }
        }
    };
    let limit = if kind == Kind::Hash {
        max_entries
    } else {
        max_intset
    };
    if meta.container.len as usize > limit {
        meta.hint = true;
    }
    if meta.container.len == 0 {
        if old.is_some() {
            // Every item is gone already: nothing for the garbage collector.
            t.remove(key, &meta).await?;
        }
    } else {
        t.store(key, old.as_ref(), &meta, b"").await?;
    }
    Ok(reply)
}
