//! Where one run's time goes, for the benchmark: with `HOSTBILL_MODULE_TIMINGS=1` the host ends
//! with one stderr line `{"timings_ms": {"args": 0.4, "read": 0.3, "parse": 2.1, ...}}`, each
//! phase timed from the end of the previous one. Off (and free) otherwise. The component loads
//! on a thread of its own while the request is read and parsed, so `load` is only the wait for
//! it after the parse.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Each phase's name and length in milliseconds.
type Phases = Vec<(&'static str, f64)>;

/// The phases so far, and when the last one ended.
static PHASES: Mutex<(Phases, Option<Instant>)> = Mutex::new((Vec::new(), None));

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("HOSTBILL_MODULE_TIMINGS").is_some_and(|v| v == "1"))
}

/// Starts the clock (at the top of `main`).
pub fn start() {
    if enabled()
        && let Ok(mut phases) = PHASES.lock()
    {
        phases.1 = Some(Instant::now());
    }
}

/// Ends `phase` now; it began where the previous one ended.
pub fn mark(phase: &'static str) {
    if !enabled() {
        return;
    }
    if let Ok(mut phases) = PHASES.lock() {
        let now = Instant::now();
        let ms = phases.1.map_or(0.0, |last| (now - last).as_secs_f64() * 1000.0);
        phases.0.push((phase, ms));
        phases.1 = Some(now);
    }
}

/// Prints the phases on stderr (when enabled).
pub fn print() {
    if !enabled() {
        return;
    }
    if let Ok(phases) = PHASES.lock() {
        let fields: Vec<String> = phases.0.iter().map(|(name, ms)| format!("\"{name}\": {ms:.2}")).collect();
        crate::scrub::stderr_line(&format!("{{\"timings_ms\": {{{}}}}}", fields.join(", ")));
    }
}
