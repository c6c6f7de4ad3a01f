//! Counters kept outside any single config generation: reload results, the
//! request-duration histograms per upstream, and requests no route took.
//! Per-backend counters live on each backend's state in the pool.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the duration histogram buckets, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A lock-free request-duration histogram.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Record one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }

    /// Cumulative bucket counts, total count, and sum in seconds.
    pub fn snapshot(&self) -> (Vec<u64>, u64, f64) {
        let mut acc = 0;
        let cum = self
            .counts
            .iter()
            .map(|c| {
                acc += c.load(Relaxed);
                acc
            })
            .collect();
        (
            cum,
            self.count.load(Relaxed),
            self.sum_micros.load(Relaxed) as f64 / 1e6,
        )
    }
}

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    /// ACME orders that ended with a certificate.
    pub acme_orders_ok: AtomicU64,
    /// ACME orders that failed.
    pub acme_orders_err: AtomicU64,
    /// Successful reloads.
    pub reloads_ok: AtomicU64,
    /// Rejected reloads.
    pub reloads_err: AtomicU64,
    /// Requests answered 404 because no route matched.
    pub unrouted: AtomicU64,
    /// Retries made (a further backend tried for a request).
    pub retries: AtomicU64,
    /// Client connections closed at once because `max_client_connections` was reached.
    pub connections_refused: AtomicU64,
    /// Connections closed for a missing, malformed, late or untrusted PROXY header.
    pub proxy_refused: AtomicU64,
    /// Requests rejected as malformed before reaching any backend.
    pub rejected: AtomicU64,
    /// Requests refused by the rate limit (429).
    pub rate_limited: AtomicU64,
    /// Rate checks the shared store did not answer in time (the local bucket decided).
    pub rate_store_errors: AtomicU64,
    /// Trace spans dropped: the export queue was full, or the collector failed.
    pub trace_dropped: std::sync::Arc<AtomicU64>,
    /// Requests refused because the queue was full or absent (503).
    pub queue_full: AtomicU64,
    /// Requests that waited longer than the queue timeout (503).
    pub queue_timeout: AtomicU64,
    histograms: Mutex<HashMap<String, Arc<Histogram>>>,
}

impl Metrics {
    /// The histogram of upstream `name`, created on first use and kept
    /// across reloads.
    pub fn histogram(&self, name: &str) -> Arc<Histogram> {
        let mut h = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        h.entry(name.to_string()).or_default().clone()
    }
}
