//! The module's time budget. The host says how long it has before it stops the call
//! (`budget.time-left-ms`); the module keeps a reserve of that to build and return its result,
//! and stops starting (or waiting for) requests once the rest is used up. A sync then returns
//! every decision it has, instead of being stopped with none.

use std::time::Duration;

/// The smallest reserve: building and returning even a small result takes a few milliseconds,
/// and the host's clock and ours start at slightly different times.
const MIN_RESERVE: Duration = Duration::from_millis(250);
/// The largest reserve: deciding a million accounts and handing the report over takes about a
/// second; ten leave room on a loaded server.
const MAX_RESERVE: Duration = Duration::from_secs(10);

/// How long the module may work when the host stops it after `left`: `left` minus a tenth of it,
/// the tenth kept between [`MIN_RESERVE`] and [`MAX_RESERVE`].
pub fn working_time(left: Duration) -> Duration {
    left.saturating_sub((left / 10).clamp(MIN_RESERVE, MAX_RESERVE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenth_is_kept_within_bounds() {
        assert_eq!(working_time(Duration::from_secs(10)), Duration::from_secs(9));
        assert_eq!(working_time(Duration::from_secs(810)), Duration::from_secs(800));
        assert_eq!(working_time(Duration::from_secs(1)), Duration::from_millis(750));
        assert_eq!(working_time(Duration::from_millis(200)), Duration::ZERO);
    }
}
