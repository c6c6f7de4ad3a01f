//! Whether a backend may take new work: active checks (probes with
//! thresholds), passive checks (nginx's `max_fails` within `fail_timeout`),
//! and since when it has been usable, which slow start ramps from.

use crate::clock::{now_ms, now_us};
use crate::config::PassiveSpec;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The smallest share of its weight a slow-starting backend gets.
const RAMP_FLOOR: f64 = 0.01;

/// How a new backend starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Usable at once (its pool has no active checks).
    Usable,
    /// Down until its first probe succeeds (active checks are configured).
    AwaitingProbe,
}

/// The health of one backend.
pub struct Health {
    healthy: AtomicBool,
    probe_streak: AtomicU32,
    probed: AtomicBool,
    window_start: AtomicU64,
    window_fails: AtomicU32,
    ejected_until: AtomicU64,
    /// The ejection in force was caused by a failure to connect.
    ejected_on_connect: AtomicBool,
    /// When the backend last became usable (created, probe recovered,
    /// ejection over), on the [`now_us`] clock: slow start ramps from here,
    /// and older time samples no longer count.
    usable_since_us: AtomicU64,
}

impl Health {
    /// A new backend's health, as `start` says.
    pub fn new(start: Start) -> Self {
        Health {
            healthy: AtomicBool::new(start == Start::Usable),
            probe_streak: AtomicU32::new(0),
            probed: AtomicBool::new(false),
            window_start: AtomicU64::new(0),
            window_fails: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejected_on_connect: AtomicBool::new(false),
            usable_since_us: AtomicU64::new(now_us()),
        }
    }

    /// Healthy according to active checks (always true without them).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    /// Whether a passive ejection is in force at `now` (from [`now_ms`]).
    pub fn ejected(&self, now: u64) -> bool {
        now < self.ejected_until.load(Relaxed)
    }

    /// Usable for new requests: actively healthy and not passively ejected.
    pub fn usable(&self, now: u64) -> bool {
        self.usable_lazy(|| now)
    }

    /// [`Self::usable`], reading the clock only when it matters: a backend
    /// that passive checks have not ejected (or that was restored) needs no
    /// time.
    pub fn usable_lazy(&self, now: impl FnOnce() -> u64) -> bool {
        if !self.healthy() {
            return false;
        }
        let until = self.ejected_until.load(Relaxed);
        until == 0 || now() >= until
    }

    /// When the backend last became usable ([`now_us`]).
    pub fn usable_since_us(&self) -> u64 {
        self.usable_since_us.load(Relaxed)
    }

    /// The share of its weight in force at `now` ([`now_us`]): rising
    /// linearly from about zero to 1 over `slow_start` after the backend
    /// became usable; 1 without slow start.
    pub fn ramp(&self, slow_start: Option<Duration>, now: u64) -> f64 {
        let Some(d) = slow_start.filter(|d| !d.is_zero()) else {
            return 1.0;
        };
        let since = now.saturating_sub(self.usable_since_us()) as f64 / 1e6;
        (since / d.as_secs_f64()).clamp(RAMP_FLOOR, 1.0)
    }

    /// A request failed (`connect`: the backend could not even be reached;
    /// else a timeout or reset): count it against `passive`. Returns true
    /// when this failure ejected the backend.
    pub fn record_failure(&self, passive: Option<PassiveSpec>, connect: bool) -> bool {
        let Some(p) = passive else { return false };
        let now = now_ms();
        let window = p.fail_timeout.as_millis() as u64;
        let start = self.window_start.load(Relaxed);
        let fails = if now.saturating_sub(start) >= window || start == 0 {
            self.window_start.store(now.max(1), Relaxed);
            self.window_fails.store(1, Relaxed);
            1
        } else {
            self.window_fails.fetch_add(1, Relaxed) + 1
        };
        if fails >= p.max_fails && !self.ejected(now) {
            self.ejected_until.store(now + window, Relaxed);
            self.usable_since_us
                .store((now + window).saturating_mul(1000), Relaxed);
            self.ejected_on_connect.store(connect, Relaxed);
            self.window_fails.store(0, Relaxed);
            self.window_start.store(0, Relaxed);
            return true;
        }
        false
    }

