//! The control plane: a Pingora background service that runs discovery and
//! health checks for the current runtime and reloads the file on SIGHUP.

use crate::config::{self, Config, ConfigError};
use crate::discovery::{self, DnsDiscovery};
use crate::health::{self, Prober};
use crate::pool::Pool;
use crate::runtime::Runtime;
use crate::state::{Drained, Shared};
use async_trait::async_trait;
use log::{error, info, warn};
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_core::services::ServiceReadyNotifier;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// Where the configuration comes from, so a reload can read it again.
#[derive(Clone, Debug)]
pub enum Source {
    /// A YAML file.
    File(String),
    /// The `NODES` environment (reload reopens logs only).
    Nodes,
}

impl Source {
    /// Read and validate the configuration.
    pub fn load(&self) -> Result<Config, Vec<ConfigError>> {
        match self {
            Source::File(p) => config::load_file(p),
            Source::Nodes => {
                let nodes = std::env::var("NODES").unwrap_or_default();
                let listen = std::env::var("LISTEN").ok();
                let admin = std::env::var("ADMIN").ok();
                config::nodes::from_env(&nodes, listen.as_deref(), admin.as_deref())
            }
        }
    }
}

/// The background service.
pub struct Control {
    shared: Arc<Shared>,
    source: Source,
    handoff: crate::handoff::Handoff,
    drain_limit: Duration,
    /// The successor this process handed its sockets to, once it has: the
    /// process is draining, and reloads are the successor's to do.
    successor: std::sync::OnceLock<u32>,
}

/// How long nothing may be in flight before a stopping bulb exits: a
/// connection the listener accepted just before it closed is counted once
/// its task first runs, which this covers.
const DRAIN_SETTLE: Duration = Duration::from_millis(100);

/// How long the access log may take to write its last lines at exit.
const LOG_FLUSH_LIMIT: Duration = Duration::from_secs(1);

/// How long the last trace spans may take to be exported at exit.
const TRACE_FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// After the listeners closed (SIGTERM, or SIGQUIT once the sockets were
/// handed over): exit as soon as no work is in flight, or after `limit`.
/// Pingora alone would wait a fixed grace period and then drop whatever is
/// still running; this makes an idle bulb exit at once and a busy one wait
/// for its requests.
async fn drain_then_exit(shared: &Shared, limit: Duration) -> ! {
    match shared.work.drain(DRAIN_SETTLE, limit).await {
        Drained::Idle => info!("no request in flight, exiting"),
        Drained::TimedOut(left) => {
            warn!("graceful shutdown timeout: {left} request(s) still in flight are cut off")
        }
    }
    if !shared.access_log.flush(LOG_FLUSH_LIMIT) {
        warn!("the access log did not confirm its last lines");
    }
    let tracer = shared.runtime.load().tracer.clone();
    if let Some(t) = tracer {
        if !t.flush(TRACE_FLUSH_LIMIT).await {
            warn!("tracing: the last spans were not exported in time");
        }
    }
    std::process::exit(0);
}

impl Control {
    /// Control over `shared`, reloading from `source`.
    pub fn new(
        shared: Arc<Shared>,
        source: Source,
        handoff: crate::handoff::Handoff,
        drain_limit: Duration,
    ) -> Self {
        Control {
            shared,
            source,
            handoff,
            drain_limit,
            successor: std::sync::OnceLock::new(),
        }
    }

    /// Name resolution for the backends of `p`, sharing the process-wide cache.
    fn discovery_for(&self, p: &Pool, resolvers: &[std::net::SocketAddr]) -> DnsDiscovery {
        let (name, specs) = (&p.cfg.name, p.cfg.backends.clone());
        DnsDiscovery::new(name, specs, self.shared.dns.clone(), resolvers)
    }

