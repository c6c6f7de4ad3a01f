//! Admission: what a client connection or request must pass before it may
//! use a backend, the same for HTTP and TCP listeners.
//!
//! 1. [`connection`]: the `limits.max_client_connections` cap, per accepted
//!    connection;
//! 2. (HTTP only, per request: the checks of the head and the rate limit, in
//!    `proxy::admit`);
//! 3. [`lease`]: a backend with room under `max_conns`, or a place in the
//!    upstream's queue;
//! 4. [`attempt`]: the tries on backends and the retry rule.
//!
//! The counters (`bulb_connections_refused_total`,
//! `bulb_requests_rejected_total{reason="queue_full"|"queue_timeout"}`,
//! `bulb_retries_total`) are counted here, once, whatever the protocol.

pub mod attempt;
pub mod proxy_accept;

use crate::metrics::Metrics;
use crate::pool::queue::{Busy, Rejected};
use crate::pool::{Lease, Pool, Tried};
use crate::state::Shared;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Arc;

/// One open client connection, counted until dropped.
#[derive(Debug)]
pub struct Counted(Arc<AtomicI64>);

impl Counted {
    /// Count one more connection on `open`.
    pub fn new(open: &Arc<AtomicI64>) -> Self {
        open.fetch_add(1, Relaxed);
        Counted(open.clone())
    }

    /// Connections open now, this one included.
    pub fn open(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Count a newly accepted client connection; `None` (counted as refused)
/// when it would pass `max` (`limits.max_client_connections` of the running
/// config, which the caller has loaded): the caller closes it.
pub fn connection(shared: &Shared, max: Option<usize>) -> Option<Counted> {
    let counted = Counted::new(&shared.open_connections);
    if max.is_some_and(|m| counted.open() > m as i64) {
        shared.metrics.connections_refused.fetch_add(1, Relaxed);
        return None;
    }
    Some(counted)
}

/// Why no backend was leased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Nothing usable: 502 after failed tries (`tried_any`), else 503.
    NoBackend {
        /// Some backend was tried before.
        tried_any: bool,
    },
    /// Every usable backend at `max_conns` and the queue full or absent (503).
    QueueFull,
    /// Waited in the queue longer than its timeout (503).
    QueueTimeout,
    /// The client went away while it waited.
    ClientLeft,
}

impl Refused {
    /// Why, in a few words (logs and error explanations).
    pub fn reason(self) -> &'static str {
        match self {
            Refused::NoBackend { tried_any: true } => "every tried backend failed",
            Refused::NoBackend { tried_any: false } => "no usable backend",
            Refused::QueueFull => "every backend at max_conns, queue full",
            Refused::QueueTimeout => "queue timeout",
            Refused::ClientLeft => "client left the queue",
        }
    }
}

/// A backend of `pool` for a request or session hashed by `key`, not among
/// `tried`: at once when one has room, else after waiting in the queue
/// (first in, first out) until `client_gone` completes. `retry`: this is a
/// further try of the same request or session (counted as a retry once a
/// backend is leased).
pub async fn lease(
    metrics: &Metrics,
    pool: &Pool,
    key: &[u8],
    tried: &Tried,
    retry: bool,
    client_gone: impl Future<Output = ()>,
) -> Result<Lease, Refused> {
    let leased = match pool.lease(key, tried) {
        Ok(l) => Ok(l),
        Err(Busy::Unusable) => Err(Refused::NoBackend { tried_any: retry }),
        Err(Busy::Full) => match pool.cfg.queue {
            None => Err(Refused::QueueFull),
            Some(q) => tokio::select! {
                r = pool.wait_lease(key, tried, q) => r.map_err(|r| match r {
                    Rejected::QueueFull => Refused::QueueFull,
                    Rejected::Timeout => Refused::QueueTimeout,
                    Rejected::Unusable => Refused::NoBackend { tried_any: false },
                }),
                _ = client_gone => Err(Refused::ClientLeft),
            },
        },
    };
    match leased {
        Ok(_) if retry => metrics.retries.fetch_add(1, Relaxed),
        Err(Refused::QueueFull) => metrics.queue_full.fetch_add(1, Relaxed),
        Err(Refused::QueueTimeout) => metrics.queue_timeout.fetch_add(1, Relaxed),
        _ => 0,
    };
    leased
}
