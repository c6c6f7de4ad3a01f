//! Backend selection: Pingora's weighted round robin, weighted random and
//! Ketama, plus our own least-connections, behind one [`Selector`].
//!
//! Every Pingora `Backend` carries its [`BackendState`] in `ext`, so the
//! candidates a selection algorithm yields map to live state without a lookup
//! table.

use super::backend::BackendState;
use crate::config::Algorithm;
use pingora_load_balancing::selection::{
    BackendIter, BackendSelection, Consistent, Random, RoundRobin,
};
use pingora_load_balancing::Backend;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// A built selection structure over a fixed set of backends.
pub enum Selector {
    /// No backends.
    Empty,
    /// Pingora's weighted round robin.
    RoundRobin(Arc<RoundRobin>),
    /// Pingora's weighted random.
    Random(Arc<Random>),
    /// Pingora's Ketama ring.
    Ketama(Arc<Consistent>),
    /// Ours.
    LeastConn(LeastConnections),
    /// Ours.
    LeastTime(LeastTime),
}

impl Selector {
    /// Build a selector for `algorithm` over `states`.
    pub fn build(algorithm: Algorithm, states: &[Arc<BackendState>]) -> Self {
        if states.is_empty() {
            return Selector::Empty;
        }
        let set: BTreeSet<Backend> = states
            .iter()
            .map(|s| {
                let mut b = Backend {
                    addr: pingora_core::protocols::l4::socket::SocketAddr::Inet(s.addr),
                    weight: s.weight() as usize,
                    ext: Default::default(),
                };
                b.ext.insert(s.clone());
                b
            })
            .collect();
        match algorithm {
            Algorithm::RoundRobin => Selector::RoundRobin(Arc::new(RoundRobin::build(&set))),
            Algorithm::Random => Selector::Random(Arc::new(Random::build(&set))),
            Algorithm::ConsistentHash => Selector::Ketama(Arc::new(Consistent::build(&set))),
            Algorithm::LeastConnections => Selector::LeastConn(LeastConnections::new(states)),
            Algorithm::LeastTime => Selector::LeastTime(LeastTime::new(states)),
        }
    }

    /// The first candidate for `key` that `accept` takes, walking the
    /// algorithm's own order (for Ketama: around the ring), at most `limit` steps.
    pub fn pick(
        &self,
        key: &[u8],
        limit: usize,
        accept: impl Fn(&BackendState) -> bool,
    ) -> Option<Arc<BackendState>> {
        match self {
            Selector::Empty => None,
            Selector::RoundRobin(s) => walk(s.iter(key), limit, accept),
            Selector::Random(s) => walk(s.iter(key), limit, accept),
            Selector::Ketama(s) => walk(s.iter(key), limit, accept),
            Selector::LeastConn(s) => s.pick(accept),
            Selector::LeastTime(s) => s.pick(accept),
        }
    }
}

fn walk<I: BackendIter>(
    mut it: I,
    limit: usize,
    accept: impl Fn(&BackendState) -> bool,
) -> Option<Arc<BackendState>> {
    for _ in 0..limit {
        let b = it.next()?;
        if let Some(s) = b.ext.get::<Arc<BackendState>>() {
            if accept(s) {
                return Some(s.clone());
            }
        }
    }
    None
}

/// Least connections: the accepted backend with the fewest in-flight
/// requests divided by its weight. Ties go round robin, so an idle pool
/// still spreads its load.
pub struct LeastConnections {
    states: Box<[Arc<BackendState>]>,
    next: AtomicUsize,
}

impl LeastConnections {
    /// Build over `states`.
    pub fn new(states: &[Arc<BackendState>]) -> Self {
        LeastConnections {
            states: states.into(),
            next: AtomicUsize::new(0),
        }
    }

    /// The least loaded backend that `accept` takes.
    pub fn pick(&self, accept: impl Fn(&BackendState) -> bool) -> Option<Arc<BackendState>> {
        let n = self.states.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Relaxed) % n;
        let mut best: Option<(&Arc<BackendState>, i64, i64)> = None;
        for i in 0..n {
            let s = &self.states[(start + i) % n];
            let (load, w) = (s.load.in_flight().max(0), s.weight().max(1) as i64);
            // load/w < best_load/best_w  <=>  load*best_w < best_load*w;
            // the (dearer) acceptance test runs only for a better candidate.
            if best.is_none_or(|(_, bl, bw)| load * bw < bl * w) && accept(s) {
                best = Some((s, load, w));
            }
        }
        best.map(|(s, _, _)| s.clone())
    }
}

