//! The work on a backend now: requests (or TCP sessions) in flight, the
//! `max_conns` cap they count against, and who to wake when one ends.

use arc_swap::ArcSwapOption;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::Notify;

/// In-flight work on one backend.
#[derive(Default)]
pub struct Load {
    in_flight: AtomicI64,
    requests: AtomicU64,
    /// 0: no limit.
    max_conns: AtomicU32,
    /// Woken when a unit of work ends on a capped backend (the pool's queue).
    on_release: ArcSwapOption<Notify>,
}

impl Load {
    /// No work yet, capped at `max_conns` if given.
    pub fn new(max_conns: Option<u32>) -> Self {
        let load = Load::default();
        load.set_max_conns(max_conns);
        load
    }

    /// Requests (sessions) in flight at most, if capped.
    pub fn max_conns(&self) -> Option<u32> {
        Some(self.max_conns.load(Relaxed)).filter(|&n| n > 0)
    }

    /// Change the cap (a reload).
    pub fn set_max_conns(&self, max: Option<u32>) {
        self.max_conns.store(max.unwrap_or(0), Relaxed);
    }

    /// Whether another unit of work fits under `max_conns`.
    pub fn has_room(&self) -> bool {
        self.max_conns()
            .is_none_or(|m| self.in_flight() < i64::from(m))
    }

    /// Who to wake when work ends here (the pool's queue).
    pub fn set_release_signal(&self, n: Arc<Notify>) {
        self.on_release.store(Some(n));
    }

    /// Count one more unit of work if it fits under `max_conns` (checked
    /// and counted in one atomic step, across threads).
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

    /// A unit of work starts.
    pub fn begin(&self) {
        self.in_flight.fetch_add(1, Relaxed);
        self.requests.fetch_add(1, Relaxed);
    }

    /// A unit of work that [`begin`](Self::begin) started has ended.
    pub fn end(&self) {
        self.in_flight.fetch_sub(1, Relaxed);
        if self.max_conns.load(Relaxed) > 0 {
            if let Some(n) = self.on_release.load().as_ref() {
                n.notify_waiters();
            }
        }
    }

    /// Work in progress now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Relaxed)
    }

    /// Units of work started so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_and_a_release_makes_room() {
        let l = Load::new(Some(2));
        assert!(l.try_begin() && l.try_begin());
        assert!(!l.try_begin() && !l.has_room());
        l.end();
        assert!(l.has_room() && l.try_begin());
        assert_eq!((l.in_flight(), l.requests()), (2, 3));
        l.set_max_conns(None);
        assert!(l.try_begin());
    }
}
