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
use stream::Stop;

use crate::state::Shared;
use async_trait::async_trait;
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{GetSocketDigest, Shutdown, Ssl, Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;
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
    /// The running config's `limits.client_keepalive_timeout` (a reload
    /// applies from the next request on).
    fn keepalive(&self) -> Duration {
        self.shared
            .runtime
            .load()
            .config
            .limits
            .client_keepalive_timeout
    }

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

impl<A: HttpServerApp + Send + Sync + 'static> Guarded<A> {
    /// One HTTP/1 request on `guarded`, handed to Pingora in a session made
    /// in its box (the ~700-byte session is not copied per request), with
    /// the connection's digest and keep-alive state from the request before
    /// (vendor/pingora-core/PATCH.md). The connection for the next request,
    /// or `None` when it closes.
    async fn serve(
        &self,
        mut guarded: Box<ClientStream>,
        keepalive: Duration,
        shutdown: &ShutdownWatch,
    ) -> Option<Box<ClientStream>> {
        let mut carry = guarded.carry.take();
        let digest = carry.as_mut().and_then(|c| c.take_digest());
        let mut session = ServerSession::new_http1_boxed_with_digest(guarded, digest);
        match carry {
            Some(c) => c.apply_to_session(&mut session),
            None => session.set_pipelining_enabled(true),
        }
        let keepalive = keepalive.as_secs().max(1);
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
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if stream.as_any().is::<ClientStream>() {
            // Only a guard hands a `ClientStream` back, and this one keeps
            // its connections to the end (below).
            return None;
        }
        // Copied out: a runtime guard held for the connection's life would
        // hold its config past a reload and slow every other load.
        let (max, header_timeout, keepalive) = {
            let rt = self.shared.runtime.load();
            let limits = &rt.config.limits;
            (
                limits.max_client_connections,
                limits.client_header_timeout,
                limits.client_keepalive_timeout,
            )
        };
        let Some(counted) = crate::admission::connection(&self.shared, max) else {
            if stream.get_ssl().is_none() {
                let _ = stream
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            }
            Shutdown::shutdown(stream.as_mut()).await;
            return None;
        };
        let mut guarded = Box::new(ClientStream::new(stream, header_timeout, counted));
        if matches!(guarded.selected_alpn_proto(), Some(ALPN::H2)) {
            // HTTP/2 multiplexes requests inside one long-lived session,
            // with its own limits on headers.
            guarded.link.head_read();
            return ServerApp::process_new(&self.inner, guarded, shutdown).await;
        }
        // A new connection counts as in flight until its first request is
        // done: a stopping bulb must not close it before the request arrives.
        let first_work = self.shared.work.begin();
        if !guarded.wait_for_request(header_timeout, None).await {
            return None;
        }
        if self.h2c_listener(&guarded) {
            match guarded.starts_h2c(header_timeout).await {
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
        // One HTTP/1 request at a time. Pingora's own `process_new` keeps a
        // keep-alive connection inside its (large) per-connection future
        // while it waits for the next request; here it waits in
        // `wait_for_request`, at a fraction of the memory. The loop is this
        // one future's for the whole connection: no new boxed future, config
        // load and stream downcast per request, and one shutdown receiver
        // registered once, not per wait. An idle keep-alive connection is
        // closed at once when stopping.
        let mut guarded = self.serve(guarded, keepalive, shutdown).await?;
        drop(first_work);
        let mut stop_rx = shutdown.clone();
        let stopping = stop_rx.changed();
        tokio::pin!(stopping);
        loop {
            guarded.rearm();
            let keepalive = self.keepalive();
            let stop = Stop {
                watch: shutdown,
                changed: stopping.as_mut(),
            };
            if !guarded.pipelined && !guarded.wait_for_request(keepalive, Some(stop)).await {
                return None;
            }
            guarded = self.serve(guarded, keepalive, shutdown).await?;
        }
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}
