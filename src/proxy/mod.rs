//! The request path: check, route, buffer the body, pick a backend, edit
//! headers, retry, map errors to statuses, count and log. This is the
//! `ProxyHttp` Pingora drives.

pub mod body;
pub mod checks;

use crate::access_log::Entry;
use crate::config::{Algorithm, Cidr, HashKey};
use crate::pool::{BackendState, Pool, Tried};
use crate::state::{Shared, WorkGuard};
use async_trait::async_trait;
use http::header::{self, HeaderName, HeaderValue};
use log::warn;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    pool: Option<Arc<Pool>>,
    backend: Option<Arc<BackendState>>,
    /// The client address, resolved once (trusted proxies applied).
    client: Option<IpAddr>,
    /// The last backend tried, for counting and the access log.
    backend_for_log: Option<Arc<BackendState>>,
    tried: Tried,
    attempts: u32,
    response_started: bool,
    /// The last failure was a stale pooled connection: retry the same backend.
    retry_same: bool,
}

const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "proxy-authenticate",
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

fn client_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

fn is_tls(session: &Session) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

/// The request's host: the URI authority (HTTP/2, absolute form) or `Host`.
fn request_host(req: &RequestHeader) -> &[u8] {
    match req.uri.authority() {
        Some(a) => a.as_str().as_bytes(),
        None => req.headers.get(header::HOST).map_or(b"", |h| h.as_bytes()),
    }
}

fn has_body(req: &RequestHeader) -> bool {
    req.headers.contains_key(header::TRANSFER_ENCODING)
        || req
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// Remove hop-by-hop headers and every header `Connection` names.
/// `keep_upgrade` keeps `Upgrade`/`Connection: upgrade` for protocol switches.
fn strip_hop_by_hop(headers: &http::HeaderMap, keep_upgrade: bool) -> Vec<HeaderName> {
    let mut named: Vec<HeaderName> = Vec::new();
    for v in headers.get_all(header::CONNECTION) {
        for token in v.as_bytes().split(|&c| c == b',') {
            let t = token.trim_ascii();
            if t.is_empty()
                || t.eq_ignore_ascii_case(b"close")
                || t.eq_ignore_ascii_case(b"keep-alive")
                || (keep_upgrade && t.eq_ignore_ascii_case(b"upgrade"))
            {
                continue;
            }
            if let Ok(n) = HeaderName::from_bytes(t) {
                named.push(n);
            }
        }
    }
    named
}

fn cookie_value<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a [u8]> {
    req.headers.get_all(header::COOKIE).iter().find_map(|v| {
        v.as_bytes().split(|&c| c == b';').find_map(|kv| {
            let kv = kv.trim_ascii();
            let eq = kv.iter().position(|&c| c == b'=')?;
            (kv[..eq].trim_ascii() == name.as_bytes()).then(|| kv[eq + 1..].trim_ascii())
        })
    })
}

/// The consistent-hash key for this request, written into `buf` when it is
/// the client IP. A missing header or cookie falls back to the client IP.
fn hash_key<'a>(
    key: &HashKey,
    req: &'a RequestHeader,
    ip: Option<IpAddr>,
    buf: &'a mut [u8; 16],
) -> &'a [u8] {
    let found: Option<&[u8]> = match key {
        HashKey::ClientIp => None,
        HashKey::Uri => Some(
            req.uri
                .path_and_query()
                .map_or(b"/", |pq| pq.as_str().as_bytes()),
        ),
        HashKey::Path => Some(req.uri.path().as_bytes()),
        HashKey::Header(n) => req.headers.get(n.as_str()).map(|v| v.as_bytes()),
        HashKey::Cookie(n) => cookie_value(req, n),
    };
    if let Some(k) = found {
        return k;
    }
    match ip {
        Some(IpAddr::V4(v4)) => {
            buf[..4].copy_from_slice(&v4.octets());
            &buf[..4]
        }
        Some(IpAddr::V6(v6)) => {
            *buf = v6.octets();
            &buf[..]
        }
        None => b"",
    }
}

