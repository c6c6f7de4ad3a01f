//! The process clock: milliseconds and microseconds since bulb started, a
//! cheap monotonic time that fits in an atomic (backend state, rate-limit
//! buckets, TCP idle timers).

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the process started.
pub fn now_ms() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Microseconds since the process started (the same clock as [`now_ms`]).
pub fn now_us() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}
