//! The one YAML builder of the tests: a listener on `{LISTEN}`, an admin
//! listener on `{ADMIN}`, no access log, and one upstream (`web` unless
//! named) over the given backends; each test adds what it needs. Tests of
//! the file format itself (`bulb -t`, positions of errors) write the file.

use super::backend::Backend;
use std::net::SocketAddr;

/// A bulb config under construction (placeholders are filled by `Bulb`).
#[derive(Clone, Debug)]
pub struct Conf {
    top: String,
    listener: String,
    name: String,
    upstream: String,
    /// Address text and extra flow keys of each backend.
    backends: Vec<(String, String)>,
    /// The whole `upstreams:` body instead of the one upstream.
    upstreams: Option<String>,
    admin: bool,
    access_log: Option<String>,
}

impl Conf {
    /// Upstream `web` over these backends.
    pub fn web(bs: &[&Backend]) -> Conf {
        Conf::addrs(&bs.iter().map(|b| b.addr).collect::<Vec<_>>())
    }

    /// Upstream `web` over these addresses.
    pub fn addrs(addrs: &[SocketAddr]) -> Conf {
        addrs.iter().fold(Conf::empty(), |c, a| c.backend(a, ""))
    }

    /// Upstream `web` without backends yet.
    pub fn empty() -> Conf {
        Conf {
            top: String::new(),
            listener: String::new(),
            name: "web".into(),
            upstream: String::new(),
            backends: Vec::new(),
            upstreams: None,
            admin: true,
            access_log: Some("off".into()),
        }
    }

    /// One more backend: `address` (an address or `host:port`) with extra
    /// keys in flow style (`"weight: 3"`, `"backup: true"`; may be empty).
    pub fn backend(mut self, address: impl std::fmt::Display, keys: &str) -> Conf {
        self.backends.push((address.to_string(), keys.to_string()));
        self
    }

    /// Name the upstream (default `web`).
    pub fn named(mut self, name: &str) -> Conf {
        self.name = name.into();
        self
    }

    /// Add top-level YAML (whole lines).
    pub fn top(mut self, yaml: &str) -> Conf {
        self.top.push_str(yaml);
        self
    }

    /// Add keys to the `{LISTEN}` listener (lines indented by four spaces).
    pub fn listener(mut self, yaml: &str) -> Conf {
        self.listener.push_str(yaml);
        self
    }

    /// Add keys to the upstream (lines indented by four spaces).
    pub fn upstream(mut self, yaml: &str) -> Conf {
        self.upstream.push_str(yaml);
        self
    }

    /// Several upstreams: the whole body of `upstreams:` (lines indented by
    /// two spaces), instead of the one upstream.
    pub fn upstreams(mut self, yaml: &str) -> Conf {
        self.upstreams = Some(yaml.into());
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

    /// Write the access log to `to` (a path, may use `{DIR}`).
    pub fn access_log(mut self, to: &str) -> Conf {
        self.access_log = Some(format!("\"{to}\""));
        self
    }

    /// The YAML text.
    pub fn yaml(&self) -> String {
        let mut s = if self.listener.is_empty() {
            String::from("listeners: [{address: \"{LISTEN}\"}]\n")
        } else {
            format!("listeners:\n  - address: \"{{LISTEN}}\"\n{}", self.listener)
        };
        if self.admin {
            s.push_str("admin: {address: \"{ADMIN}\"}\n");
        }
        if let Some(a) = &self.access_log {
            s.push_str(&format!("access_log: {a}\n"));
        }
        s.push_str(&self.top);
        s.push_str("upstreams:\n");
        if let Some(u) = &self.upstreams {
            s.push_str(u);
            return s;
        }
        s.push_str(&format!("  {}:\n", self.name));
        s.push_str(&self.upstream);
        s.push_str("    backends:\n");
        for (a, keys) in &self.backends {
            if keys.is_empty() {
                s.push_str(&format!("      - address: \"{a}\"\n"));
            } else {
                s.push_str(&format!("      - {{address: \"{a}\", {keys}}}\n"));
            }
        }
        s
    }
}
