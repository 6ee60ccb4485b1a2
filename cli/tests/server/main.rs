//! `faultless serve` driven by real Redis clients (redis-cli, redis-benchmark from Debian's
//! redis-tools, which .ci/run installs) and by raw sockets: the basics, then hostile and
//! heavy clients, limits, and a store file damaged under a running server.

mod basics;
mod damage;
mod harness;
mod hostile;
mod limits;
mod memory;
