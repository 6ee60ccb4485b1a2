//! `faultless bench store`: the store against LMDB (heed) and redb, side by side in one run.
//!
//! Every engine gets the same keys (`key` + 12 digits, sorted) and values, built fresh in a
//! scratch directory, then: hot random gets from one thread (every page resident), cold
//! random gets (pages dropped from memory first; faultless with 128 tasks on one executor
//! thread, the others from one thread, where every miss is a blocking page fault or pread),
//! and durable commits per second with 1 and 64 concurrent writers (faultless: `Store::put`,
//! logged with group commit and checkpointed into the tree in the background; LMDB and
//! redb: one transaction per put, each synced; a faultless turn ends with a checkpoint
//! inside its timed window, so it pays for merging its commits into the tree). The commit
//! measurements take turns in rounds (`--rounds`): a shared disk's sync rate moves within
//! seconds, so one turn each would compare the engines on different disks; each round's
//! ratios are printed too.
//!
//! faultless alone, after that: puts/s from 800 concurrent tasks (the server's pipelined
//! SET pattern, 50 clients x 16) under `always` and `everysec`, and the time to reopen the
//! store after a child process writing at full speed (64 writers) is killed with SIGKILL,
//! checking that no acknowledged write was lost.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use faultless::store::{Durability, Store, StoreOptions};
use heed::types::Bytes;
use redb::{ReadableDatabase, TableDefinition};
use serde::Serialize;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// Options of `faultless bench store`.
#[derive(Args, Debug)]
pub struct StoreBenchArgs {
    /// Scratch directory for the three stores (recreated on every run).
    #[arg(long, default_value = "faultless-store-bench")]
    dir: PathBuf,
    /// Number of keys.
    #[arg(long, default_value_t = 1_000_000)]
    pub(super) keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    pub(super) value_size: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 2.0, value_parser = super::data::parse_seconds)]
    seconds: f64,
    /// Write the results as JSON to this path.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also measure random gets with only this much memory left for the page cache
    /// (512M, 2G, ...), so that the kernel reclaims pages the readers will want again:
    /// a store several times this size shows whether reads keep off the executor's
    /// faults. Uses a memory cgroup where one can be made, else holds anonymous memory.
    #[arg(long, value_parser = super::data::parse_size)]
    page_cache: Option<u64>,
    /// Seconds per engine under pressure.
    #[arg(long, default_value_t = 20.0, value_parser = super::data::parse_seconds)]
    pressure_seconds: f64,
    /// Rounds of the durable-commit measurements: the three engines take turns, `seconds`
    /// each per round, and each rate is the mean over the rounds.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Seconds the writer child runs before it is killed, for the reopen measurement.
    #[arg(long, default_value_t = 3.0, value_parser = super::data::parse_seconds)]
    pub(super) kill_after: f64,
}

#[derive(Serialize, Default, Debug)]
struct Engine {
    build_s: f64,
    hot_gets_per_s: f64,
    cold_gets_per_s: f64,
    commits_1_writer_per_s: f64,
    commits_64_writers_per_s: f64,
}

/// faultless alone: the server's write pattern, and reopening after a crash.
#[derive(Serialize, Default, Debug)]
pub(super) struct WalReport {
    pub(super) puts_800_tasks_always_per_s: f64,
    pub(super) puts_800_tasks_everysec_per_s: f64,
    /// Commits per log write in the 800-task `always` run (group commit).
    pub(super) commits_per_log_write_800: f64,
    pub(super) checkpoints_800: u64,
    /// Reopen after SIGKILL of a child writing with 64 tasks.
    pub(super) reopen_ms: f64,
    pub(super) reopen_replayed_commits: u64,
    pub(super) reopen_replayed_bytes: u64,
    /// Writes the child had acknowledged before it was killed, and how many of them the
    /// reopened store lacked (must be 0).
    pub(super) reopen_acked_writes: u64,
    pub(super) reopen_lost_writes: u64,
}

#[derive(Serialize, Debug)]
struct StoreReport {
    keys: u64,
    value_size: usize,
    faultless: Engine,
    lmdb: Engine,
    redb: Engine,
    wal: WalReport,
    /// Each round's durable commits/s, 1 writer then 64: faultless, LMDB, redb.
    commit_rounds: Vec<[[f64; 3]; 2]>,
    pressure: Option<super::store_pressure::StorePressure>,
}

pub(super) fn key(i: u64) -> Vec<u8> {
    format!("key{i:012}").into_bytes()
}

pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// How long a synchronous get loop runs.
#[derive(Clone, Copy)]
pub(super) enum Until {
    Elapsed(Duration),
    Gets(u64),
}

/// Calls `get` on random keys of `0..n` until `until`; returns gets per second. `get`
/// returns the value's length, or `None` if the key is missing (an error: every key exists).
pub(super) fn sync_gets(
    n: u64,
    seed: u64,
    until: Until,
    mut get: impl FnMut(&[u8]) -> io::Result<Option<usize>>,
) -> io::Result<f64> {
    let mut rng = Rng(seed);
    let start = Instant::now();
    let mut done = 0u64;
    loop {
        match until {
            Until::Elapsed(d) if start.elapsed() >= d => break,
            Until::Gets(g) if done >= g => break,
            _ => {}
        }
        let len = get(&key(rng.next() % n))?.ok_or_else(|| other("missing key"))?;
        std::hint::black_box(len);
        done += 1;
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

pub(super) fn other<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

/// Drops a file's pages from the page cache (no process may have it mapped).
pub(super) fn make_cold(path: &Path) -> io::Result<()> {
    super::data::drop_file_cache(path)
}

pub(super) fn lmdb_env(dir: &Path) -> io::Result<heed::Env> {
    // SAFETY: the environment is opened once per phase by this process only, and its files
    // are not modified by anything else meanwhile.
    unsafe {
        heed::EnvOpenOptions::new()
            .map_size(16 << 30)
            .flags(heed::EnvFlags::NO_READ_AHEAD)
            .open(dir)
    }
    .map_err(other)
}

/// The unnamed database of an environment `lmdb_env` opened (the bench's keys).
pub(super) fn lmdb_db(env: &heed::Env) -> io::Result<heed::Database<Bytes, Bytes>> {
    let r = env.read_txn().map_err(other)?;
    env.open_database(&r, None)
        .map_err(other)?
        .ok_or_else(|| other("no db"))
}

/// Runs the store benchmark and prints the table.
pub fn run(args: StoreBenchArgs) -> io::Result<()> {
    if let Some(path) = std::env::var_os(super::store_reopen::CHILD_ENV) {
        return super::store_reopen::child(Path::new(&path), args.keys, args.value_size);
    }
    if args.keys == 0 || args.seconds <= 0.0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--keys and --seconds must be positive",
        ));
    }
    let _ = std::fs::remove_dir_all(&args.dir);
    let lmdb_dir = args.dir.join("lmdb");
    std::fs::create_dir_all(&lmdb_dir)?;
    let fl_path = args.dir.join("faultless.db");
    let redb_path = args.dir.join("redb.db");
    let value = vec![b'v'; args.value_size];
    let dur = Duration::from_secs_f64(args.seconds);
    let n = args.keys;
    let mut fl = Engine::default();
    let mut lm = Engine::default();
    let mut rd = Engine::default();

    // Build.
    eprintln!("building {n} keys in each store ...");
    let t = Instant::now();
    let rt = faultless::Runtime::new()?;
    rt.block_on(async {
        let store = Store::open(&fl_path, StoreOptions::new()).await?;
        let items = (0..n).map(|i| Ok((key(i), value.clone())));
        store.load(items, |_| {}).await?;
        Ok::<_, io::Error>(())
    })?;
    fl.build_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    {
        let env = lmdb_env(&lmdb_dir)?;
        let mut w = env.write_txn().map_err(other)?;
        let db: heed::Database<Bytes, Bytes> = env.create_database(&mut w, None).map_err(other)?;
        for i in 0..n {
            db.put_with_flags(&mut w, heed::PutFlags::APPEND, &key(i), &value)
                .map_err(other)?;
        }
        w.commit().map_err(other)?;
    }
    lm.build_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    {
        let db = redb::Database::create(&redb_path).map_err(other)?;
        let w = db.begin_write().map_err(other)?;
        {
            let mut table = w.open_table(TABLE).map_err(other)?;
            for i in 0..n {
                table
                    .insert(key(i).as_slice(), value.as_slice())
                    .map_err(other)?;
            }
        }
        w.commit().map_err(other)?;
    }
    rd.build_s = t.elapsed().as_secs_f64();

    // Hot gets: warm everything, then random gets from one thread.
    eprintln!("hot random gets ...");
    fl.hot_gets_per_s = rt.block_on(async {
        let store = Store::open(&fl_path, StoreOptions::new()).await?;
        let txn = store.read_txn();
        for i in 0..n {
            txn.get(&key(i)).await?;
        }
        let mut rng = Rng(1);
        let start = Instant::now();
        let mut done = 0u64;
        while start.elapsed() < dur {
            for _ in 0..1000 {
                let v = txn
                    .get(&key(rng.next() % n))
                    .await?
                    .ok_or_else(|| other("missing key"))?;
                std::hint::black_box(v.len());
            }
            done += 1000;
        }
        Ok::<_, io::Error>(done as f64 / start.elapsed().as_secs_f64())
    })?;
    {
        let env = lmdb_env(&lmdb_dir)?;
        let db = lmdb_db(&env)?;
        let r = env.read_txn().map_err(other)?;
        for i in 0..n {
            db.get(&r, &key(i)).map_err(other)?;
        }
        lm.hot_gets_per_s = sync_gets(n, 1, Until::Elapsed(dur), |k| {
            Ok(db.get(&r, k).map_err(other)?.map(<[u8]>::len))
        })?;
    }
    {
        let db = redb::Database::create(&redb_path).map_err(other)?;
        let r = db.begin_read().map_err(other)?;
        let table = r.open_table(TABLE).map_err(other)?;
        for i in 0..n {
            table.get(key(i).as_slice()).map_err(other)?;
        }
        rd.hot_gets_per_s = sync_gets(n, 1, Until::Elapsed(dur), |k| {
            Ok(table.get(k).map_err(other)?.map(|v| v.value().len()))
        })?;
    }

    // Cold gets: fresh opens, files dropped from the page cache, then a fixed number of
    // random gets (few enough that most of them meet a page not yet read).
    eprintln!("cold random gets ...");
    let cold_gets = (n / 50).clamp(1000, 20_000);
    make_cold(&fl_path)?;
    fl.cold_gets_per_s = rt.block_on(async {
        let store = Store::open(&fl_path, StoreOptions::new()).await?;
        tasks_rate(128, |t| {
            let store = store.clone();
            async move {
                let txn = store.read_txn();
                let mut rng = Rng(t * 7919 + 1);
                let mut done = 0u64;
                while done < cold_gets / 128 {
                    let v = txn
                        .get(&key(rng.next() % n))
                        .await?
                        .ok_or_else(|| other("missing"))?;
                    std::hint::black_box(v.len());
                    done += 1;
                }
                Ok(done)
            }
        })
        .await
    })?;
    make_cold(&lmdb_dir.join("data.mdb"))?;
    {
        let env = lmdb_env(&lmdb_dir)?;
        let db = lmdb_db(&env)?;
        let r = env.read_txn().map_err(other)?;
        lm.cold_gets_per_s = sync_gets(n, 3, Until::Gets(cold_gets), |k| {
            Ok(db.get(&r, k).map_err(other)?.map(<[u8]>::len))
        })?;
    }
    make_cold(&redb_path)?;
    {
        let db = redb::Database::create(&redb_path).map_err(other)?;
        let r = db.begin_read().map_err(other)?;
        let table = r.open_table(TABLE).map_err(other)?;
        rd.cold_gets_per_s = sync_gets(n, 3, Until::Gets(cold_gets), |k| {
            Ok(table.get(k).map_err(other)?.map(|v| v.value().len()))
        })?;
    }

    let pressure = match args.page_cache {
        Some(size) => Some(super::store_pressure::run(
            &rt,
            &fl_path,
            &lmdb_dir,
            n,
            size,
            Duration::from_secs_f64(args.pressure_seconds),
        )?),
        None => None,
    };

    // Durable commits, the engines taking turns.
    eprintln!("durable commits ({} rounds) ...", args.rounds);
    let mut commit_rounds = Vec::new();
    for round in 0..args.rounds as u64 {
        let mut rates = [[0f64; 3]; 2];
        for (w, writers) in [1u64, 64].into_iter().enumerate() {
            let paths = (fl_path.as_path(), lmdb_dir.as_path(), redb_path.as_path());
            rates[w] = durable_commits(&rt, paths, n, &value, writers, round, dur)?;
        }
        eprintln!(
            "  round {}: 1 writer {:.2}x LMDB, 64 writers {:.2}x LMDB",
            round + 1,
            rates[0][0] / rates[0][1].max(1e-9),
            rates[1][0] / rates[1][1].max(1e-9)
        );
        commit_rounds.push(rates);
    }
    let mean = |w: usize, e: usize| {
        commit_rounds.iter().map(|r| r[w][e]).sum::<f64>() / commit_rounds.len() as f64
    };
    fl.commits_1_writer_per_s = mean(0, 0);
    lm.commits_1_writer_per_s = mean(0, 1);
    rd.commits_1_writer_per_s = mean(0, 2);
    fl.commits_64_writers_per_s = mean(1, 0);
    lm.commits_64_writers_per_s = mean(1, 1);
    rd.commits_64_writers_per_s = mean(1, 2);

    // The server's write pattern: many tasks, each waiting for its own put.
    eprintln!("800 concurrent writers ...");
    let mut wal = WalReport::default();
    for durability in [Durability::Always, Durability::EverySec] {
        let (rate, per_write, checkpoints) = rt.block_on(async {
            let store = Store::open(&fl_path, StoreOptions::new().durability(durability)).await?;
            let before = store.stats();
            let deadline = Instant::now() + dur;
            let rate = tasks_rate(800, |t| {
                random_puts(store.clone(), value.clone(), n, Rng(t * 7919 + 3), deadline)
            })
            .await?;
            let s = store.stats();
            let writes = (s.log_writes - before.log_writes).max(1);
            let per_write = (s.commits - before.commits) as f64 / writes as f64;
            store.close().await?;
            Ok::<_, io::Error>((rate, per_write, s.checkpoints - before.checkpoints))
        })?;
        match durability {
            Durability::Always => {
                wal.puts_800_tasks_always_per_s = rate;
                wal.commits_per_log_write_800 = per_write;
                wal.checkpoints_800 = checkpoints;
            }
            _ => wal.puts_800_tasks_everysec_per_s = rate,
        }
    }

    // Reopen after SIGKILL under full write load.
    eprintln!("reopen after SIGKILL under write load ...");
    super::store_reopen::measure(&args, &fl_path, &rt, &mut wal)?;

    let report = StoreReport {
        keys: n,
        value_size: args.value_size,
        faultless: fl,
        lmdb: lm,
        redb: rd,
        wal,
        commit_rounds,
        pressure,
    };
    print_table(&report);
    if let Some(p) = &report.pressure {
        super::store_pressure::print(p);
    }
    if let Some(p) = &args.json {
        std::fs::write(
            p,
            serde_json::to_string_pretty(&report).map_err(other)? + "\n",
        )?;
        eprintln!("wrote {}", p.display());
    }
    std::fs::remove_dir_all(&args.dir)?;
    Ok(())
}

