//! Where names are asked. Hostnames go to the system's resolver
//! (`getaddrinfo`: `/etc/hosts`, `resolv.conf`) unless `resolvers` names DNS
//! servers; SRV records always go through hickory-resolver, to those servers
//! or to the ones in `resolv.conf`. UDP first, TCP when an answer is
//! truncated. Nothing is cached here: the caller asks again every
//! `discovery_interval`, sooner when a record's TTL says so.

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// One backend an SRV record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// An address of the record's target, with the record's port.
    pub addr: SocketAddr,
    /// The record's weight (at least 1).
    pub weight: u32,
    /// Its priority is not the lowest of the answer.
    pub backup: bool,
    /// The target's name (a TLS backend's default SNI).
    pub host: Arc<str>,
}

/// A resolver for one config's `resolvers`.
pub struct Resolver {
    servers: Vec<SocketAddr>,
    dns: OnceLock<Result<TokioResolver, String>>,
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl Resolver {
    /// Ask `servers`, or the system's resolver when empty.
    pub fn new(servers: &[SocketAddr]) -> Resolver {
        Resolver {
            servers: servers.to_vec(),
            dns: OnceLock::new(),
        }
    }

    /// hickory, built on first use (it needs the running tokio runtime).
    fn dns(&self) -> io::Result<&TokioResolver> {
        let built = self.dns.get_or_init(|| {
            let provider = TokioRuntimeProvider::default();
            let mut builder = if self.servers.is_empty() {
                TokioResolver::builder(provider).map_err(|e| e.to_string())?
            } else {
                let servers = self
                    .servers
                    .iter()
                    .map(|s| {
                        let (mut udp, mut tcp) = (ConnectionConfig::udp(), ConnectionConfig::tcp());
                        udp.port = s.port();
                        tcp.port = s.port();
                        NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                    })
                    .collect();
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(servers),
                    provider,
                )
            };
            let opts = builder.options_mut();
            opts.cache_size = 0;
            opts.timeout = Duration::from_secs(1);
            opts.attempts = 2;
            builder.build().map_err(|e| e.to_string())
        });
        built.as_ref().map_err(err)
    }

    /// Every address of `host`, with `port`; and the shortest TTL, when known.
    pub async fn addrs(
        &self,
        host: &str,
        port: u16,
    ) -> io::Result<(Vec<SocketAddr>, Option<Duration>)> {
        if self.servers.is_empty() {
            let addrs = tokio::net::lookup_host((host, port)).await?.collect();
            return Ok((addrs, None));
        }
        let ips = self.dns()?.lookup_ip(fqdn(host)).await.map_err(err)?;
        let ttl = ips.as_lookup().answers().iter().map(|r| r.ttl).min();
        let addrs = ips.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        Ok((addrs, ttl.map(|t| Duration::from_secs(t.into()))))
    }

    /// The backends `name`'s SRV records list: every address of every
    /// target; and the shortest TTL among the records asked.
    pub async fn srv(&self, name: &str) -> io::Result<(Vec<SrvTarget>, Option<Duration>)> {
        let dns = self.dns()?;
        let answer = dns.srv_lookup(fqdn(name)).await.map_err(err)?;
        let mut ttl = answer.answers().iter().map(|r| r.ttl).min();
        let records: Vec<_> = answer
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let lowest = records.iter().map(|s| s.priority).min();
        let mut out = Vec::new();
        for s in &records {
            let host = s.target.to_utf8();
            let ips = dns.lookup_ip(host.clone()).await.map_err(err)?;
            let t = ips.as_lookup().answers().iter().map(|r| r.ttl).min();
            ttl = match (ttl, t) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let host: Arc<str> = Arc::from(host.trim_end_matches('.'));
            for ip in ips.iter() {
                out.push(SrvTarget {
                    addr: SocketAddr::new(ip, s.port),
                    weight: u32::from(s.weight).clamp(1, 10_000),
                    backup: Some(s.priority) != lowest,
                    host: host.clone(),
                });
            }
        }
        out.sort_by_key(|t| t.addr);
        out.dedup_by_key(|t| t.addr);
        Ok((out, ttl.map(|t| Duration::from_secs(t.into()))))
    }
}
