//! Active health checks: TCP connect (Pingora's), HTTP GET and gRPC
//! `grpc.health.v1.Health/Check` (over the same peer as proxied requests:
//! TLS, HTTP/2), run on every backend of a pool each `interval`, with our
//! own up/down thresholds kept on the backend's state so they survive
//! reloads.

mod grpc;

use crate::config::{HealthCheckSpec, ProbeKind};
use crate::pool::{BackendState, Pool};
use futures::future::join_all;
use log::{info, warn};
use pingora_core::connectors::http::Connector;
use pingora_core::protocols::l4::socket::SocketAddr as PSocketAddr;
use pingora_http::RequestHeader;
use pingora_load_balancing::health_check::{HealthCheck, TcpHealthCheck};
use pingora_load_balancing::Backend;
use std::sync::{Arc, OnceLock};

/// The `User-Agent` of HTTP and gRPC probes.
const USER_AGENT: &str = "bulb-health-check";

/// A configured probe.
pub struct Prober {
    cfg: HealthCheckSpec,
    tcp: TcpHealthCheck,
    /// The HTTP probe's request (kind http).
    http_req: Option<RequestHeader>,
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Connect, TLS, protocol or I/O failure.
    #[error("{0}")]
    Failed(Box<pingora_error::Error>),
    /// The backend did not finish answering in time.
    #[error("timed out after {0:?}")]
    TimedOut(std::time::Duration),
    /// An HTTP status not among those expected.
    #[error("status {0}")]
    Status(u16),
    /// The gRPC health service did not say SERVING.
    #[error("gRPC health: {0}")]
    Grpc(#[from] grpc::GrpcError),
}

impl From<Box<pingora_error::Error>> for ProbeError {
    fn from(e: Box<pingora_error::Error>) -> Self {
        ProbeError::Failed(e)
    }
}

/// The connector probes use: their own, so that a probe never takes or
/// leaves a connection in the proxy's keep-alive pool.
fn connector() -> &'static Connector {
    static CONNECTOR: OnceLock<Connector> = OnceLock::new();
    CONNECTOR.get_or_init(|| Connector::new(None))
}

impl Prober {
    /// Build the probe for `cfg`.
    pub fn new(cfg: &HealthCheckSpec) -> Self {
        let mut tcp = TcpHealthCheck::new();
        tcp.peer_template.options.connection_timeout = Some(cfg.timeout);
        let http_req = match &cfg.kind {
            ProbeKind::Http { path, host, .. } => {
                // The path and host were validated; fall back to `GET /` if not.
                let mut req = RequestHeader::build("GET", path.as_bytes(), None)
                    .or_else(|_| RequestHeader::build("GET", b"/", None))
                    .ok();
                if let Some(r) = req.as_mut() {
                    let _ = r.insert_header("Host", host.as_str());
                    let _ = r.insert_header("User-Agent", USER_AGENT);
                }
                req
            }
            _ => None,
        };
        Prober {
            cfg: cfg.clone(),
            tcp: *tcp,
            http_req,
        }
    }

    /// Probe one backend of `pool`, bounded by the configured timeout.
    pub async fn probe(&self, pool: &Pool, s: &BackendState) -> Result<(), ProbeError> {
        // The probe's own timeouts cover connect and each read; this also
        // covers a backend that trickles its answer.
        let limit = self.cfg.timeout * 2;
        match tokio::time::timeout(limit, self.run(pool, s)).await {
            Ok(r) => r,
            Err(_) => Err(ProbeError::TimedOut(limit)),
        }
    }

    async fn run(&self, pool: &Pool, s: &BackendState) -> Result<(), ProbeError> {
        let peer = || {
            // Like a proxied request (TLS, HTTP version), with the probe's
            // timeouts and a connection of its own.
            let mut p = crate::peer::peer_for(s, &pool.cfg);
            p.options.connection_timeout = Some(self.cfg.timeout);
            p.options.read_timeout = Some(self.cfg.timeout);
            p.options.write_timeout = Some(self.cfg.timeout);
            p.options.max_h2_streams = 1;
            p
        };
        match &self.cfg.kind {
            ProbeKind::Tcp => {
                let target = Backend {
                    addr: PSocketAddr::Inet(s.addr),
                    weight: 1,
                    ext: Default::default(),
                };
                Ok(self.tcp.check(&target).await?)
            }
            ProbeKind::Http { expect_status, .. } => {
                let Some(req) = &self.http_req else {
                    return Ok(());
                };
                let (mut session, _) = connector().get_http_session(&peer()).await?;
                session.write_request_header(Box::new(req.clone())).await?;
                session.finish_request_body().await?;
                session.read_response_header().await?;
                let code = session.response_header().map_or(0, |r| r.status.as_u16());
                if expect_status.contains(&code) {
                    Ok(())
                } else {
                    Err(ProbeError::Status(code))
                }
            }
            ProbeKind::Grpc { service } => grpc::check(connector(), &peer(), service).await,
        }
    }

    /// Probe every backend of `pool` concurrently; with `only_new`, just
    /// those never probed (used before a reload swaps a pool in).
    pub async fn probe_pool(&self, pool: &Pool, only_new: bool) {
        let members = pool.members().clone();
        let jobs = members
            .all
            .iter()
            .filter(|s| !only_new || !s.health.probed())
            .map(|s| async move {
                let r = self.probe(pool, s).await;
                let flip = s.health.record_probe(
                    r.is_ok(),
                    self.cfg.healthy_after,
                    self.cfg.unhealthy_after,
                );
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
