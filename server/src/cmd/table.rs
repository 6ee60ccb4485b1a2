//! The command table: every command the server knows, once. It drives dispatch, arity
//! checks, the key-length check, MULTI's queueing rules, `COMMAND COUNT/INFO/DOCS/LIST`,
//! and INFO's `commandstats`.

/// How a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Reads data: on a snapshot (or, inside EXEC, in the transaction).
    Read,
    /// Writes data: through the committer.
    Write,
    /// About the connection or the server (PING, CLIENT, CONFIG, MULTI, ...).
    Conn,
}

/// The commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub(crate) enum Cmd {
    // strings
    Get,
    Mget,
    Strlen,
    Getrange,
    Getbit,
    Lcs,
    Set,
    Setnx,
    Setex,
    Psetex,
    Mset,
    Msetnx,
    Getset,
    Getdel,
    Getex,
    Append,
    Setrange,
    Setbit,
    Incr,
    Decr,
    Incrby,
    Decrby,
    Incrbyfloat,
    // keys
    Exists,
    Type,
    Ttl,
    Pttl,
    Expiretime,
    Pexpiretime,
    Keys,
    Scan,
    Randomkey,
    Dbsize,
    Object,
    Memory,
    Touch,
    Del,
    Unlink,
    Expire,
    Pexpire,
    Expireat,
    Pexpireat,
    Persist,
    Rename,
    Renamenx,
    Copy,
    Flushdb,
    Flushall,
    // hashes
    Hget,
    Hmget,
    Hexists,
    Hlen,
    Hkeys,
    Hvals,
    Hgetall,
    Hstrlen,
    Hscan,
    Hrandfield,
    Hset,
    Hmset,
    Hsetnx,
    Hdel,
    Hincrby,
    Hincrbyfloat,
    // sets
    Smembers,
    Sismember,
    Smismember,
    Scard,
    Srandmember,
    Sscan,
    Sadd,
    Srem,
    Spop,
    // lists
    Llen,
    Lrange,
    Lindex,
    Lpush,
    Rpush,
    Lpop,
    Rpop,
    // connection and server
    Ping,
    Echo,
    Hello,
    Auth,
    Select,
    Quit,
    Reset,
    Client,
    Config,
    Info,
    Command,
    Time,
    Shutdown,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Function,
    Lastsave,
}

/// One row of the table.
pub(crate) struct Spec {
    /// Lower-case name, as COMMAND reports it.
    pub(crate) name: &'static str,
    /// Redis's convention: `n` exactly `n` arguments (the name included), `-n` at least `n`.
    pub(crate) arity: i32,
    pub(crate) class: Class,
    /// Redis's command flags, for COMMAND INFO.
    pub(crate) flags: &'static [&'static str],
    /// Key positions: first, last (negative: from the end), step (0: no keys).
    pub(crate) keys: (i32, i32, i32),
    /// COMMAND DOCS: group and summary.
    pub(crate) group: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) cmd: Cmd,
}

impl Spec {
    /// True if `n` arguments (the name included) fit the arity.
    pub(crate) fn arity_ok(&self, n: usize) -> bool {
        let (n, a) = (n as i64, self.arity as i64);
        if a >= 0 {
            n == a
        } else {
            n >= -a
        }
    }

    /// Indices of the key arguments of a call with `n` arguments.
    #[allow(clippy::reversed_empty_ranges)]
    pub(crate) fn key_positions(&self, n: usize) -> impl Iterator<Item = usize> {
        let (first, last, step) = self.keys;
        let n = n as i32;
        let last = if last < 0 { n + last } else { last.min(n - 1) };
        let range = if step > 0 && first > 0 {
            (first..=last).step_by(step as usize)
        } else {
            (1..=0).step_by(1) // no keys
        };
        range.map(|i| i as usize)
    }

    /// True if the reply is built from the store's data (checked against a damaged mapping
    /// before it is sent).
    pub(crate) fn reads_store(&self) -> bool {
        self.class != Class::Conn || self.cmd == Cmd::Exec
    }
}

const W: &[&str] = &["write", "denyoom"];
const WF: &[&str] = &["write", "denyoom", "fast"];
const WD: &[&str] = &["write"];
const WDF: &[&str] = &["write", "fast"];
const R: &[&str] = &["readonly"];
const RF: &[&str] = &["readonly", "fast"];
const C: &[&str] = &["fast"];
const CS: &[&str] = &["noscript", "loading", "stale", "fast"];
const CA: &[&str] = &["noauth", "noscript", "loading", "stale", "fast", "no_auth"];
const ADM: &[&str] = &["admin", "noscript", "loading", "stale"];

