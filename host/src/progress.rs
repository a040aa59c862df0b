//! Progress of a long operation on stderr: a line redrawn in place on a terminal, otherwise
//! machine-readable JSON lines (`{"progress": {"operation": "sync", "done": 3, "total": 10}}`),
//! at most one per [`MIN_INTERVAL`] (the last one too: a module reporting its end a million times
//! prints one line), and the latest one not yet shown when the operation ends. Every line goes
//! through the stderr scrubber, like every other stderr line.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Least time between two progress lines.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// Where progress goes.
pub struct Progress {
    operation: &'static str,
    terminal: bool,
    last: Option<Instant>,
    /// The latest figures not yet shown (held back by the rate limit).
    pending: Option<(u32, u32)>,
    drew: bool,
}

impl Progress {
    /// Progress for `operation`, drawn for a person if stderr is a terminal.
    pub fn new(operation: &'static str) -> Self {
        Progress { operation, terminal: std::io::stderr().is_terminal(), last: None, pending: None, drew: false }
    }

    /// Reports `done` of `total`: shown now, or held until [`MIN_INTERVAL`] has passed since the
    /// last line (shown by a later update or by [`Progress::finish`]).
    pub fn update(&mut self, done: u32, total: u32) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t < MIN_INTERVAL) {
            self.pending = Some((done, total));
            return;
        }
        self.last = Some(now);
        self.show(done, total);
    }

    fn show(&mut self, done: u32, total: u32) {
        self.pending = None;
        // Scrubbed like every stderr line (one record per line).
        let mut err = crate::scrub::ScrubbedStderr.make_writer();
        if self.terminal {
            let _ = write!(err, "\r{}: {done}/{total} requests", self.operation);
            self.drew = true;
        } else {
            let line = serde_json::json!({"progress": {"operation": self.operation, "done": done, "total": total}});
            let _ = writeln!(err, "{line}");
        }
    }

    /// Shows the latest figures if they were held back, and ends the in-place line, if one was
    /// drawn.
    pub fn finish(&mut self) {
        if let Some((done, total)) = self.pending {
            self.show(done, total);
        }
        if self.drew {
            let _ = writeln!(std::io::stderr());
            self.drew = false;
        }
    }
}
