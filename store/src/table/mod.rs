//! Named tables: several ordered keyspaces in one store (as LMDB's named databases or
//! redb's tables), each with its own keys, over the one tree and log.
//!
//! A table is a namespace inside the store's keyspace ([`layout`] has the key layout): its
//! entries are ordinary store entries under the reserved prefix and the table's id, so a
//! table gets everything the store gives its keys for free: snapshots, the one write
//! transaction, the log's durability, checkpoints, recovery. A catalog (itself a table of
//! the same layout) maps names to ids; ids are handed out from a counter and never reused,
//! so a table deleted and created again starts empty whatever a stale reader holds.
//!
//! * Reads: [`ReadTxn::table`] gives a [`ReadTable`] (`get`, ranges forward and backward,
//!   prefixes) over the transaction's snapshot, or `None` if the table does not exist there.
//! * Writes: [`WriteTxn::table`] opens the table, creating it if missing, and gives a
//!   [`WriteTable`] that borrows the transaction; [`WriteTxn::delete_table`] deletes a table
//!   and its entries. Everything commits (or is dropped) with the transaction.
//! * A table's ranges are bounded by its prefix: they never reach another table or the
//!   default keyspace, and the default keyspace's ranges skip the tables' region.
//! * No count is kept per table: [`Store::len`](crate::Store::len) counts every entry of the
//!   store, the tables' and the catalog's included.

pub(crate) mod layout;

use std::ops::{Bound, RangeBounds};

use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::read::{RangeStream, ReadTxn, ValueRef};
use crate::txn::WriteTxn;
use layout::{
    catalog_key, check_name, check_table_key, counter_key, table_bounds, table_key,
    table_prefix_bounds, CATALOG_ID, MAX_TABLE_ID, TABLE_KEY_OVERHEAD,
};

/// A table's id from its catalog entry.
fn parse_id(name: &str, value: &[u8]) -> Result<u32> {
    let id = <[u8; 4]>::try_from(value)
        .map(u32::from_be_bytes)
        .map_err(|_| {
            Error::corrupt(
                None,
                format!(
                    "the catalog entry of table {name:?} is {} bytes, not 4",
                    value.len()
                ),
            )
        })?;
    if id > MAX_TABLE_ID {
        return Err(Error::corrupt(
            None,
            format!("the catalog entry of table {name:?} holds the reserved id {id:#x}"),
        ));
    }
    Ok(id)
}

/// The user keys of a stream over the store's keys of one table (its prefix cut off).
fn strip(stream: RangeStream) -> RangeStream {
    Box::pin(stream.map_ok(|(mut key, value)| {
        key.drain(..TABLE_KEY_OVERHEAD);
        (key, value)
    }))
}

/// The table names under the catalog's entries in `stream`, in byte order.
async fn names(stream: RangeStream) -> Result<Vec<String>> {
    let keys: Vec<Vec<u8>> = strip(stream).map_ok(|(k, _)| k).try_collect().await?;
    keys.into_iter()
        .map(|k| {
            String::from_utf8(k)
                .map_err(|_| Error::corrupt(None, "a table name in the catalog is not UTF-8"))
        })
        .collect()
}

/// The bounds of `bounds`, borrowed as slices.
fn slice_bounds<R: RangeBounds<Vec<u8>>>(bounds: &R) -> (Bound<&[u8]>, Bound<&[u8]>) {
    fn conv(b: Bound<&Vec<u8>>) -> Bound<&[u8]> {
        b.map(Vec::as_slice)
    }
    (conv(bounds.start_bound()), conv(bounds.end_bound()))
}

