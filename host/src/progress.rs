//! Progress of a long operation on stderr: a line redrawn in place on a terminal, otherwise
//! machine-readable JSON lines (`{"progress": {"operation": "sync", "done": 3, "total": 10}}`),
//! at most one per [`MIN_INTERVAL`] plus the last.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Least time between two progress lines.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// Where progress goes.
pub struct Progress {
    operation: &'static str,
    terminal: bool,
    last: Option<Instant>,
    drew: bool,
}

impl Progress {
    /// Progress for `operation`, drawn for a person if stderr is a terminal.
    pub fn new(operation: &'static str) -> Self {
        Progress { operation, terminal: std::io::stderr().is_terminal(), last: None, drew: false }
    }

    /// Reports `done` of `total`.
    pub fn update(&mut self, done: u32, total: u32) {
        let now = Instant::now();
        let finished = done >= total;
        if !finished && self.last.is_some_and(|t| now - t < MIN_INTERVAL) {
            return;
        }
        self.last = Some(now);
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r{}: {done}/{total} requests", self.operation);
            self.drew = true;
        } else {
            let line = serde_json::json!({"progress": {"operation": self.operation, "done": done, "total": total}});
            let _ = writeln!(err, "{line}");
        }
    }

    /// Ends the in-place line, if one was drawn.
    pub fn finish(&mut self) {
        if self.drew {
            let _ = writeln!(std::io::stderr());
            self.drew = false;
        }
    }
}
