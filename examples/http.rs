//! An HTTP file server: hyper 1.x on faultless, serving files from memory mappings whose
//! cold pages make the request's task yield instead of stalling the loop.
//!
//! ```text
//! cargo run --release --example http -- --dir ./public --addr 127.0.0.1:8080
//! curl http://127.0.0.1:8080/index.html
//! curl -r 0-99 http://127.0.0.1:8080/big.bin      # a range: 206 Partial Content
//! curl http://127.0.0.1:8080/_stats               # runtime and page-access counters
//! ```
//!
//! hyper runs on faultless through the runtime's `tokio-io` feature: `TcpStream` implements
//! `tokio::io::AsyncRead`/`AsyncWrite`, and hyper-util's `TokioIo` adapts those to hyper's
//! own I/O traits. hyper's HTTP/1 server needs no executor and no timer (its default
//! header-read timeout is skipped when no timer is set), so nothing else is needed: every
//! connection is a faultless task running hyper's connection future.
//!
//! Every regular file in `--dir` is mapped once at start (`Mapping::open`); a request copies
//! the bytes it needs out of the mapping with `Mapping::read`, which returns at once for
//! resident pages and otherwise yields while the runtime reads them in. `--cold` drops the
//! files' pages first, so the first requests take that path (`/_stats` counts them).
//!
//! `--runtime tokio` serves the same files with the same hyper service on tokio's
//! current-thread runtime (memmap2 slices there, `MADV_RANDOM` as faultless maps them: a
//! cold page blocks the thread in a major fault, and every connection waits with it): the
//! baseline `scripts/bench-http.sh` measures faultless against.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use faultless::runtime::mem::{MapOptions, Mapping};
use std::pin::Pin;

use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// Bytes per body chunk: a response larger than this is streamed chunk by chunk, so a large
/// file never sits whole in memory.
const CHUNK: u64 = 256 * 1024;

/// A response body. Boxed without `Send`: the body streams out of an `Rc` of a mapping,
/// on the thread that serves the connection.
type Body = Pin<Box<dyn hyper::body::Body<Data = Bytes, Error = io::Error>>>;

fn full(bytes: Bytes) -> Body {
    Box::pin(Full::new(bytes).map_err(|e| match e {}))
}

/// Where the files' bytes come from.
trait Source: 'static {
    /// Copies `range` of the file out (`range` lies within the file).
    async fn copy(&self, range: Range<u64>) -> io::Result<Bytes>;
    fn len(&self) -> u64;
}

impl Source for Mapping {
    async fn copy(&self, range: Range<u64>) -> io::Result<Bytes> {
        // Yields while cold pages of the range are read in; other connections run meanwhile.
        let guard = self.read(range).await?;
        Ok(Bytes::copy_from_slice(&guard))
    }
    fn len(&self) -> u64 {
        Mapping::len(self)
    }
}

impl Source for memmap2::Mmap {
    async fn copy(&self, range: Range<u64>) -> io::Result<Bytes> {
        // A plain memory read: a cold page blocks the thread in a major fault.
        Ok(Bytes::copy_from_slice(
            &self[range.start as usize..range.end as usize],
        ))
    }
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

/// The served files by URL path (`/name`), and counters for `/_stats`.
struct Files<S> {
    files: HashMap<String, Rc<S>>,
    served: RefCell<u64>,
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from(body)));
    *resp.status_mut() = status;
    resp
}

/// `Range: bytes=a-b`, `bytes=a-` or `bytes=-n`, as a byte range of a `len`-byte file.
/// `Err(())` for a range that cannot be satisfied; `Ok(None)` for no or an unsupported
/// (multi-range) header, which serves the whole file.
fn parse_range(value: &HeaderValue, len: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = value.to_str().ok().and_then(|v| v.strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            (len.saturating_sub(n), len)
        }
        (a, "") => (a.parse().map_err(|_| ())?, len),
        (a, b) => {
            let b: u64 = b.parse().map_err(|_| ())?;
            (a.parse().map_err(|_| ())?, b.saturating_add(1).min(len))
        }
    };
    if start >= end || start >= len {
        return Err(());
    }
    Ok(Some(start..end))
}