/// Runs `tasks` tasks on the current runtime, each `body(task index)` returning how many
/// operations it did; returns operations per second over all of them.
pub(super) async fn tasks_rate<F, Fut>(tasks: u64, body: F) -> io::Result<f64>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = io::Result<u64>> + 'static,
{
    let start = Instant::now();
    let total = tasks_total(tasks, body).await?;
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// Puts random keys of `0..n` (from `rng`) with `value`, one at a time, until `deadline`;
/// returns how many.
async fn random_puts(
    store: Store,
    value: Vec<u8>,
    n: u64,
    mut rng: Rng,
    deadline: Instant,
) -> io::Result<u64> {
    let mut done = 0u64;
    while Instant::now() < deadline {
        store.put(&key(rng.next() % n), &value).await?;
        done += 1;
    }
    Ok(done)
}

/// Runs `body(0..tasks)` as concurrent tasks; returns the sum of what they return.
async fn tasks_total<F, Fut>(tasks: u64, body: F) -> io::Result<u64>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = io::Result<u64>> + 'static,
{
    let handles: Vec<_> = (0..tasks).map(|t| faultless::spawn(body(t))).collect();
    let mut total = 0;
    for h in handles {
        total += h.await.map_err(other)??;
    }
    Ok(total)
}

/// One round of durable commits from `writers` writers on each engine in turn (faultless,
/// LMDB, redb: the stores at `paths`), `dur` each; returns their commits/s. Keys are random
/// in `0..n`, from a sequence of the round's own.
fn durable_commits(
    rt: &faultless::Runtime,
    (fl_path, lmdb_dir, redb_path): (&Path, &Path, &Path),
    n: u64,
    value: &[u8],
    writers: u64,
    round: u64,
    dur: Duration,
) -> io::Result<[f64; 3]> {
    let seed = move |t: u64| Rng(t + 99 + round * 7919);
    let fl = rt.block_on(async {
        let store = Store::open(fl_path, StoreOptions::new()).await?;
        let start = Instant::now();
        let deadline = start + dur;
        let done = tasks_total(writers, |t| {
            random_puts(store.clone(), value.to_vec(), n, seed(t), deadline)
        })
        .await?;
        // The commits still in the log go into the tree inside the timed window: the turn
        // pays for its own checkpoints (as LMDB's commits end in its tree) and leaves the
        // next turn, of any engine, none of its work.
        store.checkpoint().await?;
        let rate = done as f64 / start.elapsed().as_secs_f64();
        store.close().await?;
        Ok::<_, io::Error>(rate)
    })?;
    let lmdb = {
        let env = lmdb_env(lmdb_dir)?;
        let db = lmdb_db(&env)?;
        threaded_commits(writers, dur, seed, |rng| {
            let mut w = env.write_txn().map_err(other)?;
            db.put(&mut w, &key(rng.next() % n), value).map_err(other)?;
            w.commit().map_err(other)
        })?
    };
    let redb = {
        let db = redb::Database::create(redb_path).map_err(other)?;
        threaded_commits(writers, dur, seed, |rng| {
            let w = db.begin_write().map_err(other)?;
            {
                let mut t = w.open_table(TABLE).map_err(other)?;
                t.insert(key(rng.next() % n).as_slice(), value)
                    .map_err(other)?;
            }
            w.commit().map_err(other)
        })?
    };
    Ok([fl, lmdb, redb])
}

/// Durable commits per second from `writers` threads each running `commit` in a loop, writer
/// `t` with the random sequence `seed(t)`.
fn threaded_commits<F>(
    writers: u64,
    dur: Duration,
    seed: impl Fn(u64) -> Rng + Sync,
    commit: F,
) -> io::Result<f64>
where
    F: Fn(&mut Rng) -> io::Result<()> + Sync,
{
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let failed = std::sync::Mutex::new(None);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..writers {
            let (stop, total, failed, commit, seed) = (&stop, &total, &failed, &commit, &seed);
            s.spawn(move || {
                let mut rng = seed(t);
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = commit(&mut rng) {
                        *failed.lock().unwrap() = Some(e);
                        return;
                    }
                    total.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
    });
    if let Some(e) = failed.into_inner().unwrap() {
        return Err(e);
    }
    Ok(total.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

fn print_table(r: &StoreReport) {
    let row = |name: &str, f: f64, l: f64, d: f64| {
        println!(
            "{name:<28} {f:>12.0} {l:>12.0} {d:>12.0} {:>9.2}x {:>9.2}x",
            f / l.max(1e-9),
            f / d.max(1e-9)
        );
    };
    println!(
        "store benchmark: {} keys, {}-byte values\n",
        r.keys, r.value_size
    );
    println!(
        "{:<28} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "measurement", "faultless", "lmdb", "redb", "vs lmdb", "vs redb"
    );
    row(
        "hot gets/s (1 thread)",
        r.faultless.hot_gets_per_s,
        r.lmdb.hot_gets_per_s,
        r.redb.hot_gets_per_s,
    );
    row(
        "cold gets/s (1 thread)",
        r.faultless.cold_gets_per_s,
        r.lmdb.cold_gets_per_s,
        r.redb.cold_gets_per_s,
    );
    row(
        "durable commits/s, 1 writer",
        r.faultless.commits_1_writer_per_s,
        r.lmdb.commits_1_writer_per_s,
        r.redb.commits_1_writer_per_s,
    );
    row(
        "durable commits/s, 64 writers",
        r.faultless.commits_64_writers_per_s,
        r.lmdb.commits_64_writers_per_s,
        r.redb.commits_64_writers_per_s,
    );
    println!(
        "{:<28} {:>12.2} {:>12.2} {:>12.2}",
        "build seconds", r.faultless.build_s, r.lmdb.build_s, r.redb.build_s
    );
    for (w, name) in [(0, "1 writer"), (1, "64 writers")] {
        let ratios: Vec<String> = r
            .commit_rounds
            .iter()
            .map(|rd| format!("{:.2}x", rd[w][0] / rd[w][1].max(1e-9)))
            .collect();
        println!("{name} vs lmdb, round by round: {}", ratios.join(" "));
    }
    let w = &r.wal;
    println!("\nfaultless alone:");
    println!(
        "durable puts/s, 800 tasks, always:   {:>10.0} ({:.0} commits per log write, {} checkpoints)",
        w.puts_800_tasks_always_per_s, w.commits_per_log_write_800, w.checkpoints_800
    );
    println!(
        "puts/s, 800 tasks, everysec:         {:>10.0}",
        w.puts_800_tasks_everysec_per_s
    );
    println!(
        "reopen after SIGKILL under load:     {:>10.1} ms ({} commits, {} bytes of log replayed; \
         {} acknowledged writes checked, {} lost)",
        w.reopen_ms,
        w.reopen_replayed_commits,
        w.reopen_replayed_bytes,
        w.reopen_acked_writes,
        w.reopen_lost_writes
    );
}
