//! String commands: GET, MGET, SET (with NX/XX), MSET, INCR.

use faultless_store::Store;

use super::{store_err, transaction};
use crate::protocol::Reply;

/// `GET key`.
pub(crate) async fn get(store: &Store, key: &[u8]) -> Reply {
    match store.get(key).await {
        Ok(v) => Reply::Bulk(v.map(|v| v.to_vec())),
        Err(e) => store_err(e),
    }
}

/// `MGET key [key ...]`, from one snapshot.
pub(crate) async fn mget(store: &Store, keys: &[Vec<u8>]) -> Reply {
    let txn = store.read_txn();
    let mut items = Vec::with_capacity(keys.len());
    for k in keys {
        items.push(match txn.get(k).await {
            Ok(v) => Reply::Bulk(v.map(|v| v.to_vec())),
            Err(e) => store_err(e),
        });
    }
    Reply::Array(items)
}

/// `SET key value [NX|XX]`.
pub(crate) async fn set(store: &Store, args: &[Vec<u8>]) -> Reply {
    let (mut nx, mut xx) = (false, false);
    for opt in &args[3..] {
        match opt.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            _ => return Reply::err("syntax error"),
        }
    }
    if nx && xx {
        return Reply::err("syntax error");
    }
    if !nx && !xx {
        return match store.put(&args[1], &args[2]).await {
            Ok(()) => Reply::Status("OK"),
            Err(e) => store_err(e),
        };
    }
    transaction(store, |mut txn| async move {
        let exists = txn.get(&args[1]).await?.is_some();
        if (nx && exists) || (xx && !exists) {
            return Ok(Reply::Bulk(None));
        }
        txn.put(&args[1], &args[2]).await?;
        txn.commit().await?;
        Ok(Reply::Status("OK"))
    })
    .await
}

/// `MSET key value [key value ...]`, atomically.
pub(crate) async fn mset(store: &Store, pairs: &[Vec<u8>]) -> Reply {
    transaction(store, |mut txn| async move {
        for kv in pairs.chunks(2) {
            txn.put(&kv[0], &kv[1]).await?;
        }
        txn.commit().await?;
        Ok(Reply::Status("OK"))
    })
    .await
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
