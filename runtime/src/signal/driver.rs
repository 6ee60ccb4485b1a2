//! The runtime's side of signal handling: its signalfd, the listeners by signal, the reader
//! task, and the process-wide forwarding handler. See the module docs in `mod.rs`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use crate::driver::ops::net::PollAdd;
use crate::driver::ops::SharedFd;
use crate::driver::Op;

/// Highest signal number (Linux: 64).
const MAX_SIGNAL: usize = 64;

/// For each signal, the thread id of the runtime listening for it (0: none). Read by the
/// forwarding handler.
static TARGET: [AtomicI32; MAX_SIGNAL + 1] = [const { AtomicI32::new(0) }; MAX_SIGNAL + 1];

/// Signals whose forwarding handler is installed (and the lock that serialises installing).
static INSTALLED: Mutex<[bool; MAX_SIGNAL + 1]> = Mutex::new([false; MAX_SIGNAL + 1]);

/// The forwarding handler: a signal taken by a thread that does not block it is re-sent to
/// the thread of the runtime listening for it, where it is blocked and so stays pending
/// until the signalfd is read. Only async-signal-safe calls (`getpid`, `tgkill`), and
/// `errno` is preserved.
extern "C" fn forward(signum: libc::c_int) {
    let Some(target) = TARGET.get(signum as usize) else {
        return;
    };
    let tid = target.load(Ordering::Relaxed);
    if tid == 0 {
        return;
    }
    // SAFETY: errno is thread-local; reading and restoring it is async-signal-safe.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: tgkill takes plain integers; a stale tid fails with ESRCH, which is ignored.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signum) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

fn install_handler(signum: libc::c_int) -> io::Result<()> {
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if installed[signum as usize] {
        return Ok(());
    }
    // SAFETY: sigaction is plain old data; all-zero is a valid starting value.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = forward as extern "C" fn(libc::c_int) as usize;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a valid sigset to initialise; sigaction reads `action`,
    // whose handler only makes async-signal-safe calls.
    let r = unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signum, &action, std::ptr::null_mut())
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    installed[signum as usize] = true;
    Ok(())
}

/// Listeners of one signal.
#[derive(Default)]
struct Listeners {
    /// Deliveries so far.
    count: u64,
    /// Per listener: the delivery count it has seen, and its waker.
    entries: Slab<(u64, Option<Waker>)>,
}

/// One runtime's signal state.
pub(super) struct SignalDriver {
    fd: SharedFd,
    mask: Cell<libc::sigset_t>,
    listeners: RefCell<HashMap<libc::c_int, Listeners>>,
    /// Thread id of the executor.
    tid: libc::pid_t,
    /// False once the reader task has stopped.
    alive: Cell<bool>,
}

thread_local! {
    /// Each runtime's driver on this thread, by runtime id.
    static DRIVERS: RefCell<HashMap<usize, Weak<SignalDriver>>> = RefCell::new(HashMap::new());
}

fn empty_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        set.assume_init()
    }
}

