//! The server's log lines: with the crate's `tracing` feature, `tracing` events (what
//! `faultless serve --log-level` shows); without it, `warning!` is one line on stderr (the
//! messages an operator must see, as before the feature existed) and `event!` nothing.

/// `event!(level, ...)`: a `tracing` event at `level`; compiled out without the feature.
macro_rules! event {
    ($level:ident, $($t:tt)*) => {{
        #[cfg(feature = "tracing")]
        ::tracing::$level!($($t)*);
    }};
}

/// A warning the operator must see: a `tracing` warning, or a line on stderr.
macro_rules! warning {
    ($($t:tt)*) => {{
        #[cfg(feature = "tracing")]
        ::tracing::warn!($($t)*);
        #[cfg(not(feature = "tracing"))]
        ::std::eprintln!("faultless serve: {}", ::std::format_args!($($t)*));
    }};
}

pub(crate) use {event, warning};
