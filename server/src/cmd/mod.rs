//! Command execution: the command table ([`table`]), dispatch, and the commands by family:
//! [`strings`], [`keyspace`] (keys, expiry, SCAN), [`hashes`] (and sets), [`lists`], and
//! [`conn`] (connection and server commands, which need the client's state).
//!
//! Data commands are written against a [`View`] (reads: a snapshot, or the transaction
//! inside EXEC) or a [`Txn`] (writes, run by the committer), and return a [`Reply`]. `GET`
//! and `MGET` outside transactions are streamed from the mapping by the connection instead
//! (their replies can be large). Long commands account for their work ([`Work::spend`]),
//! which yields to the event loop now and then.

pub(crate) mod conn;
pub(crate) mod hashes;
pub(crate) mod keyspace;
pub(crate) mod lists;
pub(crate) mod strings;
pub(crate) mod table;

use faultless_store::Result as StoreResult;

use crate::db::keys::MAX_KEY;
use crate::db::{now_ms, Txn, View};
use crate::protocol::{Args, Reply};
use crate::work::Work;
pub(crate) use table::{lookup, Class, Cmd, Spec};

/// What the connection does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on with the next request.
    Continue,
    /// Close the connection once the replies so far are sent (QUIT, SHUTDOWN).
    Close,
}

/// Largest string Redis lets a command build (`proto-max-bulk-len`); bit offsets of GETBIT
/// are checked against it. Commands that build a string here (APPEND, SETRANGE, SETBIT) are
/// held to `--max-request` as well, the largest value a client could SET.
pub(crate) const MAX_STRING: usize = 512 << 20;

/// Most repeated items one HRANDFIELD/SRANDMEMBER with a negative count returns.
pub(crate) const MAX_RANDOM_ITEMS: i64 = 1_000_000;

/// Most cells of LCS's table (4 bytes each).
pub(crate) const MAX_LCS_CELLS: usize = 16 << 20;

/// Parses an integer argument as Redis does (`string2ll`): an optional `-`, digits, no
/// leading zeros, no spaces, within 64 bits.
pub(crate) fn int(a: &[u8]) -> Option<i64> {
    if a.is_empty() || a.len() > 20 {
        return None;
    }
    let digits = a.strip_prefix(b"-").unwrap_or(a);
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && (digits.len() > 1 || a.len() > 1))
    {
        return None;
    }
    std::str::from_utf8(a).ok()?.parse().ok()
}

/// An integer argument, or Redis's error.
pub(crate) fn int_arg(a: &[u8]) -> Result<i64, Reply> {
    int(a).ok_or_else(Reply::not_integer)
}

/// Parses a float argument as Redis does (`string2ld`): no spaces around it, not NaN.
pub(crate) fn float(a: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(a).ok()?;
    if s.is_empty()
        || s.starts_with(|c: char| c.is_whitespace())
        || s.ends_with(char::is_whitespace)
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// Formats a float result of INCRBYFLOAT/HINCRBYFLOAT: the shortest decimal that reads back
/// as the same double, never in exponent form, never `-0` (Redis prints a long double with
/// `%.17Lf` and cuts trailing zeros; a double here, so `1.5 - 1.1` is `0.3999999999999999`
/// where Redis says `0.4`).
pub(crate) fn format_float(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    format!("{v}")
}

/// The reply for a key longer than the server keeps, if `args` has one.
pub(crate) fn key_too_long(spec: &Spec, args: &Args<'_>) -> Option<Reply> {
    spec.key_positions(args.len())
        .map(|i| args.get(i).len())
        .find(|&n| n > MAX_KEY)
        .map(|n| {
            Reply::err(format!(
                "key of {n} bytes is too long: this server keeps keys of up to {MAX_KEY} bytes"
            ))
        })
}

/// Runs a data command in the transaction (the committer's jobs, and EXEC).
pub(crate) async fn run_in_txn(
    txn: &mut Txn<'_>,
    args: Args<'_>,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    let Some(spec) = lookup(args.get(0)) else {
        return Ok(Reply::err("unknown command"));
    };
    let now = now_ms();
    match spec.class {
        Class::Write => run_write(txn, spec.cmd, &args, now, work).await,
        Class::Read => run_read(&*txn, spec.cmd, &args, now, work).await,
        Class::Conn => Ok(conn::in_exec(txn, spec.cmd, &args, now)),
    }
}

