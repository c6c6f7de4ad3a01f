//! One backend address of one upstream, shared by the proxy, the health
//! checker, discovery, metrics and reloads, split by concern (as
//! `pingora-load-balancing` keeps health, selection and discovery apart):
//!
//! - [`Role`]: what the config says (weight, backup, hostname);
//! - [`Admin`]: what an operator said (drain, disable, weight);
//! - [`Health`]: active and passive checks, and slow start's clock;
//! - [`Load`]: work in flight and the `max_conns` cap;
//! - [`Timing`]: the response-time average `least_time` picks by;
//! - [`Counts`]: failures, statuses, TCP sessions and bytes for `/metrics`.
//!
//! Everything is an atomic: the request path never locks. A new policy
//! (sticky sessions, outlier detection) adds or touches one part.

mod admin;
mod counts;
mod health;
mod load;
mod timing;

pub use admin::{Admin, AdminState};
pub use counts::{Counts, SessionEnd};
pub use health::{Health, Start};
pub use load::Load;
pub use timing::{ewma, Timing};

use super::Target;
use crate::config::PassiveSpec;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A request or session in progress on a backend: counted in flight (and
/// as one more request) from creation until dropped, also when its task is
/// cancelled.
pub struct Lease(Arc<BackendState>, Instant);

impl Lease {
    /// Start one unit of work on `backend`.
    pub fn new(backend: Arc<BackendState>) -> Self {
        backend.load.begin();
        Lease(backend, Instant::now())
    }

    /// Start one unit of work on `backend` if it is below its `max_conns`
    /// (checked and counted in one atomic step, across threads).
    pub fn try_new(backend: Arc<BackendState>) -> Option<Self> {
        backend
            .load
            .try_begin()
            .then(|| Lease(backend, Instant::now()))
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
        self.0.load.end();
    }
}

/// What the config says about a backend; a reload may change it.
pub struct Role {
    weight: AtomicU32,
    backup: AtomicBool,
    /// The hostname this address was resolved from.
    name: RwLock<Option<Arc<str>>>,
}

impl Role {
    fn new(target: &Target) -> Self {
        Role {
            weight: AtomicU32::new(target.weight),
            backup: AtomicBool::new(target.backup),
            name: RwLock::new(target.name.clone()),
        }
    }

    fn set(&self, target: &Target) {
        self.weight.store(target.weight, Relaxed);
        self.backup.store(target.backup, Relaxed);
        if let Ok(mut n) = self.name.write() {
            n.clone_from(&target.name);
        }
    }

    /// The weight the config gives.
    pub fn weight(&self) -> u32 {
        self.weight.load(Relaxed)
    }

    /// Whether this is a backup server.
    pub fn backup(&self) -> bool {
        self.backup.load(Relaxed)
    }

    /// The hostname this address was resolved from, if any.
    pub fn name(&self) -> Option<Arc<str>> {
        self.name.read().map_or(None, |n| n.clone())
    }
}

/// One backend address of one upstream, with its state by concern.
///
/// The same `Arc<BackendState>` is carried over a reload when the upstream
/// and address stay, so health and counters survive it.
pub struct BackendState {
    /// The address connected to.
    pub addr: SocketAddr,
    /// `addr` as text, for logs, `/status` and metric labels.
    pub addr_str: String,
    /// What the config says.
    pub role: Role,
    /// What an operator said.
    pub admin: Admin,
    /// Active and passive checks.
    pub health: Health,
    /// Work in flight.
    pub load: Load,
    /// The response-time average.
    pub timing: Timing,
    /// Counters for `/metrics`.
    pub counts: Counts,
}

impl BackendState {
    /// A new backend for `target`, usable at once or only after its first
    /// successful probe, as `start` says.
    pub fn new(target: Target, start: Start) -> Self {
        BackendState {
            addr: target.addr,
            addr_str: target.addr.to_string(),
            role: Role::new(&target),
            admin: Admin::default(),
            health: Health::new(start),
            load: Load::new(target.max_conns),
            timing: Timing::default(),
            counts: Counts::default(),
        }
    }

    /// Take weight, backup flag, cap and hostname from `target` (a reload
    /// may change them).
    pub fn set_role(&self, target: &Target) {
        self.role.set(target);
        self.load.set_max_conns(target.max_conns);
    }

    /// The weight in force: the admin API's, else the config's.
    pub fn weight(&self) -> u32 {
        self.admin.weight().unwrap_or_else(|| self.role.weight())
    }

    /// Whether new work may go here at `now` ([`crate::clock::now_ms`]): usable, and not
    /// drained or disabled by an operator (health checks go on either way).
    pub fn available(&self, now: u64) -> bool {
        self.available_lazy(|| now)
    }

    /// [`Self::available`], reading the clock (`now`) only if a passive
    /// ejection could be in force.
    pub fn available_lazy(&self, now: impl FnOnce() -> u64) -> bool {
        self.admin.state() == AdminState::Active && self.health.usable_lazy(now)
    }

    /// A request to this backend failed (`connect`: it could not even be
    /// reached; else a timeout or reset): counted, and held against it when
    /// `passive` checks are on. Returns true when this failure ejected it.
    pub fn record_failure(&self, passive: Option<PassiveSpec>, connect: bool) -> bool {
        self.counts.count_failure();
        self.health.record_failure(passive, connect)
    }

    /// Take a time sample for `least_time` (see [`Timing::record`]); samples
    /// from before the backend last became usable no longer count.
    pub fn record_time(&self, sample: Duration, decay: Duration) {
        self.timing
            .record(sample, decay, self.health.usable_since_us());
    }

    /// The average time, if sampled since the backend last became usable.
    pub fn average(&self) -> Option<Duration> {
        self.timing.average(self.health.usable_since_us())
    }

    /// The average in seconds as `least_time` judges it: drifting toward
    /// `floor` as its last sample ages ([`Timing::judged`]).
    pub fn judged_average(&self, floor: f64) -> Option<f64> {
        self.timing.judged(self.health.usable_since_us(), floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::now_ms;

    fn b() -> BackendState {
        BackendState::new(Target::new("127.0.0.1:1".parse().unwrap()), Start::Usable)
    }

    #[test]
    fn failures_count_and_eject_and_time_restarts_after() {
        let s = b();
        let p = Some(PassiveSpec {
            max_fails: 2,
            fail_timeout: Duration::from_secs(30),
        });
        s.record_time(Duration::from_millis(5), Duration::from_secs(10));
        assert!(s.average().is_some());
        assert!(!s.record_failure(p, false));
        assert!(s.record_failure(p, false));
        assert_eq!(s.counts.failures(), 2);
        assert!(!s.available(now_ms()));
        // Samples from before the ejection no longer count.
        assert!(s.average().is_none());
    }

    #[test]
    fn the_admin_weight_and_state_win_over_the_config() {
        let s = b();
        assert_eq!(s.weight(), 1);
        s.admin.set_weight(Some(7));
        assert_eq!((s.weight(), s.role.weight()), (7, 1));
        s.admin.set_state(AdminState::Draining);
        assert!(!s.available(now_ms()));
    }
}
