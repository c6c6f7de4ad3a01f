//! `accept_proxy_protocol`: the first step of admission on a listener
//! behind an L4 tier. Every connection must come from `trusted_proxies` and
//! start with a valid PROXY header (v1 or v2) within [`DEADLINE`];
//! otherwise it is closed and nothing goes upstream. The address the header
//! carries becomes the connection's peer address, so logs,
//! `X-Forwarded-For`, hashing, rate keys, allow/deny and the PROXY header a
//! TCP listener sends onward all see the client.
//!
//! It runs as Pingora's pre-handshake callback (before TLS, where the
//! header is), installed on the services of listeners that accept it.

use crate::proxy_protocol::read::{parse, Parse, V2_MAX};
use crate::state::Shared;
use async_trait::async_trait;
use pingora_core::listeners::PreTlsProcess;
use pingora_core::protocols::l4::socket::SocketAddr as L4Addr;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::GetSocketDigest;
use pingora_core::protocols::SocketDigest;
use pingora_error::{Error, ErrorType, Result};
use std::net::SocketAddr;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How long a connection has to send its whole PROXY header.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The callback.
pub struct AcceptProxy {
    shared: Arc<Shared>,
}

impl AcceptProxy {
    /// A callback reading the running config of `shared`.
    pub fn new(shared: Arc<Shared>) -> Arc<Self> {
        Arc::new(AcceptProxy { shared })
    }
}

fn refuse(why: impl Into<String>) -> Box<Error> {
    Error::explain(ErrorType::HandshakeError, why.into())
}

/// Read the header at the start of `stream`: its source address, if it
/// names one. Bytes read past a v1 header are put back.
async fn read_header(stream: &mut L4Stream) -> Result<Option<SocketAddr>> {
    let mut buf = vec![0u8; 232];
    let mut have = 0;
    loop {
        let want = match parse(&buf[..have]) {
            Parse::Done { len, source } => {
                stream.rewind(&buf[len..have]);
                return Ok(source);
            }
            Parse::Bad(why) => return Err(refuse(why)),
            Parse::Need(n) => n,
        };
        if want > buf.len() {
            buf.resize(want.min(V2_MAX), 0);
        }
        // A v2 header (or what may still become one) is read exactly; a v1
        // line as far as it may go (the rest is put back).
        let sig = &crate::proxy_protocol::V2_SIGNATURE;
        let v2 = if have >= 12 {
            buf[..12] == sig[..]
        } else {
            sig.starts_with(&buf[..have])
        };
        let upto = if v2 {
            want
        } else {
            want.max(107).min(buf.len())
        };
        let n = stream
            .read(&mut buf[have..upto])
            .await
            .map_err(|e| refuse(format!("reading the PROXY header: {e}")))?;
        if n == 0 {
            return Err(refuse("closed before a whole PROXY header"));
        }
        have += n;
    }
}

#[async_trait]
impl PreTlsProcess for AcceptProxy {
    async fn process(&self, stream: &mut L4Stream) -> Result<()> {
        let Some(digest) = stream.get_socket_digest() else {
            return Ok(());
        };
        let inet = |a: Option<&L4Addr>| a.and_then(|a| a.as_inet().copied());
        let (Some(local), peer) = (inet(digest.local_addr()), inet(digest.peer_addr())) else {
            return Ok(());
        };
        // Decided before the wait for the header, so that no runtime guard
        // is held across it (one per waiting connection would keep the config
        // past a reload and slow every other load on the thread).
        let trusted = {
            let rt = self.shared.runtime.load();
            if !rt.listener(local).is_some_and(|l| l.accept_proxy) {
                return Ok(());
            }
            let proxies = &rt.config.trusted_proxies;
            peer.is_some_and(|p| proxies.iter().any(|c| c.contains(p.ip())))
        };
        let metrics = &self.shared.metrics;
        if !trusted {
            metrics.proxy_refused.fetch_add(1, Relaxed);
            return Err(refuse(format!(
                "PROXY header expected from a trusted proxy, not {peer:?}"
            )));
        }
        let source = match tokio::time::timeout(DEADLINE, read_header(stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                metrics.proxy_refused.fetch_add(1, Relaxed);
                return Err(e);
            }
            Err(_) => {
                metrics.proxy_refused.fetch_add(1, Relaxed);
                return Err(refuse("no whole PROXY header within 10 s"));
            }
        };
        if let Some(client) = source {
            let d = SocketDigest::from_raw_fd(stream.as_raw_fd());
            let _ = d.peer_addr.set(Some(L4Addr::Inet(client)));
            let _ = d.local_addr.set(Some(L4Addr::Inet(local)));
            stream.set_socket_digest(d);
        }
        Ok(())
    }
}
