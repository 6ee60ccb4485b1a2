//! Lists, minimally (LPUSH, RPUSH, LPOP, RPOP, LLEN, LRANGE, LINDEX): elements stored one per
//! store key at signed positions between the list's head and tail, so pushing and popping
//! at either end, and reading by index, are O(log n).

use faultless_store::Result as StoreResult;

use super::{int, Cmd};
use crate::db::keys;
use crate::db::{lookup, Entry, Kind, Meta, Txn, View};
use crate::protocol::{Args, Reply};
use crate::work::Work;

fn list(e: Option<Entry>) -> Result<Option<Entry>, Reply> {
    match e {
        Some(e) if e.meta.kind != Kind::List => Err(Reply::wrong_type()),
        e => Ok(e),
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

/// LLEN, LRANGE, LINDEX.
pub(crate) async fn read<V: View>(
    v: &V,
    cmd: Cmd,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    let ints: Vec<i64> = match a.iter_from(2).map(int).collect::<Option<Vec<_>>>() {
        Some(v) => v,
        None => return Ok(Reply::not_integer()),
    };
    let e = tri!(list(lookup(v, a.get(1), now).await?));
    let (id, head, len) = e.map_or((0, 0, 0), |e| {
        (
            e.meta.container.id,
            e.meta.container.head,
            e.meta.container.len as i64,
        )
    });
    let element = |i: i64| {
        let skey = keys::list_item(id, head + i);
        async move { v.raw_get(&skey).await }
    };
    Ok(match cmd {
        Cmd::Llen => Reply::Int(len),
        Cmd::Lindex => {
            let i = if ints[0] < 0 { len + ints[0] } else { ints[0] };
            if i < 0 || i >= len {
                Reply::Null
            } else {
                element(i).await?.map_or(Reply::Null, |b| Reply::bulk(&b))
            }
        }
        _ => {
            let fix = |i: i64| if i < 0 { (len + i).max(0) } else { i };
            let (s, end) = (fix(ints[0]), fix(ints[1]).min(len - 1));
            let mut out = Vec::new();
            let mut i = s;
            while i <= end {
                if let Some(b) = element(i).await? {
                    out.push(Reply::bulk(&b));
                }
                work.spend(1).await;
                i += 1;
            }
            Reply::Array(out)
        }
    })
}

/// LPUSH, RPUSH, LPOP, RPOP.
pub(crate) async fn write(
    t: &mut Txn<'_>,
    cmd: Cmd,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    let key = a.get(1);
    let pop = matches!(cmd, Cmd::Lpop | Cmd::Rpop);
    let count = match (pop, a.len()) {
        (true, 3) => match int(a.get(2)) {
            Some(c) if c >= 0 => Some(c),
            _ => return Ok(Reply::err("value is out of range, must be positive")),
        },
        (true, n) if n > 3 => return Ok(Reply::syntax()),
        _ => None,
    };
    let e = tri!(list(t.lookup_mut(key, now).await?));
    let old = e.map(|e| e.meta);
    let mut meta = match old {
        Some(m) => m,
        None if !pop => Meta::container(Kind::List, t.new_id()),
        None => {
            return Ok(if count.is_some() {
                Reply::NullArray
            } else {
                Reply::Null
            })
        }
    };
    let id = meta.container.id;
    let c = &mut meta.container;
    let reply = if pop {
        let mut out = Vec::new();
        for _ in 0..count.unwrap_or(1).min(c.len as i64) {
            let at = if cmd == Cmd::Lpop { c.head } else { c.tail - 1 };
            let skey = keys::list_item(id, at);
            if let Some(v) = t.raw_get(&skey).await? {
                out.push(Reply::bulk(&v));
            }
            t.raw_delete(&skey).await?;
            if cmd == Cmd::Lpop {
                c.head += 1
            } else {
                c.tail -= 1
            }
            c.len = c.len.saturating_sub(1);
            work.spend(1).await;
        }
        if count.is_some() {
            Reply::Array(out)
        } else {
            out.pop().unwrap_or(Reply::Null)
        }
    } else {
        if c.len == 0 {
            c.head = 0;
            c.tail = 0;
        }
        for v in a.iter_from(2) {
            let at = if cmd == Cmd::Lpush {
                c.head -= 1;
                c.head
            } else {
                c.tail += 1;
                c.tail - 1
            };
            t.raw_put(&keys::list_item(id, at), v).await?;
            c.len += 1;
            work.spend(1).await;
        }
        Reply::Int(c.len as i64)
    };
    if meta.container.len == 0 {
        if old.is_some() {
            t.remove(key, &meta).await?;
        }
    } else {
        t.store(key, old.as_ref(), &meta, b"").await?;
    }
    Ok(reply)
}
