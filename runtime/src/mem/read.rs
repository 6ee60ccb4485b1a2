//! What a read hands out: [`ReadFuture`] (ready at once when every page is resident) and
//! [`PageGuard`] (the bytes).

use std::fmt;
use std::future::Future;
use std::io;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Future returned by [`Mapping::read`].
pub enum ReadFuture<'a> {
    /// Every page was resident: the guard, until polled.
    Ready(Option<PageGuard<'a>>),
    /// Some page was not: the slow path.
    Slow(Pin<Box<dyn Future<Output = io::Result<PageGuard<'a>>> + 'a>>),
}

impl<'a> Future for ReadFuture<'a> {
    type Output = io::Result<PageGuard<'a>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            ReadFuture::Ready(g) => {
                Poll::Ready(Ok(g.take().expect("ReadFuture polled after it completed")))
            }
            ReadFuture::Slow(f) => f.as_mut().poll(cx),
        }
    }
}

/// Bytes of a mapping whose pages were resident when it was handed out.
pub struct PageGuard<'a> {
    pub(super) bytes: &'a [u8],
}

impl Deref for PageGuard<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl fmt::Debug for PageGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageGuard")
            .field("len", &self.bytes.len())
            .finish()
    }
}
