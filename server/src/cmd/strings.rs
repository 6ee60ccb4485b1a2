//! String commands: GET, MGET, SET (with NX/XX), MSET, INCR.

use faultless_store::{Result as StoreResult, Store, ValueRef};

use super::{store_err, transaction, Ctx};
use crate::connection::{Output, Stop};
use crate::protocol::reply::array_header;
use crate::protocol::{Args, Reply};

/// Writes a value read from the store as a bulk string (or the null bulk string, or the
/// error), copying it from the mapping into the reply buffer.
pub(crate) async fn write_value(
    out: &mut Output<'_>,
    value: StoreResult<Option<ValueRef>>,
) -> Result<(), Stop> {
    match value {
        Ok(Some(v)) => out.bulk(&v).await,
        Ok(None) => {
            out.reply(&Reply::Bulk(None));
            Ok(())
        }
        Err(e) => {
            out.reply(&store_err(e));
            Ok(())
        }
    }
}

/// `GET key`.
pub(crate) async fn get(ctx: &mut Ctx<'_, '_>, args: &Args<'_, '_>) -> Result<(), Stop> {
    let value = ctx.shared.store.get(args.get(1)).await;
    write_value(ctx.out, value).await
}

/// `MGET key [key ...]`, from one snapshot; values are streamed into the reply.
pub(crate) async fn mget(ctx: &mut Ctx<'_, '_>, args: &Args<'_, '_>) -> Result<(), Stop> {
    let txn = ctx.shared.store.read_txn();
    array_header(ctx.out.raw(), args.len() - 1);
    for key in args.iter_from(1) {
        let value = txn.get(key).await;
        write_value(ctx.out, value).await?;
        ctx.work.spend(1).await;
    }
    Ok(())
}

/// `SET key value [NX|XX]`.
pub(crate) async fn set(store: &Store, args: &Args<'_, '_>) -> Reply {
    let (mut nx, mut xx) = (false, false);
    for opt in args.iter_from(3) {
        if opt.eq_ignore_ascii_case(b"NX") {
            nx = true;
        } else if opt.eq_ignore_ascii_case(b"XX") {
            xx = true;
        } else {
            return Reply::err("syntax error");
        }
    }
    if nx && xx {
        return Reply::err("syntax error");
    }
    let (key, value) = (args.get(1), args.get(2));
    if !nx && !xx {
        return match store.put(key, value).await {
            Ok(()) => Reply::Status("OK"),
            Err(e) => store_err(e),
        };
    }
    transaction(store, |mut txn| async move {
        let exists = txn.get(key).await?.is_some();
        if (nx && exists) || (xx && !exists) {
            return Ok(Reply::Bulk(None));
        }
        txn.put(key, value).await?;
        txn.commit().await?;
        Ok(Reply::Status("OK"))
    })
    .await
}

/// `MSET key value [key value ...]`, atomically.
pub(crate) async fn mset(ctx: &mut Ctx<'_, '_>, args: &Args<'_, '_>) {
    if args.len() % 2 == 0 {
        return ctx.reply(Reply::wrong_args(args.get(0)));
    }
    let work = &mut *ctx.work;
    let reply = transaction(&ctx.shared.store, |mut txn| async move {
        let mut pairs = args.iter_from(1);
        while let (Some(k), Some(v)) = (pairs.next(), pairs.next()) {
            txn.put(k, v).await?;
            work.spend(1).await;
        }
        txn.commit().await?;
        Ok(Reply::Status("OK"))
    })
    .await;
    ctx.reply(reply);
}

/// `INCR key`.
pub(crate) async fn incr(store: &Store, key: &[u8]) -> Reply {
    transaction(store, |mut txn| async move {
        let current = match txn.get(key).await? {
            None => 0,
            Some(v) => match std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                Some(n) => n,
                None => return Ok(Reply::err("value is not an integer or out of range")),
            },
        };
        let Some(next) = current.checked_add(1) else {
            return Ok(Reply::err("increment or decrement would overflow"));
        };
        txn.put(key, next.to_string().as_bytes()).await?;
        txn.commit().await?;
        Ok(Reply::Int(next))
    })
    .await
}
