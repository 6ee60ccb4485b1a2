//! `faultless store stat|check|dump|load`: tools for store files.
//!
//! `dump` and `load` use one `key<TAB>value` line per entry. Bytes that would break the
//! format are escaped: `\\`, `\t`, `\n`, `\r`, and any other byte outside printable ASCII as
//! `\xHH`, so `dump | load` round-trips any key and value.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;

use clap::Subcommand;
use faultless::store::{Error, Store, StoreOptions};
use futures::StreamExt;

/// Store subcommands.
#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Print the store's size, commit id, page statistics, and its log (the commits after
    /// the last checkpoint).
    Stat { path: PathBuf },
    /// Verify every checksum and B+tree invariant; exit non-zero on any problem.
    Check { path: PathBuf },
    /// Print every entry in key order as `key<TAB>value` lines.
    Dump { path: PathBuf },
    /// Load `key<TAB>value` lines from INPUT (`-` for stdin); sorted input into an empty
    /// store is bulk-loaded.
    Load { path: PathBuf, input: PathBuf },
}

/// Escapes bytes for the dump format.
pub fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
}

/// Reverses [`escape`].
pub fn unescape(s: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        match s.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b'x') => {
                let hex = s
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("bad \\x escape")?;
                out.push(hex);
                i += 2;
            }
            _ => return Err("bad escape".into()),
        }
        i += 2;
    }
    Ok(out)
}

fn parse_line(line: &[u8], n: u64) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let tab = line
        .iter()
        .position(|&b| b == b'\t')
        .ok_or_else(|| Error::BadInput(format!("line {n}: no TAB between key and value")))?;
    let key = unescape(&line[..tab]).map_err(|e| Error::BadInput(format!("line {n}: {e}")))?;
    let value =
        unescape(&line[tab + 1..]).map_err(|e| Error::BadInput(format!("line {n}: {e}")))?;
    Ok((key, value))
}

/// Runs a store subcommand; `Ok(false)` means `check` found problems.
pub fn run(cmd: StoreCommand) -> io::Result<bool> {
    let rt = faultless::Runtime::new()?;
    rt.block_on(async {
        match cmd {
            StoreCommand::Stat { path } => {
                let store = Store::open(&path, StoreOptions::new().read_only(true)).await?;
                if let Some(r) = store.recovery_report() {
                    println!("WARNING:     {r}");
                }
                let s = store.stats();
                let log = store.log_recovery();
                println!("path:        {}", path.display());
                println!("txid:        {} (the last commit)", s.txid);
                println!("keys:        {}", s.entries);
                println!(
                    "checkpoint:  commit {} (tree commit {})",
                    s.checkpoint_txid, s.tree_txid
                );
                match s.log_oldest_txid {
                    Some(oldest) => println!(
                        "log:         {} commit(s) after the checkpoint, {} to {}, in {} \
                         byte(s) of {} segment(s); a reopen replays them",
                        s.log_commits, oldest, s.txid, log.replayed_bytes, log.segments
                    ),
                    None => println!(
                        "log:         no commits after the checkpoint ({} segment(s))",
                        log.segments
                    ),
                }
                if log.torn_tail.is_some() || log.discarded_frames > 0 {
                    println!("log at open: {log}");
                }
                println!("page size:   {}", s.page_size);
                println!("pages:       {}", s.page_count);
                println!("file size:   {}", s.file_size);
                let f = store.free_space().await?;
                println!("free pages:  {} in {} runs", f.free_pages, f.free_runs);
                println!("largest free run: {} pages", f.largest_free_run);
                println!("pending free pages: {}", f.pending_pages);
                Ok(true)
            }
            StoreCommand::Check { path } => {
                let store = Store::open(&path, StoreOptions::new().read_only(true)).await?;
                let report = store.check().await?;
                println!("{report}");
                Ok(report.ok())
            }
            StoreCommand::Dump { path } => {
                let store = Store::open(&path, StoreOptions::new().read_only(true)).await?;
                if let Some(r) = store.recovery_report() {
                    eprintln!("warning: {r}");
                }
                let stdout = io::stdout();
                let mut out = BufWriter::new(stdout.lock());
                let mut line = Vec::new();
                let mut entries = store.range(..);
                while let Some(item) = entries.next().await {
                    let (k, v) = item?;
                    line.clear();
                    escape(&k, &mut line);
                    line.push(b'\t');
                    escape(&v, &mut line);
                    line.push(b'\n');
                    // Copied from the mapping: only the file's own bytes go out.
                    store.check_intact()?;
                    out.write_all(&line)?;
                }
                out.flush()?;
                Ok(true)
            }
            StoreCommand::Load { path, input } => {
                let store = Store::open(&path, StoreOptions::new()).await?;
                let reader: Box<dyn BufRead> = if input.as_os_str() == "-" {
                    Box::new(io::BufReader::new(io::stdin()))
                } else {
                    let f = std::fs::File::open(&input).map_err(|e| {
                        io::Error::new(e.kind(), format!("{}: {e}", input.display()))
                    })?;
                    Box::new(io::BufReader::with_capacity(1 << 20, f))
                };
                let total = std::fs::metadata(&input).map(|m| m.len()).ok();
                let read = std::rc::Rc::new(std::cell::Cell::new(0u64));
                let counter = read.clone();
                let mut n = 0u64;
                let lines = reader.split(b'\n').map(move |line| {
                    n += 1;
                    let line = line.map_err(Error::Io)?;
                    counter.set(counter.get() + line.len() as u64 + 1);
                    parse_line(&line, n)
                });
                let start = std::time::Instant::now();
                let loaded = store
                    .load(lines, |done| {
                        let secs = start.elapsed().as_secs_f64().max(1e-3);
                        match total {
                            Some(t) if t > 0 => eprint!(
                                "\rloading: {done} entries, {:.0}% ({:.0} entries/s)",
                                100.0 * read.get() as f64 / t as f64,
                                done as f64 / secs
                            ),
                            _ => eprint!(
                                "\rloading: {done} entries ({:.0} entries/s)",
                                done as f64 / secs
                            ),
                        }
                    })
                    .await?;
                eprintln!();
                // Into the tree, so the next open replays nothing.
                store.close().await?;
                println!("loaded {loaded} entries into {}", path.display());
                Ok(true)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255u8).collect();
        let mut e = Vec::new();
        escape(&all, &mut e);
        assert!(!e.contains(&b'\t') && !e.contains(&b'\n'));
        assert_eq!(unescape(&e).unwrap(), all);
        assert!(unescape(b"bad\\q").is_err());
        assert!(unescape(b"\\x4").is_err());
        assert!(parse_line(b"no tab here", 3).is_err());
        assert_eq!(
            parse_line(b"k\tv\\tw", 1).unwrap(),
            (b"k".to_vec(), b"v\tw".to_vec())
        );
    }
}