/// Whether a raw HTTP/1 head has a `Content-Length` header line.
fn raw_has_content_length(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n')
        .skip(1)
        .any(|line| line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:"))
}

/// The final response already sent to the client, if any (a `100
/// Continue` bulb sent is not one).
fn final_response(session: &Session) -> Option<&ResponseHeader> {
    session
        .response_written()
        .filter(|r| !r.status.is_informational())
}

/// Answer `status` and close the connection: nothing of this request, or
/// what follows it on the connection, reaches a backend.
async fn refuse(session: &mut Session, status: u16) -> Result<bool> {
    session.set_keepalive(None);
    if status > 0 {
        session.respond_error(status).await?;
    }
    Ok(true)
}

fn no_backend(tried_any: bool) -> Box<Error> {
    if tried_any {
        Error::explain(ErrorType::HTTPStatus(502), "every tried backend failed")
    } else {
        Error::explain(ErrorType::HTTPStatus(503), "no usable backend")
    }
}

/// The forwarding edits made to every request before it goes upstream:
/// drop hop-by-hop headers (and those `Connection` names; `Upgrade` stays for
/// a protocol switch), append the peer to `X-Forwarded-For`, set `X-Real-IP`
/// and `X-Forwarded-Proto`. `X-Real-IP` is `client`: the peer, or what
/// [`real_client`] found behind a trusted proxy.
pub fn edit_request_headers(
    req: &mut RequestHeader,
    peer: Option<IpAddr>,
    client: Option<IpAddr>,
    upgrade: bool,
    tls: bool,
) -> Result<()> {
    for n in strip_hop_by_hop(&req.headers, upgrade) {
        req.remove_header(&n);
    }
    for n in HOP_BY_HOP {
        if upgrade && (n == "connection" || n == "upgrade") {
            continue;
        }
        // A lookup is cheaper than Pingora's remove, which also edits its
        // case-preserving name map.
        if req.headers.contains_key(n) {
            req.remove_header(n);
        }
    }
    if let Some(ip) = peer {
        let ip = ip.to_string();
        let xff = match req.headers.get(&X_FORWARDED_FOR).map(|v| v.as_bytes()) {
            Some(prev) if !prev.is_empty() => {
                let mut v = Vec::with_capacity(prev.len() + 2 + ip.len());
                v.extend_from_slice(prev);
                v.extend_from_slice(b", ");
                v.extend_from_slice(ip.as_bytes());
                HeaderValue::from_bytes(&v).ok()
            }
            _ => HeaderValue::from_str(&ip).ok(),
        };
        if let Some(xff) = xff {
            req.insert_header(X_FORWARDED_FOR.clone(), xff)?;
        }
        if client == peer {
            req.insert_header(X_REAL_IP.clone(), ip)?;
        } else if let Some(c) = client {
            req.insert_header(X_REAL_IP.clone(), c.to_string())?;
        }
    }
    let proto = if tls { "https" } else { "http" };
    req.insert_header(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto))?;
    Ok(())
}

/// The client address: the peer, unless the peer is a trusted proxy, in
/// which case the rightmost `X-Forwarded-For` entry that is not itself
/// trusted (an unparsable entry ends the walk: the peer's view stands).
pub fn real_client(peer: IpAddr, xff: Option<&[u8]>, trusted: &[Cidr]) -> Option<IpAddr> {
    if trusted.is_empty() || !trusted.iter().any(|c| c.contains(peer)) {
        return Some(peer);
    }
    let Some(xff) = xff.and_then(|x| std::str::from_utf8(x).ok()) else {
        return Some(peer);
    };
    let mut last = peer;
    for part in xff.rsplit(',') {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.iter().any(|c| c.contains(ip)) => last = ip,
            Ok(ip) => return Some(ip),
            Err(_) => return Some(last),
        }
    }
    Some(last)
}

fn peer_for(b: &BackendState, pool: &Pool) -> HttpPeer {
    let cfg = &pool.cfg;
    let mut peer = HttpPeer::new(b.addr, false, String::new());
    peer.options.connection_timeout = Some(cfg.connect_timeout);
    peer.options.read_timeout = Some(cfg.read_timeout);
    peer.options.write_timeout = Some(cfg.write_timeout);
    peer.options.idle_timeout = Some(Duration::from_secs(60));
    peer
}

