//! The tries of one request on backends, and the retry rule in one place:
//! a retry never goes to a backend already tried, and a request that cannot
//! be replayed safely (its body was sent, it is not idempotent, or the
//! response had begun) is not retried after it reached a backend.

use crate::pool::{BackendState, Lease, Pool, Tried};
use std::sync::Arc;

/// What to do after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Give up: the client gets the error.
    No,
    /// A pooled connection had gone stale before the request was read: the
    /// same backend, on a new connection (not a further attempt).
    SameBackend,
    /// Another backend, not tried yet.
    OtherBackend,
}

/// How an attempt failed, as far as the retry rule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made: nothing was sent.
    Connect,
    /// The backend failed after the request was (partly) sent.
    Proxy {
        /// The backend, not the client, failed.
        upstream: bool,
        /// A reset or close (not a timeout or protocol error).
        reset: bool,
        /// The connection came from the keep-alive pool.
        reused: bool,
    },
}

/// Every attempt of one request.
#[derive(Default)]
pub struct Attempts {
    /// The current try.
    current: Option<Lease>,
    /// The last backend tried, once its attempt ended (for counting and the log).
    last: Option<Arc<BackendState>>,
    tried: Tried,
    count: u32,
    next: Option<Retry>,
}

impl Attempts {
    /// The backend to try again after a stale pooled connection (the
    /// decision is used up), else `None`: end the current try and lease
    /// another backend among those not [`tried`](Self::tried).
    pub fn retry_same(&mut self) -> Option<&Arc<BackendState>> {
        if self.next.take() == Some(Retry::SameBackend) && self.current.is_some() {
            return self.current.as_ref().map(Lease::backend);
        }
        self.end();
        None
    }

    /// The backends tried so far.
    pub fn tried(&self) -> &Tried {
        &self.tried
    }

    /// Begin a try on the backend `lease` holds.
    pub fn start(&mut self, lease: Lease) -> &Arc<BackendState> {
        self.count += 1;
        self.current.insert(lease).backend()
    }

    /// Backends tried so far, the current one included (a retry on the
    /// same backend after a stale connection does not count).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Decide what follows `failure` of the current attempt, counting it
    /// against the backend (passive checks) when the backend is to blame.
    /// `replayable`: the request can be sent again as it was.
    pub fn failed(&mut self, pool: &Pool, failure: Failure, replayable: bool) -> Retry {
        let budget = self.count <= pool.cfg.retries;
        let retry = match failure {
            Failure::Connect => {
                self.blame(pool, true);
                if budget {
                    Retry::OtherBackend
                } else {
                    Retry::No
                }
            }
            Failure::Proxy {
                upstream,
                reset,
                reused,
            } => {
                if upstream && !reused {
                    self.blame(pool, false);
                }
                match (upstream && replayable, reused, budget && reset) {
                    (false, _, _) => Retry::No,
                    (true, true, _) => Retry::SameBackend,
                    (true, false, true) => Retry::OtherBackend,
                    (true, false, false) => Retry::No,
                }
            }
        };
        self.next = Some(retry);
        retry
    }

    /// The current try.
    pub fn current(&self) -> Option<&Lease> {
        self.current.as_ref()
    }

    fn blame(&self, pool: &Pool, connect: bool) {
        if let Some(lease) = &self.current {
            pool.report_failure(lease, connect);
        }
    }

    /// End the current attempt.
    pub fn end(&mut self) {
        if let Some(a) = self.current.take() {
            self.tried.push(a.backend().addr);
            self.last = Some(a.backend().clone());
        }
    }

    /// The lease of the current try, for a session that keeps it (TCP).
    pub fn finish(mut self) -> Option<Lease> {
        self.current.take()
    }

    /// The backend of the last attempt (after [`end`](Self::end)).
    pub fn last(&self) -> Option<&Arc<BackendState>> {
        self.last.as_ref()
    }
}
