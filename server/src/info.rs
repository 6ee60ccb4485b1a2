//! The text of `INFO [section ...]`: Redis's sections and field names (server, clients,
//! memory, persistence, stats, replication, cpu, errorstats, keyspace, commandstats), and
//! the server's own (store, pages, runtime, limits).

use std::fmt::Write;

use crate::cmd::table::TABLE;
use crate::server::Shared;

/// The sections INFO prints with no argument (or `default`).
const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "errorstats",
    "keyspace",
    "store",
    "pages",
    "runtime",
    "limits",
];
/// Sections only `all` and `everything` (or naming them) print.
const EXTRA: &[&str] = &["commandstats"];

/// Renders INFO's reply for the requested sections.
pub(crate) fn render(shared: &Shared, args: &[&[u8]]) -> String {
    let mut wanted: Vec<&str> = Vec::new();
    let add = |s: &'static str, w: &mut Vec<&str>| {
        if !w.contains(&s) {
            w.push(s);
        }
    };
    if args.is_empty() {
        DEFAULT.iter().for_each(|s| add(s, &mut wanted));
    }
    for a in args {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => DEFAULT.iter().for_each(|s| add(s, &mut wanted)),
            "all" | "everything" => DEFAULT
                .iter()
                .chain(EXTRA)
                .for_each(|s| add(s, &mut wanted)),
            other => {
                if let Some(s) = DEFAULT.iter().chain(EXTRA).find(|s| **s == other) {
                    add(s, &mut wanted);
                }
            }
        }
    }
    let mut out = String::new();
    for (i, s) in wanted.iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        section(shared, s, &mut out);
    }
    out
}

