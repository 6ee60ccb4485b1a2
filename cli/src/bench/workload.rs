//! One measurement: cold random 4 KiB reads through a mapping at some concurrency, with an
//! open-loop stream of hot requests arriving from another thread meanwhile.

use std::cell::RefCell;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultless::runtime::mem::{thread_faults, MapOptions, Mapping, ThreadFaults};
use futures::StreamExt;
use hdrhistogram::Histogram;

use super::data::{drop_file_cache, DeviceReads};
use super::pages::{Chooser, Workload};

/// Pages at the start of the file that hot requests read; cold readers never touch them.
pub const HOT_PAGES: u64 = 256;
/// Hot requests per second, sent from a thread outside the executor.
pub const HOT_RATE: u64 = 2000;

/// What one run reads: its page order, readers and length.
#[derive(Clone, Copy, Debug)]
pub struct RunSpec {
    /// The page order of the cold readers.
    pub workload: Workload,
    /// Cold reader tasks (0: hot requests only).
    pub concurrency: usize,
    /// The measured time.
    pub duration: Duration,
    /// Seeds the page order.
    pub seed: u64,
}

/// What one run measured.
pub struct RunResult {
    pub cold_reads: u64,
    pub elapsed: Duration,
    pub device_reads: Option<u64>,
    pub executor_major_faults: u64,
    /// CPU time (user + system) the executor thread used during the run.
    pub executor_cpu: Duration,
    /// CPU time the process's other threads used during the run (the page-in threads,
    /// tokio's blocking pool, io_uring workers), less the hot-request generator's.
    pub other_cpu: Duration,
    pub hot: Histogram<u64>,
}

impl RunResult {
    pub fn cold_reads_per_s(&self) -> f64 {
        self.cold_reads as f64 / self.elapsed.as_secs_f64()
    }

    /// Device reads per second during the run, if the device's counter could be read.
    pub fn device_reads_per_s(&self) -> Option<f64> {
        self.device_reads
            .map(|d| d as f64 / self.elapsed.as_secs_f64())
    }

    /// Executor CPU microseconds per cold read (the work a cold page costs the thread that
    /// also serves hot requests).
    pub fn executor_cpu_us_per_read(&self) -> f64 {
        self.executor_cpu.as_secs_f64() * 1e6 / self.cold_reads.max(1) as f64
    }

    /// CPU microseconds per cold read on the process's other threads: where a path moves
    /// the work of a cold page off the executor, this is where it went.
    pub fn other_cpu_us_per_read(&self) -> f64 {
        self.other_cpu.as_secs_f64() * 1e6 / self.cold_reads.max(1) as f64
    }

    /// Executor major faults per 1,000 cold reads.
    pub fn faults_per_1000(&self) -> f64 {
        self.executor_major_faults as f64 * 1000.0 / self.cold_reads.max(1) as f64
    }
}