impl ReadTxn {
    /// The table `name` in this snapshot, or `None` if it does not exist there. Names are 1
    /// to [`MAX_TABLE_NAME_LEN`](crate::MAX_TABLE_NAME_LEN) bytes.
    ///
    /// ```
    /// # use faultless_store::{blocking, StoreOptions};
    /// # let path = std::env::temp_dir().join(format!("table-doc-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// # let store = blocking::Store::open(&path, StoreOptions::new())?;
    /// use futures::TryStreamExt;
    /// let (users, default) = store.call(|s| async move {
    ///     // Write: open (creating) two tables, and use the same key in each.
    ///     let mut txn = s.write_txn().await?;
    ///     txn.table("users").await?.put(b"1", b"ann").await?;
    ///     txn.table("orders").await?.put(b"1", b"two apples").await?;
    ///     txn.put(b"1", b"the default keyspace").await?;
    ///     txn.commit().await?;
    ///
    ///     // Read: a table from a snapshot, `None` if it does not exist.
    ///     let snap = s.read_txn();
    ///     assert!(snap.table("nope").await?.is_none());
    ///     let users = snap.table("users").await?.expect("created above");
    ///     let all: Vec<(Vec<u8>, Vec<u8>)> = users
    ///         .range(..)
    ///         .map_ok(|(k, v)| (k, v.to_vec()))
    ///         .try_collect()
    ///         .await?;
    ///     assert_eq!(snap.table_names().await?, ["orders", "users"]);
    ///     Ok((all, snap.get(b"1").await?.map(|v| v.to_vec())))
    /// })?;
    /// assert_eq!(users, [(b"1".to_vec(), b"ann".to_vec())]);
    /// assert_eq!(default.as_deref(), Some(&b"the default keyspace"[..]));
    /// # store.close()?;
    /// # for slot in 0..3 { let _ = std::fs::remove_file(format!("{}-wal.{slot}", path.display())); }
    /// # let _ = std::fs::remove_file(&path);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn table(&self, name: &str) -> Result<Option<ReadTable>> {
        check_name(name)?;
        let Some(value) = self.get_raw(&catalog_key(name)).await? else {
            return Ok(None);
        };
        let id = parse_id(name, &value)?;
        Ok(Some(ReadTable {
            txn: self.clone(),
            id,
            name: name.to_owned(),
        }))
    }

    /// The names of the tables in this snapshot, in byte order.
    pub async fn table_names(&self) -> Result<Vec<String>> {
        let (start, end) = layout::table_bounds(CATALOG_ID, Bound::Unbounded, Bound::Unbounded);
        names(crate::range::stream(self.clone(), start, end, false)).await
    }
}

/// A named table in a read snapshot ([`ReadTxn::table`]): the same snapshot, seen through
/// the table's keys. It holds the snapshot (cheap to clone, like [`ReadTxn`]).
#[derive(Clone)]
pub struct ReadTable {
    txn: ReadTxn,
    id: u32,
    name: String,
}

