//! The running configuration: routes and pools built from a validated
//! [`Config`]. A reload builds a new [`Runtime`] and swaps it in; requests
//! hold the one they started with until they finish.

use crate::config::{Config, HostMatch, ListenerSpec, RouteSpec, TcpSpec};
use crate::discovery::DnsCache;
use crate::limit::store::RateStore;
use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::trace::Tracer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Everything a request needs, for one config generation.
pub struct Runtime {
    /// Grows by one on every successful reload.
    pub generation: u64,
    /// The config this runtime was built from.
    pub config: Config,
    /// Pools, in the order of `config.upstreams`.
    pub pools: Vec<Arc<Pool>>,
    /// When a listener has `redirect_https`: the port of the first TLS
    /// listener, which its redirects name (443 when there is none).
    pub https_port: Option<u16>,
    /// Some TLS listener has `acme`: plain listeners answer HTTP-01 challenges.
    pub acme: bool,
    /// `limits.rate.store`: the shared buckets (the same connection across
    /// reloads that keep its URL).
    pub rate_store: Option<Arc<RateStore>>,
    /// `tracing`: the tracer (the same one across reloads that keep the section).
    pub tracer: Option<Arc<Tracer>>,
}

impl Runtime {
    /// Build the runtime for `config`. Pools with the same name as one in
    /// `previous` take over its backends' state (health, counters).
    pub fn build(
        config: Config,
        previous: Option<&Runtime>,
        dns: &DnsCache,
        metrics: &Metrics,
    ) -> Runtime {
        let old: HashMap<&str, &Arc<Pool>> = previous
            .map(|r| r.pools.iter().map(|p| (p.cfg.name.as_str(), p)).collect())
            .unwrap_or_default();
        let pools = config
            .upstreams
            .iter()
            .map(|u| {
                let prev = old.get(u.name.as_str()).map(|p| p.as_ref());
                let targets = dns.targets(&u.backends);
                Arc::new(Pool::new(
                    u.clone(),
                    &targets,
                    prev,
                    metrics.histogram(&u.name),
                ))
            })
            .collect();
        let url = config.limits.rate.as_ref().and_then(|r| r.store.as_deref());
        let rate_store = url.and_then(|url| {
            let kept = previous.and_then(|p| p.rate_store.as_ref());
            match kept.filter(|s| s.url() == url) {
                Some(s) => Some(s.clone()),
                None => RateStore::new(url).map(Arc::new),
            }
        });
        let tracer = config.tracing.as_ref().map(|spec| {
            let kept = previous.and_then(|p| p.tracer.as_ref());
            match kept.filter(|t| t.spec == *spec) {
                Some(t) => t.clone(),
                None => Arc::new(Tracer::new(spec.clone())),
            }
        });
        Runtime {
            tracer,
            rate_store,
            generation: previous.map_or(1, |p| p.generation + 1),
            https_port: config.listeners.iter().any(|l| l.redirect_https).then(|| {
                let tls = config.listeners.iter().find(|l| l.tls.is_some());
                tls.map_or(443, |l| l.address.port())
            }),
            acme: config
                .listeners
                .iter()
                .any(|l| l.tls.as_ref().is_some_and(|t| t.acme.is_some())),
            config,
            pools,
        }
    }

    /// The pool for a request to `host` (port already stripped or not) and
    /// `path`; `None` when no route matches or the route has no one upstream.
    pub fn route(&self, host: &[u8], path: &[u8]) -> Option<&Arc<Pool>> {
        match self.matching_route(host, path)?.target {
            crate::config::RouteTarget::Upstream(u) => self.pools.get(u),
            _ => None,
        }
    }

    /// The first route matching `host` (as sent, maybe with a port) and `path`.
    pub fn matching_route(&self, host: &[u8], path: &[u8]) -> Option<&RouteSpec> {
        let host = strip_port(host);
        self.config
            .routes
            .iter()
            .find(|r| route_matches(r, host, path))
    }

