//! `faultless serve` driven by real Redis clients (redis-cli, redis-benchmark from Debian's
//! redis-tools, which .ci/run installs) and by raw sockets: the basics, then hostile and
//! heavy clients, limits, a store file damaged under a running server; expiry,
//! transactions, types, SCAN, the protocol's edge cases, and redis-py (skipped without it).

mod basics;
mod cold;
mod damage;
mod expiry;
mod harness;
mod hostile;
mod limits;
mod memory;
mod protocol;
mod redis_py;
mod scan;
mod transactions;
mod types;