/// The body for `range` of `file`: one chunk at once, or a stream of chunks.
async fn body<S: Source>(file: Rc<S>, range: Range<u64>) -> io::Result<Body> {
    if range.end - range.start <= CHUNK {
        let bytes = file.copy(range).await?;
        return Ok(full(bytes));
    }
    let chunks = futures::stream::unfold(range.start, move |at| {
        let file = file.clone();
        async move {
            if at >= range.end {
                return None;
            }
            let end = (at + CHUNK).min(range.end);
            Some((file.copy(at..end).await.map(Frame::data), end))
        }
    });
    Ok(Box::pin(StreamBody::new(chunks)))
}

async fn handle<S: Source>(
    files: Rc<Files<S>>,
    stats: impl Fn() -> String,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET or HEAD only\n".into(),
        ));
    }
    let path = req.uri().path();
    if path == "/_stats" {
        return Ok(text(StatusCode::OK, stats()));
    }
    let Some(file) = files.files.get(path).cloned() else {
        return Ok(text(StatusCode::NOT_FOUND, format!("{path}: not found\n")));
    };
    let len = file.len();
    let (status, range) = match req
        .headers()
        .get(header::RANGE)
        .map(|v| parse_range(v, len))
    {
        None | Some(Ok(None)) => (StatusCode::OK, 0..len),
        Some(Ok(Some(r))) => (StatusCode::PARTIAL_CONTENT, r),
        Some(Err(())) => {
            let mut resp = text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range not satisfiable\n".into(),
            );
            let cr = HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii");
            resp.headers_mut().insert(header::CONTENT_RANGE, cr);
            return Ok(resp);
        }
    };
    let size = range.end - range.start;
    let mut resp = if req.method() == Method::HEAD || size == 0 {
        Response::new(full(Bytes::new()))
    } else {
        match body(file, range.clone()).await {
            Ok(b) => Response::new(b),
            Err(e) => return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))),
        }
    };
    *files.served.borrow_mut() += 1;
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        let cr = format!("bytes {}-{}/{len}", range.start, range.end - 1);
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&cr).expect("ascii"),
        );
    }
    Ok(resp)
}

/// The regular files directly in `dir`, by URL path.
fn list(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push((format!("/{name}"), entry.path()));
        }
    }
    Ok(out)
}

struct Args {
    addr: String,
    dir: PathBuf,
    runtime: String,
    cold: bool,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:8080".into(),
        dir: PathBuf::from("."),
        runtime: "faultless".into(),
        cold: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--addr" => args.addr = value()?,
            "--dir" => args.dir = value()?.into(),
            "--runtime" => args.runtime = value()?,
            "--cold" => args.cold = true,
            _ => {
                return Err(format!(
                    "unknown argument {a}\nusage: http [--addr HOST:PORT] [--dir DIR] [--runtime faultless|tokio] [--cold]"
                ))
            }
        }
    }
    Ok(args)
}

fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let result = match args.runtime.as_str() {
        "faultless" => serve_faultless(&args),
        "tokio" => serve_tokio(&args),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown runtime {other:?} (faultless or tokio)"),
        )),
    };
    if let Err(e) = result {
        eprintln!("http: {e}");
        std::process::exit(1);
    }
}

