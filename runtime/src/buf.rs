//! Owned buffers for io_uring operations.
//!
//! An io_uring operation reads or writes memory after the call that started it has returned,
//! so the runtime must own the buffer until the completion arrives, even if the future is
//! dropped. Operations therefore take buffers by value and give them back with the result:
//! `let (result, buf) = stream.read(buf).await;`.
//!
//! [`IoBuf`] is a buffer the kernel may read from, [`IoBufMut`] one it may write into. Both
//! are `unsafe` traits: an implementation promises that the memory stays at the same address
//! when the buffer value is moved (it lives on the heap or is `'static`).

/// The result of an owned-buffer operation: the outcome and the buffer, returned either way.
pub type BufResult<T, B> = (std::io::Result<T>, B);

/// A buffer the kernel may read from.
///
/// # Safety
/// `stable_ptr` must point at `bytes_init` initialised bytes that stay valid and in place
/// while the value is moved around, until it is dropped or mutably accessed.
pub unsafe trait IoBuf: 'static {
    /// Pointer to the first byte.
    fn stable_ptr(&self) -> *const u8;
    /// Number of initialised bytes, the ones a write sends.
    fn bytes_init(&self) -> usize;
}

/// A buffer the kernel may write into.
///
/// # Safety
/// As for [`IoBuf`], and `stable_mut_ptr` must be valid for writes of `bytes_total` bytes.
pub unsafe trait IoBufMut: IoBuf {
    /// Pointer to the first byte, for writing.
    fn stable_mut_ptr(&mut self) -> *mut u8;
    /// Capacity: how many bytes a read may fill.
    fn bytes_total(&self) -> usize;
    /// Marks the first `n` bytes as initialised (a read filled them).
    ///
    /// # Safety
    /// The first `n` bytes must have been initialised, and `n <= bytes_total()`.
    unsafe fn set_init(&mut self, n: usize);
}

// SAFETY: a Vec's heap buffer does not move when the Vec moves.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: as above; reads fill the Vec from index 0 up to its capacity.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
    unsafe fn set_init(&mut self, n: usize) {
        // SAFETY: the caller guarantees n <= capacity and that the bytes are initialised.
        unsafe { self.set_len(n) }
    }
}

// SAFETY: a boxed slice's heap memory does not move when the box moves.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: as above; a boxed slice is always fully initialised.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
    unsafe fn set_init(&mut self, _n: usize) {}
}

// SAFETY: static memory never moves or goes away.
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: static memory never moves or goes away.
unsafe impl IoBuf for &'static str {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: a String's heap buffer does not move when the String moves.
unsafe impl IoBuf for String {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

/// Clamps a length to what one io_uring read or write accepts.
pub(crate) fn io_len(n: usize) -> u32 {
    n.min(u32::MAX as usize >> 1) as u32
}