    /// Record one active probe result; returns `Some(new_health)` when the
    /// backend flips. The first probe of a backend decides at once.
    ///
    /// A passing probe also ends a passive ejection caused by connect
    /// failures: the probe just proved the backend can be reached again.
    /// (An ejection for timeouts or resets runs its course: a hung backend
    /// still accepts connections.)
    pub fn record_probe(&self, ok: bool, healthy_after: u32, unhealthy_after: u32) -> Option<bool> {
        let first = !self.probed.swap(true, Relaxed);
        if ok && self.ejected_on_connect.swap(false, Relaxed) {
            self.ejected_until.store(0, Relaxed);
            self.usable_since_us.store(now_us(), Relaxed);
        }
        let healthy = self.healthy();
        if ok == healthy {
            self.probe_streak.store(0, Relaxed);
            return None;
        }
        let streak = self.probe_streak.fetch_add(1, Relaxed) + 1;
        let needed = if ok { healthy_after } else { unhealthy_after };
        if first || streak >= needed {
            self.healthy.store(ok, Relaxed);
            if ok {
                self.usable_since_us.store(now_us(), Relaxed);
            }
            self.probe_streak.store(0, Relaxed);
            return Some(ok);
        }
        None
    }

    /// Whether an active probe has run yet.
    pub fn probed(&self) -> bool {
        self.probed.load(Relaxed)
    }

    /// Active checks were switched off: usable again.
    pub fn clear_active(&self) {
        self.healthy.store(true, Relaxed);
        self.probe_streak.store(0, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passive(max_fails: u32) -> Option<PassiveSpec> {
        Some(PassiveSpec {
            max_fails,
            fail_timeout: Duration::from_secs(30),
        })
    }

    #[test]
    fn first_probe_decides_then_thresholds_apply() {
        let h = Health::new(Start::AwaitingProbe);
        assert!(!h.healthy());
        assert_eq!(h.record_probe(true, 2, 3), Some(true));
        assert_eq!(h.record_probe(false, 2, 3), None);
        assert_eq!(h.record_probe(false, 2, 3), None);
        assert_eq!(h.record_probe(false, 2, 3), Some(false));
        assert_eq!(h.record_probe(true, 2, 3), None);
        assert_eq!(h.record_probe(true, 2, 3), Some(true));
    }

    #[test]
    fn passive_ejection_after_max_fails() {
        let h = Health::new(Start::Usable);
        assert!(!h.record_failure(passive(3), true));
        assert!(!h.record_failure(passive(3), true));
        assert!(h.record_failure(passive(3), true));
        assert!(!h.usable(now_ms()));
        // A passing probe proves it reachable again.
        h.record_probe(true, 2, 2);
        assert!(h.usable(now_ms()));
    }

    #[test]
    fn the_lazy_check_reads_the_clock_only_for_an_ejection() {
        let h = Health::new(Start::Usable);
        assert!(h.usable_lazy(|| unreachable!("never ejected: no clock read")));
        assert!(h.record_failure(passive(1), true));
        let now = now_ms();
        assert!(!h.usable_lazy(|| now));
        assert!(h.usable_lazy(|| now + 3_600_000), "the window ends");
        assert_eq!(h.usable_lazy(|| now), h.usable(now));
    }

    #[test]
    fn timeout_ejection_outlives_a_passing_probe() {
        let h = Health::new(Start::Usable);
        assert!(h.record_failure(passive(1), false));
        h.record_probe(true, 1, 1);
        assert!(!h.usable(now_ms()));
    }

    #[test]
    fn slow_start_ramps_linearly_from_usable() {
        let h = Health::new(Start::Usable);
        let d = Some(Duration::from_secs(4));
        let t0 = h.usable_since_us();
        assert!(h.ramp(d, t0) <= RAMP_FLOOR + 1e-9);
        assert!((h.ramp(d, t0 + 2_000_000) - 0.5).abs() < 1e-9);
        assert_eq!(h.ramp(d, t0 + 9_000_000), 1.0);
        assert_eq!(h.ramp(None, t0), 1.0);
        // A passive ejection restarts the ramp when it ends.
        assert!(h.record_failure(passive(1), false));
        assert!(h.usable_since_us() >= 30_000_000);
    }
}
