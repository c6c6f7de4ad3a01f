//! The pool's side of `sticky` (see `crate::policy::sticky`): each member's
//! token, and a lease on the member a cookie names while it is usable.

use super::backend::{BackendState, Lease};
use super::{Pool, Tried};
use crate::config::UpstreamSpec;
use std::net::SocketAddr;
use std::sync::Arc;

/// The token for backend `addr` of upstream `upstream`: 24 hex digits.
pub fn token(upstream: &str, addr: SocketAddr) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, upstream.as_bytes());
    let tag = ring::hmac::sign(&key, addr.to_string().as_bytes());
    tag.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The tokens of `all`, in order; none without `sticky`.
pub(super) fn tokens(cfg: &UpstreamSpec, all: &[Arc<BackendState>]) -> Vec<String> {
    if cfg.sticky.is_none() {
        return Vec::new();
    }
    all.iter().map(|s| token(&cfg.name, s.addr)).collect()
}

impl Pool {
    /// A lease on the member `token` names, when it is usable now (healthy,
    /// active, not full, not already tried); `None` lets the algorithm pick.
    pub fn sticky_lease(&self, token: &[u8], tried: &Tried) -> Option<Lease> {
        let m = self.members();
        let i = m.tokens.iter().position(|t| t.as_bytes() == token)?;
        let s = &m.all[i];
        let now = crate::clock::now_ms();
        if !s.available(now) || tried.contains(s.addr) {
            return None;
        }
        Lease::try_new(s.clone())
    }

    /// The token of the member at `addr` (`None` without `sticky`).
    pub fn sticky_token(&self, addr: std::net::SocketAddr) -> Option<String> {
        let m = self.members();
        let i = m.all.iter().position(|s| s.addr == addr)?;
        m.tokens.get(i).cloned()
    }
}
