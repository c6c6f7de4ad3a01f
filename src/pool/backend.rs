//! Per-backend state shared by the proxy, the health checker, discovery,
//! metrics and reloads. Everything on it is an atomic: the request path never
//! locks.

use super::Target;
use crate::config::PassiveSpec;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

static START: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the process started: a cheap monotonic clock.
pub fn now_ms() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Microseconds since the process started (the same clock as [`now_ms`]).
pub fn now_us() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// An exponentially decaying average: `sample` taken `dt` seconds after
/// the last one weighs `1 - e^(-dt/tau)` against `prev`.
pub fn ewma(prev: f64, sample: f64, dt: f64, tau: f64) -> f64 {
    let w = 1.0 - (-dt / tau.max(1e-3)).exp();
    prev + w * (sample - prev)
}

/// The smallest share of its weight a slow-starting backend gets.
const RAMP_FLOOR: f64 = 0.01;

/// Number of distinct HTTP statuses counted (100..=599).
const STATUSES: usize = 500;

/// A request or session in progress on a backend: counted in flight (and
/// as one more request) from creation until dropped, also when its task is
/// cancelled.
pub struct Lease(Arc<BackendState>, Instant);

impl Lease {
    /// Start one unit of work on `backend`.
    pub fn new(backend: Arc<BackendState>) -> Self {
        backend.begin();
        Lease(backend, Instant::now())
    }

    /// Start one unit of work on `backend` if it is below its `max_conns`
    /// (checked and counted in one atomic step, across threads).
    pub fn try_new(backend: Arc<BackendState>) -> Option<Self> {
        backend.try_begin().then(|| Lease(backend, Instant::now()))
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<BackendState> {
        &self.0
    }

    /// Time since the work started.
    pub fn elapsed(&self) -> Duration {
        self.1.elapsed()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// How a new backend starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Usable at once (its pool has no active checks).
    Usable,
    /// Down until its first probe succeeds (active checks are configured).
    AwaitingProbe,
}

/// One backend address of one upstream, with its health and counters.
///
/// The same `Arc<BackendState>` is carried over a reload when the upstream
/// and address stay, so health and counters survive it.
pub struct BackendState {
    /// The address connected to.
    pub addr: SocketAddr,
    /// `addr` as text, for logs, `/status` and metric labels.
    pub addr_str: String,
    weight: AtomicU32,
    /// A weight set through the admin API (0: none); survives reloads.
    weight_override: AtomicU32,
    /// [`AdminState`] set through the admin API; survives reloads.
    admin_state: std::sync::atomic::AtomicU8,
    backup: AtomicBool,
    healthy: AtomicBool,
    probe_streak: AtomicU32,
    probed: AtomicBool,
    in_flight: AtomicI64,
    requests: AtomicU64,
    failures: AtomicU64,
    window_start: AtomicU64,
    window_fails: AtomicU32,
    ejected_until: AtomicU64,
    /// The ejection in force was caused by a failure to connect.
    ejected_on_connect: AtomicBool,
    statuses: Box<[AtomicU64]>,
    /// TCP sessions ended, by [`SessionEnd`].
    sessions: [AtomicU64; SessionEnd::ALL.len()],
    /// TCP bytes from clients to this backend, and back.
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    /// When this backend last became usable (created, probe recovered,
    /// ejection over), on the [`now_us`] clock: slow start ramps from here,
    /// and older time samples no longer count.
    usable_since_us: AtomicU64,
    /// Requests (sessions) in flight at most; 0: no limit.
    max_conns: AtomicU32,
    /// Woken when a unit of work ends on a capped backend (the pool's queue).
    on_release: arc_swap::ArcSwapOption<tokio::sync::Notify>,
    /// Decaying average of the measured time, in seconds (f64 bits).
    avg_secs: AtomicU64,
    /// When the average last took a sample ([`now_us`]; 0: never).
    avg_at_us: AtomicU64,
    /// Samples taken since the backend became usable.
    avg_samples: AtomicU64,
    /// The hostname this address was resolved from.
    name: std::sync::RwLock<Option<Arc<str>>>,
}

/// What an operator said about a backend through the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// Normal.
    Active = 0,
    /// No new work; in flight finishes (a deploy).
    Draining = 1,
    /// No new work, for maintenance.
    Disabled = 2,
}

impl AdminState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => AdminState::Draining,
            2 => AdminState::Disabled,
            _ => AdminState::Active,
        }
    }

    /// The name on `/status`, in the state file and the API.
    pub fn name(self) -> &'static str {
        match self {
            AdminState::Active => "active",
            AdminState::Draining => "draining",
            AdminState::Disabled => "disabled",
        }
    }

    /// The state a name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(AdminState::Active),
            "draining" => Some(AdminState::Draining),
            "disabled" => Some(AdminState::Disabled),
            _ => None,
        }
    }
}

