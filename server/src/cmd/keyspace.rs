//! Keyspace commands: DEL, EXISTS, SCAN.

use std::ops::Bound;

use faultless_store::MAX_KEY_LEN;
use futures::StreamExt;

use super::{store_err, transaction, Ctx};
use crate::cursor;
use crate::glob::Pattern;
use crate::protocol::parse::number;
use crate::protocol::reply::array_header;
use crate::protocol::{Args, Reply};
use crate::work::GLOB_STEPS_PER_UNIT;

/// Most bytes of keys one SCAN reply carries: past this a SCAN returns early, with a cursor
/// that goes on from there (COUNT is a hint, as in Redis).
pub(crate) const SCAN_REPLY_BYTES: usize = 1 << 20;

/// Pattern bytes compiled between two accountings of work.
const COMPILE_SLICE: usize = 64 * 1024;

/// `EXISTS key [key ...]`, from one snapshot.
pub(crate) async fn exists(ctx: &mut Ctx<'_, '_>, args: &Args<'_, '_>) {
    let txn = ctx.shared.store.read_txn();
    let mut count = 0;
    for key in args.iter_from(1) {
        match txn.get(key).await {
            Ok(Some(_)) => count += 1,
            Ok(None) => {}
            Err(e) => return ctx.reply(store_err(e)),
        }
        ctx.work.spend(1).await;
    }
    ctx.reply(Reply::Int(count));
}

/// `DEL key [key ...]`, atomically.
pub(crate) async fn delete(ctx: &mut Ctx<'_, '_>, args: &Args<'_, '_>) {
    let work = &mut *ctx.work;
    let reply = transaction(&ctx.shared.store, |mut txn| async move {
        let mut n = 0;
        for key in args.iter_from(1) {
            n += txn.delete(key).await? as i64;
            work.spend(1).await;
        }
        txn.commit().await?;
        Ok(Reply::Int(n))
    })
    .await;
    ctx.reply(reply);
}

/// `SCAN cursor [MATCH pattern] [COUNT count]`: up to `count` keys after the cursor's, in
/// key order, those matching `pattern` returned.
pub(crate) async fn scan(ctx: &mut Ctx<'_, '_>, args: &Args<'_, '_>) {
    let start = match cursor::decode(args.get(1)) {
        Ok(start) => start,
        Err(e) => return ctx.reply(Reply::err(e)),
    };
    let mut count = 10usize;
    let mut pattern = None;
    let mut i = 2;
    while i < args.len() {
        let opt = args.get(i);
        match (i + 1 < args.len()).then(|| args.get(i + 1)) {
            Some(c) if opt.eq_ignore_ascii_case(b"COUNT") => match number(c) {
                Some(c) if c > 0 => count = c as usize,
                _ => return ctx.reply(Reply::err("value is not an integer or out of range")),
            },
            Some(p) if opt.eq_ignore_ascii_case(b"MATCH") => pattern = Some(p),
            _ => return ctx.reply(Reply::err("syntax error")),
        }
        i += 2;
    }
    // As Redis does, `MATCH *` filters nothing. Other patterns are compiled a slice at a
    // time: a pattern may be as long as a request.
    let pattern = match pattern {
        None | Some(b"*") => None,
        Some(p) => {
            let mut builder = Pattern::builder(p, MAX_KEY_LEN);
            while !builder.advance(COMPILE_SLICE) {
                ctx.work.spend(COMPILE_SLICE as u64 / 1024).await;
            }
            Some(builder.finish())
        }
    };
    let lower = match start {
        Some(k) => Bound::Excluded(k),
        None => Bound::Unbounded,
    };
    let mut entries = ctx.shared.store.range((lower, Bound::Unbounded));
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let (mut seen, mut bytes) = (0, 0);
    let mut last = None;
    let mut exhausted = false;
    while seen < count && bytes < SCAN_REPLY_BYTES {
        match entries.next().await {
            Some(Ok((key, _))) => {
                seen += 1;
                let mut steps = 0;
                if pattern.as_ref().is_none_or(|p| p.matches(&key, &mut steps)) {
                    bytes += key.len();
                    keys.push(key.clone());
                }
                last = Some(key);
                ctx.work.spend(1 + steps / GLOB_STEPS_PER_UNIT).await;
            }
            Some(Err(e)) => return ctx.reply(store_err(e)),
            None => {
                exhausted = true;
                break;
            }
        }
    }
    let next = match last {
        Some(k) if !exhausted => cursor::encode(&k),
        _ => "0".to_string(),
    };
    let out = ctx.out.raw();
    array_header(out, 2);
    Reply::Bulk(Some(next.into_bytes())).encode(out);
    array_header(out, keys.len());
    for k in keys {
        Reply::Bulk(Some(k)).encode(out);
    }
}
