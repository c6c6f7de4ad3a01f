//! Upstream choice: the request's host for routing, the consistent-hash
//! key, and the queue when every backend is full.

use crate::config::HashKey;
use crate::pool::queue::Rejected;
use crate::pool::{Lease, Pool, Tried};
use crate::state::Shared;
use http::header;
use pingora_error::Result;
use pingora_error::{Error, ErrorType};
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

/// The request's host: the URI authority (HTTP/2) or `Host` (HTTP/1, where
/// an absolute-form target was already turned into `Host`).
pub fn request_host(req: &RequestHeader) -> &[u8] {
    match req.uri.authority() {
        Some(a) => a.as_str().as_bytes(),
        None => req.headers.get(header::HOST).map_or(b"", |h| h.as_bytes()),
    }
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
pub fn hash_key<'a>(
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
        HashKey::Header(n) => req.headers.get(n).map(|v| v.as_bytes()),
        HashKey::Cookie(n) => cookie_value(req, n),
    };
    match found {
        Some(k) => k,
        None => crate::pool::selection::ip_key(ip, buf),
    }
}

/// Every usable backend of `pool` is at `max_conns`: wait in its queue
/// (503 at once without one, or when it is full; 503 after its timeout).
/// A client that goes away while waiting leaves the queue.
pub async fn queue(
    shared: &Shared,
    session: &mut Session,
    pool: &Pool,
    key: &[u8],
    tried: &Tried,
) -> Result<Lease> {
    let m = &shared.metrics;
    let Some(q) = pool.cfg.queue else {
        m.queue_full.fetch_add(1, Relaxed);
        return Err(Error::explain(
            ErrorType::HTTPStatus(503),
            "every backend at max_conns",
        ));
    };
    let waited = if session.as_downstream_mut().is_body_done() {
        // Nothing more to read: a read that ends is the client leaving.
        tokio::select! {
            r = pool.wait_lease(key, tried, q) => r,
            _ = session.as_downstream_mut().read_body_or_idle(true) => {
                return Err(Error::explain(ErrorType::ConnectionClosed, "client left the queue").into_down());
            }
        }
    } else {
        pool.wait_lease(key, tried, q).await
    };
    waited.map_err(|r| {
        let (counter, why) = match r {
            Rejected::QueueFull => (&m.queue_full, "queue full"),
            Rejected::Timeout => (&m.queue_timeout, "queue timeout"),
            Rejected::Unusable => return no_backend(false),
        };
        counter.fetch_add(1, Relaxed);
        Error::explain(ErrorType::HTTPStatus(503), why)
    })
}

/// The error when no backend can be tried: 502 after failed tries, 503
/// when nothing was usable to begin with.
pub fn no_backend(tried_any: bool) -> Box<Error> {
    if tried_any {
        Error::explain(ErrorType::HTTPStatus(502), "every tried backend failed")
    } else {
        Error::explain(ErrorType::HTTPStatus(503), "no usable backend")
    }
}
