//! `faultless bench store --page-cache SIZE`: random gets over the whole store while only
//! SIZE of memory is left for the page cache (a memory cgroup, or held anonymous memory; see
//! [`PageCacheLimit`]), so the kernel reclaims pages the readers will want again. Reports
//! gets/s and the reading thread's major faults per 1,000 gets for faultless (128 tasks on
//! one executor thread, its default residency), faultless with `Backend::Blocking` (the
//! same tasks, faulting on the executor), and LMDB (one thread, which faults by design).

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use faultless::runtime::mem::{thread_faults, Backend};
use faultless::store::{Store, StoreOptions};
use serde::Serialize;

use super::store::{key, lmdb_db, lmdb_env, make_cold, other, sync_gets, tasks_rate, Rng, Until};
use super::PageCacheLimit;

/// One engine's run under pressure.
#[derive(Serialize, Debug, Default)]
pub struct PressureGets {
    pub gets_per_s: f64,
    /// Major faults of the thread doing the gets, per 1,000 gets.
    pub major_faults_per_1000: f64,
}

/// The pressure section of the store report.
#[derive(Serialize, Debug, Default)]
pub struct StorePressure {
    pub page_cache_mib: u64,
    pub file_mib: u64,
    pub how: String,
    pub seconds: f64,
    pub faultless: PressureGets,
    pub faultless_blocking: PressureGets,
    pub lmdb: PressureGets,
}

/// Runs the three engines, one after another, under one page-cache limit.
pub fn run(
    rt: &faultless::Runtime,
    fl_path: &Path,
    lmdb_dir: &Path,
    n: u64,
    page_cache: u64,
    dur: Duration,
) -> io::Result<StorePressure> {
    let limit = PageCacheLimit::apply(page_cache)?;
    let mut report = StorePressure {
        page_cache_mib: page_cache >> 20,
        file_mib: std::fs::metadata(fl_path)?.len() >> 20,
        how: limit.describe(),
        seconds: dur.as_secs_f64(),
        ..Default::default()
    };
    eprintln!("under pressure: {}", report.how);
    for backend in [Backend::Auto, Backend::Blocking] {
        make_cold(fl_path)?;
        let gets = rt.block_on(async {
            let store = Store::open(fl_path, StoreOptions::new().backend(backend)).await?;
            let faults = thread_faults();
            let deadline = Instant::now() + dur;
            let mut gets = 0u64;
            let rate = tasks_rate(128, |t| {
                let store = store.clone();
                async move {
                    let txn = store.read_txn();
                    let mut rng = Rng(t * 6151 + 17);
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        let v = txn.get(&key(rng.next() % n)).await?;
                        std::hint::black_box(v.ok_or_else(|| other("missing"))?.len());
                        done += 1;
                    }
                    Ok(done)
                }
            })
            .await?;
            gets += (rate * dur.as_secs_f64()) as u64;
            let major = thread_faults().since(&faults).major;
            Ok::<_, io::Error>(PressureGets {
                gets_per_s: rate,
                major_faults_per_1000: major as f64 * 1000.0 / gets.max(1) as f64,
            })
        })?;
        eprintln!(
            "  faultless {}: {:.0} gets/s, {:.3} executor major faults per 1,000 gets",
            backend.name(),
            gets.gets_per_s,
            gets.major_faults_per_1000
        );
        match backend {
            Backend::Blocking => report.faultless_blocking = gets,
            _ => report.faultless = gets,
        }
    }
    make_cold(&lmdb_dir.join("data.mdb"))?;
    {
        let env = lmdb_env(lmdb_dir)?;
        let db = lmdb_db(&env)?;
        let r = env.read_txn().map_err(other)?;
        let faults = thread_faults();
        let start = Instant::now();
        let rate = sync_gets(n, 5, Until::Elapsed(dur), |k| {
            Ok(db.get(&r, k).map_err(other)?.map(<[u8]>::len))
        })?;
        let done = rate * start.elapsed().as_secs_f64();
        let major = thread_faults().since(&faults).major;
        report.lmdb = PressureGets {
            gets_per_s: rate,
            major_faults_per_1000: major as f64 * 1000.0 / done.max(1.0),
        };
        eprintln!(
            "  lmdb (1 thread): {:.0} gets/s, {:.3} major faults per 1,000 gets",
            report.lmdb.gets_per_s, report.lmdb.major_faults_per_1000
        );
    }
    drop(limit);
    Ok(report)
}

/// The pressure rows of the printed table.
pub fn print(p: &StorePressure) {
    println!(
        "\nunder memory pressure ({} MiB file, {}; {:.0} s each, random gets over every key):",
        p.file_mib, p.how, p.seconds
    );
    let row = |name: &str, g: &PressureGets| {
        println!(
            "{name:<40} {:>10.0} gets/s {:>9.3} major faults/1k gets {:>6.2}x lmdb",
            g.gets_per_s,
            g.major_faults_per_1000,
            g.gets_per_s / p.lmdb.gets_per_s.max(1e-9)
        );
    };
    row("faultless (128 tasks, 1 thread)", &p.faultless);
    row(
        "faultless blocking (128 tasks, 1 thread)",
        &p.faultless_blocking,
    );
    row("lmdb (1 thread)", &p.lmdb);
}
