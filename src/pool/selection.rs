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
            let (load, w) = (s.in_flight().max(0), s.weight().max(1) as i64);
            // load/w < best_load/best_w  <=>  load*best_w < best_load*w;
            // the (dearer) acceptance test runs only for a better candidate.
            if best.is_none_or(|(_, bl, bw)| load * bw < bl * w) && accept(s) {
                best = Some((s, load, w));
            }
        }
        best.map(|(s, _, _)| s.clone())
    }
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
        st[0].begin();
        st[1].begin();
        // 2 is idle
        assert_eq!(sel.pick(b"", 8, |_| true).unwrap().addr, st[2].addr);
        st[2].begin();
        st[2].begin();
        // loads: 1/1, 1/1, 2/2 -> tie; never one above 1
        st[0].begin();
        let s = sel.pick(b"", 8, |_| true).unwrap();
        assert!(s.addr == st[1].addr || s.addr == st[2].addr);
        assert!(sel.pick(b"", 8, |_| false).is_none());
    }
}
