//! The first phase: admit a request or answer it. Check its head
//! ([`super::checks`]), give it an `X-Request-Id`, find its route and apply
//! the route's admission policies ([`crate::policy`]: access, auth,
//! return, the upstream of a split), answer `Expect: 100-continue`, buffer
//! its body ([`super::body`]).

use super::respond::{refuse, Outcome};
use super::{body, checks, forward, Ctx};
use crate::config::{RateKey, RateSpec, RouteTarget};
use crate::limit::store::RateStore;
use crate::policy::{access, answer, auth, request_id, split};
use crate::state::Shared;
use http::header;
use pingora_error::Result;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

/// Whether a raw HTTP/1 head has a `Content-Length` header line.
fn raw_has_content_length(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n')
        .skip(1)
        .any(|line| line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:"))
}

/// The peer's IP address.
pub fn peer_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// The wait until `client` may send again, when it is over `r`'s rate: the
/// shared store's answer when it gives one within `store_timeout`, else the
/// local bucket's.
async fn over_rate(
    shared: &Shared,
    store: Option<&RateStore>,
    r: &RateSpec,
    req: &RequestHeader,
    client: Option<IpAddr>,
) -> Option<std::time::Duration> {
    let mut buf = [0u8; 16];
    let header = match &r.key {
        RateKey::Header(n) => req.headers.get(n).map(|v| v.as_bytes()),
        RateKey::ClientIp => None,
    };
    let key = header.unwrap_or_else(|| crate::client::ip_key(client, &mut buf));
    if let Some(store) = store {
        match tokio::time::timeout(r.store_timeout, store.take(key, r)).await {
            Ok(Ok(wait)) => return wait,
            Ok(Err(e)) => store.log(&e.0),
            Err(_) => store.log(&format!("no answer within {:?}", r.store_timeout)),
        }
        shared.metrics.rate_store_errors.fetch_add(1, Relaxed);
    }
    shared.rate.take(key, r).err()
}

/// Answer `Expect: 100-continue`. Pingora would end keep-alive after an
/// early 1xx, which is not a final response.
async fn continue_100(session: &mut Session) -> Result<()> {
    let down = session.as_downstream_mut();
    down.set_close_on_response_before_downstream_finish(false);
    let sent = down.write_continue_response().await;
    down.set_close_on_response_before_downstream_finish(true);
    sent
}

/// 429 with `Retry-After` (whole seconds, at least 1).
async fn too_many(session: &mut Session, wait: std::time::Duration) -> Result<bool> {
    let mut resp = ResponseHeader::build(429, Some(3))?;
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    resp.insert_header(header::RETRY_AFTER, secs.max(1))?;
    resp.insert_header(header::CONTENT_LENGTH, 0)?;
    session.write_response_header(Box::new(resp), true).await?;
    Ok(true)
}

/// Admit the request of `session`: `Ok(true)` when it was answered here.
pub async fn admit(shared: &Shared, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
    // An `Arc`, not a load guard: admission may wait (a refusal written to a
    // slow client, a shared rate store), and a guard held across waits keeps
    // the config past a reload and slows every other load on the thread.
    let rt = shared.runtime.load_full();
    let limits = &rt.config.limits;
    let raw_head = session
        .as_downstream()
        .as_http1()
        .map(|h1| h1.get_headers_raw_bytes());
    // Pingora drops Content-Length when Transfer-Encoding is present (RFC
    // 9112 allows that); bulb refuses such requests, so look at the raw head.
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
            shared.metrics.rejected.fetch_add(1, Relaxed);
            return refuse(session, Outcome::Status(status)).await;
        }
    };
    checks::normalise(session.req_header_mut(), &plan)?;
    ctx.request_id = Some(request_id::ensure(session.req_header_mut())?);
    if let Some(tracer) = &rt.tracer {
        let tp = session.req_header().headers.get("traceparent");
        ctx.trace = Some(Box::new(tracer.begin(tp.map(|v| v.as_bytes()))));
    }
    if session.is_upgrade_req() {
        // After a protocol switch the connection carries the new protocol's
        // bytes: none of them may be taken for a pipelined request (Pingora
        // would otherwise hold early client bytes back as one).
        session.as_downstream_mut().set_pipelining_enabled(false);
    }
    if let Some(l) = crate::guard::link(session.as_downstream()) {
        l.head_read();
        let head = raw_head.as_ref().map_or(0, |h| h.len() as u64);
        l.set_request_len((!plan.chunked).then(|| head + plan.content_length.unwrap_or(0)));
    }
    session.set_keepalive(Some(limits.client_keepalive_timeout.as_secs().max(1)));
    if super::redirect::acme_challenge(&rt, session).await? {
        return Ok(true);
    }
    if super::redirect::to_https(&rt, session).await? {
        return Ok(true);
    }
    let req = session.req_header();
    ctx.client = peer_ip(session).and_then(|p| {
        forward::real_client(p, forward::forwarded_for(req), &rt.config.trusted_proxies)
    });
    let wait = match &limits.rate {
        Some(r) => over_rate(shared, rt.rate_store.as_deref(), r, req, ctx.client).await,
        None => None,
    };
    if let Some(wait) = wait {
        shared.metrics.rate_limited.fetch_add(1, Relaxed);
        return too_many(session, wait).await;
    }
    let req = session.req_header();
    let route = rt.matching_route(
        super::upstream::request_host(req),
        req.uri.path().as_bytes(),
    );
    let Some(route) = route else {
        shared.metrics.unrouted.fetch_add(1, Relaxed);
        session.respond_error(404).await?;
        return Ok(true);
    };
    // Route policies, in the order of `crate::policy`.
    if access::refuses(route.access.as_ref(), ctx.client) {
        session.respond_error(403).await?;
        return Ok(true);
    }
    if let Some(a) = &route.auth {
        if !auth::verified(a, session.req_header()).await {
            return auth::challenge(session, a, ctx.request_id()).await;
        }
    }
    let upstream = match &route.target {
        RouteTarget::Upstream(u) => *u,
        RouteTarget::Split(s) => split::pick(s),
        RouteTarget::Return(a) => {
            let location = a
                .location
                .as_ref()
                .and_then(|l| ctx.vars(session).expand(l));
            return answer::answer(session, a, location, ctx.request_id()).await;
        }
    };
    let Some(pool) = rt.pools.get(upstream) else {
        session.respond_error(404).await?;
        return Ok(true);
    };
    ctx.strip = route.strip;
    ctx.edits = route.edits.clone();
    if let Some(t) = &mut ctx.trace {
        t.route = route.path_prefix.clone().unwrap_or_else(|| "/".to_string());
    }
    ctx.pool = Some(pool.clone());
    if !plan.has_body() {
        return Ok(false);
    }
    if plan.expect_continue {
        continue_100(session).await?;
    }
    let (limit, timeout) = (limits.request_buffer_bytes, limits.client_body_timeout);
    match body::buffer(session, plan.content_length, limit, timeout).await {
        Ok(_) => Ok(false),
        Err(outcome) => {
            shared.metrics.rejected.fetch_add(1, Relaxed);
            refuse(session, outcome).await
        }
    }
}
