//! Name resolution for backends given as `hostname:port` or `srv: NAME`:
//! every address a name has (every target and port an SRV name lists)
//! becomes a backend, names are asked again every `discovery_interval`
//! (sooner when a record's TTL is shorter), and a failed lookup keeps the
//! last good answer instead of emptying the pool. [`resolver`] is where
//! names are asked.

pub mod resolver;

use crate::config::BackendSpec;
use crate::pool::{Pool, Target};
use async_trait::async_trait;
use log::{info, warn};
use pingora_core::protocols::l4::socket::SocketAddr as PSocketAddr;
use pingora_error::Result;
use pingora_load_balancing::discovery::ServiceDiscovery;
use pingora_load_balancing::Backend;
use resolver::{Resolver, SrvTarget};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The last good resolution of every `(host, port)` and SRV name, shared
/// across reloads so a new config starts with the addresses the old one
/// knew.
#[derive(Default)]
pub struct DnsCache {
    names: Mutex<HashMap<(String, u16), Vec<SocketAddr>>>,
    srv: Mutex<HashMap<String, Vec<SrvTarget>>>,
}

impl DnsCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, u16), Vec<SocketAddr>>> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The addresses `specs` stand for now: IP entries as they are, names as
    /// last resolved (none yet when a name never resolved).
    pub fn targets(&self, specs: &[BackendSpec]) -> Vec<Target> {
        let names = self.lock();
        let srv = self.srv.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for s in specs {
            if s.srv {
                let found = srv.get(&s.host).map_or(&[][..], |v| v.as_slice());
                out.extend(found.iter().map(|t| Target {
                    addr: t.addr,
                    weight: t.weight,
                    backup: t.backup,
                    max_conns: s.max_conns,
                    name: Some(t.host.clone()),
                }));
                continue;
            }
            let addrs: &[SocketAddr] = match &s.ip {
                Some(a) => std::slice::from_ref(a),
                None => names
                    .get(&(s.host.clone(), s.port))
                    .map_or(&[], |v| v.as_slice()),
            };
            out.extend(addrs.iter().map(|&addr| Target {
                addr,
                weight: s.weight,
                backup: s.backup,
                max_conns: s.max_conns,
                name: s.ip.is_none().then(|| Arc::from(s.host.as_str())),
            }));
        }
        out
    }

    /// Resolve one name; on success remember the answer (and return its
    /// TTL, when known). On failure the previous answer stays.
    pub async fn resolve(
        &self,
        resolver: &Resolver,
        host: &str,
        port: u16,
    ) -> std::io::Result<Option<Duration>> {
        let (mut addrs, ttl) = resolver.addrs(host, port).await?;
        addrs.sort();
        addrs.dedup();
        if addrs.is_empty() {
            return Err(std::io::Error::other("no addresses"));
        }
        let old = self.lock().insert((host.to_string(), port), addrs.clone());
        if old.as_ref() != Some(&addrs) {
            info!("resolved {host}:{port} to {addrs:?}");
        }
        Ok(ttl)
    }

    /// Ask for SRV `name`; on success remember its targets. On failure the
    /// previous answer stays.
    pub async fn resolve_srv(
        &self,
        resolver: &Resolver,
        name: &str,
    ) -> std::io::Result<Option<Duration>> {
        let (targets, ttl) = resolver.srv(name).await?;
        if targets.is_empty() {
            return Err(std::io::Error::other("no targets"));
        }
        let mut srv = self.srv.lock().unwrap_or_else(|p| p.into_inner());
        let old = srv.insert(name.to_string(), targets.clone());
        if old.as_ref() != Some(&targets) {
            let list: Vec<String> = targets
                .iter()
                .map(|t| {
                    let role = if t.backup { " backup" } else { "" };
                    format!("{} weight {}{role}", t.addr, t.weight)
                })
                .collect();
            info!("SRV {name}: {}", list.join(", "));
        }
        Ok(ttl)
    }
}

