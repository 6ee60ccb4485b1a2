//! Keyspace commands: DEL, EXISTS, SCAN.

use std::ops::Bound;

use faultless_store::Store;

use super::{store_err, transaction};
use crate::protocol::parse::number;
use crate::protocol::Reply;
use crate::{cursor, glob};

/// `EXISTS key [key ...]`, from one snapshot.
pub(crate) async fn exists(store: &Store, keys: &[Vec<u8>]) -> Reply {
    let txn = store.read_txn();
    let mut count = 0;
    for k in keys {
        match txn.get(k).await {
            Ok(Some(_)) => count += 1,
            Ok(None) => {}
            Err(e) => return store_err(e),
        }
    }
    Reply::Int(count)
}

/// `DEL key [key ...]`, atomically.
pub(crate) async fn delete(store: &Store, keys: &[Vec<u8>]) -> Reply {
    transaction(store, |mut txn| async move {
        let mut n = 0;
        for k in keys {
            n += txn.delete(k).await? as i64;
        }
        txn.commit().await?;
        Ok(Reply::Int(n))
    })
    .await
}

/// `SCAN cursor [MATCH pattern] [COUNT count]`: up to `count` keys after the cursor's, in
/// key order.
pub(crate) async fn scan(store: &Store, args: &[Vec<u8>]) -> Reply {
    let start = match args[1].as_slice() {
        b"0" => None,
        c => match cursor::decode(c) {
            Some(k) => Some(k),
            None => return Reply::err("invalid cursor"),
        },
    };
    let mut count = 10usize;
    let mut pattern: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < args.len() {
        match (args[i].to_ascii_uppercase().as_slice(), args.get(i + 1)) {
            (b"COUNT", Some(c)) => match number(c) {
                Some(c) if c > 0 => count = c as usize,
                _ => return Reply::err("value is not an integer or out of range"),
            },
            (b"MATCH", Some(p)) => pattern = Some(p.clone()),
            _ => return Reply::err("syntax error"),
        }
        i += 2;
    }
    let lower = match start {
        Some(k) => Bound::Excluded(k),
        None => Bound::Unbounded,
    };
    let mut entries = store.range((lower, Bound::Unbounded));
    let mut keys = Vec::new();
    let mut last = None;
    let mut seen = 0;
    while seen < count {
        use futures::StreamExt;
        match entries.next().await {
            Some(Ok((k, _))) => {
                seen += 1;
                if pattern.as_deref().is_none_or(|p| glob::matches(p, &k)) {
                    keys.push(Reply::Bulk(Some(k.clone())));
                }
                last = Some(k);
            }
            Some(Err(e)) => return store_err(e),
            None => {
                last = None;
                break;
            }
        }
    }
    let cursor = match last {
        Some(k) if seen == count => cursor::encode(&k),
        _ => "0".to_string(),
    };
    Reply::Array(vec![
        Reply::Bulk(Some(cursor.into_bytes())),
        Reply::Array(keys),
    ])
}
