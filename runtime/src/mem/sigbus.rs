//! The SIGBUS safety net for mappings whose file shrinks under them.
//!
//! Touching a mapped page past the end of its file raises SIGBUS, which kills the process.
//! The page-access API checks ranges against the file size before it brings pages in, but a
//! file truncated by someone else *after* its pages were handed out can still be touched. So
//! every mapping is registered here, and a SIGBUS handler, if the faulting address lies in a
//! registered mapping, maps a zero page over the faulting page (the access is retried and
//! reads zeros) and marks the mapping damaged; from then on every read of that mapping fails
//! with an error. A fault anywhere else is passed to the previous handler, or to the default
//! action. The handler uses only atomics and `mmap`, which are async-signal-safe.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Once;

const SLOTS: usize = 256;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    damaged: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    damaged: AtomicBool::new(false),
};
static REGISTRY: [Slot; SLOTS] = [EMPTY; SLOTS];
static TAKEN: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
static INSTALL: Once = Once::new();
/// The action our handler replaced, for chaining; null when there is none to chain to. It is
/// published (Release) before our handler is installed, and the handler reads it (Acquire), so
/// the handler never runs without it. Each published value is a leaked box: a handler on
/// another thread may be reading the old one when it is replaced (at most twice, in
/// `install`), so none is ever freed.
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());

/// A mapping's registration; unregisters on drop.
pub(crate) struct Registration {
    slot: Option<usize>,
}

impl Registration {
    /// The flag the handler sets once a SIGBUS hits this mapping. It belongs to this
    /// registration for as long as the registration lives (the slot is reused after it is
    /// dropped); an unprotected mapping (no free slot) gets a flag that is never set.
    #[inline]
    pub(crate) fn damaged_flag(&self) -> &'static AtomicBool {
        static NEVER: AtomicBool = AtomicBool::new(false);
        match self.slot {
            Some(i) => &REGISTRY[i].damaged,
            None => &NEVER,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            REGISTRY[i].len.store(0, Ordering::Release);
            REGISTRY[i].start.store(0, Ordering::Release);
            REGISTRY[i].damaged.store(false, Ordering::Release);
            TAKEN[i].store(false, Ordering::Release);
        }
    }
}

/// Registers `[start, start + len)`. With all slots taken the mapping works unprotected.
pub(crate) fn register(start: usize, len: usize) -> Registration {
    INSTALL.call_once(install);
    for (i, taken) in TAKEN.iter().enumerate() {
        if !taken.swap(true, Ordering::AcqRel) {
            REGISTRY[i].damaged.store(false, Ordering::Release);
            REGISTRY[i].start.store(start, Ordering::Release);
            REGISTRY[i].len.store(len, Ordering::Release);
            return Registration { slot: Some(i) };
        }
    }
    Registration { slot: None }
}

/// Installs the handler, chaining to whatever was installed before it.
fn install() {
    // SAFETY: sigaction structs are plain old data (all-zero is a valid value); sigaction(2)
    // with a null new action only reads the current one into `current`.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut current) } != 0 {
        return; // cannot even read the action: leave SIGBUS alone
    }
    // Publish the action to chain to before the handler can run.
    PREVIOUS.store(Box::into_raw(Box::new(current)), Ordering::Release);
    // SAFETY: as above; the handler only uses async-signal-safe operations (atomics, mmap,
    // sysconf, sigaction) and reads `PREVIOUS`, published above.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigbus as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
    // SAFETY: `sa_mask` is a valid sigset_t inside `action`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: as above.
    let mut replaced: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: installs `action`, reading the action it replaced into `replaced`.
    if unsafe { libc::sigaction(libc::SIGBUS, &action, &mut replaced) } != 0 {
        return;
    }
    if replaced.sa_sigaction != current.sa_sigaction || replaced.sa_flags != current.sa_flags {
        // Another thread installed a handler between our read and our install: that one is
        // what we replaced, so chain to it. (A SIGBUS in that instant chained to the older
        // action, which is what it would have met a moment earlier.)
        PREVIOUS.store(Box::into_raw(Box::new(replaced)), Ordering::Release);
    }
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    for slot in REGISTRY.iter() {
        let len = slot.len.load(Ordering::Acquire);
        let start = slot.start.load(Ordering::Acquire);
        if len != 0 && addr >= start && addr < start + len {
            // SAFETY: sysconf is async-signal-safe in practice (reads a cached value).
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
            let base = addr & !(page - 1);
            // SAFETY: replaces one page of our own registered mapping with a private zero
            // page, so the faulting read is retried and succeeds; nothing else is touched.
            let p = unsafe {
                libc::mmap(
                    base as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                slot.damaged.store(true, Ordering::Release);
                return;
            }
        }
    }
    // Not ours: chain to the previous handler, or restore the default and let the retried
    // access take the default action.
    let prev = PREVIOUS.load(Ordering::Acquire);
    // SAFETY: a non-null PREVIOUS points at a leaked box holding an initialised sigaction,
    // published with Release before this handler was installed and never freed.
    let prev = (!prev.is_null()).then(|| unsafe { *prev });
    match prev {
        Some(old) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
            if old.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed with SA_SIGINFO, so it has the
                // three-argument signature.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(old.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a handler installed without SA_SIGINFO takes the signal number.
                let f: extern "C" fn(libc::c_int) =
                    unsafe { std::mem::transmute(old.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // SAFETY: resetting to the default action is async-signal-safe.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            }
        }
    }
}
