//! Signals as streams: [`ctrl_c`] and [`signal`], read from a signalfd the runtime's ring
//! watches.
//!
//! ```
//! use faultless_runtime::signal::{signal, SignalKind};
//!
//! let rt = faultless_runtime::Runtime::new()?;
//! rt.block_on(async {
//!     let mut hangups = signal(SignalKind::hangup())?;
//!     // SAFETY: kill(2) with our own pid; no memory is involved.
//!     unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
//!     hangups.recv().await; // the process was not killed: the runtime took the signal
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## How it works
//!
//! A signalfd only reads signals that are *blocked* (pending) in the reading thread or the
//! process. So registering a signal:
//!
//! 1. blocks it in the executor's thread (`pthread_sigmask`), and adds it to the runtime's
//!    signalfd (one per runtime, created non-blocking);
//! 2. installs, once per signal and process, a handler that forwards the signal to the thread
//!    of the runtime listening for it (`tgkill`). A process-directed signal (`kill`, Ctrl-C
//!    in a terminal) goes to any thread that does not block it: with the handler there, it
//!    still ends up pending on the executor thread. Threads the runtime starts later (the
//!    blocking pool) inherit the blocked mask and never take it at all;
//! 3. spawns, once per runtime, an internal task that waits for the signalfd to become
//!    readable (a one-shot `IORING_OP_POLL_ADD` in the ring) and then reads every pending
//!    `signalfd_siginfo` with non-blocking `read`s on the executor thread.
//!
//! The signalfd is polled in the ring and read by the executor thread rather than read by an
//! `IORING_OP_READ`: a signalfd read returns the signals of the *calling* thread, and a read
//! that the kernel hands to an io-wq worker (older kernels, where a signalfd cannot be read
//! without blocking) would look at the worker's signals, not the executor's.
//!
//! A signal sent to one particular thread (`pthread_kill`) that blocks it, such as a thread
//! started from the executor thread after the signal was registered, stays pending on that
//! thread: only process-directed signals and signals to threads that do not block them
//! reach the runtime.
//!
//! Every [`Signal`] of a kind sees every delivery after it was created; deliveries that
//! arrive before a listener polls again coalesce into one (as with tokio and as the kernel
//! itself does for standard signals). As with tokio, once a signal has been registered its
//! default action (terminating the process for `SIGINT`, say) does not come back, also when
//! every listener is gone. With several runtimes on several threads listening for the same
//! signal, the runtime that registered it last receives it.

mod driver;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use driver::SignalDriver;

/// A kind of signal to listen for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignalKind(libc::c_int);

impl SignalKind {
    /// A signal by number (`libc::SIGUSR1`, ...). `SIGKILL`, `SIGSTOP` and the fault
    /// signals (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`) cannot be listened for.
    pub const fn from_raw(signum: libc::c_int) -> SignalKind {
        SignalKind(signum)
    }

    /// The signal's number.
    pub const fn as_raw_value(&self) -> libc::c_int {
        self.0
    }

    /// `SIGINT`: Ctrl-C in a terminal.
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }

    /// `SIGTERM`: the polite request to stop (`kill`, systemd, Kubernetes).
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }

    /// `SIGHUP`: the terminal went away; by convention, "reload your configuration".
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }

    /// `SIGQUIT`: Ctrl-\ in a terminal.
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }

    /// `SIGUSR1`.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }

    /// `SIGUSR2`.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }

    /// `SIGCHLD`: a child process changed state.
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }

    /// `SIGWINCH`: the terminal was resized.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }

    /// `SIGPIPE`.
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }

    /// `SIGALRM`.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }
}

/// A stream of deliveries of one signal; see [`signal`].
pub struct Signal {
    driver: Rc<SignalDriver>,
    signum: libc::c_int,
    listener: usize,
}

/// Starts listening for `kind` on the runtime running on this thread: from now on the
/// signal no longer has its default effect, and every delivery wakes [`Signal::recv`].
///
/// Errors: outside a runtime, for signals that cannot be listened for (`SIGKILL`, `SIGSTOP`,
/// `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`, out-of-range numbers), or if the signalfd
/// cannot be created.
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let driver = SignalDriver::current()?;
    let listener = driver.listen(kind.0)?;
    Ok(Signal {
        driver,
        signum: kind.0,
        listener,
    })
}

/// Waits for Ctrl-C (`SIGINT`). Listening starts when the future is first polled.
///
/// ```no_run
/// let rt = faultless_runtime::Runtime::new()?;
/// rt.block_on(async {
///     faultless_runtime::signal::ctrl_c().await?;
///     println!("shutting down");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    signal(SignalKind::interrupt())?.recv().await;
    Ok(())
}

impl Signal {
    /// Waits for the next delivery. Returns `None` only if the runtime's signal reader has
    /// stopped (the signalfd failed, or the runtime is gone).
    pub async fn recv(&mut self) -> Option<()> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next delivery.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.driver.poll_listener(self.signum, self.listener, cx)
    }

    /// The signal this stream listens for.
    pub fn kind(&self) -> SignalKind {
        SignalKind(self.signum)
    }
}

impl futures::Stream for Signal {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.get_mut().poll_recv(cx)
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        self.driver.forget(self.signum, self.listener);
    }
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal")
            .field("signum", &self.signum)
            .finish()
    }
}
