//! Capacity protection: backends capped by `max_conns`, and the FIFO queue
//! of an upstream whose usable backends are all full. A waiter wakes when
//! work ends on a capped backend of the pool (no polling), and only the
//! head of the queue tries to take the freed slot, so order is kept.

use super::{BackendState, Lease, Pool, Tried};
use crate::config::QueueSpec;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::Notify;

/// The queue of one upstream (kept across reloads).
#[derive(Default)]
pub struct Capacity {
    /// Notified when work ends on a capped backend.
    pub released: Arc<Notify>,
    /// Held by the head of the queue; tokio's mutex is fair (FIFO).
    turn: tokio::sync::Mutex<()>,
    depth: AtomicUsize,
}

impl Capacity {
    /// Requests waiting now.
    pub fn depth(&self) -> usize {
        self.depth.load(Relaxed)
    }
}

/// Why no backend could be leased at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Nothing usable (or everything tried).
    Unusable,
    /// Usable backends exist, all at `max_conns`.
    Full,
}

/// Why a queued request gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The queue was full.
    QueueFull,
    /// It waited longer than the queue's timeout.
    Timeout,
    /// Nothing is usable any more.
    Unusable,
}

/// Counts one waiter for as long as it waits (also when cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Pool {
    /// A backend for a request hashed by `key` with room under its
    /// `max_conns`, leased (counted in flight) in one step.
    pub fn lease(&self, key: &[u8], tried: &Tried) -> Result<Lease, Busy> {
        // Another thread may take the last slot between pick and lease.
        for _ in 0..4 {
            match self.select(key, tried) {
                Some(b) => {
                    if let Some(l) = Lease::try_new(b) {
                        return Ok(l);
                    }
                }
                None => break,
            }
        }
        let now = crate::clock::now_ms();
        let full = |s: &Arc<BackendState>| {
            s.available(now) && !tried.contains(s.addr) && !s.load.has_room()
        };
        if self.members().all.iter().any(full) {
            Err(Busy::Full)
        } else {
            Err(Busy::Unusable)
        }
    }

    /// Wait in this upstream's queue for a backend with room: first in,
    /// first out, at most `q.size` waiting, at most `q.timeout` each.
    pub async fn wait_lease(
        &self,
        key: &[u8],
        tried: &Tried,
        q: QueueSpec,
    ) -> Result<Lease, Rejected> {
        let cap = &self.capacity;
        if cap.depth.fetch_add(1, Relaxed) >= q.size {
            cap.depth.fetch_sub(1, Relaxed);
            return Err(Rejected::QueueFull);
        }
        let _waiting = Waiting(&cap.depth);
        let wait = async {
            let _turn = cap.turn.lock().await;
            loop {
                let released = cap.released.notified();
                tokio::pin!(released);
                released.as_mut().enable();
                match self.lease(key, tried) {
                    Ok(l) => return Ok(l),
                    Err(Busy::Unusable) => return Err(Rejected::Unusable),
                    Err(Busy::Full) => released.await,
                }
            }
        };
        tokio::time::timeout(q.timeout, wait)
            .await
            .unwrap_or(Err(Rejected::Timeout))
    }
}