fn serve_faultless(args: &Args) -> io::Result<()> {
    use faultless::runtime::net::TcpListener;

    let rt = faultless::Runtime::new()?;
    rt.block_on(async {
        let mut files = HashMap::new();
        for (url, path) in list(&args.dir)? {
            // SAFETY: `Mapping::open` lends out `&[u8]`s into the file, so nothing may change
            // the file's bytes (or truncate it) while the server runs. The server itself never
            // writes them; the directory's owner promises the same by pointing `--dir` at it
            // (the documented contract of this example, kept by its test, which writes its
            // files before starting the server and never again). A truncation anyway is
            // caught by the runtime's SIGBUS net and turns into a 500, not a crash.
            let map = unsafe { Mapping::open(&path, MapOptions::new())? };
            if args.cold {
                map.evict_all()?;
            }
            files.insert(url, Rc::new(map));
        }
        let files = Rc::new(Files {
            files,
            served: RefCell::new(0),
        });
        let listener = TcpListener::bind(args.addr.as_str())?;
        println!(
            "http: listening on http://{} (faultless, {} files from {})",
            listener.local_addr()?,
            files.files.len(),
            args.dir.display()
        );
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let files = files.clone();
            faultless::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let stats = {
                        let files = files.clone();
                        move || faultless_stats(&files)
                    };
                    handle(files.clone(), stats, req)
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                // A client that goes away mid-response is routine for a server.
                let _ = conn.await;
            })
            .detach();
        }
    })
}

fn faultless_stats(files: &Files<Mapping>) -> String {
    let rt = faultless::runtime::stats().unwrap_or_default();
    let (mut slow_reads, mut pages_brought_in) = (0, 0);
    for map in files.files.values() {
        let s = map.stats();
        slow_reads += s.slow_reads;
        pages_brought_in += s.pages_brought_in;
    }
    format!(
        "runtime: faultless\nserved: {}\nslow_reads: {slow_reads}\npages_brought_in: {pages_brought_in}\n\
         tasks_alive: {}\ninternal_tasks_spawned: {}\nparks: {}\n",
        files.served.borrow(),
        rt.tasks_alive,
        rt.internal_tasks_spawned,
        rt.parks
    )
}

/// Drops a file's pages from the mapping and the page cache (what `Mapping::evict_all` does
/// for the faultless server), so that reads start cold.
fn drop_pages(file: &std::fs::File, map: &memmap2::Mmap) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if map.is_empty() {
        return Ok(());
    }
    // SAFETY: MADV_DONTNEED on our own read-only shared file mapping only drops its page
    // table entries (the next access reads the file again); POSIX_FADV_DONTNEED only drops
    // clean page-cache pages of our fd.
    let (m, f) = unsafe {
        (
            libc::madvise(
                map.as_ptr() as *mut _,
                <[u8]>::len(map),
                libc::MADV_DONTNEED,
            ),
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED),
        )
    };
    if m != 0 {
        return Err(io::Error::last_os_error());
    }
    if f != 0 {
        return Err(io::Error::from_raw_os_error(f));
    }
    Ok(())
}

fn serve_tokio(args: &Args) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut files = HashMap::new();
        for (url, path) in list(&args.dir)? {
            let file = std::fs::File::open(&path)?;
            // SAFETY: as for the faultless mapping above: nothing writes or truncates the
            // served files while the server runs (here a truncation would be a SIGBUS).
            let map = unsafe { memmap2::Mmap::map(&file)? };
            // As faultless maps files: one fault reads one page, not a readahead window.
            map.advise(memmap2::Advice::Random)?;
            if args.cold {
                drop_pages(&file, &map)?;
            }
            files.insert(url, Rc::new(map));
        }
        let files = Rc::new(Files {
            files,
            served: RefCell::new(0),
        });
        let listener = tokio::net::TcpListener::bind(args.addr.as_str()).await?;
        println!(
            "http: listening on http://{} (tokio current_thread, {} files from {})",
            listener.local_addr()?,
            files.files.len(),
            args.dir.display()
        );
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let files = files.clone();
            tokio::task::spawn_local(async move {
                let service = hyper::service::service_fn(move |req| {
                    let stats = {
                        let files = files.clone();
                        move || format!("runtime: tokio\nserved: {}\n", files.served.borrow())
                    };
                    handle(files.clone(), stats, req)
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                let _ = conn.await;
            });
        }
    })
}
