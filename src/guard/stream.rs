//! [`ClientStream`]: a client connection as Pingora reads it, with the
//! head deadline, a read cap for request-body buffering, and the accounting
//! that tells whether Pingora read past the end of a request (pipelining).

use super::link::Link;
use crate::admission::Counted;
use crate::clock::coarse_instant;
use async_trait::async_trait;
use pingora_core::apps::HttpPersistentSettings;
use pingora_core::protocols::deadline::LazyDeadline;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType,
};
use pingora_core::server::ShutdownWatch;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch::error::RecvError;

/// The server's stop signal as a keep-alive wait listens for it: the watch
/// (already stopping?), and the `changed()` future of a receiver the
/// connection keeps from one wait to the next, so that it is registered once
/// per connection rather than cloned and registered per wait.
pub(super) struct Stop<'a> {
    /// The server's shutdown watch.
    pub(super) watch: &'a ShutdownWatch,
    /// `changed()` of a receiver of `watch`; not polled again once ready
    /// (the wait that sees it closes the connection).
    pub(super) changed: Pin<&'a mut (dyn Future<Output = Result<(), RecvError>> + Send)>,
}

/// A client stream whose request head must arrive within a deadline.
///
/// The deadline starts with the first byte of a request and ends when the
/// proxy says the head was read ([`Link::head_read`]); a trickling client is
/// cut off when it passes. Reads are capped by [`Link::set_read_cap`] while
/// the proxy buffers a chunked body.
#[derive(Debug)]
pub struct ClientStream {
    inner: Stream,
    timeout: Duration,
    /// The wait in progress: for a request (keep-alive), then for the rest
    /// of its head (from its first byte); one timer for the connection.
    deadline: LazyDeadline,
    /// Bytes handed to Pingora since the current request began.
    delivered: u64,
    /// What the proxy and this stream tell each other about the request.
    pub(super) link: Link,
    /// Pingora's keep-alive state (and pipelined bytes) for the next request.
    pub(super) carry: Option<HttpPersistentSettings>,
    /// Pingora may hold bytes of the next request already: do not wait on
    /// the socket before handing the connection back to it.
    pub(super) pipelined: bool,
    /// Bytes read from the socket while waiting for a request, not yet
    /// handed to Pingora (from `ahead_pos`). Empty, without an allocation,
    /// between requests: an idle connection holds no read buffer.
    ahead: Vec<u8>,
    ahead_pos: usize,
    _counted: Counted,
}

