//! The runtime's log macros: `tracing` events with the `tracing` feature, and otherwise
//! nothing at all, except for the messages a user must see (`warning!`, `error!`: one line on
//! stderr, as before the feature existed, such as "mlock refused").
//!
//! With the feature off, `debug!` and `trace!` expand to nothing: no formatting, no branch,
//! no call (their arguments are not evaluated). Spans are written at their sites under
//! `#[cfg(feature = "tracing")]`.

#[cfg(feature = "tracing")]
#[allow(unused_macros)]
macro_rules! error {
    ($($t:tt)*) => { ::tracing::error!($($t)*) };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)]
macro_rules! error {
    ($($t:tt)*) => { ::std::eprintln!("faultless: {}", ::std::format_args!($($t)*)) };
}

#[cfg(feature = "tracing")]
#[allow(unused_macros)]
macro_rules! warning {
    ($($t:tt)*) => { ::tracing::warn!($($t)*) };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)]
macro_rules! warning {
    ($($t:tt)*) => { ::std::eprintln!("faultless: {}", ::std::format_args!($($t)*)) };
}

#[cfg(feature = "tracing")]
#[allow(unused_macros)]
macro_rules! debug {
    ($($t:tt)*) => { ::tracing::debug!($($t)*) };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)]
macro_rules! debug {
    ($($t:tt)*) => {{}};
}

#[cfg(feature = "tracing")]
#[allow(unused_macros)]
macro_rules! trace {
    ($($t:tt)*) => { ::tracing::trace!($($t)*) };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)]
macro_rules! trace {
    ($($t:tt)*) => {{}};
}

#[allow(unused_imports, unused_macros)]
pub(crate) use {debug, error, trace, warning};
