//! Layer 4: TCP listeners that forward every connection, byte for byte, to a
//! backend of one upstream, with the same pools, checks, retries and
//! lifecycle as HTTP. [`TcpProxy`] is a Pingora `ServerApp` on Pingora's
//! listeners (so they join the socket hand-over); backends are reached with
//! Pingora's transport connector; [`relay`] moves the bytes.

pub mod relay;

use crate::access_log::SessionEntry;
use crate::admission::attempt::{Attempts, Failure, Retry};
use crate::admission::{self, Refused};
use crate::config::{Algorithm, TcpSpec};
use crate::pool::{BackendState, Lease, Pool, SessionEnd};
use crate::state::Shared;
use crate::trace::span::RequestTrace;
use crate::trace::Tracer;
use async_trait::async_trait;
use log::{debug, warn};
use pingora_core::apps::ServerApp;
use pingora_core::connectors::TransportConnector;
use pingora_core::protocols::l4::socket::SocketAddr as PSocketAddr;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use pingora_core::upstreams::peer::{BasicPeer, PeerOptions};
use relay::{End, Meter};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpStream;

/// bulb's TCP `ServerApp`: one instance serves every TCP listener and finds
/// the listener of a connection by its local address.
pub struct TcpProxy {
    shared: Arc<Shared>,
    connector: TransportConnector,
}

impl TcpProxy {
    /// A TCP proxy over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        TcpProxy {
            shared,
            connector: TransportConnector::new(None),
        }
    }

    /// Connect to a backend of `pool` for a client at `ip`, through the
    /// same admission as HTTP (cap, queue, retry rule): another backend
    /// after a connect failure, up to `retries`.
    async fn connect(
        &self,
        pool: &Pool,
        ip: Option<IpAddr>,
    ) -> Result<(Lease, TcpStream), Refused> {
        let mut buf = [0u8; 16];
        let key: &[u8] = if pool.cfg.algorithm == Algorithm::ConsistentHash {
            crate::client::ip_key(ip, &mut buf)
        } else {
            b""
        };
        let mut attempts = Attempts::default();
        loop {
            let retry = attempts.count() > 0;
            let metrics = &self.shared.metrics;
            // A client that leaves while queued is noticed once a backend is
            // leased: the relay then sees its close.
            let gone = std::future::pending();
            let lease = admission::lease(metrics, pool, key, attempts.tried(), retry, gone).await?;
            let backend = attempts.start(lease).clone();
            match self.open(&backend, pool).await {
                Ok(s) => {
                    let lease = attempts
                        .finish()
                        .ok_or(Refused::NoBackend { tried_any: true })?;
                    // least_time on a TCP listener measures connect time.
                    backend.record_time(lease.elapsed(), pool.cfg.least_time.decay);
                    return Ok((lease, s));
                }
                Err(e) => {
                    let (upstream, addr) = (&pool.cfg.name, &backend.addr_str);
                    warn!("upstream {upstream}: cannot connect to {addr}: {e}");
                    if attempts.failed(pool, Failure::Connect, true) == Retry::No {
                        return Err(Refused::NoBackend { tried_any: true });
                    }
                    attempts.end();
                }
            }
        }
    }

    async fn open(&self, b: &BackendState, pool: &Pool) -> std::io::Result<TcpStream> {
        let mut options = PeerOptions::new();
        options.connection_timeout = Some(pool.cfg.connect_timeout);
        let peer = BasicPeer {
            _address: PSocketAddr::Inet(b.addr),
            sni: String::new(),
            options,
        };
        let stream = self
            .connector
            .new_stream(&peer)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        own(stream).map(|(s, _)| s)
    }
}

/// The tokio socket under Pingora's TCP `stream`, so the relay can wait on
/// it and `splice` from it (taken out of the stream, which holds nothing
/// buffered yet: no duplicate descriptor, no second registration).
fn own(stream: Stream) -> std::io::Result<(TcpStream, Vec<u8>)> {
    let l4 = stream
        .into_any()
        .downcast::<L4Stream>()
        .map_err(|_| std::io::Error::other("not a plain TCP stream"))?;
    // Pingora's listener and connector already set TCP_NODELAY: small
    // writes (a request, a reply) go out at once, as with nginx's stream module.
    (*l4)
        .into_tcp()
        .map_err(|_| std::io::Error::other("bytes are buffered in the TCP stream"))
}

