//! The pool's side of `sticky` (see `crate::policy::sticky`): each member's
//! token and the `Set-Cookie` value naming it, made when the membership is
//! (not per request), and a lease on the member a cookie names while it is
//! usable.

use super::backend::{BackendState, Lease};
use super::{Pool, Tried};
use crate::config::{StickySpec, UpstreamSpec};
use http::header::HeaderValue;
use std::net::SocketAddr;
use std::sync::Arc;

/// A member's cookie.
pub(super) struct Named {
    token: String,
    set_cookie: Option<HeaderValue>,
}

/// The token for backend `addr` of upstream `upstream`: 24 hex digits.
pub fn token(upstream: &str, addr: SocketAddr) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, upstream.as_bytes());
    let tag = ring::hmac::sign(&key, addr.to_string().as_bytes());
    crate::random::hex(&tag.as_ref()[..12])
}

/// The `Set-Cookie` value naming `token`.
pub fn set_cookie(spec: &StickySpec, token: &str) -> Option<HeaderValue> {
    let mut v = format!("{}={token}; Path=/", spec.cookie);
    if let Some(age) = spec.max_age {
        v.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if spec.secure {
        v.push_str("; Secure");
    }
    if spec.http_only {
        v.push_str("; HttpOnly");
    }
    HeaderValue::from_str(&v).ok()
}

/// The cookies of `all`, in order; none without `sticky`.
pub(super) fn named(cfg: &UpstreamSpec, all: &[Arc<BackendState>]) -> Vec<Named> {
    let Some(spec) = &cfg.sticky else {
        return Vec::new();
    };
    all.iter()
        .map(|s| {
            let token = token(&cfg.name, s.addr);
            let set_cookie = set_cookie(spec, &token);
            Named { token, set_cookie }
        })
        .collect()
}

impl Pool {
    /// A lease on the member `token` names, when it is usable now (healthy,
    /// active, not full, not already tried); `None` lets the algorithm pick.
    pub fn sticky_lease(&self, token: &[u8], tried: &Tried) -> Option<Lease> {
        let m = self.members();
        let i = m.sticky.iter().position(|n| n.token.as_bytes() == token)?;
        let s = &m.all[i];
        let now = crate::clock::now_ms();
        if !s.available(now) || tried.contains(s.addr) {
            return None;
        }
        Lease::try_new(s.clone())
    }

    /// The `Set-Cookie` value naming the member at `addr` (`None` without
    /// `sticky`).
    pub fn sticky_cookie(&self, addr: SocketAddr) -> Option<HeaderValue> {
        let m = self.members();
        let i = m.all.iter().position(|s| s.addr == addr)?;
        m.sticky.get(i)?.set_cookie.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tokens_are_stable_opaque_and_per_upstream() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let t = token("web", a);
        assert_eq!(t.len(), 24);
        assert_eq!(t, token("web", a));
        assert_ne!(t, token("api", a));
        assert!(!t.contains("127"));
        let spec = StickySpec {
            cookie: "BULB".into(),
            max_age: Some(Duration::from_secs(3600)),
            secure: true,
            http_only: true,
        };
        assert_eq!(
            set_cookie(&spec, &t).unwrap(),
            format!("BULB={t}; Path=/; Max-Age=3600; Secure; HttpOnly").as_str()
        );
    }
}
