//! The request path, the `ProxyHttp` Pingora drives, split by phase as the
//! request meets them:
//!
//! 1. [`admit`]: [`checks`] on the head, routing, `Expect`, [`body`] buffering;
//! 2. [`upstream`]: the backend for each attempt, through
//!    [`admission`](crate::admission) (lease, queue, retry rule) as for TCP;
//! 3. [`forward`]: headers edited on the way up and back;
//! 4. [`respond`]: the status of a request that could not be proxied;
//! 5. [`log`]: counters and the access log.

pub mod admit;
pub mod body;
pub mod checks;
pub mod forward;
pub mod log;
pub mod redirect;
pub mod respond;
pub mod upstream;

use crate::admission::attempt::{Attempts, Failure, Retry};
use crate::config::{Algorithm, Edits, TimeMetric, UpstreamProtocol};
use crate::policy::{compress, headers, request_id, rewrite, sticky, Vars};
use crate::pool::{BackendState, Pool};
use crate::state::{Shared, WorkGuard};
use crate::trace::span::RequestTrace;
use bytes::Bytes;
use http::header;
use http::header::HeaderValue;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// bulb's `ProxyHttp`.
pub struct Proxy {
    shared: Arc<Shared>,
}

impl Proxy {
    /// A proxy over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Proxy { shared }
    }
}

/// Per-request state.
pub struct Ctx {
    _work: WorkGuard,
    start: Instant,
    /// The pool the request was routed to.
    pool: Option<Arc<Pool>>,
    /// The client address, resolved once (trusted proxies applied).
    client: Option<IpAddr>,
    attempts: Attempts,
    /// A response head came back: the request can no longer be replayed.
    response_started: bool,
    /// Bytes of the path the route strips before it goes upstream.
    strip: usize,
    /// The request's `X-Request-Id`.
    request_id: Option<HeaderValue>,
    /// The route's header rules and compression, if it has any.
    edits: Option<Arc<Edits>>,
    /// The sticky cookie to set: the backend chosen is not the one the
    /// client's cookie named.
    set_cookie: Option<HeaderValue>,
    /// The response body's encoder, when `compress` applies.
    encoder: Option<compress::Encoder>,
    /// The request's trace, with `tracing`.
    trace: Option<Box<RequestTrace>>,
}

impl Ctx {
    /// The request's `X-Request-Id` (empty before it is known).
    fn request_id(&self) -> &[u8] {
        self.request_id.as_ref().map_or(b"", |v| v.as_bytes())
    }

    /// The variables of header rules and `return` for this request.
    fn vars<'a>(&'a self, session: &'a Session) -> Vars<'a> {
        let req = session.req_header();
        Vars {
            client_ip: self.client,
            host: upstream::request_host(req),
            tls: is_tls(session),
            request_uri: req.uri.path_and_query().map_or("/", |p| p.as_str()),
            request_id: self.request_id(),
        }
    }

    /// Feed the time since the current try began to least_time, when
    /// `metric` is what its pool measures.
    fn sample(&self, metric: TimeMetric) {
        if let (Some(pool), Some(lease)) = (&self.pool, self.attempts.current()) {
            let lt = pool.cfg.least_time;
            if lt.metric == metric {
                lease.backend().record_time(lease.elapsed(), lt.decay);
            }
        }
    }
}

