//! `faultless bench`: the fault-latency benchmark, the project's main job.
//!
//! For each prefetch path and concurrency, on one data file, in one run: cold random 4 KiB
//! reads per second through a mapping from one executor thread (with the block device's
//! completed reads, so anyone can see they reached the disk), major faults on the executor
//! thread, and the latency of hot requests that arrive at a fixed rate from another thread
//! while the cold readers run, and the CPU each cold read cost the executor thread and the
//! process's other threads (where a path moved the work). Baselines from the same run: the
//! device's O_DIRECT QD32 limit (measured again around every run, over pages chosen afresh,
//! since a shared disk's rate moves), tokio with `spawn_blocking`, hot requests with no cold
//! readers (before and after the runs), and the cost of a resident read through the API
//! against a raw slice read.

mod data;
mod device;
mod pages;
mod plot;
mod pressure;
mod progress;
mod report;
mod store;
mod store_pressure;
mod store_reopen;
mod workload;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use faultless::runtime::mem::{Backend, MapOptions, ResidencyMode};
use hdrhistogram::Histogram;

pub use data::{parse_seconds, parse_size};
use pages::Workload;
pub use pressure::PageCacheLimit;
use report::{PressureRun, Report, Run};
use workload::RunSpec;

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
    #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
    seconds: f64,
    /// Comma-separated paths to measure: blocking, helper, uring-madvise, uring-read, auto,
    /// tokio-spawn-blocking.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "blocking,helper,uring-madvise,uring-read,uring-thread,tokio-spawn-blocking"
    )]
    backends: Vec<String>,
    /// How mappings keep their residency record true: auto, pinned, scrubbed, trusted.
    #[arg(long, default_value = "auto")]
    residency: ResidencyMode,
    /// Nice value (0 to 19) of the mappings' page-in threads (the residency keeper, helper
    /// pools); see `MapOptions::page_in_nice`.
    #[arg(long, default_value_t = faultless::runtime::mem::PAGE_IN_NICE, value_parser = clap::value_parser!(i32).range(0..=19))]
    page_in_nice: i32,
    /// The pressure runs' page-cache limit: only this much memory is left for the page
    /// cache (a memory cgroup, or held anonymous memory where none can be made). Default: a
    /// third of the file, so the file is three times the cache.
    #[arg(long, value_parser = parse_size)]
    page_cache: Option<u64>,
    /// Comma-separated workloads of the pressure runs: uniform and zipf re-read pages after
    /// the kernel may have reclaimed them; once visits each page once.
    #[arg(long, value_delimiter = ',', default_value = "uniform,zipf")]
    pressure_workloads: Vec<Workload>,
    /// Comma-separated paths of the pressure runs.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "auto,blocking,tokio-spawn-blocking"
    )]
    pressure_backends: Vec<String>,
    /// Seconds per pressure run.
    #[arg(long, default_value_t = 5.0, value_parser = parse_seconds)]
    pressure_seconds: f64,
    /// Skip the runs under memory pressure.
    #[arg(long)]
    no_pressure: bool,
    /// Comma-separated numbers of concurrent reader tasks.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    concurrency: Vec<usize>,
    /// Write the results as JSON to this path.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write SVG plots into this directory.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Seconds of O_DIRECT QD32 reads just before and just after each run, whose mean is
    /// that run's device limit (the `x device` columns): a shared or throttled disk's rate
    /// moves during a benchmark (5x within minutes on the project's machine), so a limit
    /// taken once at the start makes later runs look better or worse than they are. 0: the
    /// start's limit for every run.
    #[arg(long, default_value_t = 1.0, value_parser = parse_seconds)]
    device_probe_seconds: f64,
    /// Do not drop the whole page cache between runs (as root it does by default); the data
    /// file's own pages are still evicted.
    #[arg(long)]
    no_drop_caches: bool,
}

impl BenchArgs {
    /// The device's O_DIRECT QD32 rate now, over `--device-probe-seconds`; `None` if that
    /// is 0.
    fn probe_device(&self, size: u64) -> io::Result<Option<f64>> {
        if self.device_probe_seconds <= 0.0 {
            return Ok(None);
        }
        let d = Duration::from_secs_f64(self.device_probe_seconds);
        device::odirect_iops(&self.file, size, 32, d).map(Some)
    }

    /// Runs one measurement with a device probe on each side; returns it with the device
    /// limit around it (the probes' mean, or `start_limit` without probes).
    fn measure_probed(
        &self,
        size: u64,
        start_limit: f64,
        path: &Path_,
        spec: RunSpec,
    ) -> io::Result<(workload::RunResult, f64)> {
        let before = self.probe_device(size)?;
        let result = measure(&self.file, path, &self.map_options(), spec)?;
        let after = self.probe_device(size)?;
        let limit = before
            .zip(after)
            .map_or(start_limit, |(b, a)| (b + a) / 2.0);
        Ok((result, limit))
    }

