//! The `faultless` command: tools around the runtime and the store.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the server's write path allocates and frees small keys,
/// values and replies at a high rate, and a checkpoint frees a memtable of 100,000 entries;
/// glibc then consolidated its fast bins inside whichever task freed next (single polls of
/// 10-30 ms). Same run, SET -P 16 -c 50: 1.15-1.22x the throughput, p99 15-25 ms against
/// 58-64 ms (docs/results.md). Built without its transparent-huge-page advice (`no_thp`):
/// with it, a fresh 2 MiB heap page was zeroed inside one poll, ~10 ms on this machine, a
/// dozen times a run. The library crates leave the choice to their users.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod store_cli;

#[derive(Parser)]
#[command(
    name = "faultless",
    version,
    about = "An io_uring runtime whose tasks never block on page faults"
)]
struct Cli {
    /// What to log on stderr: a level (error, warn, info, debug, trace) or a filter such as
    /// `faultless_runtime=debug,info`. Overrides RUST_LOG; without either, warnings and
    /// errors are shown.
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Installs the tracing subscriber: `--log-level`, else `RUST_LOG`, else `warn`. The
/// runtime's events (its `tracing` feature is on in this binary) go to stderr.
fn init_logging(level: Option<&str>) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).map_err(|e| format!("--log-level {l:?}: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

#[derive(Subcommand)]
enum Command {
    /// Report what this kernel offers the runtime: the ring setup it gets, and the limits
    /// that matter for fault-free page access.
    Probe,
    /// The fault-latency benchmark: cold mmapped reads through each prefetch path, at
    /// several concurrencies, against the device limit and tokio's spawn_blocking.
    Bench(bench::BenchArgs),
    /// A Redis-compatible (RESP2) key-value server on the store.
    Serve(faultless_server::Options),
    /// Tools for store files: stat, check, dump, load.
    #[command(subcommand)]
    Store(store_cli::StoreCommand),
    /// Runs a command with only SIZE bytes of memory left for its page cache (a memory
    /// cgroup, or held anonymous memory): real kernel reclaim for the cold-server benchmark,
    /// e.g. `faultless pressure --page-cache 1536M -- faultless serve --port 6380`.
    Pressure {
        /// Memory left for the command's page cache (512M, 1536M, 2G, ...).
        #[arg(long, value_parser = bench::parse_size)]
        page_cache: u64,
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
}

/// mimalloc's `purge_delay` option: the one before `use_numa_nodes` in both its v2 and v3
/// option lists (`mimalloc.h`); the sys crate names no constant for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t =
    libmimalloc_sys::mi_option_use_numa_nodes - 1;

fn main() -> ExitCode {
    // Freed memory goes back to the system at once, as glibc does with large blocks: by
    // default mimalloc keeps it 10 ms, and a 16 MiB SET (receive buffer, the store's copy,
    // page images, each freed before the next is allocated) then peaked at 5.7x its size
    // instead of 4x (cli/tests/server/memory.rs). Throughput was unchanged (scripts/ab-set.sh).
    // SAFETY: sets a process-wide allocator option; any value is valid for this option.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    let cli = Cli::parse();
    if let Err(e) = init_logging(cli.log_level.as_deref()) {
        eprintln!("faultless: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Probe => probe().map(|()| true),
        Command::Bench(args) => bench::run(args).map(|()| true),
        Command::Store(cmd) => store_cli::run(cmd),
        Command::Serve(opts) => faultless_server::serve(opts).map(|()| true),
        Command::Pressure {
            page_cache,
            command,
        } => under_pressure(page_cache, &command),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("faultless: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `command` while only `page_cache` bytes are left for the page cache; true if it
/// exited successfully.
fn under_pressure(page_cache: u64, command: &[String]) -> std::io::Result<bool> {
    let limit = bench::PageCacheLimit::apply(page_cache)?;
    eprintln!("faultless pressure: {}", limit.describe());
    let status = std::process::Command::new(&command[0])
        .args(&command[1..])
        .status()
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", command[0])))?;
    drop(limit);
    Ok(status.success())
}

fn probe() -> std::io::Result<()> {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("kernel:            {}", kernel.trim());
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    println!("io_uring_disabled: {disabled}");
    let rt = faultless::Runtime::new()?;
    println!("ring mode:         {:?}", rt.ring_mode());
    let p = faultless::runtime::mem::probe();
    println!(
        "prefetch support:  IORING_OP_READ {}, IORING_OP_MADVISE {}, MADV_POPULATE_READ {}",
        p.read, p.madvise, p.populate_read
    );
    println!(
        "auto backend:      {}",
        faultless::runtime::mem::Backend::Auto.resolve()
    );
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we pass; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0 {
        let show = |v: libc::rlim_t| {
            if v == libc::RLIM_INFINITY {
                "unlimited".to_string()
            } else {
                format!("{} KiB", v / 1024)
            }
        };
        println!(
            "RLIMIT_MEMLOCK:    {} (hard {})",
            show(lim.rlim_cur),
            show(lim.rlim_max)
        );
    }
    let readahead = std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| {
            let kb = std::fs::read_to_string(d.path().join("queue/read_ahead_kb")).ok()?;
            Some(format!("{}={}", d.file_name().to_string_lossy(), kb.trim()))
        })
        .collect::<Vec<_>>();
    println!("read_ahead_kb:     {}", readahead.join(" "));
    Ok(())
}