/// Pingora [`ServiceDiscovery`] over one upstream's backend entries: IP
/// entries are static, names are looked up on every call.
pub struct DnsDiscovery {
    specs: Vec<BackendSpec>,
    cache: Arc<DnsCache>,
    upstream: String,
    resolver: Resolver,
    /// The shortest TTL of the last round's answers.
    ttl: Mutex<Option<Duration>>,
}

impl DnsDiscovery {
    /// Discovery for the entries of `upstream`, asking `resolvers` (the
    /// system's when empty).
    pub fn new(
        upstream: &str,
        specs: Vec<BackendSpec>,
        cache: Arc<DnsCache>,
        resolvers: &[SocketAddr],
    ) -> Self {
        DnsDiscovery {
            specs,
            cache,
            upstream: upstream.to_string(),
            resolver: Resolver::new(resolvers),
            ttl: Mutex::new(None),
        }
    }

    /// Resolve every name, then list the targets (names that failed keep
    /// their last good addresses).
    pub async fn targets(&self) -> Vec<Target> {
        let mut shortest: Option<Duration> = None;
        let mut failed = false;
        for s in self.specs.iter().filter(|s| s.ip.is_none()) {
            let asked = if s.srv {
                self.cache.resolve_srv(&self.resolver, &s.host).await
            } else {
                self.cache.resolve(&self.resolver, &s.host, s.port).await
            };
            match asked {
                Ok(Some(t)) => shortest = Some(shortest.map_or(t, |s| s.min(t))),
                Ok(None) => {}
                Err(e) => {
                    failed = true;
                    let what = if s.srv {
                        format!("SRV {}", s.host)
                    } else {
                        format!("{}:{}", s.host, s.port)
                    };
                    warn!(
                        "upstream {}: cannot resolve {what} ({e}); keeping its last known addresses and retrying",
                        self.upstream
                    );
                }
            }
        }
        let mut ttl = self.ttl.lock().unwrap_or_else(|p| p.into_inner());
        // A failed name is asked again at the pace its last answer set.
        *ttl = match (failed, *ttl, shortest) {
            (true, Some(a), Some(b)) => Some(a.min(b)),
            (true, a, b) => a.or(b),
            (false, _, b) => b,
        };
        drop(ttl);
        self.cache.targets(&self.specs)
    }

    /// When to ask again: after `interval`, or the last answers' shortest
    /// TTL when that is shorter (at least a second).
    pub fn next_round(&self, interval: Duration) -> Duration {
        let ttl = *self.ttl.lock().unwrap_or_else(|p| p.into_inner());
        ttl.map_or(interval, |t| t.max(Duration::from_secs(1)).min(interval))
    }
}

#[async_trait]
impl ServiceDiscovery for DnsDiscovery {
    async fn discover(&self) -> Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let mut set = BTreeSet::new();
        for t in self.targets().await {
            let mut b = Backend {
                addr: PSocketAddr::Inet(t.addr),
                weight: t.weight as usize,
                ext: Default::default(),
            };
            b.ext.insert(t);
            set.insert(b);
        }
        Ok((set, HashMap::new()))
    }
}

/// Run discovery for `pool` until it is retired: resolve now, then every
/// `discovery_interval`.
pub async fn run(pool: Arc<Pool>, discovery: DnsDiscovery) {
    let rounds = async {
        loop {
            refresh(&pool, &discovery).await;
            tokio::time::sleep(discovery.next_round(pool.cfg.discovery_interval)).await;
        }
    };
    tokio::select! {
        _ = pool.retired() => {}
        _ = rounds => {}
    }
}

/// One discovery round for `pool`.
pub async fn refresh(pool: &Pool, discovery: &DnsDiscovery) {
    match discovery.discover().await {
        Ok((set, _)) => {
            let targets: Vec<Target> = set
                .iter()
                .filter_map(|b| b.ext.get::<Target>().cloned())
                .collect();
            pool.update(&targets);
        }
        Err(e) => warn!("upstream {}: discovery failed: {e}", pool.cfg.name),
    }
}
