//! What happened on a backend, for `/metrics`: failures, response statuses,
//! TCP sessions by how they ended, and TCP bytes. A pool keeps one more
//! [`Counts`] for what reached no backend.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Number of distinct HTTP statuses counted (100..=599).
const STATUSES: usize = 500;

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

/// Counters of one backend (or of a pool's requests that reached none).
pub struct Counts {
    failures: AtomicU64,
    statuses: Box<[AtomicU64]>,
    sessions: [AtomicU64; SessionEnd::ALL.len()],
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            failures: AtomicU64::new(0),
            statuses: (0..STATUSES).map(|_| AtomicU64::new(0)).collect(),
            sessions: Default::default(),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        }
    }
}

impl Counts {
    /// Count a failure (connect error, timeout, reset).
    pub fn count_failure(&self) {
        self.failures.fetch_add(1, Relaxed);
    }

    /// Failures seen.
    pub fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }

    /// Count a response status sent to a client.
    pub fn count_status(&self, status: u16) {
        if let Some(c) = (status as usize)
            .checked_sub(100)
            .and_then(|i| self.statuses.get(i))
        {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Non-zero status counts, as (status, count).
    pub fn status_counts(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.statuses.iter().enumerate().filter_map(|(i, c)| {
            let n = c.load(Relaxed);
            (n > 0).then_some((i as u16 + 100, n))
        })
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_counted() {
        let s = Counts::default();
        s.count_status(200);
        s.count_status(200);
        s.count_status(503);
        s.count_status(42);
        let v: Vec<_> = s.status_counts().collect();
        assert_eq!(v, vec![(200, 2), (503, 1)]);
    }
}