thread_local! {
    /// A read-ahead buffer lent to the connection whose wait has just ended
    /// and given back when Pingora has taken its bytes (usually in the same
    /// poll): no allocation per request, none held by idle connections.
    static SPARE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// How much one read for the start of a request takes (Pingora's first
/// read of a request head takes the same).
const AHEAD_BYTES: usize = 4096;

impl ClientStream {
    /// Wrap a new client connection.
    pub fn new(inner: Stream, timeout: Duration, counted: Counted) -> Self {
        ClientStream {
            inner,
            timeout,
            deadline: LazyDeadline::default(),
            delivered: 0,
            link: Link::default(),
            carry: None,
            pipelined: false,
            ahead: Vec::new(),
            ahead_pos: 0,
            _counted: counted,
        }
    }

    /// A new request on the same connection: a fresh deadline and count.
    pub fn rearm(&mut self) {
        self.deadline.clear();
        self.delivered = 0;
        self.link.reset();
    }

    /// After a request: whether Pingora read more bytes than it was made
    /// of, so that the start of the next one is in its buffer, not the socket.
    pub fn read_past_request(&self) -> bool {
        self.link.request_len().is_none_or(|n| self.delivered > n)
    }

    /// Bytes read ahead and not yet handed to Pingora.
    fn ahead(&self) -> &[u8] {
        &self.ahead[self.ahead_pos..]
    }

    /// Read from the socket until at least `min` bytes are ahead: false on
    /// end of stream or an error. One read usually brings a whole request
    /// head (this replaces a buffered reader under the stream, which would
    /// hold its buffer for as long as the connection is open).
    async fn fill_ahead(&mut self, min: usize) -> bool {
        std::future::poll_fn(|cx| self.poll_fill_ahead(cx, min)).await
    }

    /// [`ClientStream::fill_ahead`] until the deadline in force: false
    /// when it passes first.
    async fn fill_ahead_in_time(&mut self, min: usize) -> bool {
        std::future::poll_fn(|cx| match self.poll_fill_ahead(cx, min) {
            Poll::Pending if self.deadline.poll_expired(cx).is_ready() => Poll::Ready(false),
            filled => filled,
        })
        .await
    }

    fn poll_fill_ahead(&mut self, cx: &mut Context<'_>, min: usize) -> Poll<bool> {
        while self.ahead().len() < min {
            if self.ahead_pos > 0 {
                self.ahead.drain(..self.ahead_pos);
                self.ahead_pos = 0;
            }
            // The read lands on the stack of this poll, not in the future:
            // a connection waiting here holds no buffer at all.
            let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); AHEAD_BYTES];
            let mut rb = ReadBuf::uninit(&mut stack);
            match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                    if self.ahead.capacity() == 0 {
                        self.ahead = SPARE.take();
                    }
                    self.ahead.extend_from_slice(rb.filled())
                }
                Poll::Ready(_) => return Poll::Ready(false),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(true)
    }

    /// Wait, cheaply, until the client sends something: Pingora's per-
    /// connection future is large (tens of KB), so an idle connection should
    /// not be inside it. False when the client went away, stayed silent for
    /// `idle`, or `stop` fired: the connection is closed.
    pub(super) async fn wait_for_request(
        &mut self,
        idle: Duration,
        stop: Option<Stop<'_>>,
    ) -> bool {
        if stop.as_ref().is_some_and(|s| *s.watch.borrow()) {
            return false;
        }
        self.deadline.set(coarse_instant() + idle);
        let got = match stop {
            None => self.fill_ahead_in_time(1).await,
            Some(mut stop) => {
                // Under load the next request is often there already: the
                // stop signal is polled only by a wait that has to block.
                let fill = self.fill_ahead_in_time(1);
                tokio::pin!(fill);
                std::future::poll_fn(|cx| match fill.as_mut().poll(cx) {
                    Poll::Pending if stop.changed.as_mut().poll(cx).is_ready() => {
                        Poll::Ready(false)
                    }
                    got => got,
                })
                .await
            }
        };
        // The head's own deadline starts with its first byte.
        self.deadline.clear();
        got
    }

    /// Whether the client opened with the HTTP/2 connection preface (h2c by
    /// prior knowledge), read ahead, not consumed: `None` when it neither
    /// did nor sent an HTTP/1 request within `within` (close it).
    pub async fn starts_h2c(&mut self, within: Duration) -> Option<bool> {
        const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        let probe = async {
            // Three bytes tell `PRI` from every HTTP/1 method; only then is
            // the whole preface awaited (a short HTTP/1 request never is).
            if !self.fill_ahead(3).await {
                return None;
            }
            if self.ahead()[..3] != PREFACE[..3] {
                return Some(false);
            }
            if !self.fill_ahead(PREFACE.len()).await {
                return None;
            }
            Some(&self.ahead()[..PREFACE.len()] == PREFACE)
        };
        tokio::time::timeout(within, probe).await.ok().flatten()
    }

    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Most heads arrive in one read; the timer is polled only for one
        // that is still incomplete when the socket runs dry.
        if self.link.head_done() || self.deadline.poll_expired(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "request head not received within client_header_timeout",
        )))
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let cap = this.link.read_cap();
        let n = if !this.ahead().is_empty() {
            let n = this.ahead().len().min(cap).min(buf.remaining());
            buf.put_slice(&this.ahead()[..n]);
            this.ahead_pos += n;
            if this.ahead_pos == this.ahead.len() {
                let mut spent = std::mem::take(&mut this.ahead);
                spent.clear();
                SPARE.set(spent);
                this.ahead_pos = 0;
            }
            n
        } else if cap < buf.remaining() {
            // Buffering a chunked body: never read more than the retry
            // buffer can still hold (see proxy::body).
            let mut limited = buf.take(cap);
            match Pin::new(&mut this.inner).poll_read(cx, &mut limited) {
                Poll::Ready(Ok(())) => {
                    let n = limited.filled().len();
                    // SAFETY: the inner read initialised the first n unfilled
                    // bytes of `buf` (as tokio's `Take` does).
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    n
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return this.poll_deadline(cx),
            }
        } else {
            let before = buf.filled().len();
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => buf.filled().len() - before,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return this.poll_deadline(cx),
            }
        };
        this.delivered += n as u64;
        if n > 0 && this.deadline.due().is_none() && !this.link.head_done() {
            this.deadline.set(coarse_instant() + this.timeout);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ClientStream {
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
    /// Pingora shuts a client connection down right before dropping it. On
    /// plain TCP the close that follows sends the FIN anyway, so only the
    /// write buffer is flushed: one `shutdown(2)` less per connection. TLS
    /// still shuts down (it sends close_notify).
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self
            .inner
            .as_any()
            .is::<pingora_core::protocols::l4::stream::Stream>()
        {
            return Pin::new(&mut self.inner).poll_flush(cx);
        }
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
impl Shutdown for ClientStream {
    async fn shutdown(&mut self) {
        Shutdown::shutdown(self.inner.as_mut()).await
    }
}

impl UniqueID for ClientStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for ClientStream {
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

impl GetTimingDigest for ClientStream {
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

impl GetProxyDigest for ClientStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, d: ProxyDigest) {
        self.inner.set_proxy_digest(d)
    }
}

impl GetSocketDigest for ClientStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, d: SocketDigest) {
        self.inner.set_socket_digest(d)
    }
}

#[async_trait]
impl Peek for ClientStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        if !self.fill_ahead(buf.len()).await {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.copy_from_slice(&self.ahead()[..buf.len()]);
        Ok(true)
    }
}