impl ReadTable {
    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key` in the table. Keys are 1 to
    /// [`MAX_TABLE_KEY_LEN`](crate::MAX_TABLE_KEY_LEN) bytes.
    pub async fn get(&self, key: &[u8]) -> Result<Option<ValueRef>> {
        check_table_key(key)?;
        self.txn.get_raw(&table_key(self.id, key)).await
    }

    /// The table's entries with keys in `bounds`, in key order (keys without the table's
    /// prefix); see [`ReadTxn::range`].
    pub fn range<R: RangeBounds<Vec<u8>>>(&self, bounds: R) -> RangeStream {
        let (start, end) = slice_bounds(&bounds);
        self.stream(table_bounds(self.id, start, end), false)
    }

    /// The table's entries with keys in `bounds`, in descending key order.
    pub fn range_rev<R: RangeBounds<Vec<u8>>>(&self, bounds: R) -> RangeStream {
        let (start, end) = slice_bounds(&bounds);
        self.stream(table_bounds(self.id, start, end), true)
    }

    /// The table's entries whose keys begin with `prefix`, in key order (the empty prefix:
    /// all of them).
    pub fn prefix(&self, prefix: &[u8]) -> RangeStream {
        self.stream(table_prefix_bounds(self.id, prefix), false)
    }

    /// The table's entries whose keys begin with `prefix`, in descending key order.
    pub fn prefix_rev(&self, prefix: &[u8]) -> RangeStream {
        self.stream(table_prefix_bounds(self.id, prefix), true)
    }

    fn stream(&self, (start, end): layout::KeyBounds, reverse: bool) -> RangeStream {
        strip(crate::range::stream(self.txn.clone(), start, end, reverse))
    }
}

impl WriteTxn {
    /// The id of table `name` as this transaction sees it.
    async fn table_id(&self, name: &str) -> Result<Option<u32>> {
        check_name(name)?;
        match self.get_raw(&catalog_key(name)).await? {
            Some(value) => parse_id(name, &value).map(Some),
            None => Ok(None),
        }
    }

    /// The table `name`, created (empty) if it does not exist; the creation commits with
    /// the transaction. Names are 1 to [`MAX_TABLE_NAME_LEN`](crate::MAX_TABLE_NAME_LEN)
    /// bytes. See [`ReadTxn::table`] for an example.
    pub async fn table(&mut self, name: &str) -> Result<WriteTable<'_>> {
        let id = match self.table_id(name).await? {
            Some(id) => id,
            None => {
                let counter = counter_key();
                let next = match self.get_raw(&counter).await? {
                    None => 0,
                    Some(v) => <[u8; 4]>::try_from(v.as_slice())
                        .map(u32::from_be_bytes)
                        .map_err(|_| Error::corrupt(None, "the table id counter is not 4 bytes"))?,
                };
                if next > MAX_TABLE_ID {
                    return Err(Error::BadInput(
                        "every table id has been used: no table can be created".into(),
                    ));
                }
                self.put_raw(&counter, &(next + 1).to_be_bytes()).await?;
                self.put_raw(&catalog_key(name), &next.to_be_bytes())
                    .await?;
                next
            }
        };
        Ok(WriteTable { txn: self, id })
    }

    /// The table `name` if it exists (as this transaction sees it), without creating it.
    pub async fn open_table(&mut self, name: &str) -> Result<Option<WriteTable<'_>>> {
        Ok(self
            .table_id(name)
            .await?
            .map(|id| WriteTable { txn: self, id }))
    }

    /// Deletes table `name` and every entry in it; true if it existed. The entries are
    /// deleted as the transaction's own deletes (one per key, walked in order), so the
    /// transaction holds, and its commit logs, one delete per entry: deleting a table costs
    /// what deleting its keys one by one in one transaction costs. Its id is never handed
    /// out again; a table created under the same name later starts empty.
    pub async fn delete_table(&mut self, name: &str) -> Result<bool> {
        let Some(id) = self.table_id(name).await? else {
            return Ok(false);
        };
        let (start, end) = table_prefix_bounds(id, b"");
        // The stream owns a copy of this transaction's view: deleting while walking is safe.
        let mut entries = self.raw_range(start, end, false);
        while let Some(entry) = entries.next().await {
            let (key, _) = entry?;
            self.record(&key, true, None);
        }
        self.delete_raw(&catalog_key(name)).await?;
        Ok(true)
    }

    /// The names of the tables as this transaction sees them, in byte order.
    pub async fn table_names(&self) -> Result<Vec<String>> {
        let (start, end) = table_prefix_bounds(CATALOG_ID, b"");
        names(self.raw_range(start, end, false)).await
    }
}

/// A named table in the write transaction ([`WriteTxn::table`]): its reads see the
/// transaction's own writes, and its writes commit (or are dropped) with the transaction.
pub struct WriteTable<'t> {
    txn: &'t mut WriteTxn,
    id: u32,
}

impl WriteTable<'_> {
    /// The value of `key` in the table as the transaction sees it.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        check_table_key(key)?;
        self.txn.get_raw(&table_key(self.id, key)).await
    }

    /// Inserts or replaces `key` in the table. Keys are 1 to
    /// [`MAX_TABLE_KEY_LEN`](crate::MAX_TABLE_KEY_LEN) bytes; a longer or empty key fails
    /// with [`Error::BadInput`].
    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        check_table_key(key)?;
        self.txn.put_raw(&table_key(self.id, key), value).await
    }

    /// Deletes `key` from the table; true if it existed.
    pub async fn delete(&mut self, key: &[u8]) -> Result<bool> {
        check_table_key(key)?;
        self.txn.delete_raw(&table_key(self.id, key)).await
    }

    /// The table's entries with keys in `bounds`, in key order, as the transaction sees
    /// them now; see [`WriteTxn::range`].
    pub fn range<R: RangeBounds<Vec<u8>>>(&self, bounds: R) -> RangeStream {
        let (start, end) = slice_bounds(&bounds);
        let (start, end) = table_bounds(self.id, start, end);
        strip(self.txn.raw_range(start, end, false))
    }

    /// The table's entries with keys in `bounds`, in descending key order.
    pub fn range_rev<R: RangeBounds<Vec<u8>>>(&self, bounds: R) -> RangeStream {
        let (start, end) = slice_bounds(&bounds);
        let (start, end) = table_bounds(self.id, start, end);
        strip(self.txn.raw_range(start, end, true))
    }

    /// The table's entries whose keys begin with `prefix`, in key order.
    pub fn prefix(&self, prefix: &[u8]) -> RangeStream {
        let (start, end) = table_prefix_bounds(self.id, prefix);
        strip(self.txn.raw_range(start, end, false))
    }
}