/// Everything about one session the access log and counters need.
struct Session<'a> {
    listener: SocketAddr,
    client: Option<SocketAddr>,
    start: Instant,
    pool: &'a Pool,
    /// With `tracing`: the session's trace and the tracer it goes to.
    trace: Option<(&'a Tracer, RequestTrace)>,
}

impl Session<'_> {
    fn finish(
        &self,
        shared: &Shared,
        backend: Option<&BackendState>,
        end: SessionEnd,
        meter: &Meter,
    ) {
        let (up, down) = (meter.up.load(Relaxed), meter.down.load(Relaxed));
        backend
            .map_or(&self.pool.unattributed, |b| &b.counts)
            .count_session(end, up, down);
        if let Some((tracer, t)) = self.trace.as_ref().filter(|(_, t)| t.sampled) {
            let span = t.session_span(self.client, backend.map(|b| b.addr), end.name(), (up, down));
            tracer.send(vec![span], &shared.metrics.trace_dropped);
        }
        if shared.access_log.enabled() {
            shared.access_log.log_session(SessionEntry {
                client: self.client,
                listener: self.listener,
                end: end.name(),
                up,
                down,
                upstream: backend.map(|b| b.addr),
                elapsed: self.start.elapsed(),
            });
        }
    }
}

#[async_trait]
impl ServerApp for TcpProxy {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        _shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // A stop waits for open sessions (up to the graceful timeout).
        let _work = self.shared.work.begin();
        let rt = self.shared.runtime.load_full();
        // Over max_client_connections: closed at once.
        let max = rt.config.limits.max_client_connections;
        let _counted = admission::connection(&self.shared, max)?;
        let start = Instant::now();
        // The peer is the stream's: a PROXY header read on accept
        // (`accept_proxy_protocol`) has put the client's address there.
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet().copied()));
        let (client, early) = match own(stream) {
            Ok(s) => s,
            Err(e) => {
                debug!("tcp: cannot take the client socket: {e}");
                return None;
            }
        };
        let local = client.local_addr().ok()?;
        let Some((spec, pool)) = rt.tcp_listener(local) else {
            warn!("tcp: connection on {local}, which is no tcp listener of the running config");
            return None;
        };
        let tracer = rt.tracer.as_deref();
        let session = Session {
            listener: local,
            client: peer,
            start,
            pool,
            trace: tracer.map(|t| (t, t.begin(None))),
        };
        let meter = Meter::default();
        // Boxed: the connector's future is large and would otherwise stay
        // part of every session's (idle) task for its whole life.
        let connect = Box::pin(self.connect(pool, peer.map(|p| p.ip())));
        let (lease, backend) = match connect.await {
            Ok(c) => c,
            Err(why) => {
                // Nothing usable, reachable or free: close the client at once.
                debug!("tcp {local}: {}", why.reason());
                session.finish(&self.shared, None, SessionEnd::NoBackend, &meter);
                return None;
            }
        };
        let end = serve(spec, &client, &backend, (peer, local), &early, &meter).await;
        session.finish(&self.shared, Some(lease.backend()), end, &meter);
        None
    }
}

/// Send the PROXY header if asked and the client's bytes read before the
/// relay (`early`: those after an accepted PROXY header), then relay until
/// the session ends.
async fn serve(
    spec: &TcpSpec,
    client: &TcpStream,
    backend: &TcpStream,
    (peer, local): (Option<SocketAddr>, SocketAddr),
    early: &[u8],
    meter: &Meter,
) -> SessionEnd {
    if let (Some(v), Some(peer)) = (spec.proxy_protocol, peer) {
        let header = crate::proxy_protocol::write::header(v, peer, local);
        if write_all(backend, &header).await.is_err() {
            return SessionEnd::Reset;
        }
    }
    if !early.is_empty() {
        if write_all(backend, early).await.is_err() {
            return SessionEnd::Reset;
        }
        meter.up.fetch_add(early.len() as u64, Relaxed);
    }
    match relay::relay(client, backend, spec.idle_timeout, meter).await {
        End::Closed => SessionEnd::Closed,
        End::Idle => SessionEnd::IdleTimeout,
        End::Reset => SessionEnd::Reset,
    }
}

async fn write_all(s: &TcpStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        s.writable().await?;
        match s.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