macro_rules! table {
    ($($name:literal $arity:literal $class:ident $flags:ident ($f:literal, $l:literal, $s:literal) $group:literal $cmd:ident $summary:literal;)*) => {
        /// Every command the server knows.
        pub(crate) static TABLE: &[Spec] = &[$(Spec {
            name: $name,
            arity: $arity,
            class: Class::$class,
            flags: $flags,
            keys: ($f, $l, $s),
            group: $group,
            summary: $summary,
            cmd: Cmd::$cmd,
        }),*];
    };
}

table! {
    "get" 2 Read RF (1, 1, 1) "string" Get "Returns the string value of a key.";
    "mget" -2 Read RF (1, -1, 1) "string" Mget "Atomically returns the string values of one or more keys.";
    "strlen" 2 Read RF (1, 1, 1) "string" Strlen "Returns the length of a string value.";
    "getrange" 4 Read R (1, 1, 1) "string" Getrange "Returns a substring of the string stored at a key.";
    "substr" 4 Read R (1, 1, 1) "string" Getrange "Returns a substring from a string value.";
    "getbit" 3 Read RF (1, 1, 1) "bitmap" Getbit "Returns a bit value by offset.";
    "lcs" -3 Read R (1, 2, 1) "string" Lcs "Finds the longest common substring.";
    "set" -3 Write W (1, 1, 1) "string" Set "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.";
    "setnx" 3 Write WF (1, 1, 1) "string" Setnx "Set the string value of a key only when the key doesn't exist.";
    "setex" 4 Write W (1, 1, 1) "string" Setex "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.";
    "psetex" 4 Write W (1, 1, 1) "string" Psetex "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.";
    "mset" -3 Write W (1, -1, 2) "string" Mset "Atomically creates or modifies the string values of one or more keys.";
    "msetnx" -3 Write W (1, -1, 2) "string" Msetnx "Atomically modifies the string values of one or more keys only when all keys don't exist.";
    "getset" 3 Write WF (1, 1, 1) "string" Getset "Returns the previous string value of a key after setting it to a new value.";
    "getdel" 2 Write WDF (1, 1, 1) "string" Getdel "Returns the string value of a key after deleting the key.";
    "getex" -2 Write WDF (1, 1, 1) "string" Getex "Returns the string value of a key after setting its expiration time.";
    "append" 3 Write WF (1, 1, 1) "string" Append "Appends a string to the value of a key. Creates the key if it doesn't exist.";
    "setrange" 4 Write W (1, 1, 1) "string" Setrange "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.";
    "setbit" 4 Write W (1, 1, 1) "bitmap" Setbit "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.";
    "incr" 2 Write WF (1, 1, 1) "string" Incr "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.";
    "decr" 2 Write WF (1, 1, 1) "string" Decr "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.";
    "incrby" 3 Write WF (1, 1, 1) "string" Incrby "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.";
    "decrby" 3 Write WF (1, 1, 1) "string" Decrby "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.";
    "incrbyfloat" 3 Write WF (1, 1, 1) "string" Incrbyfloat "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.";
    "exists" -2 Read RF (1, -1, 1) "generic" Exists "Determines whether one or more keys exist.";
    "type" 2 Read RF (1, 1, 1) "generic" Type "Determines the type of value stored at a key.";
    "ttl" 2 Read RF (1, 1, 1) "generic" Ttl "Returns the expiration time in seconds of a key.";
    "pttl" 2 Read RF (1, 1, 1) "generic" Pttl "Returns the expiration time in milliseconds of a key.";
    "expiretime" 2 Read RF (1, 1, 1) "generic" Expiretime "Returns the expiration time of a key as a Unix timestamp.";
    "pexpiretime" 2 Read RF (1, 1, 1) "generic" Pexpiretime "Returns the expiration time of a key as a Unix milliseconds timestamp.";
    "keys" 2 Read R (0, 0, 0) "generic" Keys "Returns all key names that match a pattern.";
    "scan" -2 Read R (0, 0, 0) "generic" Scan "Iterates over the key names in the database.";
    "randomkey" 1 Read R (0, 0, 0) "generic" Randomkey "Returns a random key name from the database.";
    "dbsize" 1 Read RF (0, 0, 0) "server" Dbsize "Returns the number of keys in the database.";
    "object" -2 Read R (2, 2, 1) "generic" Object "A container for object introspection commands.";
    "memory" -2 Read R (0, 0, 0) "server" Memory "A container for memory diagnostics commands.";
    "touch" -2 Read RF (1, -1, 1) "generic" Touch "Returns the number of existing keys out of those specified after updating the time they were last accessed.";
    "del" -2 Write WD (1, -1, 1) "generic" Del "Deletes one or more keys.";
    "unlink" -2 Write WDF (1, -1, 1) "generic" Unlink "Asynchronously deletes one or more keys.";
    "expire" -3 Write WDF (1, 1, 1) "generic" Expire "Sets the expiration time of a key in seconds.";
    "pexpire" -3 Write WDF (1, 1, 1) "generic" Pexpire "Sets the expiration time of a key in milliseconds.";
    "expireat" -3 Write WDF (1, 1, 1) "generic" Expireat "Sets the expiration time of a key to a Unix timestamp.";
    "pexpireat" -3 Write WDF (1, 1, 1) "generic" Pexpireat "Sets the expiration time of a key to a Unix milliseconds timestamp.";
    "persist" 2 Write WDF (1, 1, 1) "generic" Persist "Removes the expiration time of a key.";
    "rename" 3 Write WD (1, 2, 1) "generic" Rename "Renames a key and overwrites the destination.";
    "renamenx" 3 Write WDF (1, 2, 1) "generic" Renamenx "Renames a key only when the target key name doesn't exist.";
    "copy" -3 Write W (1, 2, 1) "generic" Copy "Copies the value of a key to a new key.";
    "flushdb" -1 Write WD (0, 0, 0) "server" Flushdb "Remove all keys from the current database.";
    "flushall" -1 Write WD (0, 0, 0) "server" Flushall "Removes all keys from all databases.";
    "hget" 3 Read RF (1, 1, 1) "hash" Hget "Returns the value of a field in a hash.";
    "hmget" -3 Read RF (1, 1, 1) "hash" Hmget "Returns the values of all fields in a hash.";
    "hexists" 3 Read RF (1, 1, 1) "hash" Hexists "Determines whether a field exists in a hash.";
    "hlen" 2 Read RF (1, 1, 1) "hash" Hlen "Returns the number of fields in a hash.";
    "hkeys" 2 Read R (1, 1, 1) "hash" Hkeys "Returns all fields in a hash.";
    "hvals" 2 Read R (1, 1, 1) "hash" Hvals "Returns all values in a hash.";
    "hgetall" 2 Read R (1, 1, 1) "hash" Hgetall "Returns all fields and values in a hash.";
    "hstrlen" 3 Read RF (1, 1, 1) "hash" Hstrlen "Returns the length of the value of a field.";
    "hscan" -3 Read R (1, 1, 1) "hash" Hscan "Iterates over fields and values of a hash.";
    "hrandfield" -2 Read R (1, 1, 1) "hash" Hrandfield "Returns one or more random fields from a hash.";
    "hset" -4 Write WF (1, 1, 1) "hash" Hset "Creates or modifies the value of a field in a hash.";
    "hmset" -4 Write WF (1, 1, 1) "hash" Hmset "Sets the values of multiple fields.";
    "hsetnx" 4 Write WF (1, 1, 1) "hash" Hsetnx "Sets the value of a field in a hash only when the field doesn't exist.";
    "hdel" -3 Write WDF (1, 1, 1) "hash" Hdel "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.";
    "hincrby" 4 Write WF (1, 1, 1) "hash" Hincrby "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.";
    "hincrbyfloat" 4 Write WF (1, 1, 1) "hash" Hincrbyfloat "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.";
    "smembers" 2 Read R (1, 1, 1) "set" Smembers "Returns all members of a set.";
    "sismember" 3 Read RF (1, 1, 1) "set" Sismember "Determines whether a member belongs to a set.";
    "smismember" -3 Read RF (1, 1, 1) "set" Smismember "Determines whether multiple members belong to a set.";
    "scard" 2 Read RF (1, 1, 1) "set" Scard "Returns the number of members in a set.";
    "srandmember" -2 Read R (1, 1, 1) "set" Srandmember "Get one or multiple random members from a set";
    "sscan" -3 Read R (1, 1, 1) "set" Sscan "Iterates over members of a set.";
    "sadd" -3 Write WF (1, 1, 1) "set" Sadd "Adds one or more members to a set. Creates the key if it doesn't exist.";
    "srem" -3 Write WDF (1, 1, 1) "set" Srem "Removes one or more members from a set. Deletes the set if the last member was removed.";
    "spop" -2 Write WDF (1, 1, 1) "set" Spop "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.";
    "llen" 2 Read RF (1, 1, 1) "list" Llen "Returns the length of a list.";
    "lrange" 4 Read R (1, 1, 1) "list" Lrange "Returns a range of elements from a list.";
    "lindex" 3 Read R (1, 1, 1) "list" Lindex "Returns an element from a list by its index.";
    "lpush" -3 Write WF (1, 1, 1) "list" Lpush "Prepends one or more elements to a list. Creates the key if it doesn't exist.";
    "rpush" -3 Write WF (1, 1, 1) "list" Rpush "Appends one or more elements to a list. Creates the key if it doesn't exist.";
    "lpop" -2 Write WDF (1, 1, 1) "list" Lpop "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.";
    "rpop" -2 Write WDF (1, 1, 1) "list" Rpop "Returns and removes the last elements of the list. Deletes the list if the last element was popped.";
    "ping" -1 Conn C (0, 0, 0) "connection" Ping "Returns the server's liveliness response.";
    "echo" 2 Conn C (0, 0, 0) "connection" Echo "Returns the given string.";
    "hello" -1 Conn CA (0, 0, 0) "connection" Hello "Handshakes with the Redis server.";
    "auth" -2 Conn CA (0, 0, 0) "connection" Auth "Authenticates the connection.";
    "select" 2 Conn CS (0, 0, 0) "connection" Select "Changes the selected database.";
    "quit" -1 Conn CA (0, 0, 0) "connection" Quit "Closes the connection.";
    "reset" 1 Conn CA (0, 0, 0) "connection" Reset "Resets the connection.";
    "client" -2 Conn CS (0, 0, 0) "connection" Client "A container for client connection commands.";
    "config" -2 Conn ADM (0, 0, 0) "server" Config "A container for server configuration commands.";
    "info" -1 Conn CS (0, 0, 0) "server" Info "Returns information and statistics about the server.";
    "command" -1 Conn CS (0, 0, 0) "server" Command "Returns detailed information about all commands.";
    "time" 1 Conn CS (0, 0, 0) "server" Time "Returns the server time.";
    "shutdown" -1 Conn ADM (0, 0, 0) "server" Shutdown "Synchronously saves the database(s) to disk and shuts down the Redis server.";
    "multi" 1 Conn CS (0, 0, 0) "transactions" Multi "Starts a transaction.";
    "exec" 1 Conn CS (0, 0, 0) "transactions" Exec "Executes all commands in a transaction.";
    "discard" 1 Conn CS (0, 0, 0) "transactions" Discard "Discards a transaction.";
    "watch" -2 Conn CS (1, -1, 1) "transactions" Watch "Monitors changes to keys to determine the execution of a transaction.";
    "unwatch" 1 Conn CS (0, 0, 0) "transactions" Unwatch "Forgets about watched keys of a transaction.";
    "function" -2 Conn CS (0, 0, 0) "scripting" Function "A container for function commands.";
    "lastsave" 1 Conn CS (0, 0, 0) "server" Lastsave "Returns the Unix timestamp of the last successful save to disk.";
}

