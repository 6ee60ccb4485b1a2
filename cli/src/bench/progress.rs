//! Progress on stderr: an indicatif bar when stderr is a terminal, plain lines (a few, each
//! on its own line) when it is a log file or a pipe, so logs get no `\r`-joined lines.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Progress of a job measured in bytes.
pub struct ByteProgress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    /// For plain lines: when the last one was printed, and its quarter of the total.
    last_line: Instant,
    last_quarter: u64,
}

impl ByteProgress {
    /// Starts showing `label`'s progress towards `total` bytes.
    pub fn new(label: String, total: u64) -> ByteProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total).with_message(label.clone());
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        if bar.is_none() {
            eprintln!("{label}: 0 / {} MiB", total >> 20);
        }
        ByteProgress {
            bar,
            label,
            total,
            last_line: Instant::now(),
            last_quarter: 0,
        }
    }

    /// `done` bytes of the total are done. Plain lines come at each quarter, or every 10 s.
    pub fn set(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        if let Some(line) = self.plain_line(done) {
            eprintln!("{line}");
        }
    }

    /// The plain line to print for `done` bytes, if one is due.
    fn plain_line(&mut self, done: u64) -> Option<String> {
        let quarter = done.saturating_mul(4) / self.total.max(1);
        if quarter > self.last_quarter || self.last_line.elapsed() >= Duration::from_secs(10) {
            self.last_quarter = quarter;
            self.last_line = Instant::now();
            return Some(format!(
                "{}: {} / {} MiB",
                self.label,
                done >> 20,
                self.total >> 20
            ));
        }
        None
    }

    /// The job is done.
    pub fn finish(self) {
        match self.bar {
            Some(bar) => bar.finish(),
            None if self.last_quarter < 4 => {
                eprintln!("{}: {} MiB done", self.label, self.total >> 20)
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a terminal: a line per quarter, each a plain line, however many updates.
    #[test]
    fn plain_lines_come_per_quarter_without_carriage_returns() {
        let total = 1000 << 20;
        let mut p = ByteProgress {
            bar: None,
            label: "data: writing x".into(),
            total,
            last_line: Instant::now(),
            last_quarter: 0,
        };
        let lines: Vec<String> = (1..=1000u64)
            .filter_map(|i| p.plain_line(i << 20))
            .collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[3], "data: writing x: 1000 / 1000 MiB");
        assert!(lines.iter().all(|l| !l.contains('\r') && l.len() < 100));
    }
}
