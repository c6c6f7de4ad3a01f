//! [`Link`]: what the proxy and the client connection under it tell each
//! other about the current request, through atomics on the connection.

use http::HeaderValue;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

/// Unknown request length (a chunked body, or not told).
const UNKNOWN: u64 = u64::MAX;

/// Shared between a [`super::ClientStream`] and the proxy handling its
/// current request (found with [`super::link`]).
#[derive(Debug)]
pub struct Link {
    head_done: AtomicBool,
    read_cap: AtomicUsize,
    request_len: AtomicU64,
    /// The connection's peer address as header text, made for its first
    /// request and shared (not copied) by the rest.
    peer_text: OnceLock<HeaderValue>,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            head_done: AtomicBool::new(false),
            read_cap: AtomicUsize::new(usize::MAX),
            request_len: AtomicU64::new(UNKNOWN),
            peer_text: OnceLock::new(),
        }
    }
}

impl Link {
    /// A new request starts on the connection.
    pub(super) fn reset(&self) {
        self.head_done.store(false, Relaxed);
        self.read_cap.store(usize::MAX, Relaxed);
        self.request_len.store(UNKNOWN, Relaxed);
    }

    /// The proxy has the complete head: its deadline no longer applies.
    pub fn head_read(&self) {
        self.head_done.store(true, Relaxed);
    }

    /// Whether [`head_read`](Self::head_read) was called for this request.
    pub fn head_done(&self) -> bool {
        self.head_done.load(Relaxed)
    }

    /// Let no read return more than `cap` bytes (at least 1); `usize::MAX`
    /// lifts the cap.
    pub fn set_read_cap(&self, cap: usize) {
        self.read_cap.store(cap.max(1), Relaxed);
    }

    /// The cap in force.
    pub fn read_cap(&self) -> usize {
        self.read_cap.load(Relaxed)
    }

    /// The request is exactly `len` bytes on the wire (head and body);
    /// `None`: not known (chunked).
    pub fn set_request_len(&self, len: Option<u64>) {
        self.request_len.store(len.unwrap_or(UNKNOWN), Relaxed);
    }

    /// What [`set_request_len`](Self::set_request_len) said.
    pub fn request_len(&self) -> Option<u64> {
        Some(self.request_len.load(Relaxed)).filter(|&n| n != UNKNOWN)
    }

    /// The connection's peer address as a header value, `make` called
    /// once per connection (the peer of a connection does not change).
    pub fn peer_text(&self, make: impl FnOnce() -> Option<HeaderValue>) -> Option<HeaderValue> {
        if let Some(v) = self.peer_text.get() {
            return Some(v.clone());
        }
        let v = make()?;
        Some(self.peer_text.get_or_init(|| v).clone())
    }
}