    /// The pool named `name`.
    pub fn pool(&self, name: &str) -> Option<&Arc<Pool>> {
        self.pools.iter().find(|p| p.cfg.name == name)
    }

    /// The listener a connection arrived on (`local`, its local address; a
    /// listener on `0.0.0.0` or `::` matches by port).
    pub fn listener(&self, local: SocketAddr) -> Option<&ListenerSpec> {
        let ls = &self.config.listeners;
        ls.iter().find(|l| l.address == local).or_else(|| {
            ls.iter()
                .find(|l| l.address.ip().is_unspecified() && l.address.port() == local.port())
        })
    }

    /// The TCP listener a connection arrived on (`local`, its local
    /// address; a listener on `0.0.0.0` or `::` matches by port), with the
    /// pool it forwards to.
    pub fn tcp_listener(&self, local: SocketAddr) -> Option<(&TcpSpec, &Arc<Pool>)> {
        let tcp = self.listener(local)?.tcp.as_ref()?;
        Some((tcp, self.pool(&tcp.upstream)?))
    }

    /// Stop the background work of every pool (after a reload replaced them).
    pub fn retire(&self) {
        for p in &self.pools {
            p.retire();
        }
    }
}

fn route_matches(r: &RouteSpec, host: &[u8], path: &[u8]) -> bool {
    let host_ok = match &r.host {
        None => true,
        Some(HostMatch::Exact(h)) => host.eq_ignore_ascii_case(h.as_bytes()),
        Some(HostMatch::Suffix(s)) => {
            host.len() > s.len() && host[host.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
        }
    };
    host_ok
        && r.path_prefix
            .as_ref()
            .is_none_or(|p| path.starts_with(p.as_bytes()))
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`; a trailing dot
/// (`example.com.`) is dropped too.
pub fn strip_port(host: &[u8]) -> &[u8] {
    let h = if host.first() == Some(&b'[') {
        match host.iter().position(|&c| c == b']') {
            Some(i) => &host[..=i],
            None => host,
        }
    } else {
        match host.iter().rposition(|&c| c == b':') {
            Some(i) => &host[..i],
            None => host,
        }
    };
    h.strip_suffix(b".").unwrap_or(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn rt(yaml: &str) -> Runtime {
        let cfg = parse(yaml, "t.yaml").expect("valid");
        Runtime::build(cfg, None, &DnsCache::default(), &Metrics::default())
    }

    #[test]
    fn routes_by_host_and_path_first_match_wins() {
        let r = rt("listeners: [{address: 127.0.0.1:1}]\n\
            routes:\n  - {host: api.example.com, path_prefix: /v1, upstream: a}\n\
            \x20 - {host: '*.example.com', upstream: b}\n  - {path_prefix: /static, upstream: c}\n\
            upstreams:\n  a: {backends: [{address: 127.0.0.1:1}]}\n\
            \x20 b: {backends: [{address: 127.0.0.1:2}]}\n  c: {backends: [{address: 127.0.0.1:3}]}\n");
        let name = |h: &str, p: &str| {
            r.route(h.as_bytes(), p.as_bytes())
                .map(|p| p.cfg.name.clone())
        };
        assert_eq!(name("API.example.com:8080", "/v1/x").as_deref(), Some("a"));
        assert_eq!(name("api.example.com", "/v2").as_deref(), Some("b"));
        assert_eq!(name("www.example.com", "/").as_deref(), Some("b"));
        assert_eq!(name("example.com", "/static/a").as_deref(), Some("c"));
        assert_eq!(name("example.com", "/"), None);
    }

    #[test]
    fn strip_port_forms() {
        assert_eq!(strip_port(b"a.com:80"), b"a.com");
        assert_eq!(strip_port(b"a.com"), b"a.com");
        assert_eq!(strip_port(b"[::1]:80"), b"[::1]");
        assert_eq!(strip_port(b"a.com."), b"a.com");
    }
}
