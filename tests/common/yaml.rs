//! The one YAML builder of the tests: a listener on `{LISTEN}`, an admin
//! listener on `{ADMIN}`, no access log, and one upstream `web` over the
//! given backends; each test adds what it needs.

use super::backend::Backend;
use std::net::SocketAddr;

/// A bulb config under construction (placeholders are filled by `Bulb`).
#[derive(Clone, Debug)]
pub struct Conf {
    top: String,
    upstream: String,
    backends: Vec<SocketAddr>,
    admin: bool,
    access_log: Option<&'static str>,
}

impl Conf {
    /// Upstream `web` over these backends.
    pub fn web(bs: &[&Backend]) -> Conf {
        Conf::addrs(&bs.iter().map(|b| b.addr).collect::<Vec<_>>())
    }

    /// Upstream `web` over these addresses.
    pub fn addrs(addrs: &[SocketAddr]) -> Conf {
        Conf {
            top: String::new(),
            upstream: String::new(),
            backends: addrs.to_vec(),
            admin: true,
            access_log: Some("off"),
        }
    }

    /// Add top-level YAML (whole lines).
    pub fn top(mut self, yaml: &str) -> Conf {
        self.top.push_str(yaml);
        self
    }

    /// Add keys to upstream `web` (lines indented by four spaces).
    pub fn upstream(mut self, yaml: &str) -> Conf {
        self.upstream.push_str(yaml);
        self
    }

    /// No admin listener.
    pub fn no_admin(mut self) -> Conf {
        self.admin = false;
        self
    }

    /// Leave `access_log` at its default (stdout).
    pub fn default_access_log(mut self) -> Conf {
        self.access_log = None;
        self
    }

    /// The YAML text.
    pub fn yaml(&self) -> String {
        let mut s = String::from("listeners: [{address: \"{LISTEN}\"}]\n");
        if self.admin {
            s.push_str("admin: {address: \"{ADMIN}\"}\n");
        }
        if let Some(a) = self.access_log {
            s.push_str(&format!("access_log: {a}\n"));
        }
        s.push_str(&self.top);
        s.push_str("upstreams:\n  web:\n");
        s.push_str(&self.upstream);
        s.push_str("    backends:\n");
        s.push_str(&backends_yaml(&self.backends));
        s
    }
}

/// `backends:` YAML list items for these addresses.
pub fn backends_yaml(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| format!("      - address: {a}\n"))
        .collect()
}
