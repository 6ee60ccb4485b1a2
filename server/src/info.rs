//! The text of `INFO`: the server's, the store's and the runtime's counters.

use crate::server::Shared;

/// Renders `INFO`'s reply.
pub(crate) fn render(shared: &Shared) -> String {
    let s = shared.store.stats();
    let rt = faultless_runtime::stats().unwrap_or_default();
    let p = &s.pages;
    format!(
        "# Server\r\nfaultless_version:{}\r\ntcp_port:{}\r\nconnected_clients:{}\r\n\
         # Keyspace\r\ndb0:keys={}\r\n\
         # Store\r\ntxid:{}\r\npages:{}\r\nfile_size:{}\r\ncommits:{}\r\ngrouped_writes:{}\r\nsyncs:{}\r\nreaders:{}\r\noldest_reader_lag:{}\r\n\
         # Pages\r\nbackend:{}\r\nprefetches:{}\r\npages_brought_in:{}\r\ndedup_waits:{}\r\nslow_reads:{}\r\nwait_p50_us:{}\r\nwait_p99_us:{}\r\nexecutor_major_faults:{}\r\nexecutor_minor_faults:{}\r\n\
         # Runtime\r\nturns:{}\r\npolls:{}\r\ntasks_alive:{}\r\nops_submitted:{}\r\nparks:{}\r\n\
         # Limits\r\nlong_request_yields:{}\r\nmax_request:{}\r\nmax_request_memory:{}\r\nrequest_memory_used:{}\r\nrequests_refused_for_memory:{}\r\nmaxclients:{}\r\nrejected_connections:{}\r\ntimeout:{}\r\nidle_timeouts:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        shared.port,
        shared.stats.connected.get(),
        s.entries,
        s.txid,
        s.page_count,
        s.file_size,
        s.commits,
        s.grouped_ops,
        s.syncs,
        s.readers,
        s.oldest_reader_lag,
        p.backend.map_or("?", |b| b.name()),
        p.prefetches,
        p.pages_brought_in,
        p.dedup_waits,
        p.slow_reads,
        p.wait.p50_us,
        p.wait.p99_us,
        p.executor_faults.major,
        p.executor_faults.minor,
        rt.turns,
        rt.polls,
        rt.tasks_alive,
        rt.ops_submitted,
        rt.parks,
        shared.stats.work_yields.get(),
        shared.options.max_request,
        shared.request_memory.limit(),
        shared.request_memory.used(),
        shared.request_memory.refused(),
        shared.max_clients,
        shared.stats.rejected_connections.get(),
        shared.options.timeout,
        shared.stats.idle_timeouts.get(),
    )
}