impl Ctx {
    /// Count a failure against the current backend (passive checks).
    fn note_failure(&self, connect: bool) {
        if let (Some(b), Some(pool)) = (&self.backend, &self.pool) {
            if b.record_failure(pool.cfg.passive, connect) {
                warn!(
                    "upstream {}: backend {} ejected after repeated failures",
                    pool.cfg.name, b.addr_str
                );
            }
        }
    }

    fn finish_attempt(&mut self) {
        if let Some(b) = self.backend.take() {
            b.end();
            self.tried.push(b.addr);
            self.backend_for_log = Some(b);
        }
    }
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            _work: self.shared.work.begin(),
            start: Instant::now(),
            pool: None,
            backend: None,
            backend_for_log: None,
            client: None,
            tried: Tried::default(),
            attempts: 0,
            response_started: false,
            retry_same: false,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let rt = self.shared.runtime.load();
        let limits = &rt.config.limits;
        if let Some(l) = crate::guard::link(session.as_downstream()) {
            l.head_read();
        }
        let raw_head = session
            .as_downstream()
            .as_http1()
            .map(|h1| h1.get_headers_raw_bytes());
        // Pingora drops Content-Length when Transfer-Encoding is present
        // (RFC 9112 allows that); we refuse such requests, so look at the raw head.
        let raw_cl_with_te = session
            .req_header()
            .headers
            .contains_key(header::TRANSFER_ENCODING)
            && raw_head.as_deref().is_some_and(raw_has_content_length);
        let plan = match checks::check(
            session.req_header(),
            raw_cl_with_te,
            limits.max_header_bytes,
        ) {
            Ok(p) => p,
            Err(status) => {
                // Ambiguous framing, target or host: answer and close.
                self.shared.metrics.rejected.fetch_add(1, Relaxed);
                return refuse(session, status).await;
            }
        };
        checks::normalise(session.req_header_mut(), &plan)?;
        if let Some(l) = crate::guard::link(session.as_downstream()) {
            let head = raw_head.as_ref().map_or(0, |h| h.len() as u64);
            l.set_request_len((!plan.chunked).then(|| head + plan.content_length.unwrap_or(0)));
        }
        let idle = limits.client_keepalive_timeout.as_secs().max(1);
        session.set_keepalive(Some(idle));
        let req = session.req_header();
        let xff = req.headers.get(&X_FORWARDED_FOR).map(|v| v.as_bytes());
        ctx.client =
            client_ip(session).and_then(|p| real_client(p, xff, &rt.config.trusted_proxies));
        let Some(pool) = rt
            .route(request_host(req), req.uri.path().as_bytes())
            .cloned()
        else {
            self.shared.metrics.unrouted.fetch_add(1, Relaxed);
            session.respond_error(404).await?;
            return Ok(true);
        };
        ctx.pool = Some(pool);
        if !plan.has_body() {
            return Ok(false);
        }
        if plan.expect_continue {
            // Pingora would end keep-alive after an early 1xx; it is not final.
            let down = session.as_downstream_mut();
            down.set_close_on_response_before_downstream_finish(false);
            let sent = down.write_continue_response().await;
            down.set_close_on_response_before_downstream_finish(true);
            sent?;
        }
        let read_timeout = limits.client_body_timeout;
        let limit = limits.request_buffer_bytes;
        match body::buffer(session, plan.content_length, limit, read_timeout).await {
            Ok(_) => Ok(false),
            Err(status) => {
                self.shared.metrics.rejected.fetch_add(1, Relaxed);
                refuse(session, status).await
            }
        }
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let Some(pool) = ctx.pool.clone() else {
            return Err(Error::explain(ErrorType::HTTPStatus(404), "no route"));
        };
        if std::mem::take(&mut ctx.retry_same) {
            // A pooled connection had gone stale: same backend, new connection.
            if let Some(b) = &ctx.backend {
                return Ok(Box::new(peer_for(b, &pool)));
            }
        }
        if ctx.backend.is_some() {
            ctx.finish_attempt();
            self.shared.metrics.retries.fetch_add(1, Relaxed);
        }
        let mut buf = [0u8; 16];
        let key: &[u8] = if pool.cfg.algorithm == Algorithm::ConsistentHash {
            hash_key(
                &pool.cfg.hash_key,
                session.req_header(),
                ctx.client,
                &mut buf,
            )
        } else {
            b""
        };
        let Some(backend) = pool.select(key, &ctx.tried) else {
            return Err(no_backend(!ctx.tried.is_empty()));
        };
        backend.begin();
        ctx.attempts += 1;
        let peer = peer_for(&backend, &pool);
        ctx.backend = Some(backend);
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let upgrade = session.is_upgrade_req();
        edit_request_headers(
            req,
            client_ip(session),
            ctx.client,
            upgrade,
            is_tls(session),
        )
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.response_started = true;
        let switching = resp.status.as_u16() == 101;
        for n in strip_hop_by_hop(&resp.headers, switching) {
            resp.remove_header(&n);
        }
        for n in ["keep-alive", "proxy-connection", "trailer"] {
            resp.remove_header(n);
        }
        if !switching {
            resp.remove_header("connection");
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.note_failure(true);
        if let Some(pool) = &ctx.pool {
            // The request was not sent: another backend may take it.
            e.set_retry(ctx.attempts <= pool.cfg.retries);
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
        let upstream_fault = *e.esource() == ErrorSource::Upstream;
        if upstream_fault && !client_reused {
            ctx.note_failure(false);
        }
        let req = session.req_header();
        let replayable = req.method.is_idempotent() && !has_body(req) && !ctx.response_started;
        let reset = matches!(
            e.etype(),
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
        );
        let budget = ctx
            .pool
            .as_ref()
            .is_some_and(|p| ctx.attempts <= p.cfg.retries);
        // A stale pooled connection is retried on the same backend; a reset
        // before any response byte on another backend, within `retries`.
        // Either only when the request can be replayed safely.
        let stale = upstream_fault && replayable && client_reused;
        ctx.retry_same = stale;
        e.set_retry(stale || (upstream_fault && replayable && budget && reset));
        e
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, e: &Error) -> bool {
        // A client that goes away mid-request is routine, not an error of ours.
        *e.esource() == ErrorSource::Downstream
            && matches!(
                e.etype(),
                ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
            )
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, _ctx: &mut Ctx) -> FailToProxy {
        let code = match (e.etype(), e.esource()) {
            (ErrorType::HTTPStatus(c), _) => *c,
            (ErrorType::ReadTimedout | ErrorType::WriteTimedout, ErrorSource::Upstream) => 504,
            (_, ErrorSource::Upstream) => 502,
            (
                ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed,
                ErrorSource::Downstream,
            ) => 0,
            (_, ErrorSource::Downstream) => 400,
            _ => 500,
        };
        if code > 0 && final_response(session).is_none() {
            if let Err(err) = session.respond_error(code).await {
                log::debug!("cannot send error response: {err}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        ctx.finish_attempt();
        let status = final_response(session).map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.start.elapsed();
        if let Some(pool) = &ctx.pool {
            pool.latency.observe(elapsed);
            match &ctx.backend_for_log {
                Some(b) => b.count_status(status),
                None => pool.no_backend.count_status(status),
            }
        }
        if self.shared.access_log.enabled() {
            let req = session.req_header();
            self.shared.access_log.log(Entry {
                client: session.client_addr().and_then(|a| a.as_inet()).copied(),
                method: req.method.as_str(),
                uri: req.uri.path_and_query().map_or("/", |p| p.as_str()),
                version: req.version,
                status,
                bytes: session.body_bytes_sent(),
                referer: req.headers.get(header::REFERER).map(|v| v.as_bytes()),
                user_agent: req.headers.get(header::USER_AGENT).map(|v| v.as_bytes()),
                upstream: ctx.backend_for_log.as_ref().map(|b| b.addr),
                elapsed,
            });
        }
    }
}
