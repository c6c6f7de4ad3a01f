//! An upstream pool at run time: its backends (each with live state), the
//! selectors built over them, and the rules for picking one.

pub mod backend;
pub mod queue;
pub mod selection;
pub mod sticky;

use crate::clock::{now_ms, now_us};
pub use backend::{AdminState, BackendState, Counts, Lease, SessionEnd, Start};

use crate::config::{Algorithm, UpstreamSpec};
use crate::metrics::Histogram;
use arc_swap::ArcSwap;
use selection::Selector;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// The backends of a pool at one moment, and selectors over them.
pub struct Members {
    /// Every backend, primary and backup, in address order.
    pub all: Vec<Arc<BackendState>>,
    primary: Selector,
    backup: Selector,
    /// With `sticky`: each member's cookie, in the order of `all`.
    sticky: Vec<sticky::Named>,
}

/// One address a pool should have, with the role its config entry gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Resolved address.
    pub addr: SocketAddr,
    /// Weight from the config entry.
    pub weight: u32,
    /// Backup flag from the config entry.
    pub backup: bool,
    /// `max_conns` from the config entry.
    pub max_conns: Option<u32>,
    /// The hostname `addr` was resolved from (a TLS backend's default SNI).
    pub name: Option<Arc<str>>,
}

impl Target {
    /// A primary backend of weight 1 at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Target {
            addr,
            weight: 1,
            backup: false,
            max_conns: None,
            name: None,
        }
    }
}

/// A running upstream pool.
pub struct Pool {
    /// Its validated configuration.
    pub cfg: UpstreamSpec,
    members: ArcSwap<Members>,
    retired: watch::Sender<bool>,
    /// Request durations of this upstream (kept across reloads).
    pub latency: Arc<Histogram>,
    /// What reached no backend: statuses of requests answered without one
    /// (502, 503), TCP sessions closed for want of one.
    pub unattributed: Counts,
    /// Woken when discovery changes the membership.
    pub changed: tokio::sync::Notify,
    /// The queue for when every backend is at `max_conns` (kept across reloads).
    pub capacity: Arc<queue::Capacity>,
}

impl Pool {
    /// Build a pool from `cfg` with `targets` (its backends' addresses as
    /// known now), taking over the state of backends that `previous` (the
    /// same-named pool of the running config) already has.
    pub fn new(
        cfg: UpstreamSpec,
        targets: &[Target],
        previous: Option<&Pool>,
        latency: Arc<Histogram>,
    ) -> Self {
        let pool = Pool {
            members: ArcSwap::from_pointee(Members {
                all: Vec::new(),
                primary: Selector::Empty,
                backup: Selector::Empty,
                sticky: Vec::new(),
            }),
            retired: watch::Sender::new(false),
            changed: tokio::sync::Notify::new(),
            capacity: previous.map(|p| p.capacity.clone()).unwrap_or_default(),
            latency,
            unattributed: Counts::default(),
            cfg,
        };
        let old = previous.map(|p| p.members.load_full());
        pool.set_targets(targets, old.as_deref());
        pool
    }

    /// The current members.
    pub fn members(&self) -> arc_swap::Guard<Arc<Members>> {
        self.members.load()
    }

    /// Replace the membership with `targets` (from discovery). Backends that
    /// stay keep their state; new ones start as [`BackendState::new`] says.
    pub fn update(&self, targets: &[Target]) {
        let old = self.members.load_full();
        let mut want: Vec<(SocketAddr, u32, bool)> = targets
            .iter()
            .map(|t| (t.addr, t.weight, t.backup))
            .collect();
        want.sort();
        want.dedup_by_key(|t| t.0);
        let have: Vec<(SocketAddr, u32, bool)> = old
            .all
            .iter()
            .map(|s| (s.addr, s.weight(), s.role.backup()))
            .collect();
        if want == have {
            return; // unchanged: keep selectors (and round-robin position) as they are
        }
        self.set_targets(targets, Some(&old));
        self.changed.notify_one();
    }

    fn set_targets(&self, targets: &[Target], old: Option<&Members>) {
        let checked = self.cfg.health_check.is_some();
        let start = if checked {
            Start::AwaitingProbe
        } else {
            Start::Usable
        };
        let by_addr: HashMap<SocketAddr, &Arc<BackendState>> = old
            .map(|m| m.all.iter().map(|s| (s.addr, s)).collect())
            .unwrap_or_default();
        let mut all: Vec<Arc<BackendState>> = Vec::with_capacity(targets.len());
        for t in targets {
            if all.iter().any(|s| s.addr == t.addr) {
                continue; // the same address reached through two entries
            }
            let state = match by_addr.get(&t.addr) {
                Some(s) => {
                    s.set_role(t);
                    if !checked {
                        s.health.clear_active();
                    }
                    (*s).clone()
                }
                None => Arc::new(BackendState::new(t.clone(), start)),
            };
            state
                .load
                .set_release_signal(self.capacity.released.clone());
            all.push(state);
        }
        all.sort_by_key(|s| s.addr);
        let (backups, primaries): (Vec<_>, Vec<_>) =
            all.iter().cloned().partition(|s| s.role.backup());
        self.members.store(Arc::new(Members {
            primary: Selector::build(self.cfg.algorithm, &primaries),
            backup: Selector::build(self.cfg.algorithm, &backups),
            sticky: sticky::named(&self.cfg, &all),
            all,
        }));
    }

