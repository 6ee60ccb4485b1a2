//! The server's options: what `faultless serve` takes on its command line.

use std::path::PathBuf;

use faultless_runtime::mem::{Backend, ResidencyMode};
use faultless_store::{Durability, StoreOptions};

fn invalid_input(why: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, why)
}

/// How to run the server. `Default` gives the same values as the command line's defaults.
///
/// With the crate's `clap` feature this is a `clap::Args`, so a binary can flatten it into its
/// own command line.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Options {
    /// Address to bind.
    #[cfg_attr(feature = "clap", arg(long, default_value = "127.0.0.1"))]
    pub bind: String,
    /// TCP port (0 picks a free one; the chosen address is printed).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 6380))]
    pub port: u16,
    /// The store file (created if missing).
    #[cfg_attr(feature = "clap", arg(long, default_value = "faultless-kv.db"))]
    pub data: PathBuf,
    /// The prefetch path for page reads: blocking, helper, uring-madvise, uring-read, auto.
    #[cfg_attr(feature = "clap", arg(long, default_value = "auto"))]
    pub backend: String,
    /// How the store's mapping keeps its residency record true under memory pressure: auto,
    /// pinned, scrubbed, trusted (see docs/faults.md).
    #[cfg_attr(feature = "clap", arg(long, default_value = "auto"))]
    pub residency: String,
    /// Pinned residency: most bytes of the store kept pinned in memory (default: half of
    /// what the process could take at start).
    #[cfg_attr(feature = "clap", arg(long))]
    pub resident_budget: Option<u64>,
    /// Nice value (0 to 19) of the threads that bring the store's cold pages in; default 19
    /// (the lowest priority, so they never keep the server's thread from a CPU). 0 where
    /// other busy processes on the machine would starve them.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = faultless_runtime::mem::PAGE_IN_NICE, value_parser = clap::value_parser!(i32).range(0..=19)))]
    pub page_in_nice: i32,
    /// When a write's log record reaches the disk before its reply: always (default; every
    /// acknowledged write is durable), everysec (synced about once a second), no (the OS
    /// decides). Redis's appendfsync.
    #[cfg_attr(feature = "clap", arg(long, default_value = "always"))]
    pub appendfsync: String,
    /// Largest request accepted, in bytes (Redis's client-query-buffer-limit, per
    /// connection); larger ones get an error and the connection is closed.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 64 << 20))]
    pub max_request: usize,
    /// Most bytes all connections together may hold in request buffers beyond their first
    /// 16 KiB each; a request that would need more gets an error and the connection is closed.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1 << 30))]
    pub max_request_memory: usize,
    /// Most clients served at once (Redis's maxclients); more get "-ERR max number of clients
    /// reached". Lowered to fit the open-file limit.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 10_000))]
    pub max_clients: usize,
    /// Close a connection idle for this many seconds (0: never, as in Redis).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0))]
    pub timeout: u64,
    /// Require clients to AUTH with this password (Redis's requirepass).
    #[cfg_attr(feature = "clap", arg(long))]
    pub requirepass: Option<String>,
    /// Redis's protected mode (yes or no): with no password, clients from other hosts are
    /// refused when the server is bound to a non-loopback address.
    #[cfg_attr(feature = "clap", arg(long, default_value = "yes"))]
    pub protected_mode: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bind: "127.0.0.1".into(),
            port: 6380,
            data: "faultless-kv.db".into(),
            backend: "auto".into(),
            residency: "auto".into(),
            resident_budget: None,
            page_in_nice: faultless_runtime::mem::PAGE_IN_NICE,
            appendfsync: "always".into(),
            max_request: 64 << 20,
            max_request_memory: 1 << 30,
            max_clients: 10_000,
            timeout: 0,
            requirepass: None,
            protected_mode: "yes".into(),
        }
    }
}

impl Options {
    /// The durability policy, as `CONFIG GET appendfsync` and INFO report it: `always`,
    /// `everysec` or `no` (validated by [`Options::validate`]; `always` if unparsable).
    pub fn appendfsync(&self) -> &'static str {
        self.durability().unwrap_or_default().as_str()
    }

    /// The store's durability level named by `--appendfsync`.
    pub fn durability(&self) -> std::io::Result<Durability> {
        self.appendfsync
            .parse()
            .map_err(|e: faultless_store::Error| invalid_input(format!("--appendfsync: {e}")))
    }

    /// The store's options these options describe.
    pub fn store_options(&self) -> std::io::Result<StoreOptions> {
        let backend: Backend = self.backend.parse()?;
        let residency: ResidencyMode = self
            .residency
            .parse()
            .map_err(|e| invalid_input(format!("--residency: {e}")))?;
        let mut options = StoreOptions::new()
            .backend(backend)
            .residency(residency)
            .durability(self.durability()?)
            .page_in_nice(self.page_in_nice);
        if let Some(budget) = self.resident_budget {
            options = options.resident_budget(budget);
        }
        Ok(options)
    }

    /// Checks the options make sense together.
    pub fn validate(&self) -> std::io::Result<()> {
        let invalid = |why: String| Err(invalid_input(why));
        self.store_options()?;
        if self.protected_mode != "yes" && self.protected_mode != "no" {
            return invalid(format!(
                "--protected-mode {} must be yes or no",
                self.protected_mode
            ));
        }
        if self.max_request == 0 || self.max_request > 1 << 31 {
            return invalid(format!(
                "--max-request {} is out of range (1 to 2 GiB)",
                self.max_request
            ));
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "clap"))]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: Options,
    }

    #[test]
    fn defaults_match_the_command_line() {
        let parsed = Cli::parse_from(["serve"]).options;
        let default = Options::default();
        assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
    }
}