/// The row of the command named `name` (case-insensitive).
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Spec> {
    if name.len() > 16 {
        return None;
    }
    let mut lower = [0u8; 16];
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = &lower[..name.len()];
    // The hot commands come first in the table; a linear scan finds them at once.
    TABLE.iter().find(|s| s.name.as_bytes() == lower)
}

/// The row's index in [`TABLE`] (for per-command statistics).
pub(crate) fn index(spec: &Spec) -> usize {
    (spec as *const Spec as usize - TABLE.as_ptr() as usize) / std::mem::size_of::<Spec>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_key_positions() {
        assert_eq!(lookup(b"GeT").unwrap().cmd, Cmd::Get);
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(b"averyveryverylongname").is_none());
        let mset = lookup(b"mset").unwrap();
        assert_eq!(mset.key_positions(5).collect::<Vec<_>>(), [1, 3]);
        let mget = lookup(b"mget").unwrap();
        assert_eq!(mget.key_positions(4).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(lookup(b"ping").unwrap().key_positions(3).count(), 0);
        for (i, s) in TABLE.iter().enumerate() {
            assert_eq!(index(s), i);
            assert_eq!(s.name, s.name.to_lowercase());
            assert!(
                TABLE.iter().filter(|t| t.name == s.name).count() == 1,
                "{}",
                s.name
            );
        }
    }
}