/// CPU time (user + system) of the calling thread (`RUSAGE_THREAD`) or of the whole
/// process, its ended threads included (`RUSAGE_SELF`).
fn cpu(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the struct we pass; it is plain old data.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `who` is RUSAGE_THREAD or RUSAGE_SELF.
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    cpu(libc::RUSAGE_THREAD)
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// The measured span of one run: device reads and executor faults counted from its start,
/// and the hot-request generator running until it ends. Both runtimes use it.
struct Window {
    device: DeviceReads,
    device_before: Option<u64>,
    faults_before: ThreadFaults,
    cpu_before: Duration,
    process_cpu_before: Duration,
    start: Instant,
    stop: Arc<AtomicBool>,
    /// The generator thread; it returns the CPU time it used.
    generator: std::thread::JoinHandle<Duration>,
}

impl Window {
    /// Starts counting and the hot generator; returns the stream of hot requests.
    fn start(path: &Path) -> (Window, futures::channel::mpsc::UnboundedReceiver<Instant>) {
        let device = DeviceReads::for_file(path);
        let (tx, rx) = futures::channel::mpsc::unbounded::<Instant>();
        let stop = Arc::new(AtomicBool::new(false));
        let window = Window {
            device_before: device.completed(),
            device,
            faults_before: thread_faults(),
            cpu_before: thread_cpu(),
            process_cpu_before: cpu(libc::RUSAGE_SELF),
            start: Instant::now(),
            generator: hot_generator(tx, stop.clone()),
            stop,
        };
        (window, rx)
    }

    /// Stops counting (on the executor thread) and the generator.
    fn finish(self, cold_reads: u64) -> Unfinished {
        let elapsed = self.start.elapsed();
        let faults = thread_faults().since(&self.faults_before);
        let executor = thread_cpu().saturating_sub(self.cpu_before);
        let process = cpu(libc::RUSAGE_SELF).saturating_sub(self.process_cpu_before);
        let device_after = self.device.completed();
        self.stop.store(true, Ordering::Relaxed);
        let generator = self.generator.join().unwrap_or_default();
        Unfinished {
            cold_reads,
            elapsed,
            device_reads: self.device_before.zip(device_after).map(|(b, a)| a - b),
            executor_major_faults: faults.major,
            executor_cpu: executor,
            other_cpu: process.saturating_sub(executor).saturating_sub(generator),
        }
    }
}

/// A run's counts, waiting for its hot-latency histogram.
struct Unfinished {
    executor_cpu: Duration,
    other_cpu: Duration,
    cold_reads: u64,
    elapsed: Duration,
    device_reads: Option<u64>,
    executor_major_faults: u64,
}

impl Unfinished {
    fn with_hot(self, hot: Histogram<u64>) -> RunResult {
        RunResult {
            cold_reads: self.cold_reads,
            elapsed: self.elapsed,
            device_reads: self.device_reads,
            executor_major_faults: self.executor_major_faults,
            executor_cpu: self.executor_cpu,
            other_cpu: self.other_cpu,
            hot,
        }
    }
}

/// Records the latency of a hot request sent at `sent`.
fn record_hot(hist: &mut Histogram<u64>, sent: Instant) {
    let us = sent.elapsed().as_micros().max(1) as u64;
    let _ = hist.record(us.min(60_000_000));
}

/// Sends `Instant`s at `HOT_RATE` per second until `stop`; returns the CPU time it used.
fn hot_generator(
    tx: futures::channel::mpsc::UnboundedSender<Instant>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        let period = Duration::from_nanos(1_000_000_000 / HOT_RATE);
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            next += period;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            if tx.unbounded_send(Instant::now()).is_err() {
                break;
            }
        }
        thread_cpu()
    })
}

/// Runs `spec.concurrency` cold readers (0 for hot-only) on a faultless runtime, mapping the
/// file with `options` (its backend and residency mode).
pub fn run_faultless(path: &Path, options: MapOptions, spec: RunSpec) -> io::Result<RunResult> {
    let RunSpec {
        workload,
        concurrency,
        duration,
        seed,
    } = spec;
    let rt = faultless::Runtime::new()?;
    // SAFETY: the bench's data file is written before the run and never while it is mapped.
    let map = unsafe { Mapping::open(path, options)? };
    map.evict_all()?;
    drop_file_cache(path)?;
    let total_pages = map.len() / 4096;
    let chooser = Rc::new(RefCell::new(Chooser::new(workload, total_pages, seed)));
    rt.block_on(async {
        // The hot set is resident before the clock starts.
        for p in 0..HOT_PAGES.min(total_pages) {
            map.read(p * 4096..p * 4096 + 1).await?;
        }
        let (window, mut rx) = Window::start(path);
        let deadline = window.start + duration;
        let hot_map = map.clone();
        let hot = faultless::spawn(async move {
            let mut hist = new_hist();
            let mut i = 0u64;
            while let Some(sent) = rx.next().await {
                let p = i % HOT_PAGES.min(total_pages);
                i += 1;
                let g = hot_map.read(p * 4096..p * 4096 + 64).await?;
                std::hint::black_box(g[0]);
                record_hot(&mut hist, sent);
            }
            Ok::<_, io::Error>(hist)
        });
        let readers: Vec<_> = (0..concurrency)
            .map(|_| {
                let map = map.clone();
                let chooser = chooser.clone();
                faultless::spawn(async move {
                    let mut reads = 0u64;
                    while Instant::now() < deadline {
                        let p = chooser.borrow_mut().next_page();
                        let g = map.read(p * 4096..(p + 1) * 4096).await?;
                        std::hint::black_box(g[4095]);
                        reads += 1;
                        // A request boundary, as in a server: let other tasks run. (With the
                        // blocking path this is the only point where they can.)
                        faultless::yield_now().await;
                    }
                    Ok::<_, io::Error>(reads)
                })
            })
            .collect();
        let mut cold_reads = 0;
        for r in readers {
            cold_reads += r.await??;
        }
        if concurrency == 0 {
            faultless::runtime::time::sleep_until(deadline).await;
        }
        let counts = window.finish(cold_reads);
        Ok(counts.with_hot(hot.await??))
    })
}

