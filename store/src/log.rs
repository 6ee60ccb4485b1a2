//! The store's events: `tracing` events with the crate's `tracing` feature (open and
//! recovery, checkpoints, failures), compiled out without it (arguments not evaluated).
//! The store reports problems through its `Result`s and reports (`recovery_report`,
//! `log_recovery`, `stats`); events are for operators watching it run.

/// `event!(level, ...)`: a `tracing` event at `level` (`info`, `debug`, `warn`, `error`).
macro_rules! event {
    ($level:ident, $($t:tt)*) => {{
        #[cfg(feature = "tracing")]
        ::tracing::$level!($($t)*);
    }};
}

pub(crate) use event;
