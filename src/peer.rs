//! The Pingora peer for a backend: address, timeouts, TLS and HTTP version,
//! built the same way for proxied requests and for health probes.

use crate::config::{UpstreamProtocol, UpstreamSpec};
use crate::pool::BackendState;
use pingora_core::upstreams::peer::HttpPeer;
use std::time::Duration;

/// How long an idle upstream connection stays in the keep-alive pool.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The peer for backend `b` of the upstream `cfg`.
pub fn peer_for(b: &BackendState, cfg: &UpstreamSpec) -> HttpPeer {
    let t = &cfg.transport;
    let mut peer = match &t.tls {
        None => HttpPeer::new(b.addr, false, String::new()),
        Some(tls) => {
            // Never empty: Pingora turns verification off for an empty SNI
            // (and rustls cannot connect with one). Validation made sure a
            // verifying upstream names every backend; an unverified IP
            // backend is addressed by its IP (rustls then sends no SNI).
            let sni = match (&tls.sni, b.role.name()) {
                (Some(s), _) => s.clone(),
                (None, Some(n)) => n.to_string(),
                (None, None) => b.addr.ip().to_string(),
            };
            let mut p = HttpPeer::new(b.addr, true, sni);
            p.options.verify_cert = tls.verify;
            p.options.verify_hostname = tls.verify;
            p.options.ca = tls.ca.clone();
            p.client_cert_key = tls.client.clone();
            p.group_key = tls.pool_key;
            p
        }
    };
    match t.protocol {
        UpstreamProtocol::Http1 => {}
        UpstreamProtocol::H2 => peer.options.set_http_version(2, 1),
        UpstreamProtocol::H2c => peer.options.set_http_version(2, 2),
    }
    peer.options.max_h2_streams = t.max_h2_streams;
    peer.options.connection_timeout = Some(cfg.connect_timeout);
    peer.options.read_timeout = Some(cfg.read_timeout);
    peer.options.write_timeout = Some(cfg.write_timeout);
    peer.options.idle_timeout = Some(UPSTREAM_IDLE_TIMEOUT);
    peer
}
