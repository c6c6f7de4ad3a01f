//! Client-connection guards that Pingora 0.9 does not offer: a cap on open
//! client connections, and a deadline for receiving a request head (the
//! slow-loris defence; Pingora's own read timeout is per read, so a client
//! that trickles one byte a minute would hold a connection for ever).
//!
//! [`Guarded`] wraps the proxy's `ServerApp`: each new connection is counted
//! and its stream wrapped in a [`HeadDeadline`], which times reads out when
//! a request head takes longer than `limits.client_header_timeout` from its
//! first byte. The deadline is re-armed for every request on a keep-alive
//! connection; idle time between requests is the keep-alive timeout's.
//!
//! It also drives HTTP/1 one request at a time, so that an idle keep-alive
//! connection waits in a small future of ours rather than in Pingora's
//! per-connection one (about 40 KB vs 18 KB per idle client, measured).

use crate::metrics::InFlight;
use crate::proxy::Shared;
use async_trait::async_trait;
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::ALPN;
use pingora_core::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType,
};
use pingora_core::server::ShutdownWatch;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// A `ServerApp` that applies connection limits, then hands over to `inner`.
pub struct Guarded<A> {
    inner: Arc<A>,
    shared: Arc<Shared>,
    open: Arc<AtomicI64>,
}

