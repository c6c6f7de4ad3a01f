//! The process clock: milliseconds and microseconds since bulb started, a
//! cheap monotonic time that fits in an atomic (backend state, rate-limit
//! buckets, TCP idle timers), and civil dates from Unix time (log lines,
//! certificate expiry); and [`Throttle`], for messages said at most once a
//! while.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static START: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the process started.
pub fn now_ms() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Microseconds since the process started (the same clock as [`now_ms`]).
pub fn now_us() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// Now to within a kernel tick (a few ms), at a fifth of the cost of a
/// precise clock read (vendor/pingora-core, "Clocks read at the kernel's
/// tick"): for deadlines seconds away and for when something happened, not
/// for how long it took.
pub fn coarse_instant() -> tokio::time::Instant {
    tokio::time::Instant::from_std(pingora_core::utils::coarse_clock::instant())
}

/// [`now_us`] on the [`coarse_instant`] clock.
pub fn coarse_us() -> u64 {
    let start = *START.get_or_init(Instant::now);
    coarse_instant()
        .into_std()
        .saturating_duration_since(start)
        .as_micros() as u64
}

/// Something allowed at most once per period (a warning that would
/// otherwise be logged per request).
pub struct Throttle {
    period_ms: u64,
    /// When it was last allowed (`now_ms() + 1`; 0: never).
    last: AtomicU64,
}

impl Throttle {
    /// At most once per `period`.
    pub const fn new(period: Duration) -> Self {
        Throttle {
            period_ms: period.as_millis() as u64,
            last: AtomicU64::new(0),
        }
    }

    /// Whether it may happen now: the first time, and once `period` has
    /// passed since the last time (one caller wins a race).
    pub fn due(&self) -> bool {
        let now = now_ms() + 1;
        let last = self.last.load(Relaxed);
        (last == 0 || now - last >= self.period_ms)
            && self
                .last
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
    }
}

/// The civil date (UTC) of `secs` since the Unix epoch: year, month, day,
/// and seconds into that day (Howard Hinnant's civil-from-days).
pub fn civil(secs: i64) -> (i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d, rem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_allows_once_per_period() {
        let t = Throttle::new(Duration::from_secs(60));
        assert!(t.due());
        assert!(!t.due());
        let every = Throttle::new(Duration::ZERO);
        assert!(every.due() && every.due());
    }
}