    /// Pick a backend for a request hashed by `key`, never one in `tried`.
    ///
    /// Order: usable primaries by the algorithm; then usable backups; then,
    /// failing open, backends that only passive counting has ejected (active
    /// checks are evidence, passive ejection is a guess). `None` means nothing
    /// can be tried: the caller answers without connecting.
    pub fn select(&self, key: &[u8], tried: &Tried) -> Option<Arc<BackendState>> {
        let m = self.members.load();
        // The clock is read only if a backend's passive ejection or a slow
        // start needs it (once per pick at most).
        let clock = std::cell::OnceCell::new();
        let now = || *clock.get_or_init(now_ms);
        let fresh = tried.is_empty();
        let ramp = self.cfg.slow_start.map(|d| (d, now_us()));
        let ok = |s: &BackendState| {
            s.available_lazy(now)
                && s.load.has_room()
                && (fresh || !tried.contains(s.addr))
                && ramp.is_none_or(|(d, at)| ramp_admits(s, d, at, &m.all, now()))
        };
        let limit = walk_limit(self.cfg.algorithm, m.all.len());
        let scan = |backup: bool, f: &dyn Fn(&BackendState) -> bool| {
            m.all
                .iter()
                .find(|s| s.role.backup() == backup && f(s))
                .cloned()
        };
        m.primary
            .pick(key, limit, ok)
            .or_else(|| scan(false, &ok))
            .or_else(|| m.backup.pick(key, limit, ok))
            .or_else(|| scan(true, &ok))
            .or_else(|| {
                let fail_open = |s: &BackendState| {
                    s.health.healthy()
                        && s.admin.state() == AdminState::Active
                        && s.load.has_room()
                        && !tried.contains(s.addr)
                };
                m.primary
                    .pick(key, limit, fail_open)
                    .or_else(|| scan(true, &fail_open))
            })
    }

    /// A try on `lease`'s backend failed (`connect`: it could not be
    /// reached): a slow sample for least_time (the time it took, at least
    /// the connect timeout), and a failure for passive ejection.
    pub fn report_failure(&self, lease: &Lease, connect: bool) {
        let b = lease.backend();
        let took = lease.elapsed().max(self.cfg.connect_timeout);
        b.record_time(took, self.cfg.least_time.decay);
        if b.record_failure(self.cfg.passive, connect) {
            log::warn!(
                "upstream {}: backend {} ejected after repeated failures",
                self.cfg.name,
                b.addr_str
            );
        }
    }

    /// Rebuild the selectors from the members' weights in force (after the
    /// admin API changed one).
    pub fn reweigh(&self) {
        let old = self.members.load_full();
        let targets: Vec<Target> = old
            .all
            .iter()
            .map(|s| Target {
                addr: s.addr,
                weight: s.role.weight(),
                backup: s.role.backup(),
                max_conns: s.load.max_conns(),
                name: s.role.name(),
            })
            .collect();
        self.set_targets(&targets, Some(&old));
    }

    /// The member at `addr`.
    pub fn member(&self, addr: std::net::SocketAddr) -> Option<Arc<BackendState>> {
        self.members
            .load()
            .all
            .iter()
            .find(|s| s.addr == addr)
            .cloned()
    }

    /// Stop the background tasks of this pool (it was replaced by a reload).
    pub fn retire(&self) {
        self.retired.send_replace(true);
    }

    /// Resolves when [`retire`](Self::retire) is called (at once if it was):
    /// background tasks select on it.
    pub async fn retired(&self) {
        let mut rx = self.retired.subscribe();
        // The sender lives as long as the pool: this only ends when retired.
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Whether any backend is given by name (and so needs discovery).
    pub fn has_hostnames(&self) -> bool {
        self.cfg.backends.iter().any(|b| b.ip.is_none())
    }
}

/// Slow start: a backend whose weight is ramping takes a request with
/// probability (its share of its weight) ÷ (the largest share among usable
/// backends of its kind), so that backends that all started together are
/// not held back, and a returning one's share grows linearly.
fn ramp_admits(
    s: &BackendState,
    d: std::time::Duration,
    at: u64,
    all: &[Arc<BackendState>],
    now_ms: u64,
) -> bool {
    let share = s.health.ramp(Some(d), at);
    if share >= 1.0 {
        return true;
    }
    let top = all
        .iter()
        .filter(|b| b.role.backup() == s.role.backup() && b.available(now_ms))
        .map(|b| b.health.ramp(Some(d), at))
        .fold(share, f64::max);
    let draw = (selection::fast_random() % 1_000_000) as f64 / 1_000_000.0;
    draw < share / top
}

/// Points per unit of weight on Pingora's Ketama ring.
const KETAMA_POINTS: usize = 160;

/// How many candidates a selector may offer before the pool gives up on its
/// order and scans the members instead: enough to walk past every backend
/// (around the ring for Ketama, twice round for the others), plus a few for
/// the interleaving of weighted schedules.
fn walk_limit(algorithm: Algorithm, backends: usize) -> usize {
    const SLACK: usize = 16;
    match algorithm {
        Algorithm::ConsistentHash => backends * KETAMA_POINTS + SLACK,
        _ => backends * 2 + SLACK,
    }
}

/// The backends already tried for one request. Allocation-free for the
/// first attempt and the first retry.
#[derive(Default, Debug)]
pub struct Tried {
    first: Option<SocketAddr>,
    more: Vec<SocketAddr>,
}

impl Tried {
    /// Record `addr` as tried.
    pub fn push(&mut self, addr: SocketAddr) {
        if self.first.is_none() {
            self.first = Some(addr);
        } else {
            self.more.push(addr);
        }
    }

    /// Whether `addr` was tried.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        self.first == Some(addr) || self.more.contains(&addr)
    }

    /// Whether nothing was tried yet.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}
