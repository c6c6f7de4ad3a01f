//! Active health checks: Pingora's TCP and HTTP probes, run on every backend
//! of a pool each `interval`, with our own up/down thresholds kept on the
//! backend's state so they survive reloads.

use crate::config::{HealthCheckSpec, ProbeKind};
use crate::pool::{BackendState, Pool};
use futures::future::join_all;
use log::{info, warn};
use pingora_core::protocols::l4::socket::SocketAddr as PSocketAddr;
use pingora_error::{Error, ErrorType};
use pingora_http::RequestHeader;
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora_load_balancing::Backend;
use std::sync::Arc;

/// A configured probe.
pub struct Prober {
    cfg: HealthCheckSpec,
    check: Box<dyn HealthCheck + Send + Sync>,
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Pingora's check failed (connect, status, protocol).
    #[error("{0}")]
    Failed(Box<pingora_error::Error>),
    /// The backend did not finish answering in time.
    #[error("timed out after {0:?}")]
    TimedOut(std::time::Duration),
}

impl Prober {
    /// Build the Pingora check for `cfg`.
    pub fn new(cfg: &HealthCheckSpec) -> Self {
        let check: Box<dyn HealthCheck + Send + Sync> = match &cfg.kind {
            ProbeKind::Tcp => {
                let mut c = TcpHealthCheck::new();
                c.peer_template.options.connection_timeout = Some(cfg.timeout);
                c
            }
            ProbeKind::Http {
                path,
                host,
                expect_status,
            } => {
                let mut c = HttpHealthCheck::new(host, false);
                c.peer_template.options.connection_timeout = Some(cfg.timeout);
                c.peer_template.options.read_timeout = Some(cfg.timeout);
                c.peer_template.options.write_timeout = Some(cfg.timeout);
                // The path and host were validated; fall back to Pingora's `GET /` if not.
                if let Ok(mut req) = RequestHeader::build("GET", path.as_bytes(), None) {
                    if req.insert_header("Host", host.as_str()).is_ok()
                        && req.insert_header("User-Agent", "bulb-health-check").is_ok()
                    {
                        c.req = req;
                    }
                }
                let expect = expect_status.clone();
                c.validator = Some(Box::new(move |resp| {
                    let code = resp.status.as_u16();
                    if expect.contains(&code) {
                        Ok(())
                    } else {
                        Error::e_explain(
                            ErrorType::CustomCode("unexpected status", code),
                            "health check",
                        )
                    }
                }));
                Box::new(c)
            }
        };
        Prober {
            cfg: cfg.clone(),
            check,
        }
    }

    /// Probe one backend, bounded by the configured timeout.
    pub async fn probe(&self, s: &BackendState) -> Result<(), ProbeError> {
        let target = Backend {
            addr: PSocketAddr::Inet(s.addr),
            weight: 1,
            ext: Default::default(),
        };
        // The probe's own timeouts cover connect and read; this also covers
        // a backend that trickles its answer.
        let limit = self.cfg.timeout * 2;
        match tokio::time::timeout(limit, self.check.check(&target)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ProbeError::Failed(e)),
            Err(_) => Err(ProbeError::TimedOut(limit)),
        }
    }

    /// Probe every backend of `pool` concurrently; with `only_new`, just
    /// those never probed (used before a reload swaps a pool in).
    pub async fn probe_pool(&self, pool: &Pool, only_new: bool) {
        let members = pool.members().clone();
        let jobs = members
            .all
            .iter()
            .filter(|s| !only_new || !s.probed())
            .map(|s| async move {
                let r = self.probe(s).await;
                let flip =
                    s.record_probe(r.is_ok(), self.cfg.healthy_after, self.cfg.unhealthy_after);
                match (flip, r) {
                    (Some(true), _) => {
                        info!("upstream {}: backend {} is up", pool.cfg.name, s.addr_str)
                    }
                    (Some(false), Err(e)) => warn!(
                        "upstream {}: backend {} is down: {e}",
                        pool.cfg.name, s.addr_str
                    ),
                    _ => {}
                }
            });
        join_all(jobs).await;
    }
}

/// Probe `pool` every interval until it is retired.
pub async fn run(pool: Arc<Pool>, prober: Prober) {
    let rounds = async {
        loop {
            prober.probe_pool(&pool, false).await;
            let next = tokio::time::Instant::now() + prober.cfg.interval;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => break,
                    // New backends from discovery are probed at once.
                    _ = pool.changed.notified() => prober.probe_pool(&pool, true).await,
                }
            }
        }
    };
    tokio::select! {
        _ = pool.retired() => {}
        _ = rounds => {}
    }
}