fn rusage(who: i32) -> (f64, f64) {
    // SAFETY: getrusage writes one rusage into the zeroed struct we pass.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `who` is RUSAGE_SELF or RUSAGE_CHILDREN.
    unsafe { libc::getrusage(who, &mut r) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(r.ru_utime), t(r.ru_stime))
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn section(shared: &Shared, name: &str, o: &mut String) {
    let s = shared.store.stats();
    let st = &shared.stats;
    let uptime = shared.started.elapsed().as_secs();
    let _ = match name {
        "server" => write!(
            o,
            "# Server\r\nredis_version:{}\r\nredis_mode:standalone\r\nfaultless_version:{}\r\nos:{}\r\narch_bits:64\r\nmultiplexing_api:io_uring\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nexecutable:faultless\r\nconfig_file:\r\n",
            crate::cmd::conn::REDIS_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            shared.port,
            uptime,
            uptime / 86400,
            shared.config.borrow().hz,
        ),
        "clients" => write!(
            o,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\ntracking_clients:0\r\nwatching_clients:{}\r\n",
            st.connected.get(),
            shared.client_limit(),
            shared.watches.keys(),
        ),
        "memory" => {
            let r = rss();
            write!(
                o,
                "# Memory\r\nused_memory:{r}\r\nused_memory_human:{:.2}M\r\nused_memory_rss:{r}\r\nused_memory_peak:{r}\r\nused_memory_dataset:{}\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\nmem_allocator:libc\r\n",
                r as f64 / 1048576.0,
                s.file_size,
            )
        }
        "persistence" => write!(
            o,
            "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\nappendfsync:{}\r\n",
            crate::db::now_ms() / 1000,
            shared.options.appendfsync(),
        ),
        "stats" => write!(
            o,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\ntotal_error_replies:{}\r\ncommits:{}\r\ngrouped_writes:{}\r\n",
            st.accepted.get(),
            st.commands.get(),
            st.rejected_connections.get(),
            st.expired_keys.get(),
            st.keyspace_hits.get(),
            st.keyspace_misses.get(),
            st.errors.borrow().values().sum::<u64>(),
            st.commits.get(),
            st.grouped_jobs.get(),
        ),
        "replication" => write!(
            o,
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nrepl_backlog_active:0\r\n",
        ),
        "cpu" => {
            let (us, sy) = rusage(libc::RUSAGE_SELF);
            let (cu, cs) = rusage(libc::RUSAGE_CHILDREN);
            write!(
                o,
                "# CPU\r\nused_cpu_sys:{sy:.6}\r\nused_cpu_user:{us:.6}\r\nused_cpu_sys_children:{cs:.6}\r\nused_cpu_user_children:{cu:.6}\r\n"
            )
        }
        "errorstats" => {
            o.push_str("# Errorstats\r\n");
            for (code, n) in st.errors.borrow().iter() {
                let _ = write!(o, "errorstat_{code}:count={n}\r\n");
            }
            Ok(())
        }
        "commandstats" => {
            o.push_str("# Commandstats\r\n");
            for (i, c) in st.per_command.borrow().iter().enumerate() {
                if c.calls + c.rejected == 0 {
                    continue;
                }
                let per = if c.calls > 0 { c.usec as f64 / c.calls as f64 } else { 0.0 };
                let _ = write!(
                    o,
                    "cmdstat_{}:calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}\r\n",
                    TABLE[i].name, c.calls, c.usec, c.rejected, c.failed
                );
            }
            Ok(())
        }
        "keyspace" => {
            o.push_str("# Keyspace\r\n");
            let c = shared.keyspace.counts();
            if c.keys > 0 {
                let _ = write!(o, "db0:keys={},expires={},avg_ttl=0\r\n", c.keys, c.expires);
            }
            Ok(())
        }
        "store" => write!(
            o,
            "# Store\r\ntxid:{}\r\npages:{}\r\nfile_size:{}\r\nstore_entries:{}\r\ncommits:{}\r\nsyncs:{}\r\nlog_writes:{}\r\nlog_write_p50_us:{}\r\nlog_write_p99_us:{}\r\nlog_write_max_us:{}\r\nreaders:{}\r\noldest_reader_lag:{}\r\nmax_key_len:{}\r\nmax_field_len:{}\r\n",
            s.txid,
            s.page_count,
            s.file_size,
            s.entries,
            s.commits,
            s.syncs,
            s.log_writes,
            s.log_write.p50_us,
            s.log_write.p99_us,
            s.log_write.max_us,
            s.readers,
            s.oldest_reader_lag,
            crate::db::keys::MAX_KEY,
            crate::db::keys::MAX_FIELD,
        ),
        "pages" => {
            let p = &s.pages;
            write!(
                o,
                "# Pages\r\nbackend:{}\r\nprefetches:{}\r\npages_brought_in:{}\r\ndedup_waits:{}\r\nslow_reads:{}\r\nwait_p50_us:{}\r\nwait_p99_us:{}\r\nexecutor_major_faults:{}\r\nexecutor_minor_faults:{}\r\n",
                p.backend.map_or("?", |b| b.name()),
                p.prefetches,
                p.pages_brought_in,
                p.dedup_waits,
                p.slow_reads,
                p.wait.p50_us,
                p.wait.p99_us,
                p.executor_faults.major,
                p.executor_faults.minor,
            )
            .and_then(|()| {
            let r = &p.residency;
            write!(
                o,
                "residency:{}\r\nresidency_fallback:{}\r\nlocked_bytes:{}\r\nresident_budget:{}\r\npages_unpinned:{}\r\nbudget_shrinks:{}\r\nscrub_passes:{}\r\npages_found_reclaimed:{}\r\nmapped_from_cache:{}\r\n",
                r.mode.map_or("?", |m| m.name()),
                r.fallback.as_deref().unwrap_or("none").replace(['\r', '\n'], " "),
                p.locked_bytes,
                r.budget_bytes.unwrap_or(0),
                r.pages_unpinned,
                r.budget_shrinks,
                r.scrub_passes,
                r.pages_found_reclaimed,
                p.mapped_from_cache,
            )
            })
            .and_then(|()| {
                write!(
                    o,
                    "read_ahead_lookups:{}\r\n",
                    st.read_ahead_lookups.get()
                )
            })
        }
        "runtime" => {
            let rt = faultless_runtime::stats().unwrap_or_default();
            write!(
                o,
                "# Runtime\r\nturns:{}\r\npolls:{}\r\ntasks_alive:{}\r\nops_submitted:{}\r\nparks:{}\r\n",
                rt.turns, rt.polls, rt.tasks_alive, rt.ops_submitted, rt.parks,
            )
        }
        "limits" => write!(
            o,
            "# Limits\r\nlong_request_yields:{}\r\nmax_request:{}\r\nmax_request_memory:{}\r\nrequest_memory_used:{}\r\nrequests_refused_for_memory:{}\r\nmaxclients:{}\r\nrejected_connections:{}\r\ntimeout:{}\r\nidle_timeouts:{}\r\n",
            st.work_yields.get(),
            shared.options.max_request,
            shared.request_memory.limit(),
            shared.request_memory.used(),
            shared.request_memory.refused(),
            shared.client_limit(),
            st.rejected_connections.get(),
            shared.config.borrow().timeout,
            st.idle_timeouts.get(),
        ),
        _ => Ok(()),
    };
}