/// How a TCP session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Both sides closed.
    Closed,
    /// No bytes either way for the listener's `idle_timeout`.
    IdleTimeout,
    /// One side reset or failed; the other was reset too.
    Reset,
    /// No backend could be reached (counted on the pool, not a backend).
    NoBackend,
}

impl SessionEnd {
    /// Every kind, in label order.
    pub const ALL: [SessionEnd; 4] = [
        SessionEnd::Closed,
        SessionEnd::IdleTimeout,
        SessionEnd::Reset,
        SessionEnd::NoBackend,
    ];

    /// The `result` label and access-log word.
    pub fn name(self) -> &'static str {
        match self {
            SessionEnd::Closed => "closed",
            SessionEnd::IdleTimeout => "idle_timeout",
            SessionEnd::Reset => "reset",
            SessionEnd::NoBackend => "no_backend",
        }
    }
}

impl BackendState {
    /// A new backend for `target`, usable at once or only after its first
    /// successful probe, as `start` says.
    pub fn new(target: Target, start: Start) -> Self {
        let addr = target.addr;
        BackendState {
            addr,
            addr_str: addr.to_string(),
            weight: AtomicU32::new(target.weight),
            weight_override: AtomicU32::new(0),
            admin_state: std::sync::atomic::AtomicU8::new(AdminState::Active as u8),
            max_conns: AtomicU32::new(target.max_conns.unwrap_or(0)),
            on_release: arc_swap::ArcSwapOption::empty(),
            backup: AtomicBool::new(target.backup),
            healthy: AtomicBool::new(start == Start::Usable),
            probe_streak: AtomicU32::new(0),
            probed: AtomicBool::new(false),
            in_flight: AtomicI64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            window_start: AtomicU64::new(0),
            window_fails: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejected_on_connect: AtomicBool::new(false),
            statuses: (0..STATUSES).map(|_| AtomicU64::new(0)).collect(),
            sessions: Default::default(),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            usable_since_us: AtomicU64::new(now_us()),
            avg_secs: AtomicU64::new(0),
            avg_at_us: AtomicU64::new(0),
            avg_samples: AtomicU64::new(0),
            name: std::sync::RwLock::new(target.name),
        }
    }

    /// The hostname this address was resolved from, if any.
    pub fn name(&self) -> Option<Arc<str>> {
        self.name.read().map_or(None, |n| n.clone())
    }

    /// Take weight and backup flag from `target` (a reload may change them).
    pub fn set_role(&self, target: &Target) {
        self.weight.store(target.weight, Relaxed);
        self.backup.store(target.backup, Relaxed);
        self.max_conns.store(target.max_conns.unwrap_or(0), Relaxed);
        if let Ok(mut n) = self.name.write() {
            n.clone_from(&target.name);
        }
    }

    /// Requests (sessions) in flight at most, if capped.
    pub fn max_conns(&self) -> Option<u32> {
        Some(self.max_conns.load(Relaxed)).filter(|&n| n > 0)
    }

    /// Whether another unit of work fits under `max_conns`.
    pub fn has_room(&self) -> bool {
        self.max_conns()
            .is_none_or(|m| self.in_flight() < i64::from(m))
    }

    /// Who to wake when work ends here (the pool's queue).
    pub fn set_release_signal(&self, n: Arc<tokio::sync::Notify>) {
        self.on_release.store(Some(n));
    }

    /// Count one more unit of work if it fits under `max_conns`.
    pub fn try_begin(&self) -> bool {
        let Some(max) = self.max_conns() else {
            self.begin();
            return true;
        };
        let mut cur = self.in_flight.load(Relaxed);
        loop {
            if cur >= i64::from(max) {
                return false;
            }
            match self
                .in_flight
                .compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed)
            {
                Ok(_) => {
                    self.requests.fetch_add(1, Relaxed);
                    return true;
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Relative weight.
    pub fn weight(&self) -> u32 {
        match self.weight_override.load(Relaxed) {
            0 => self.weight.load(Relaxed),
            w => w,
        }
    }

    /// The weight the config gives.
    pub fn configured_weight(&self) -> u32 {
        self.weight.load(Relaxed)
    }

    /// Set (or with `None` drop) the admin API's weight.
    pub fn set_weight_override(&self, w: Option<u32>) {
        self.weight_override.store(w.unwrap_or(0), Relaxed);
    }

    /// The admin API's weight, if one is set.
    pub fn weight_override(&self) -> Option<u32> {
        Some(self.weight_override.load(Relaxed)).filter(|&w| w > 0)
    }

    /// The admin state in force.
    pub fn admin_state(&self) -> AdminState {
        AdminState::from_u8(self.admin_state.load(Relaxed))
    }

    /// Set the admin state.
    pub fn set_admin_state(&self, s: AdminState) {
        self.admin_state.store(s as u8, Relaxed);
    }

    /// Whether new work may go here: usable, and not drained or disabled
    /// by an operator (health checks go on either way).
    pub fn available(&self, now: u64) -> bool {
        self.usable(now) && self.admin_state() == AdminState::Active
    }

    /// Whether this is a backup server.
    pub fn backup(&self) -> bool {
        self.backup.load(Relaxed)
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
        self.healthy() && !self.ejected(now)
    }

    /// Requests currently being proxied to this backend.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Relaxed)
    }

    /// Requests sent to this backend.
    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }

    /// Failures (connect errors, timeouts, resets) seen on this backend.
    pub fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }

