//! The Redis-compatible key-value server (crate `faultless-server`), as a program of its own.
//!
//! ```text
//! cargo run --release --example kvserver -- --port 6380 --data kv.db
//! redis-cli -p 6380 set hello world
//! ```
//!
//! `faultless serve` runs the same server; see `server/src/lib.rs` for how it works.

use clap::Parser;

/// The server's options, from the command line.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    options: faultless_server::Options,
}

fn main() -> std::io::Result<()> {
    faultless_server::serve(Cli::parse().options)
}
