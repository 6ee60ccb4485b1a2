//! The raw mechanism behind faultless, shaped like the kernel proposal
//! `mlock_eventfd(addr, len, eventfd)`: ask for a range of a mapping to be made resident and
//! get an eventfd signal when it is, so an event loop can wait for pages like it waits for
//! sockets, and touch them only once they are in.
//!
//! ```text
//! cargo run --release --example mlock_eventfd [FILE]
//! ```
//!
//! No runtime here: a helper-thread pool does the work, and this thread blocks in `read` on
//! the eventfd (an event loop would have io_uring or epoll watch it instead).

use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

use faultless::runtime::mem::raw::ResidencyNotifier;
use faultless::runtime::mem::{thread_faults, Primitive};

const PAGE: usize = 4096;
const PAGES: usize = 1024; // 4 MiB

fn main() -> io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mlock_eventfd.data".to_string());
    // A file with real data on disk.
    std::fs::write(&path, vec![7u8; PAGE * PAGES])?;
    let file = std::fs::File::open(&path)?;
    file.sync_all()?;
    // SAFETY: a read-only mapping of our own file, which nothing truncates.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    map.advise(memmap2::Advice::Random)?;

    // Make the pages cold without root: drop them from this mapping, then from the cache.
    // SAFETY: drops our own read-only mapping's pages; the data stays in the file.
    unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed)? };
    // SAFETY: advice on our own fd.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };

    // Four helper threads that make ranges resident with MADV_POPULATE_READ.
    let notifier = ResidencyNotifier::new(4, Primitive::PopulateRead)?;
    let start = Instant::now();
    for i in 0..PAGES {
        // mlock_eventfd(addr, len, eventfd): one request per page, token = page index.
        // SAFETY: the range lies inside `map`, which outlives every completion.
        unsafe { notifier.request(map.as_ptr().add(i * PAGE), PAGE, i as u64) };
    }

    let faults_before = thread_faults();
    let mut resident = 0;
    let mut sum = 0u64;
    while resident < PAGES {
        // Block until at least one request completed (an event loop would poll this fd).
        let mut count = 0u64;
        // SAFETY: reads 8 bytes from the eventfd into a live u64.
        let n = unsafe { libc::read(notifier.eventfd(), (&mut count as *mut u64).cast(), 8) };
        if n != 8 {
            return Err(io::Error::last_os_error());
        }
        for (page, result) in notifier.take_completed() {
            result?;
            // The page is resident: touching it cannot block this thread.
            sum += map[page as usize * PAGE] as u64;
            resident += 1;
        }
    }
    let faults = thread_faults().since(&faults_before);
    println!(
        "{PAGES} cold pages made resident in {:.1} ms by {} helper threads",
        start.elapsed().as_secs_f64() * 1e3,
        notifier.pool().threads()
    );
    println!(
        "this thread touched every page and took {} major faults ({} minor); checksum {sum}",
        faults.major, faults.minor
    );
    drop(map);
    std::fs::remove_file(&path)?;
    Ok(())
}