    /// The mapping options every faultless run starts from (each run sets its backend).
    fn map_options(&self) -> MapOptions {
        MapOptions::new()
            .residency(self.residency)
            .page_in_nice(self.page_in_nice)
    }
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

/// Runs one measurement of `path` with `spec`.
fn measure(
    file: &std::path::Path,
    path: &Path_,
    options: &MapOptions,
    spec: RunSpec,
) -> io::Result<workload::RunResult> {
    match path {
        Path_::Faultless(b) => workload::run_faultless(file, options.clone().backend(*b), spec),
        Path_::Tokio => workload::run_tokio(file, spec),
    }
}

fn display_name(path: &Path_) -> String {
    match path {
        Path_::Faultless(b) => b.name().to_string(),
        Path_::Tokio => TOKIO.to_string(),
    }
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
    let hot_only = || {
        workload::run_faultless(
            &args.file,
            args.map_options().backend(Backend::Auto),
            RunSpec {
                workload: Workload::Once,
                concurrency: 0,
                duration,
                seed: 1,
            },
        )
    };
    let hot_only_start = hot_only()?;

    let total = paths.len() * args.concurrency.len();
    let mut runs = Vec::new();
    let mut seed = 2;
    for (name, path) in &paths {
        for &c in &args.concurrency {
            eprint!("[{}/{total}] {name} with {c} tasks ... ", runs.len() + 1);
            seed += 1;
            let spec = RunSpec {
                workload: Workload::Once,
                concurrency: c,
                duration,
                seed,
            };
            let (result, limit) = args.measure_probed(size, device_limit, path, spec)?;
            eprintln!(
                "{:.0} reads/s ({:.2}x the device's {limit:.0}), {} executor major faults, \
                 {:.2} us executor CPU and {:.2} us other threads' CPU per read",
                result.cold_reads_per_s(),
                result.cold_reads_per_s() / limit.max(1.0),
                result.executor_major_faults,
                result.executor_cpu_us_per_read(),
                result.other_cpu_us_per_read()
            );
            runs.push(Run {
                backend: display_name(path),
                concurrency: c,
                device_limit_iops: limit,
                cold_reads_per_s: result.cold_reads_per_s(),
                device_reads: result.device_reads,
                executor_major_faults: result.executor_major_faults,
                executor_cpu_us_per_read: result.executor_cpu_us_per_read(),
                other_cpu_us_per_read: result.other_cpu_us_per_read(),
                hot_p50_us: result.hot.value_at_quantile(0.5),
                hot_p99_us: result.hot.value_at_quantile(0.99),
                hot_p999_us: result.hot.value_at_quantile(0.999),
                hot_cdf: cdf(&result.hot),
            });
        }
    }
    eprintln!("measuring: hot requests with no cold readers, again");
    let hot_only_end = hot_only()?;
    let (pressure_runs, pressure_note) = if args.no_pressure {
        (Vec::new(), None)
    } else {
        pressure_section(&args, size, device_limit)?
    };
    let report = Report {
        device_limit_iops: device_limit,
        hot_only_p99_us: hot_only_start.hot.value_at_quantile(0.99),
        hot_only_end_p99_us: hot_only_end.hot.value_at_quantile(0.99),
        resident_read_ns_api: api_ns,
        resident_read_ns_raw: raw_ns,
        runs,
        pressure_runs,
        pressure_note,
        hot_only_cdf: cdf(&hot_only_start.hot),
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

/// The runs under memory pressure: re-read workloads on a file several times the page cache
/// left, where the kernel reclaims pages behind the runtime's back. Returns the runs and a
/// line saying how the pressure was made (or why there was none).
fn pressure_section(
    args: &BenchArgs,
    size: u64,
    device_limit: f64,
) -> io::Result<(Vec<PressureRun>, Option<String>)> {
    let cache = args.page_cache.unwrap_or(size / 3).next_multiple_of(4096);
    let paths = args
        .pressure_backends
        .iter()
        .map(|b| parse_backend(b))
        .collect::<io::Result<Vec<_>>>()?;
    let limit = match PageCacheLimit::apply(cache) {
        Ok(l) => l,
        Err(e) => {
            let note = format!("pressure runs skipped: {e}");
            eprintln!("{note}");
            return Ok((Vec::new(), Some(note)));
        }
    };
    let note = format!(
        "under pressure: {}; file {} MiB = {:.1}x the page cache",
        limit.describe(),
        size >> 20,
        size as f64 / cache as f64
    );
    eprintln!("{note}");
    let duration = Duration::from_secs_f64(args.pressure_seconds);
    let concurrency = args.concurrency.iter().copied().max().unwrap_or(128);
    let total = paths.len() * args.pressure_workloads.len();
    let mut runs = Vec::new();
    let mut seed = 1000;
    for &w in &args.pressure_workloads {
        for path in &paths {
            seed += 1;
            eprint!(
                "[pressure {}/{total}] {} {w} with {concurrency} tasks ... ",
                runs.len() + 1,
                display_name(path)
            );
            let spec = RunSpec {
                workload: w,
                concurrency,
                duration,
                seed,
            };
            let (r, limit) = args.measure_probed(size, device_limit, path, spec)?;
            let device_per_s = r.device_reads_per_s();
            eprintln!(
                "{:.0} reads/s, {} device reads/s, {:.3} executor major faults per 1000 reads",
                r.cold_reads_per_s(),
                device_per_s.map_or("n/a".into(), |d| format!("{d:.0}")),
                r.faults_per_1000()
            );
            runs.push(PressureRun {
                backend: display_name(path),
                residency: match path {
                    Path_::Faultless(Backend::Blocking) | Path_::Tokio => "-".into(),
                    Path_::Faultless(_) => args.residency.to_string(),
                },
                workload: w.to_string(),
                concurrency,
                page_cache_bytes: cache,
                reads_per_s: r.cold_reads_per_s(),
                device_reads_per_s: device_per_s,
                device_limit_iops: limit,
                device_fraction: device_per_s.map(|d| d / limit.max(1.0)),
                executor_major_faults: r.executor_major_faults,
                faults_per_1000_reads: r.faults_per_1000(),
                hot_p99_us: r.hot.value_at_quantile(0.99),
            });
        }
    }
    drop(limit);
    Ok((runs, Some(note)))
}