/// The same workload on tokio's current_thread runtime, each cold read a `spawn_blocking`
/// that touches the mapping: what a user would write today.
pub fn run_tokio(path: &Path, spec: RunSpec) -> io::Result<RunResult> {
    let RunSpec {
        workload,
        concurrency,
        duration,
        seed,
    } = spec;
    let file = std::fs::File::open(path)?;
    // SAFETY: a read-only view of the benchmark's own file, which nothing truncates.
    let map = Arc::new(unsafe { memmap2::Mmap::map(&file)? });
    map.advise(memmap2::Advice::Random)?;
    // SAFETY: drops our own read-only mapping's pages; the data stays in the file.
    unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed)? };
    drop_file_cache(path)?;
    let total_pages = map.len() as u64 / 4096;
    let chooser = Rc::new(RefCell::new(Chooser::new(workload, total_pages, seed)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(concurrency.max(1))
        .build()?;
    // The readers share the page chooser (an Rc): they run on this thread, as the
    // faultless readers do.
    tokio::task::LocalSet::new().block_on(&rt, async {
        for p in 0..HOT_PAGES.min(total_pages) {
            std::hint::black_box(map[(p * 4096) as usize]);
        }
        let (window, mut rx) = Window::start(path);
        let deadline = window.start + duration;
        let hot_map = map.clone();
        let hot = tokio::spawn(async move {
            let mut hist = new_hist();
            let mut i = 0u64;
            while let Some(sent) = rx.next().await {
                let p = i % HOT_PAGES.min(total_pages);
                i += 1;
                std::hint::black_box(hot_map[(p * 4096) as usize]);
                record_hot(&mut hist, sent);
            }
            hist
        });
        let readers: Vec<_> = (0..concurrency)
            .map(|_| {
                let map = map.clone();
                let chooser = chooser.clone();
                tokio::task::spawn_local(async move {
                    let mut reads = 0u64;
                    while Instant::now() < deadline {
                        let p = chooser.borrow_mut().next_page();
                        let m = map.clone();
                        tokio::task::spawn_blocking(move || {
                            std::hint::black_box(m[(p * 4096 + 4095) as usize]);
                        })
                        .await
                        .map_err(io::Error::other)?;
                        reads += 1;
                    }
                    Ok::<_, io::Error>(reads)
                })
            })
            .collect();
        let mut cold_reads = 0;
        for r in readers {
            cold_reads += r.await.map_err(io::Error::other)??;
        }
        let counts = window.finish(cold_reads);
        Ok(counts.with_hot(hot.await.map_err(io::Error::other)?))
    })
}

/// Nanoseconds per read of a resident 8-byte range: through `Mapping::read(..).await`, and
/// as a raw slice read of the same memory (same offsets, same loop; best of 5 rounds).
pub fn resident_read_cost(path: &Path) -> io::Result<(f64, f64)> {
    const PAGES: u64 = 1024;
    const ROUNDS: u64 = 2_000;
    let offsets: Vec<u64> = (0..4096u64)
        .map(|i| (i * 4104) % (PAGES * 4096 - 8))
        .collect();
    let reads = (ROUNDS * offsets.len() as u64) as f64;
    let rt = faultless::Runtime::new()?;
    // SAFETY: the bench's data file is written before the run and never while it is mapped.
    let map = unsafe { Mapping::open(path, MapOptions::new())? };
    rt.block_on(map.read(0..PAGES * 4096))?;
    let raw: &[u8] = &map
        .try_read(0..PAGES * 4096)
        .ok_or_else(|| io::Error::other("pages not resident after reading them"))?;
    let api_round = || {
        rt.block_on(async {
            let mut sum = 0u64;
            for _ in 0..ROUNDS {
                for &off in &offsets {
                    let g = map.read(off..off + 8).await?;
                    sum = sum.wrapping_add(std::hint::black_box(&*g)[0] as u64);
                }
            }
            Ok::<u64, io::Error>(sum)
        })
    };
    let raw_round = || {
        let mut sum = 0u64;
        for _ in 0..ROUNDS {
            for &off in &offsets {
                let g = &raw[off as usize..off as usize + 8];
                sum = sum.wrapping_add(std::hint::black_box(g)[0] as u64);
            }
        }
        sum
    };
    let mut best_api = f64::MAX;
    let mut best_raw = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(api_round()?);
        best_api = best_api.min(t.elapsed().as_nanos() as f64 / reads);
        let t = Instant::now();
        std::hint::black_box(raw_round());
        best_raw = best_raw.min(t.elapsed().as_nanos() as f64 / reads);
    }
    Ok((best_api, best_raw))
}