/// Runs a read command on `v`.
pub(crate) async fn run_read<V: View>(
    v: &V,
    cmd: Cmd,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    use Cmd::*;
    match cmd {
        Get => strings::get(v, a, now).await,
        Mget => strings::mget(v, a, now, work).await,
        Strlen => strings::strlen(v, a, now).await,
        Getrange => strings::getrange(v, a, now).await,
        Getbit => strings::getbit(v, a, now).await,
        Lcs => strings::lcs(v, a, now, work).await,
        Exists | Touch => keyspace::exists(v, a, now, work).await,
        Type => keyspace::type_of(v, a, now).await,
        Ttl | Pttl | Expiretime | Pexpiretime => keyspace::ttl(v, cmd, a, now).await,
        Keys => keyspace::keys(v, a, now, work).await,
        Scan => keyspace::scan(v, a, now, work).await,
        Randomkey => keyspace::randomkey(v, now, work).await,
        Dbsize => Ok(Reply::Int(v.counts().keys as i64)),
        Object => keyspace::object(v, a, now).await,
        Memory => keyspace::memory(v, a, now).await,
        Hget | Hmget | Hexists | Hlen | Hkeys | Hvals | Hgetall | Hstrlen | Hscan | Hrandfield
        | Smembers | Sismember | Smismember | Scard | Srandmember | Sscan => {
            hashes::read(v, cmd, a, now, work).await
        }
        Llen | Lrange | Lindex => lists::read(v, cmd, a, now, work).await,
        _ => Ok(Reply::err("not a read command")),
    }
}

/// Runs a write command in the transaction.
pub(crate) async fn run_write(
    t: &mut Txn<'_>,
    cmd: Cmd,
    a: &Args<'_>,
    now: u64,
    work: &mut Work<'_>,
) -> StoreResult<Reply> {
    use Cmd::*;
    match cmd {
        Set | Setnx | Setex | Psetex | Getset | Getdel | Getex => {
            strings::set_family(t, cmd, a, now).await
        }
        Mset | Msetnx => strings::mset(t, cmd, a, now, work).await,
        Append | Setrange | Setbit => strings::modify(t, cmd, a, now).await,
        Incr | Decr | Incrby | Decrby | Incrbyfloat => strings::incr(t, cmd, a, now).await,
        Del | Unlink => keyspace::delete(t, a, now, work).await,
        Expire | Pexpire | Expireat | Pexpireat => keyspace::expire(t, cmd, a, now).await,
        Persist => keyspace::persist(t, a, now).await,
        Rename | Renamenx => keyspace::rename(t, cmd, a, now).await,
        Copy => keyspace::copy(t, a, now, work).await,
        Flushdb | Flushall => keyspace::flush(t, a, work).await,
        Hset | Hmset | Hsetnx | Hdel | Hincrby | Hincrbyfloat | Sadd | Srem | Spop => {
            hashes::write(t, cmd, a, now, work).await
        }
        Lpush | Rpush | Lpop | Rpop => lists::write(t, cmd, a, now, work).await,
        _ => Ok(Reply::err("not a write command")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_as_redis_parses_them() {
        assert_eq!(int(b"0"), Some(0));
        assert_eq!(int(b"-12"), Some(-12));
        assert_eq!(int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"01",
            b"-0",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"-",
        ] {
            assert_eq!(int(bad), None, "{:?}", bad.escape_ascii().to_string());
        }
        assert_eq!(float(b"1.5"), Some(1.5));
        assert_eq!(float(b"+inf"), Some(f64::INFINITY));
        for bad in [&b""[..], b" 1", b"1 ", b"nan", b"1\x002", b"abc"] {
            assert_eq!(float(bad), None);
        }
        assert_eq!(format_float(1.5 - 1.1), "0.3999999999999999");
        assert_eq!(format_float(17179869184.0 + 1.5), "17179869185.5");
        assert_eq!(format_float(1.0 / 41.0 - 1.0 / 41.0), "0");
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(1.23 + 0.77 - 0.1), "1.9");
    }
}