fn has_body(req: &RequestHeader) -> bool {
    req.headers.contains_key(header::TRANSFER_ENCODING)
        || req
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

fn is_tls(session: &Session) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

/// A try on `backend` begins: traced as an attempt, and the Pingora peer
/// that reaches it.
fn attempt_on(
    trace: &mut Option<Box<RequestTrace>>,
    backend: &BackendState,
    pool: &Pool,
) -> Box<HttpPeer> {
    if let Some(t) = trace {
        t.attempt(backend.addr);
    }
    Box::new(crate::peer::peer_for(backend, &pool.cfg))
}

impl ProxyHttp for Proxy {
    type CTX = Ctx;

    /// No downstream modules. Pingora's default adds a disabled response
    /// compression module, which still builds a context and inspects every
    /// request and response (three allocations per request); bulb does not
    /// compress.
    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {}

    fn new_ctx(&self) -> Ctx {
        Ctx {
            _work: self.shared.work.begin(),
            start: Instant::now(),
            pool: None,
            client: None,
            attempts: Attempts::default(),
            response_started: false,
            strip: 0,
            request_id: None,
            edits: None,
            set_cookie: None,
            encoder: None,
            trace: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        admit::admit(&self.shared, session, ctx).await
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let Some(pool) = ctx.pool.clone() else {
            return Err(Error::explain(ErrorType::HTTPStatus(404), "no route"));
        };
        if let Some(b) = ctx.attempts.retry_same() {
            // A pooled connection had gone stale: same backend, new connection.
            return Ok(attempt_on(&mut ctx.trace, b, &pool));
        }
        let retry = ctx.attempts.count() > 0;
        if let Some(spec) = &pool.cfg.sticky {
            let asked = sticky::cookie(session.req_header(), &spec.cookie);
            if let Some(lease) = asked.and_then(|t| pool.sticky_lease(t, ctx.attempts.tried())) {
                // The client's cookie names this backend already.
                ctx.set_cookie = None;
                let backend = ctx.attempts.start(lease);
                return Ok(attempt_on(&mut ctx.trace, backend, &pool));
            }
        }
        let mut buf = [0u8; 16];
        let key: &[u8] = if pool.cfg.algorithm == Algorithm::ConsistentHash {
            upstream::hash_key(
                &pool.cfg.hash_key,
                session.req_header(),
                ctx.client,
                &mut buf,
            )
        } else {
            b""
        };
        // The queue watches the client while the key is still needed: a
        // hashed key is copied out of the request head first.
        let key = key.to_vec();
        let lease = crate::admission::lease(
            &self.shared.metrics,
            &pool,
            &key,
            ctx.attempts.tried(),
            retry,
            upstream::client_gone(session),
        )
        .await
        .map_err(upstream::refused)?;
        let backend = ctx.attempts.start(lease);
        if pool.cfg.sticky.is_some() {
            ctx.set_cookie = pool.sticky_cookie(backend.addr);
        }
        Ok(attempt_on(&mut ctx.trace, backend, &pool))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let upgrade = session.is_upgrade_req();
        let peer = admit::peer_ip(session);
        let peer_text = peer.and_then(|ip| {
            let link = crate::guard::link(session.as_downstream())?;
            link.peer_text(|| forward::shared_ip_value(ip))
        });
        forward::edit_request_headers(req, peer, peer_text, ctx.client, upgrade, is_tls(session))?;
        if ctx.strip > 0 {
            rewrite::strip_prefix(req, ctx.strip)?;
        }
        if let Some(rules) = ctx.edits.as_ref().and_then(|e| e.request.as_ref()) {
            headers::apply(rules, req, &ctx.vars(session))?;
        }
        if let Some(t) = &ctx.trace {
            // This attempt's context, W3C Trace Context (`tracestate` passes as sent).
            req.insert_header(crate::trace::context::TRACEPARENT, t.traceparent())?;
        }
        let h2 = ctx
            .pool
            .as_ref()
            .is_some_and(|p| p.cfg.transport.protocol != UpstreamProtocol::Http1);
        if h2 && forward::accepts_trailers(session.req_header()) {
            // gRPC needs `TE: trailers` end to end; it is the one TE value
            // HTTP/2 allows, and it says nothing about this hop's framing.
            req.insert_header(header::TE, "trailers")?;
        }
        Ok(())
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        reused: bool,
        _peer: &HttpPeer,
        #[cfg(unix)] _fd: std::os::unix::io::RawFd,
        #[cfg(windows)] _sock: std::os::windows::io::RawSocket,
        _digest: Option<&pingora_core::protocols::Digest>,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if !reused {
            ctx.sample(TimeMetric::Connect);
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.response_started = true;
        ctx.sample(TimeMetric::Header);
        forward::edit_response_headers(resp);
        if resp.status.is_informational() {
            return Ok(());
        }
        if let Some(cookie) = ctx.set_cookie.take() {
            resp.append_header(header::SET_COOKIE, cookie)?;
        }
        if let Some(id) = &ctx.request_id {
            resp.insert_header(request_id::NAME_STR, id.clone())?;
        }
        let Some(edits) = ctx.edits.clone() else {
            return Ok(());
        };
        if let Some(rules) = &edits.response {
            headers::apply(rules, resp, &ctx.vars(session))?;
        }
        if !edits.compress.is_empty() {
            ctx.encoder = compress::start(&edits.compress, session.req_header(), resp)?;
        }
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(encoder) = &mut ctx.encoder {
            compress::body(encoder, body, end_of_stream)?;
        }
        Ok(None)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(t) = &mut ctx.trace {
            t.close("connect_error");
        }
        if let Some(pool) = &ctx.pool {
            // Nothing was sent: any request can go to another backend.
            let retry = ctx.attempts.failed(pool, Failure::Connect, true);
            e.set_retry(retry != Retry::No);
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        let failure = Failure::Proxy {
            upstream: *e.esource() == ErrorSource::Upstream,
            reset: matches!(
                e.etype(),
                ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
            ),
            reused: client_reused,
        };
        if let Some(t) = &mut ctx.trace {
            let timeout = matches!(
                e.etype(),
                ErrorType::ReadTimedout | ErrorType::WriteTimedout
            );
            t.close(if timeout { "timeout" } else { "error" });
        }
        let req = session.req_header();
        let replayable = req.method.is_idempotent() && !has_body(req) && !ctx.response_started;
        if let Some(pool) = &ctx.pool {
            let retry = ctx.attempts.failed(pool, failure, replayable);
            e.set_retry(retry != Retry::No);
        }
        e
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, e: &Error) -> bool {
        // A client that goes away mid-request is routine, not an error of ours.
        respond::client_gone(e)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, _ctx: &mut Ctx) -> FailToProxy {
        let outcome = respond::outcome_of(e);
        if let Some(code) = outcome.status() {
            if respond::final_response(session).is_none() {
                if let Err(err) = session.respond_error(code).await {
                    ::log::debug!("cannot send error response: {err}");
                }
            }
        }
        FailToProxy {
            // Pingora's convention: 0 for "no response".
            error_code: outcome.status().unwrap_or(0),
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        log::finish(&self.shared, session, ctx, e.is_some());
    }
}
