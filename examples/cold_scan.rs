//! Scan a large cold file through a mapping with 32 tasks on one executor thread, once with
//! the `blocking` path (the thread faults every page in itself) and once with a non-blocking
//! path, and print both times and the executor thread's page faults.
//!
//! ```text
//! cargo run --release --example cold_scan -- [FILE] [SIZE_MIB] [BACKEND]
//! ```
//!
//! Defaults: `cold_scan.data`, 256 MiB, `auto` (the fastest non-blocking path here).

use std::io::{self, Write};
use std::time::Instant;

use faultless::runtime::mem::{thread_faults, Backend, MapOptions, Mapping};

const PAGE: u64 = 4096;
const TASKS: u64 = 32;

/// Reads one byte of every page, `TASKS` tasks each taking every TASKS-th page, in a
/// scattered order so readahead cannot help.
async fn scan(map: &Mapping) -> io::Result<u64> {
    let pages = map.len() / PAGE;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let map = map.clone();
        tasks.push(faultless::spawn(async move {
            let mut sum = 0u64;
            let mut i = t;
            while i < pages {
                let p = (i * 7919) % pages; // 7919 is prime: a permutation of the pages
                let g = map.read(p * PAGE..p * PAGE + 1).await?;
                sum += g[0] as u64;
                i += TASKS;
            }
            Ok::<u64, io::Error>(sum)
        }));
    }
    let mut sum = 0;
    for t in tasks {
        sum += t.await??;
    }
    Ok(sum)
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "cold_scan.data".into());
    let mib: u64 = args
        .next()
        .map_or(Ok(256), |s| s.parse())
        .map_err(io::Error::other)?;
    let backend: Backend = args.next().unwrap_or_else(|| "auto".into()).parse()?;

    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(mib << 20) {
        eprintln!("writing {mib} MiB to {path} ...");
        let mut f = std::fs::File::create(&path)?;
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        for _ in 0..mib {
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
    }

    let rt = faultless::Runtime::new()?;
    for backend in [Backend::Blocking, backend.resolve()] {
        // SAFETY: the file was written above and nothing writes it while it is mapped.
        let map = unsafe { Mapping::open(&path, MapOptions::new().backend(backend))? };
        map.evict_all()?; // cold: MADV_DONTNEED + POSIX_FADV_DONTNEED
        let before = thread_faults();
        let start = Instant::now();
        let sum = rt.block_on(scan(&map))?;
        let took = start.elapsed();
        let faults = thread_faults().since(&before);
        println!(
            "{:<14} {:>8.0} ms  {:>8.0} pages/s  executor faults: {:>6} major {:>6} minor  (checksum {sum})",
            backend.name(),
            took.as_secs_f64() * 1e3,
            (map.len() / PAGE) as f64 / took.as_secs_f64(),
            faults.major,
            faults.minor
        );
    }
    Ok(())
}
