//! `faultless bench`: the fault-latency benchmark, the project's main job.
//!
//! For each prefetch path and concurrency, on one data file, in one run: cold random 4 KiB
//! reads per second through a mapping from one executor thread (with the block device's
//! completed reads, so anyone can see they reached the disk), major faults on the executor
//! thread, and the latency of hot requests that arrive at a fixed rate from another thread
//! while the cold readers run. Baselines from the same run: the device's O_DIRECT QD32 limit,
//! tokio with `spawn_blocking`, hot requests with no cold readers, and the cost of a resident
//! read through the API against a raw slice read.

mod data;
mod device;
mod plot;
#[allow(dead_code)] // wired into the workloads with issue 10
mod pressure;
mod report;
mod store;
mod workload;
#[allow(dead_code)] // wired into the workloads with issue 10
mod zipf;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use faultless::runtime::mem::Backend;
use hdrhistogram::Histogram;

pub use data::parse_size;
use report::{Report, Run};

const TOKIO: &str = "tokio-spawn-blocking";

/// Benchmarks other than the default fault-latency one.
#[derive(clap::Subcommand, Debug)]
pub enum BenchMode {
    /// The store against LMDB and redb: hot and cold gets, durable commits.
    Store(store::StoreBenchArgs),
}

/// Options of `faultless bench`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    mode: Option<BenchMode>,
    /// Data file; created with real data if missing or of another size, reused otherwise.
    #[arg(long, default_value = "faultless-bench.data")]
    file: PathBuf,
    /// Size of the data file (512M, 2G, ...).
    #[arg(long, default_value = "2G", value_parser = parse_size)]
    size: u64,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Comma-separated paths to measure: blocking, helper, uring-madvise, uring-read, auto,
    /// tokio-spawn-blocking.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "blocking,helper,uring-madvise,uring-read,tokio-spawn-blocking"
    )]
    backends: Vec<String>,
    /// Comma-separated numbers of concurrent reader tasks.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    concurrency: Vec<usize>,
    /// Write the results as JSON to this path.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write SVG plots into this directory.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Do not drop the whole page cache between runs (as root it does by default); the data
    /// file's own pages are still evicted.
    #[arg(long)]
    no_drop_caches: bool,
}

enum Path_ {
    Faultless(Backend),
    Tokio,
}

fn parse_backend(name: &str) -> io::Result<Path_> {
    if name == TOKIO {
        return Ok(Path_::Tokio);
    }
    Ok(Path_::Faultless(name.parse::<Backend>()?.resolve()))
}

fn cdf(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let total = h.len().max(1) as f64;
    let mut seen = 0u64;
    h.iter_recorded()
        .map(|v| {
            seen += v.count_since_last_iteration();
            (v.value_iterated_to().max(1) as f64, seen as f64 / total)
        })
        .collect()
}

/// Runs the benchmark and prints the table.
pub fn run(args: BenchArgs) -> io::Result<()> {
    if let Some(BenchMode::Store(a)) = args.mode {
        return store::run(a);
    }
    if args.size < 64 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--size must be at least 64M (the benchmark needs many distinct cold pages)",
        ));
    }
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--seconds must be positive",
        ));
    }
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--concurrency needs positive numbers",
        ));
    }
    let paths = args
        .backends
        .iter()
        .map(|b| parse_backend(b).map(|p| (b.clone(), p)))
        .collect::<io::Result<Vec<_>>>()?;
    if args.no_drop_caches {
        data::disable_drop_caches();
    }
    let size = args.size.next_multiple_of(4096);
    let duration = Duration::from_secs_f64(args.seconds);
    data::ensure_data_file(&args.file, size)?;
    let device = data::DeviceReads::for_file(&args.file);

    eprintln!("measuring: device limit (O_DIRECT QD32)");
    let device_limit = device::odirect_iops(&args.file, size, 32, duration)?;
    eprintln!("measuring: resident read cost");
    let (api_ns, raw_ns) = workload::resident_read_cost(&args.file)?;
    eprintln!("measuring: hot requests with no cold readers");
    let hot_only = workload::run_faultless(&args.file, Backend::Auto, 0, duration, 1)?;

    let total = paths.len() * args.concurrency.len();
    let mut runs = Vec::new();
    let mut seed = 2;
    for (name, path) in &paths {
        for &c in &args.concurrency {
            eprint!("[{}/{total}] {name} with {c} tasks ... ", runs.len() + 1);
            seed += 1;
            let result = match path {
                Path_::Faultless(b) => workload::run_faultless(&args.file, *b, c, duration, seed)?,
                Path_::Tokio => workload::run_tokio(&args.file, c, duration, seed)?,
            };
            let display_name = match path {
                Path_::Faultless(b) => b.name().to_string(),
                Path_::Tokio => TOKIO.to_string(),
            };
            eprintln!(
                "{:.0} reads/s, {} executor major faults",
                result.cold_reads_per_s(),
                result.executor_major_faults
            );
            runs.push(Run {
                backend: display_name,
                concurrency: c,
                cold_reads_per_s: result.cold_reads_per_s(),
                device_reads: result.device_reads,
                executor_major_faults: result.executor_major_faults,
                hot_p50_us: result.hot.value_at_quantile(0.5),
                hot_p99_us: result.hot.value_at_quantile(0.99),
                hot_p999_us: result.hot.value_at_quantile(0.999),
                hot_cdf: cdf(&result.hot),
            });
        }
    }
    let report = Report {
        device_limit_iops: device_limit,
        hot_only_p99_us: hot_only.hot.value_at_quantile(0.99),
        resident_read_ns_api: api_ns,
        resident_read_ns_raw: raw_ns,
        runs,
        hot_only_cdf: cdf(&hot_only.hot),
    };
    println!("{}", report::table(&report, &device.name()));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(io::Error::other)?;
        std::fs::write(path, text + "\n")?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(dir) = &args.plot {
        plot::write_plots(&report, dir)?;
        eprintln!("wrote plots into {}", dir.display());
    }
    Ok(())
}
