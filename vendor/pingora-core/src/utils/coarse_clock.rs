// bulb patch (see PATCH.md, "Clocks read at the kernel's tick"). Licensed as
// the rest of this crate (Apache-2.0).

//! Clocks read at the kernel's tick, for timestamps where a few milliseconds
//! do not matter: how long an idle connection sat in the pool, the `Date`
//! header (whole seconds), the deadline of a read that times out in seconds.
//! On Linux `CLOCK_MONOTONIC_COARSE` and `CLOCK_REALTIME_COARSE` are read
//! from the vDSO without reading the TSC: about 4 ns, against about 20 for
//! `Instant::now()` on a virtual machine, lagging real time by at most one
//! tick (1-10 ms). Elsewhere they are the precise clocks.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long [`instant`] advances a precise reading by the coarse clock
/// before it takes a new one. Both count the same monotonic time, so this
/// only bounds how long one early reading is relied on.
const RESYNC: Duration = Duration::from_secs(10);

thread_local! {
    /// A precise reading and the coarse clock at that moment.
    static BASE: Cell<Option<(Instant, Duration)>> = const { Cell::new(None) };
}

/// `Instant::now()` to within a kernel tick either way: a precise reading
/// taken once per thread (and again every [`RESYNC`]), advanced by
/// [`monotonic`]. For deadlines, not for measuring short times.
pub fn instant() -> Instant {
    let coarse = monotonic();
    BASE.with(|base| match base.get() {
        Some((at, then)) if coarse >= then && coarse - then < RESYNC => at + (coarse - then),
        _ => {
            let at = Instant::now();
            base.set(Some((at, monotonic())));
            at
        }
    })
}

/// Monotonic time (from an unspecified start; only differences mean
/// anything), at most one kernel tick behind.
pub fn monotonic() -> Duration {
    #[cfg(target_os = "linux")]
    {
        read(libc::CLOCK_MONOTONIC_COARSE)
    }
    #[cfg(not(target_os = "linux"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }
}

/// Time since the Unix epoch, at most one kernel tick behind.
pub fn since_epoch() -> Duration {
    #[cfg(target_os = "linux")]
    {
        read(libc::CLOCK_REALTIME_COARSE)
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }
}

#[cfg(target_os = "linux")]
fn read(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; both clocks exist on every
    // Linux since 2.6.32, so the call cannot fail (and `ts` stays zero if it
    // did: a time in the past, never a panic).
    unsafe { libc::clock_gettime(clock, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn the_coarse_clocks_keep_up_with_the_precise_ones() {
        let precise = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let coarse = since_epoch();
        let lag = precise.saturating_sub(coarse);
        assert!(lag < Duration::from_millis(50), "{lag:?} behind");
        assert!(coarse < precise + Duration::from_millis(50));

        let (m0, i0) = (monotonic(), Instant::now());
        std::thread::sleep(Duration::from_millis(30));
        let (m1, i1) = (monotonic(), Instant::now());
        let (coarse, precise) = (m1 - m0, i1 - i0);
        assert!(
            coarse + Duration::from_millis(25) > precise,
            "{coarse:?} vs {precise:?}"
        );
        assert!(
            coarse < precise + Duration::from_millis(25),
            "{coarse:?} vs {precise:?}"
        );
    }

    #[test]
    fn the_coarse_instant_stays_within_a_tick_of_the_precise_one() {
        for _ in 0..5 {
            let (before, coarse, after) = (Instant::now(), instant(), Instant::now());
            let tick = Duration::from_millis(20);
            assert!(coarse + tick > before && coarse < after + tick);
            std::thread::sleep(Duration::from_millis(7));
        }
    }
}
