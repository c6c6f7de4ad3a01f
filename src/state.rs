//! Process-wide state and its lifecycle: the handles every part of bulb
//! shares ([`Shared`]: the running config, counters, the access log, the
//! name cache) and the [`Work`] counter that a stopping bulb drains.
//!
//! It sits below the proxy, the connection guard, the control plane and the
//! admin API, which all read it; it imports none of them. A TCP listener
//! counts its sessions on the same [`Work`].

use crate::access_log::AccessLog;
use crate::discovery::DnsCache;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// State shared by every request and by the control plane.
pub struct Shared {
    /// The running config; swapped whole by a reload.
    pub runtime: ArcSwap<Runtime>,
    /// Process-wide counters.
    pub metrics: Metrics,
    /// Access-log sink.
    pub access_log: AccessLog,
    /// Last good name resolutions, kept across reloads.
    pub dns: Arc<DnsCache>,
    /// Work in flight, which a stop waits for.
    pub work: Arc<Work>,
    /// Per-client rate-limit buckets (kept across reloads).
    pub rate: crate::limit::RateLimiter,
    /// Client connections open now, HTTP and TCP listeners together
    /// (`limits.max_client_connections`).
    pub open_connections: Arc<AtomicI64>,
    /// The certificates of the TLS listeners (swapped on reload).
    pub tls: crate::tls::Listeners,
}

impl Shared {
    /// Shared state starting with `runtime`.
    pub fn new(
        runtime: Runtime,
        metrics: Metrics,
        access_log: AccessLog,
        dns: Arc<DnsCache>,
        tls: crate::tls::Listeners,
    ) -> Self {
        Shared {
            runtime: ArcSwap::from_pointee(runtime),
            metrics,
            access_log,
            dns,
            work: Arc::new(Work::default()),
            rate: Default::default(),
            open_connections: Arc::new(AtomicI64::new(0)),
            tls,
        }
    }
}

/// Units of work in flight (requests, new connections waiting for their
/// first request, TCP sessions), and the events a drain waits on: the count
/// reaching zero, and new work starting while it drains.
#[derive(Default)]
pub struct Work {
    active: AtomicI64,
    draining: AtomicBool,
    idle: Notify,
    began: Notify,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Nothing was left in flight.
    Idle,
    /// The limit passed with this much still in flight.
    TimedOut(i64),
}

impl Work {
    /// Count one unit of work until the returned guard is dropped (also
    /// when its task is cancelled).
    pub fn begin(self: &Arc<Self>) -> WorkGuard {
        self.active.fetch_add(1, Relaxed);
        if self.draining.load(Relaxed) {
            self.began.notify_waiters();
        }
        WorkGuard(self.clone())
    }

    /// Units in flight now.
    pub fn active(&self) -> i64 {
        self.active.load(Relaxed)
    }

    /// Wait until nothing is in flight and nothing new has started for
    /// `settle` (a connection the listener accepted just before it closed
    /// is counted only once its task first runs), or until `limit` passes.
    pub async fn drain(&self, settle: Duration, limit: Duration) -> Drained {
        self.draining.store(true, Relaxed);
        let quiet = async {
            loop {
                self.until_idle().await;
                let began = self.began.notified();
                tokio::pin!(began);
                began.as_mut().enable();
                if self.active() > 0 {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(settle) => return,
                    _ = began => {}
                }
            }
        };
        match tokio::time::timeout(limit, quiet).await {
            Ok(()) => Drained::Idle,
            Err(_) => Drained::TimedOut(self.active()),
        }
    }

    async fn until_idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.active() <= 0 {
                return;
            }
            idle.await;
        }
    }
}

/// One unit of [`Work`]; dropping it ends the unit.
pub struct WorkGuard(Arc<Work>);

impl Drop for WorkGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Relaxed) == 1 && self.0.draining.load(Relaxed) {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_the_last_unit_and_a_quiet_settle() {
        let work = Arc::new(Work::default());
        let g = work.begin();
        let w = work.clone();
        let t = tokio::time::Instant::now();
        let drained = tokio::spawn(async move {
            w.drain(Duration::from_millis(50), Duration::from_secs(5))
                .await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Work that starts and ends during the drain keeps it waiting.
        let late = work.begin();
        drop(g);
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(late);
        assert_eq!(drained.await.expect("join"), Drained::Idle);
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(240), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test]
    async fn drain_gives_up_at_the_limit() {
        let work = Arc::new(Work::default());
        let _g = work.begin();
        let r = work
            .drain(Duration::from_millis(10), Duration::from_millis(100))
            .await;
        assert_eq!(r, Drained::TimedOut(1));
    }
}
