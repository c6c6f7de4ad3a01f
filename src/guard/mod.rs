//! Client-connection guards that Pingora 0.9 does not offer: a cap on open
//! client connections, and a deadline for receiving a request head (the
//! slow-loris defence; Pingora's own read timeout is per read, so a client
//! that trickles one byte a minute would hold a connection for ever).
//!
//! [`Guarded`] wraps the proxy's `ServerApp`: each new connection is counted
//! and its stream wrapped in a [`ClientStream`], which times reads out when
//! a request head takes longer than `limits.client_header_timeout` from its
//! first byte. The deadline is re-armed for every request on a keep-alive
//! connection; idle time between requests is the keep-alive timeout's.
//!
//! It also drives HTTP/1 one request at a time, so that an idle keep-alive
//! connection waits in a small future of ours rather than in Pingora's
//! per-connection one (about 41 KB per idle client in Pingora's, measured;
//! 4.6 KB in bulb's, which holds no read buffer: see [`ClientStream`]).
//! Pipelined requests (RFC 9112 §9.3) are answered in order: Pingora keeps
//! the bytes it read past a request and parses them first next time; a
//! connection that has done so skips the idle wait.
//!
//! HTTP/2 connections (ALPN `h2`, or the h2c preface on a listener with
//! `h2c: true`) go to Pingora whole: it multiplexes their requests.
//!
//! The proxy reaches the stream of its request through [`link`].

mod link;
mod stream;

pub use link::Link;
pub use stream::ClientStream;

use crate::state::Shared;
use async_trait::async_trait;
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{GetSocketDigest, Shutdown, Ssl, Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// The [`Link`] of the client connection under `session` (HTTP/1 only).
pub fn link(session: &ServerSession) -> Option<&Link> {
    session
        .stream()?
        .as_any()
        .downcast_ref::<ClientStream>()
        .map(|c| &c.link)
}

/// A `ServerApp` that applies connection limits, then hands over to `inner`.
pub struct Guarded<A> {
    inner: Arc<A>,
    shared: Arc<Shared>,
}

impl<A> Guarded<A> {
    /// Guard `inner` with the limits of the running config in `shared`.
    pub fn new(inner: A, shared: Arc<Shared>) -> Self {
        Guarded {
            inner: Arc::new(inner),
            shared,
        }
    }
}

impl<A> Guarded<A> {
    /// Whether `stream` arrived on a cleartext listener with `h2c: true`.
    fn h2c_listener(&self, stream: &ClientStream) -> bool {
        let rt = self.shared.runtime.load();
        // Most configs have no h2c listener: skip the `getsockname`.
        if !rt.config.listeners.iter().any(|l| l.h2c) {
            return false;
        }
        let local = stream
            .get_socket_digest()
            .and_then(|d| d.local_addr().and_then(|a| a.as_inet().copied()));
        local.is_some_and(|a| rt.listener(a).is_some_and(|l| l.h2c))
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let limits = self.shared.runtime.load().config.limits.clone();
        let first = !stream.as_any().is::<ClientStream>();
        let (mut guarded, idle) = if !first {
            // The next request on a keep-alive connection.
            let mut g = stream.into_any().downcast::<ClientStream>().ok()?;
            g.rearm();
            (g, limits.client_keepalive_timeout)
        } else {
            let Some(counted) =
                crate::admission::connection(&self.shared, limits.max_client_connections)
            else {
                if stream.get_ssl().is_none() {
                    let _ = stream
                        .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                }
                Shutdown::shutdown(stream.as_mut()).await;
                return None;
            };
            let g = Box::new(ClientStream::new(
                stream,
                limits.client_header_timeout,
                counted,
            ));
            (g, limits.client_header_timeout)
        };
        if matches!(guarded.selected_alpn_proto(), Some(ALPN::H2)) {
            // HTTP/2 multiplexes requests inside one long-lived session,
            // with its own limits on headers.
            guarded.link.head_read();
            return ServerApp::process_new(&self.inner, guarded, shutdown).await;
        }
        // A new connection counts as in flight until its first request is
        // done: a stopping bulb must not close it before the request arrives.
        // An idle keep-alive connection is closed at once when stopping.
        let first_work = first.then(|| self.shared.work.begin());
        let stop = (!first).then_some(shutdown);
        if !guarded.pipelined && !guarded.wait_for_request(idle, stop).await {
            return None;
        }
        if first && self.h2c_listener(&guarded) {
            match guarded.starts_h2c(limits.client_header_timeout).await {
                None => return None,
                Some(false) => {}
                Some(true) => {
                    // Each HTTP/2 request counts as work of its own; the
                    // connection may stay open for long.
                    drop(first_work);
                    guarded.link.head_read();
                    return ServerApp::process_new(&self.inner, guarded, shutdown).await;
                }
            }
        }
        // One HTTP/1 request per call. Pingora's own `process_new` keeps a
        // keep-alive connection inside its (large) per-connection future while
        // it waits for the next request; handing the stream back to the
        // service loop instead lets an idle connection wait in
        // `wait_for_request`, at a fraction of the memory.
        let mut carry = guarded.carry.take();
        // Made in its box and handed over in it: the ~700-byte session is
        // not copied per request; with the connection's digest the previous
        // request made, not a new one (vendor/pingora-core/PATCH.md).
        let digest = carry.as_mut().and_then(|c| c.take_digest());
        let mut session = ServerSession::new_http1_boxed_with_digest(guarded, digest);
        match carry {
            Some(c) => c.apply_to_session(&mut session),
            None => session.set_pipelining_enabled(true),
        }
        let keepalive = limits.client_keepalive_timeout.as_secs().max(1);
        session.set_keepalive((!*shutdown.borrow()).then_some(keepalive));
        let (stream, carry) = self
            .inner
            .process_new_http_boxed(session, shutdown)
            .await?
            .consume();
        let mut g = stream.into_any().downcast::<ClientStream>().ok()?;
        g.pipelined |= g.read_past_request();
        g.carry = carry;
        Some(g)
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}