    /// A request starts on this backend.
    pub fn begin(&self) {
        self.in_flight.fetch_add(1, Relaxed);
        self.requests.fetch_add(1, Relaxed);
    }

    /// A request that [`begin`](Self::begin) started has ended.
    pub fn end(&self) {
        self.in_flight.fetch_sub(1, Relaxed);
        if self.max_conns.load(Relaxed) > 0 {
            if let Some(n) = self.on_release.load().as_ref() {
                n.notify_waiters();
            }
        }
    }

    /// Count a response status sent to a client for this backend.
    pub fn count_status(&self, status: u16) {
        if let Some(c) = (status as usize)
            .checked_sub(100)
            .and_then(|i| self.statuses.get(i))
        {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Count a TCP session that ended as `end` after moving `up` bytes to
    /// the backend and `down` bytes back.
    pub fn count_session(&self, end: SessionEnd, up: u64, down: u64) {
        self.sessions[end as usize].fetch_add(1, Relaxed);
        self.bytes_up.fetch_add(up, Relaxed);
        self.bytes_down.fetch_add(down, Relaxed);
    }

    /// TCP sessions ended as `end`.
    pub fn sessions(&self, end: SessionEnd) -> u64 {
        self.sessions[end as usize].load(Relaxed)
    }

    /// TCP bytes (to the backend, back to clients).
    pub fn tcp_bytes(&self) -> (u64, u64) {
        (self.bytes_up.load(Relaxed), self.bytes_down.load(Relaxed))
    }

    /// Take a time sample for `least_time` into an exponentially decaying
    /// average with time constant `decay`: a sample `dt` after the last one
    /// weighs `1 - e^(-dt/decay)`. The first sample since the backend
    /// became usable replaces what came before, and for one `decay` after
    /// that each sample weighs at least `1/n` (a plain mean), so that one
    /// slow first answer (a cold connection) does not stand for the whole
    /// time constant.
    pub fn record_time(&self, sample: Duration, decay: Duration) {
        let now = now_us();
        let s = sample.as_secs_f64();
        let at = self.avg_at_us.load(Relaxed);
        let since = self.usable_since_us.load(Relaxed);
        let avg = if at == 0 || at < since {
            self.avg_samples.store(1, Relaxed);
            s
        } else {
            let dt = now.saturating_sub(at) as f64 / 1e6;
            let prev = f64::from_bits(self.avg_secs.load(Relaxed));
            let n = self.avg_samples.fetch_add(1, Relaxed) + 1;
            let warming = now.saturating_sub(since) < decay.as_micros() as u64;
            let decayed = ewma(prev, s, dt, decay.as_secs_f64());
            if warming {
                let mean = prev + (s - prev) / n as f64;
                // The larger step of the two: the mean's or the decay's.
                if (mean - prev).abs() > (decayed - prev).abs() {
                    mean
                } else {
                    decayed
                }
            } else {
                decayed
            }
        };
        self.avg_secs.store(avg.to_bits(), Relaxed);
        self.avg_at_us.store(now.max(1), Relaxed);
    }

    /// The average time, if there is a sample since the backend last
    /// became usable.
    pub fn average(&self) -> Option<Duration> {
        let at = self.avg_at_us.load(Relaxed);
        (at != 0 && at >= self.usable_since_us.load(Relaxed))
            .then(|| Duration::from_secs_f64(f64::from_bits(self.avg_secs.load(Relaxed))))
    }

    /// The share of its weight in force at `now` ([`now_us`]): rising
    /// linearly from about zero to 1 over `slow_start` after the backend
    /// became usable; 1 without slow start.
    pub fn ramp(&self, slow_start: Option<Duration>, now: u64) -> f64 {
        let Some(d) = slow_start.filter(|d| !d.is_zero()) else {
            return 1.0;
        };
        let since = now.saturating_sub(self.usable_since_us.load(Relaxed)) as f64 / 1e6;
        (since / d.as_secs_f64()).clamp(RAMP_FLOOR, 1.0)
    }

    /// Non-zero status counts, as (status, count).
    pub fn status_counts(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.statuses.iter().enumerate().filter_map(|(i, c)| {
            let n = c.load(Relaxed);
            (n > 0).then_some((i as u16 + 100, n))
        })
    }

    /// A request to this backend failed (`connect`: it could not even be
    /// reached; else a timeout or reset). Returns true when this failure
    /// ejected the backend.
    pub fn record_failure(&self, passive: Option<PassiveSpec>, connect: bool) -> bool {
        self.failures.fetch_add(1, Relaxed);
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

    /// Whether an active probe has run on this backend yet.
    pub fn probed(&self) -> bool {
        self.probed.load(Relaxed)
    }

    /// Active checks were switched off for this backend: it is usable again.
    pub fn clear_active_health(&self) {
        self.healthy.store(true, Relaxed);
        self.probe_streak.store(0, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn b(checked: bool) -> BackendState {
        let start = if checked {
            Start::AwaitingProbe
        } else {
            Start::Usable
        };
        BackendState::new(Target::new("127.0.0.1:1".parse().unwrap()), start)
    }

    #[test]
    fn first_probe_decides_then_thresholds_apply() {
        let s = b(true);
        assert!(!s.healthy());
        assert_eq!(s.record_probe(true, 2, 3), Some(true));
        assert_eq!(s.record_probe(false, 2, 3), None);
        assert_eq!(s.record_probe(false, 2, 3), None);
        assert_eq!(s.record_probe(false, 2, 3), Some(false));
        assert_eq!(s.record_probe(true, 2, 3), None);
        assert_eq!(s.record_probe(true, 2, 3), Some(true));
    }

    #[test]
    fn passive_ejection_after_max_fails() {
        let s = b(false);
        let p = Some(PassiveSpec {
            max_fails: 3,
            fail_timeout: Duration::from_secs(30),
        });
        assert!(!s.record_failure(p, true));
        assert!(!s.record_failure(p, true));
        assert!(s.record_failure(p, true));
        assert!(!s.usable(now_ms()));
        assert_eq!(s.failures(), 3);
        // A passing probe proves it reachable again.
        s.record_probe(true, 2, 2);
        assert!(s.usable(now_ms()));
    }

    #[test]
    fn timeout_ejection_outlives_a_passing_probe() {
        let s = b(false);
        let p = Some(PassiveSpec {
            max_fails: 1,
            fail_timeout: Duration::from_secs(30),
        });
        assert!(s.record_failure(p, false));
        s.record_probe(true, 1, 1);
        assert!(!s.usable(now_ms()));
    }

    #[test]
    fn the_average_decays_with_its_time_constant() {
        // After one time constant a new level has 63 % of its weight.
        let v = ewma(0.100, 0.001, 10.0, 10.0);
        assert!((v - (0.100 - 0.099 * 0.632)).abs() < 1e-3, "{v}");
        // Samples close together move it little, far apart almost fully.
        assert!((ewma(0.1, 0.0, 0.01, 10.0) - 0.1).abs() < 1e-3);
        assert!(ewma(0.1, 0.0, 100.0, 10.0) < 1e-5);
        let s = b(false);
        assert!(s.average().is_none());
        s.record_time(Duration::from_millis(50), Duration::from_secs(10));
        assert_eq!(s.average(), Some(Duration::from_millis(50)));
    }

    #[test]
    fn slow_start_ramps_linearly_from_usable() {
        let s = b(false);
        let d = Some(Duration::from_secs(4));
        let t0 = s.usable_since_us.load(Relaxed);
        assert!(s.ramp(d, t0) <= RAMP_FLOOR + 1e-9);
        assert!((s.ramp(d, t0 + 2_000_000) - 0.5).abs() < 1e-9);
        assert_eq!(s.ramp(d, t0 + 9_000_000), 1.0);
        assert_eq!(s.ramp(None, t0), 1.0);
        // A passive ejection restarts the ramp when it ends.
        let p = Some(PassiveSpec {
            max_fails: 1,
            fail_timeout: Duration::from_secs(30),
        });
        assert!(s.record_failure(p, false));
        assert!(s.usable_since_us.load(Relaxed) >= 30_000_000);
    }

    #[test]
    fn statuses_are_counted() {
        let s = b(false);
        s.count_status(200);
        s.count_status(200);
        s.count_status(503);
        s.count_status(42);
        let v: Vec<_> = s.status_counts().collect();
        assert_eq!(v, vec![(200, 2), (503, 1)]);
    }
}
