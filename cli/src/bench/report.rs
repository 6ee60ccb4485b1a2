//! The benchmark's report: a table on stdout and the JSON document.

use serde::Serialize;

/// One (backend, concurrency) measurement, as written to JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub backend: String,
    pub concurrency: usize,
    pub cold_reads_per_s: f64,
    pub device_reads: Option<u64>,
    pub executor_major_faults: u64,
    pub hot_p50_us: u64,
    pub hot_p99_us: u64,
    pub hot_p999_us: u64,
    /// Hot latency CDF points `(latency_us, fraction)`, for plots (not in the JSON).
    #[serde(skip)]
    pub hot_cdf: Vec<(f64, f64)>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub device_limit_iops: f64,
    pub hot_only_p99_us: u64,
    pub resident_read_ns_api: f64,
    pub resident_read_ns_raw: f64,
    pub runs: Vec<Run>,
    #[serde(skip)]
    pub hot_only_cdf: Vec<(f64, f64)>,
}

/// Renders the report as a table.
pub fn table(r: &Report, device: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "device limit ({device}, O_DIRECT 4 KiB random reads, QD32): {:.0} reads/s\n",
        r.device_limit_iops
    ));
    out.push_str(&format!(
        "resident read of 8 bytes: {:.2} ns through Mapping::read, {:.2} ns raw ({:+.2} ns)\n",
        r.resident_read_ns_api,
        r.resident_read_ns_raw,
        r.resident_read_ns_api - r.resident_read_ns_raw
    ));
    out.push_str(&format!(
        "hot requests with no cold readers: p99 {} us\n\n",
        r.hot_only_p99_us
    ));
    out.push_str(&format!(
        "{:<22} {:>5} {:>12} {:>9} {:>12} {:>10} {:>8} {:>8} {:>9}\n",
        "backend",
        "conc",
        "cold reads/s",
        "x device",
        "device reads",
        "exec majflt",
        "hot p50",
        "hot p99",
        "hot p999"
    ));
    for run in &r.runs {
        out.push_str(&format!(
            "{:<22} {:>5} {:>12.0} {:>9.2} {:>12} {:>10} {:>8} {:>8} {:>9}\n",
            run.backend,
            run.concurrency,
            run.cold_reads_per_s,
            run.cold_reads_per_s / r.device_limit_iops.max(1.0),
            run.device_reads.map_or("n/a".into(), |d| d.to_string()),
            run.executor_major_faults,
            run.hot_p50_us,
            run.hot_p99_us,
            run.hot_p999_us
        ));
    }
    out
}
