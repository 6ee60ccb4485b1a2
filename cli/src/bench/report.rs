//! The benchmark's report: a table on stdout and the JSON document.

use serde::Serialize;

/// One (backend, concurrency) measurement, as written to JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub backend: String,
    pub concurrency: usize,
    /// The device's O_DIRECT QD32 rate around this run (see `--device-probe-seconds`).
    pub device_limit_iops: f64,
    pub cold_reads_per_s: f64,
    pub device_reads: Option<u64>,
    pub executor_major_faults: u64,
    /// Executor CPU (user + system) per cold read, in microseconds.
    pub executor_cpu_us_per_read: f64,
    /// The process's other threads' CPU per cold read (page-in threads, blocking pools,
    /// io_uring workers; not the hot-request generator), in microseconds.
    pub other_cpu_us_per_read: f64,
    pub hot_p50_us: u64,
    pub hot_p99_us: u64,
    pub hot_p999_us: u64,
    /// Hot latency CDF points `(latency_us, fraction)`, for plots (not in the JSON).
    #[serde(skip)]
    pub hot_cdf: Vec<(f64, f64)>,
}

/// One run under memory pressure (a re-read workload on a file larger than the page cache).
#[derive(Clone, Debug, Serialize)]
pub struct PressureRun {
    pub backend: String,
    /// The residency mode asked for ("-" where the path keeps no record).
    pub residency: String,
    pub workload: String,
    pub concurrency: usize,
    /// Memory left for the page cache.
    pub page_cache_bytes: u64,
    /// Reads the cold readers completed per second (hits and misses).
    pub reads_per_s: f64,
    /// Reads the block device completed per second.
    pub device_reads_per_s: Option<f64>,
    /// The device's O_DIRECT QD32 rate around this run (see `--device-probe-seconds`).
    pub device_limit_iops: f64,
    /// `device_reads_per_s` over `device_limit_iops`.
    pub device_fraction: Option<f64>,
    pub executor_major_faults: u64,
    pub faults_per_1000_reads: f64,
    pub hot_p99_us: u64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The device's O_DIRECT QD32 rate at the start.
    pub device_limit_iops: f64,
    /// Hot requests' p99 with no cold readers, before the runs and after them.
    pub hot_only_p99_us: u64,
    pub hot_only_end_p99_us: u64,
    pub resident_read_ns_api: f64,
    pub resident_read_ns_raw: f64,
    pub runs: Vec<Run>,
    pub pressure_runs: Vec<PressureRun>,
    /// How the pressure was made, or why the pressure runs were skipped.
    pub pressure_note: Option<String>,
    #[serde(skip)]
    pub hot_only_cdf: Vec<(f64, f64)>,
}

/// Renders the report as a table.
pub fn table(r: &Report, device: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "device limit ({device}, O_DIRECT 4 KiB random reads, QD32) at the start: {:.0} reads/s \
         (each run's `x device` is over the limit measured around it: `dev limit`)\n",
        r.device_limit_iops
    ));
    out.push_str(&format!(
        "resident read of 8 bytes: {:.2} ns through Mapping::read, {:.2} ns raw ({:+.2} ns)\n",
        r.resident_read_ns_api,
        r.resident_read_ns_raw,
        r.resident_read_ns_api - r.resident_read_ns_raw
    ));
    out.push_str(&format!(
        "hot requests with no cold readers: p99 {} us before the runs, {} us after them\n\n",
        r.hot_only_p99_us, r.hot_only_end_p99_us
    ));
    out.push_str(&format!(
        "{:<22} {:>5} {:>12} {:>9} {:>9} {:>12} {:>10} {:>9} {:>9} {:>8} {:>8} {:>9}\n",
        "backend",
        "conc",
        "cold reads/s",
        "dev limit",
        "x device",
        "device reads",
        "exec majflt",
        "cpu us/rd",
        "other cpu",
        "hot p50",
        "hot p99",
        "hot p999"
    ));
    for run in &r.runs {
        out.push_str(&format!(
            "{:<22} {:>5} {:>12.0} {:>9.0} {:>9.2} {:>12} {:>10} {:>9.2} {:>9.2} {:>8} {:>8} {:>9}\n",
            run.backend,
            run.concurrency,
            run.cold_reads_per_s,
            run.device_limit_iops,
            run.cold_reads_per_s / run.device_limit_iops.max(1.0),
            run.device_reads.map_or("n/a".into(), |d| d.to_string()),
            run.executor_major_faults,
            run.executor_cpu_us_per_read,
            run.other_cpu_us_per_read,
            run.hot_p50_us,
            run.hot_p99_us,
            run.hot_p999_us
        ));
    }
    if let Some(note) = &r.pressure_note {
        out.push_str(&format!("\n{note}\n"));
    }
    if !r.pressure_runs.is_empty() {
        out.push_str(&format!(
            "{:<22} {:<9} {:<8} {:>5} {:>10} {:>12} {:>9} {:>9} {:>11} {:>12} {:>8}\n",
            "backend",
            "residency",
            "workload",
            "conc",
            "reads/s",
            "dev reads/s",
            "dev limit",
            "x device",
            "exec majflt",
            "per 1k reads",
            "hot p99"
        ));
        for run in &r.pressure_runs {
            out.push_str(&format!(
                "{:<22} {:<9} {:<8} {:>5} {:>10.0} {:>12} {:>9.0} {:>9} {:>11} {:>12.3} {:>8}\n",
                run.backend,
                run.residency,
                run.workload,
                run.concurrency,
                run.reads_per_s,
                run.device_reads_per_s
                    .map_or("n/a".into(), |d| format!("{d:.0}")),
                run.device_limit_iops,
                run.device_fraction
                    .map_or("n/a".into(), |d| format!("{d:.2}")),
                run.executor_major_faults,
                run.faults_per_1000_reads,
                run.hot_p99_us
            ));
        }
    }
    out
}