impl<A> Guarded<A> {
    /// Guard `inner` with the limits of the running config in `shared`.
    pub fn new(inner: A, shared: Arc<Shared>) -> Self {
        Guarded {
            inner: Arc::new(inner),
            shared,
            open: Arc::new(AtomicI64::new(0)),
        }
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
        let first = !stream.as_any().is::<HeadDeadline>();
        let (mut guarded, idle) = if !first {
            // The next request on a keep-alive connection.
            let mut g = stream.into_any().downcast::<HeadDeadline>().ok()?;
            g.rearm();
            (g, limits.client_keepalive_timeout)
        } else {
            let open = self.open.fetch_add(1, Relaxed) + 1;
            let counted = Counted(self.open.clone());
            if limits
                .max_client_connections
                .is_some_and(|max| open > max as i64)
            {
                drop(counted);
                self.shared
                    .metrics
                    .connections_refused
                    .fetch_add(1, Relaxed);
                if stream.get_ssl().is_none() {
                    let _ = stream
                        .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                }
                Shutdown::shutdown(stream.as_mut()).await;
                return None;
            }
            let g = Box::new(HeadDeadline::new(
                stream,
                limits.client_header_timeout,
                counted,
            ));
            (g, limits.client_header_timeout)
        };
        if matches!(guarded.selected_alpn_proto(), Some(ALPN::H2)) {
            // HTTP/2 multiplexes requests inside one long-lived session.
            return ServerApp::process_new(&self.inner, guarded, shutdown).await;
        }
        // A new connection counts as in flight until its first request is
        // done: a stopping bulb must not close it before the request arrives.
        // An idle keep-alive connection is closed at once when stopping.
        let _first = first.then(|| InFlight::new(&self.shared.metrics.active));
        let stop = (!first).then_some(shutdown);
        if !guarded.wait_for_request(idle, stop).await {
            return None;
        }
        // One HTTP/1 request per call. Pingora's own `process_new` keeps a
        // keep-alive connection inside its (large) per-connection future while
        // it waits for the next request; handing the stream back to the
        // service loop instead lets an idle connection wait in
        // `wait_for_request`, at a fraction of the memory.
        let mut session = ServerSession::new_http1(guarded);
        session.set_keepalive(if *shutdown.borrow() { None } else { Some(60) });
        let reused = self.inner.process_new_http(session, shutdown).await?;
        Some(reused.consume().0)
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

/// Decrements the open-connection count when the connection goes away.
#[derive(Debug)]
struct Counted(Arc<AtomicI64>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// A client stream whose request head must arrive within a deadline.
#[derive(Debug)]
pub struct HeadDeadline {
    inner: Stream,
    timeout: Duration,
    /// The head of the current request has been read completely.
    done: bool,
    /// When the current head must be complete (set by its first byte).
    deadline: Option<tokio::time::Instant>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Last bytes seen, to find `\r\n\r\n` across reads.
    tail: [u8; 3],
    _counted: Counted,
}

impl HeadDeadline {
    fn new(inner: Stream, timeout: Duration, counted: Counted) -> Self {
        HeadDeadline {
            inner,
            timeout,
            done: false,
            deadline: None,
            sleep: None,
            tail: [0; 3],
            _counted: counted,
        }
    }

    /// A new request on the same connection: its head gets a fresh deadline.
    fn rearm(&mut self) {
        self.done = false;
        self.deadline = None;
        self.sleep = None;
        self.tail = [0; 3];
    }

    /// Wait, cheaply, until the client sends something: Pingora's per-
    /// connection task is large (tens of KB), so an idle connection should
    /// not be inside it. False when the client went away, stayed silent for
    /// `idle`, or the server is shutting down: the connection is closed.
    async fn wait_for_request(&mut self, idle: Duration, stop: Option<&ShutdownWatch>) -> bool {
        let mut byte = [0u8; 1];
        let peek = tokio::time::timeout(idle, self.inner.try_peek(&mut byte));
        // Ok(Ok(true)): data is waiting (and was put back); Ok(Ok(false)):
        // this stream cannot peek (TLS), let Pingora read it.
        let Some(shutdown) = stop else {
            return matches!(peek.await, Ok(Ok(_)));
        };
        let mut sd = shutdown.clone();
        if *sd.borrow() {
            return false;
        }
        tokio::select! {
            r = peek => matches!(r, Ok(Ok(_))),
            _ = sd.changed() => false,
        }
    }

    fn scan(&mut self, new: &[u8]) {
        if head_end(&mut self.tail, new) {
            self.done = true;
            self.deadline = None;
            self.sleep = None;
        }
    }
}

/// Whether `new` completes a request head (`\r\n\r\n`), given the last
/// three bytes read before it in `tail` (updated). Only `\n` positions are
/// examined.
fn head_end(tail: &mut [u8; 3], new: &[u8]) -> bool {
    let at = |i: isize| {
        if i >= 0 {
            new[i as usize]
        } else {
            tail[(3 + i) as usize]
        }
    };
    let mut from = 0;
    while let Some(off) = new[from..].iter().position(|&b| b == b'\n') {
        let i = (from + off) as isize;
        if at(i - 1) == b'\r' && at(i - 2) == b'\n' && at(i - 3) == b'\r' {
            return true;
        }
        from += off + 1;
    }
    for &b in new.iter().skip(new.len().saturating_sub(3)) {
        *tail = [tail[1], tail[2], b];
    }
    false
}

impl AsyncRead for HeadDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.done {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled();
                if filled.len() > before {
                    if this.deadline.is_none() {
                        this.deadline = Some(tokio::time::Instant::now() + this.timeout);
                    }
                    this.scan(&filled[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                // Most heads arrive in one read; a timer is set only for one
                // that is still incomplete when the socket runs dry.
                if let Some(deadline) = this.deadline {
                    let sleep = this
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if sleep.deadline() != deadline {
                        sleep.as_mut().reset(deadline);
                    }
                    if sleep.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "request head not received within client_header_timeout",
                        )));
                    }
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncWrite for HeadDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for HeadDeadline {
    async fn shutdown(&mut self) {
        Shutdown::shutdown(self.inner.as_mut()).await
    }
}

impl UniqueID for HeadDeadline {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeadDeadline {
    fn get_ssl(&self) -> Option<&pingora_core::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<pingora_core::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<pingora_core::protocols::ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeadDeadline {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeadDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, d: ProxyDigest) {
        self.inner.set_proxy_digest(d)
    }
}

impl GetSocketDigest for HeadDeadline {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, d: SocketDigest) {
        self.inner.set_socket_digest(d)
    }
}

#[async_trait]
impl Peek for HeadDeadline {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::head_end;

    #[test]
    fn finds_the_end_of_a_head_across_reads() {
        let whole = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for split in 0..whole.len() {
            let mut tail = [0; 3];
            let (a, b) = whole.split_at(split);
            let found = head_end(&mut tail, a) || head_end(&mut tail, b);
            assert!(found, "split at {split}");
        }
        let mut tail = [0; 3];
        assert!(!head_end(&mut tail, b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(head_end(&mut tail, b"\r\n"));
        let mut tail = [0; 3];
        for b in b"X-A: 1\r\n\r" {
            assert!(!head_end(&mut tail, &[*b]));
        }
        assert!(head_end(&mut tail, b"\n"));
        let mut tail = [0; 3];
        assert!(!head_end(&mut tail, b"\n\n\r\r\n"));
    }
}