/// Pools larger than this pick by two random choices (Envoy's P2C) rather
/// than scanning every backend.
pub const P2C_ABOVE: usize = 16;

/// Least-time scores closer than this (relative) are ties, which go round
/// robin: equal backends measure a little differently from moment to
/// moment, and a strict minimum would hand nearly everything to whichever
/// measured fastest last.
pub const TIE: f64 = 0.2;

/// Least time: the accepted backend with the lowest `average × (in_flight +
/// 1) ÷ weight`. A backend without a sample since it became usable is
/// judged by the pool's lowest average, so it is tried at once. Ties
/// (within [`TIE`]) go round robin.
pub struct LeastTime {
    states: Box<[Arc<BackendState>]>,
    next: AtomicUsize,
}

/// The score of `s` given the average it is judged by.
fn time_score(s: &BackendState, avg: f64) -> f64 {
    avg * (s.load.in_flight().max(0) + 1) as f64 / f64::from(s.weight().max(1))
}

impl LeastTime {
    /// Build over `states`.
    pub fn new(states: &[Arc<BackendState>]) -> Self {
        LeastTime {
            states: states.into(),
            next: AtomicUsize::new(0),
        }
    }

    /// The best backend that `accept` takes.
    pub fn pick(&self, accept: impl Fn(&BackendState) -> bool) -> Option<Arc<BackendState>> {
        if self.states.len() > P2C_ABOVE {
            if let Some(s) = self.two_choices(&accept) {
                return Some(s);
            }
        }
        self.scan(accept)
    }

    fn scan(&self, accept: impl Fn(&BackendState) -> bool) -> Option<Arc<BackendState>> {
        let n = self.states.len();
        if n == 0 {
            return None;
        }
        let floor = self
            .states
            .iter()
            .filter_map(|s| s.average())
            .min()
            .map_or(1.0, |d| d.as_secs_f64());
        let start = self.next.fetch_add(1, Relaxed) % n;
        let mut best: Option<(&Arc<BackendState>, f64)> = None;
        for i in 0..n {
            let s = &self.states[(start + i) % n];
            let avg = s.judged_average(floor).unwrap_or(floor);
            let score = time_score(s, avg);
            if best.is_none_or(|(_, b)| score < b * (1.0 - TIE)) && accept(s) {
                best = Some((s, score));
            }
        }
        best.map(|(s, _)| s.clone())
    }

    /// Two random accepted backends, the better of them; a backend without a
    /// sample is judged by the other's average. `None` after a few draws
    /// found nothing acceptable (the caller scans).
    fn two_choices(&self, accept: &impl Fn(&BackendState) -> bool) -> Option<Arc<BackendState>> {
        let n = self.states.len();
        let draw = || {
            (0..4)
                .map(|_| &self.states[fast_random() % n])
                .find(|s| accept(s))
        };
        let a = draw()?;
        let Some(b) = draw().filter(|b| !Arc::ptr_eq(a, b)) else {
            return Some(a.clone());
        };
        let (aa, ba) = (a.average(), b.average());
        let floor = aa.min(ba).or(aa).or(ba).map_or(1.0, |d| d.as_secs_f64());
        let avg = |x: &BackendState| x.judged_average(floor).unwrap_or(floor);
        let better = if time_score(b, avg(b)) < time_score(a, avg(a)) * (1.0 - TIE) {
            b
        } else {
            a
        };
        Some(better.clone())
    }
}

