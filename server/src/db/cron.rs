//! Background work, ten times a second (Redis's `hz 10`): active expiry and the garbage
//! collector of deleted containers.
//!
//! **Active expiry.** Redis samples random keys that have a TTL, because its keys are in a
//! hash table. Here the expiry index is ordered by time, so the keys whose time has come are
//! exactly the first entries of the index: a cycle deletes them in slices of
//! [`EXPIRE_SLICE`] keys, one commit each, for at most [`CYCLE_BUDGET`] (25 ms, as Redis's
//! slow cycle) before waiting for the next tick. Each slice is a committer job, so writers
//! interleave with it, and between slices the task yields to the event loop: a million keys
//! expiring at once cost many short slices, never a stall. Keys also expire on access (a
//! read reports them missing; a write deletes them first), so a key past its time is never
//! seen, whatever the backlog.
//!
//! **Garbage.** Deleting a hash or set removes only its key's record; its items, named by the
//! container's id which nothing refers to any more, are deleted here in slices of
//! [`GARBAGE_SLICE`].

use std::ops::Bound::{Excluded, Included};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::committer::{submit, Job};
use super::{keys, now_ms, Snap, View};
use crate::protocol::Reply;
use crate::server::Shared;

/// Keys expired per commit.
pub(crate) const EXPIRE_SLICE: usize = 200;
/// Container items deleted per commit.
pub(crate) const GARBAGE_SLICE: usize = 1000;
/// Time one cycle may take.
pub(crate) const CYCLE_BUDGET: Duration = Duration::from_millis(25);
/// Time between cycles.
const TICK: Duration = Duration::from_millis(100);

/// Runs the cycles until the server shuts down.
pub(crate) async fn run(shared: Rc<Shared>) {
    while !shared.shutdown.get() {
        faultless_runtime::time::sleep(TICK).await;
        if shared.shutdown.get() {
            return;
        }
        let deadline = Instant::now() + CYCLE_BUDGET;
        while shared.active_expire.get() && due(&shared).await && Instant::now() < deadline {
            let Reply::Int(n) = submit(
                &shared,
                Job::Expire {
                    limit: EXPIRE_SLICE,
                },
            )
            .await
            else {
                break;
            };
            if (n as usize) < EXPIRE_SLICE {
                break;
            }
        }
        while shared.keyspace.garbage.get() && Instant::now() < deadline {
            match submit(
                &shared,
                Job::Collect {
                    limit: GARBAGE_SLICE,
                },
            )
            .await
            {
                Reply::Int(0) => shared.keyspace.garbage.set(false),
                Reply::Int(_) => {}
                _ => break,
            }
        }
    }
}

/// True if some key's time has come (a look at the first entry of the index).
async fn due(shared: &Shared) -> bool {
    if shared.keyspace.expires.get() == 0 {
        return false;
    }
    let snap = Snap::new(shared);
    let first = snap
        .raw_range(
            Included(keys::expiry_at(0)),
            Excluded(keys::expiry_at(now_ms().saturating_add(1))),
            1,
        )
        .await;
    matches!(first, Ok(v) if !v.is_empty())
}