impl SignalDriver {
    /// The current runtime's driver, created (with its reader task) on first use.
    pub(super) fn current() -> io::Result<Rc<SignalDriver>> {
        let id = crate::executor::try_with_current(|e| e.shared.id).ok_or_else(|| {
            io::Error::other("signal handling needs a faultless runtime on this thread")
        })?;
        if let Some(d) = DRIVERS.with(|m| m.borrow().get(&id).and_then(Weak::upgrade)) {
            return Ok(d);
        }
        let mask = empty_set();
        // SAFETY: signalfd(-1, ..) creates a new fd from a valid (empty) mask.
        let fd = unsafe { libc::signalfd(-1, &mask, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let driver = Rc::new(SignalDriver {
            // SAFETY: `fd` was just returned by signalfd and is owned by nobody else.
            fd: Rc::new(unsafe { OwnedFd::from_raw_fd(fd) }),
            mask: Cell::new(mask),
            listeners: RefCell::new(HashMap::new()),
            // SAFETY: gettid has no preconditions.
            tid: unsafe { libc::gettid() },
            alive: Cell::new(true),
        });
        DRIVERS.with(|m| {
            let mut m = m.borrow_mut();
            m.retain(|_, d| d.strong_count() > 0);
            m.insert(id, Rc::downgrade(&driver));
        });
        crate::task::spawn_internal(read_loop(driver.clone())).detach();
        Ok(driver)
    }

    /// Adds a listener for `signum`; returns its key.
    pub(super) fn listen(&self, signum: libc::c_int) -> io::Result<usize> {
        if signum <= 0
            || signum as usize > MAX_SIGNAL
            || [
                libc::SIGKILL,
                libc::SIGSTOP,
                libc::SIGSEGV,
                libc::SIGBUS,
                libc::SIGILL,
                libc::SIGFPE,
            ]
            .contains(&signum)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("signal {signum} cannot be listened for"),
            ));
        }
        let mut mask = self.mask.get();
        // SAFETY: `mask` is an initialised sigset; `signum` is in range.
        let added = unsafe { libc::sigismember(&mask, signum) } == 0;
        if added {
            // SAFETY: as above.
            unsafe { libc::sigaddset(&mut mask, signum) };
            let mut one = empty_set();
            // SAFETY: `one` is initialised; pthread_sigmask reads it and changes only the
            // calling (executor) thread's mask.
            let r = unsafe {
                libc::sigaddset(&mut one, signum);
                libc::pthread_sigmask(libc::SIG_BLOCK, &one, std::ptr::null_mut())
            };
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            // SAFETY: updates the mask of our signalfd from an initialised set.
            if unsafe { libc::signalfd(self.fd.as_raw_fd(), &mask, 0) } < 0 {
                return Err(io::Error::last_os_error());
            }
            self.mask.set(mask);
            TARGET[signum as usize].store(self.tid, Ordering::Relaxed);
            install_handler(signum)?;
            crate::log::debug!(signum, "listening for a signal");
        }
        let mut listeners = self.listeners.borrow_mut();
        let l = listeners.entry(signum).or_default();
        let seen = l.count;
        Ok(l.entries.insert((seen, None)))
    }

    pub(super) fn poll_listener(
        &self,
        signum: libc::c_int,
        key: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Option<()>> {
        let mut listeners = self.listeners.borrow_mut();
        let Some(l) = listeners.get_mut(&signum) else {
            return Poll::Ready(None);
        };
        let count = l.count;
        let Some((seen, waker)) = l.entries.get_mut(key) else {
            return Poll::Ready(None);
        };
        if *seen < count {
            *seen = count;
            return Poll::Ready(Some(()));
        }
        if !self.alive.get() {
            return Poll::Ready(None);
        }
        match waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    pub(super) fn forget(&self, signum: libc::c_int, key: usize) {
        if let Some(l) = self.listeners.borrow_mut().get_mut(&signum) {
            l.entries.try_remove(key);
        }
    }

    /// Counts a delivery of `signum` and wakes its listeners.
    fn deliver(&self, signum: libc::c_int) {
        let wakers: Vec<Waker> = {
            let mut listeners = self.listeners.borrow_mut();
            let Some(l) = listeners.get_mut(&signum) else {
                return;
            };
            l.count += 1;
            l.entries
                .iter_mut()
                .filter_map(|(_, (_, w))| w.take())
                .collect()
        };
        crate::log::debug!(signum, listeners = wakers.len(), "signal delivered");
        for w in wakers {
            w.wake();
        }
    }

    /// Reads every pending signal (non-blocking); false on an error other than "none left".
    fn drain(&self) -> bool {
        loop {
            let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reads at most `size` bytes into `info`, a buffer of that size.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
            if n == size as isize {
                // SAFETY: the kernel wrote a whole signalfd_siginfo.
                let info = unsafe { info.assume_init() };
                self.deliver(info.ssi_signo as libc::c_int);
                continue;
            }
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => true,
                io::ErrorKind::Interrupted => continue,
                _ => {
                    crate::log::error!("reading the signalfd failed: {e}");
                    false
                }
            };
        }
    }
}

impl Drop for SignalDriver {
    fn drop(&mut self) {
        // Stop forwarding to this thread the signals it listened for.
        for signum in 1..=MAX_SIGNAL as libc::c_int {
            let mask = self.mask.get();
            // SAFETY: `mask` is an initialised sigset and `signum` is in range.
            if unsafe { libc::sigismember(&mask, signum) } == 1 {
                let _ = TARGET[signum as usize].compare_exchange(
                    self.tid,
                    0,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
    }
}

/// The reader task: waits in the ring for the signalfd to be readable, then drains it.
async fn read_loop(driver: Rc<SignalDriver>) {
    loop {
        if !driver.drain() {
            break;
        }
        let poll = Op::submit(PollAdd {
            fd: driver.fd.clone(),
            events: libc::POLLIN as u32,
        });
        if let Err(e) = poll.await.result.into_io() {
            crate::log::error!("polling the signalfd failed: {e}");
            break;
        }
    }
    driver.alive.set(false);
    let wakers: Vec<Waker> = driver
        .listeners
        .borrow_mut()
        .values_mut()
        .flat_map(|l| l.entries.iter_mut().filter_map(|(_, (_, w))| w.take()))
        .collect();
    wakers.into_iter().for_each(Waker::wake);
}
