//! `allow`/`deny`: a route served only to some client addresses (judged on
//! the address after `trusted_proxies`); deny wins; others get 403.

use crate::config::Access;
use std::net::IpAddr;

impl Access {
    /// Whether `client` may use the route (an unknown address only where
    /// nothing is allowed by list).
    pub fn permits(&self, client: Option<IpAddr>) -> bool {
        let Some(ip) = client else {
            return self.allow.is_empty() && self.deny.is_empty();
        };
        !self.deny.iter().any(|c| c.contains(ip))
            && (self.allow.is_empty() || self.allow.iter().any(|c| c.contains(ip)))
    }
}

/// Whether a route with `access` refuses `client`.
pub fn refuses(access: Option<&Access>, client: Option<IpAddr>) -> bool {
    access.is_some_and(|a| !a.permits(client))
}

#[cfg(test)]
mod tests {
    use crate::config::{Access, Cidr};

    #[test]
    fn deny_wins_over_allow_and_an_empty_allow_admits_all() {
        let n = |s: &str| Cidr::parse(s).expect("cidr");
        let ip = |s: &str| Some(s.parse().expect("ip"));
        let a = Access {
            allow: vec![n("10.0.0.0/8"), n("::1/128")],
            deny: vec![n("10.0.0.13")],
        };
        assert!(a.permits(ip("10.1.2.3")));
        assert!(a.permits(ip("::1")));
        assert!(!a.permits(ip("10.0.0.13")));
        assert!(!a.permits(ip("192.168.0.1")));
        assert!(!a.permits(None));
        let only_deny = Access {
            allow: vec![],
            deny: vec![n("192.168.0.0/16")],
        };
        assert!(only_deny.permits(ip("127.0.0.1")));
        assert!(!only_deny.permits(ip("192.168.3.4")));
    }
}