    /// Resolve names and probe backends of `rt` once, so that it starts
    /// with what is known to be up.
    async fn warm_up(&self, rt: &Runtime) {
        let jobs = rt.pools.iter().map(|p| async move {
            if p.has_hostnames() {
                let d = self.discovery_for(p, &rt.config.resolvers);
                discovery::refresh(p, &d).await;
            }
            if let Some(h) = &p.cfg.health_check {
                Prober::new(h).probe_pool(p, true).await;
            }
        });
        futures::future::join_all(jobs).await;
    }

    /// Start the discovery and health tasks of every pool of `rt`.
    fn spawn_tasks(&self, rt: &Runtime) {
        for p in &rt.pools {
            if p.has_hostnames() {
                let d = self.discovery_for(p, &rt.config.resolvers);
                tokio::spawn(discovery::run(p.clone(), d));
            }
            if let Some(h) = &p.cfg.health_check {
                tokio::spawn(health::run(p.clone(), Prober::new(h)));
            }
        }
    }

    /// Handle SIGHUP: validate the file, and swap the new runtime in, or
    /// keep the old one serving and say why.
    pub async fn reload(&self) {
        if let Some(pid) = self.successor.get() {
            warn!("SIGHUP ignored: this process has handed its sockets over and is draining; reload the successor (pid {pid})");
            return;
        }
        info!("SIGHUP: reloading configuration from {:?}", self.source);
        let cfg = match self.source.load() {
            Ok(c) => c,
            Err(errors) => {
                for e in &errors {
                    error!("reload rejected: {e}");
                }
                error!(
                    "reload rejected: {} problem(s); the running configuration stays",
                    errors.len()
                );
                self.shared.metrics.reloads_err.fetch_add(1, Relaxed);
                return;
            }
        };
        let old = self.shared.runtime.load_full();
        let fixed = old.config.fixed_at_start_changes(&cfg);
        if !fixed.is_empty() {
            if cfg.server.upgrade_sock != old.config.server.upgrade_sock {
                error!(
                    "reload rejected: `upgrade_sock` cannot change on reload ({:?} -> {:?}: the hand-over to a new process goes through it); restart bulb to change it",
                    old.config.server.upgrade_sock, cfg.server.upgrade_sock
                );
                self.shared.metrics.reloads_err.fetch_add(1, Relaxed);
                return;
            }
            info!(
                "{} changed: handing the sockets over to a new bulb process",
                fixed.join(", ")
            );
            match self.handoff.hand_over().await {
                Ok(pid) => {
                    let _ = self.successor.set(pid);
                    return;
                }
                Err(e) => {
                    error!("reload rejected: the hand-over to a new process failed: {e}");
                    self.shared.metrics.reloads_err.fetch_add(1, Relaxed);
                    return;
                }
            }
        }
        let new = Arc::new(Runtime::build(
            cfg,
            Some(&old),
            &self.shared.dns,
            &self.shared.metrics,
        ));
        self.warm_up(&new).await;
        let (log, format) = (&new.config.access_log, new.config.access_log_format);
        if *log != old.config.access_log || format != old.config.access_log_format {
            self.shared.access_log.retarget(log, format);
        } else {
            self.shared.access_log.reopen();
        }
        self.shared.tls.apply(&new.config);
        self.shared.metrics.reloads_ok.fetch_add(1, Relaxed);
        self.shared.runtime.store(new.clone());
        old.retire();
        self.spawn_tasks(&new);
        crate::acme::spawn(&self.shared);
        info!("reload complete: generation {}", new.generation);
    }
}

#[async_trait]
impl BackgroundService for Control {
    async fn start_with_ready_notifier(
        &self,
        mut shutdown: ShutdownWatch,
        ready: ServiceReadyNotifier,
    ) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!("cannot listen for SIGHUP, reload disabled: {e}");
                None
            }
        };
        let rt = self.shared.runtime.load_full();
        self.warm_up(&rt).await;
        self.spawn_tasks(&rt);
        crate::acme::spawn(&self.shared);
        ready.notify_ready();
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    self.shared.runtime.load().retire();
                    drain_then_exit(&self.shared, self.drain_limit).await;
                }
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => None } } => {
                    self.reload().await;
                }
            }
        }
    }
}