/// A cheap per-thread pseudo-random number (xorshift), for sampling.
pub fn fast_random() -> usize {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            (t ^ (&t as *const u64 as u64)) | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x as usize
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn states(weights: &[u32]) -> Vec<Arc<BackendState>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let addr = format!("127.0.0.1:{}", 9000 + i).parse().unwrap();
                let target = crate::pool::Target {
                    weight: *w,
                    ..crate::pool::Target::new(addr)
                };
                Arc::new(BackendState::new(target, crate::pool::Start::Usable))
            })
            .collect()
    }

    #[test]
    fn least_time_prefers_fast_idle_backends() {
        let st = states(&[1, 1, 1]);
        let decay = std::time::Duration::from_secs(10);
        for (s, ms) in st.iter().zip([1, 1, 50]) {
            s.record_time(std::time::Duration::from_millis(ms), decay);
        }
        let sel = Selector::build(Algorithm::LeastTime, &st);
        let m = shares(&sel, 100);
        assert_eq!(m.get("127.0.0.1:9002"), None, "{m:?}");
        assert_eq!(m.len(), 2, "ties go round robin: {m:?}");
        // Load counts: fast ones with 100 in flight score worse than the slow one.
        for _ in 0..100 {
            st[0].load.begin();
            st[1].load.begin();
        }
        let p = sel.pick(b"", 10, |_| true).expect("pick");
        assert_eq!(p.addr_str, "127.0.0.1:9002");
        // A backend without samples is judged by the lowest average.
        let fresh = states(&[1, 1]);
        fresh[0].record_time(std::time::Duration::from_millis(5), decay);
        let sel = Selector::build(Algorithm::LeastTime, &fresh);
        assert_eq!(shares(&sel, 10).len(), 2);
    }

    #[test]
    fn least_time_two_choices_on_large_pools() {
        let st = states(&[1; 40]);
        let decay = std::time::Duration::from_secs(10);
        for (i, s) in st.iter().enumerate() {
            let ms = if i == 0 { 1 } else { 100 };
            s.record_time(std::time::Duration::from_millis(ms), decay);
        }
        let sel = Selector::build(Algorithm::LeastTime, &st);
        let m = shares(&sel, 4000);
        // The fast one wins every draw it is in (about 2 in 40).
        let fast = m.get("127.0.0.1:9000").copied().unwrap_or(0);
        assert!(fast > 120, "{fast}");
        assert!(m.len() > 30, "{}", m.len());
    }

    fn shares(sel: &Selector, n: usize) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for i in 0..n {
            let key = (i as u32).to_le_bytes();
            let s = sel.pick(&key, 8, |_| true).unwrap();
            *m.entry(s.addr_str.clone()).or_default() += 1;
        }
        m
    }

    #[test]
    fn round_robin_equal_and_weighted() {
        let sel = Selector::build(Algorithm::RoundRobin, &states(&[1, 1, 1]));
        assert!(shares(&sel, 300).values().all(|&c| c == 100));
        let sel = Selector::build(Algorithm::RoundRobin, &states(&[1, 3]));
        let m = shares(&sel, 400);
        assert_eq!(m["127.0.0.1:9000"], 100);
        assert_eq!(m["127.0.0.1:9001"], 300);
    }

    #[test]
    fn random_is_weighted() {
        let sel = Selector::build(Algorithm::Random, &states(&[1, 3]));
        let m = shares(&sel, 20_000);
        let r = m["127.0.0.1:9001"] as f64 / m["127.0.0.1:9000"] as f64;
        assert!((2.6..3.4).contains(&r), "ratio {r}");
    }

    #[test]
    fn ketama_is_stable_and_skips() {
        let st = states(&[1, 1, 1]);
        let sel = Selector::build(Algorithm::ConsistentHash, &st);
        let a = sel.pick(b"user-1", 64, |_| true).unwrap();
        for _ in 0..10 {
            assert_eq!(sel.pick(b"user-1", 64, |_| true).unwrap().addr, a.addr);
        }
        let b = sel.pick(b"user-1", 64, |s| s.addr != a.addr).unwrap();
        assert_ne!(a.addr, b.addr);
    }

    #[test]
    fn least_connections_prefers_idle_and_weight() {
        let st = states(&[1, 1, 2]);
        let sel = Selector::build(Algorithm::LeastConnections, &st);
        st[0].load.begin();
        st[1].load.begin();
        // 2 is idle
        assert_eq!(sel.pick(b"", 8, |_| true).unwrap().addr, st[2].addr);
        st[2].load.begin();
        st[2].load.begin();
        // loads: 1/1, 1/1, 2/2 -> tie; never one above 1
        st[0].load.begin();
        let s = sel.pick(b"", 8, |_| true).unwrap();
        assert!(s.addr == st[1].addr || s.addr == st[2].addr);
        assert!(sel.pick(b"", 8, |_| false).is_none());
    }
}
