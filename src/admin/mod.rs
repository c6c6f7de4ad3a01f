//! The admin HTTP service, on `admin.address` only: `/` (the dashboard),
//! `/healthz`, `/status` (JSON) and `/metrics` (Prometheus text, encoded by
//! the `prometheus` crate).

pub mod metrics;
pub mod ops;

use crate::state::Shared;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use serde_json::json;
use std::sync::Arc;

/// The admin application.
pub struct Admin {
    shared: Arc<Shared>,
}

impl Admin {
    /// Admin over the proxy's shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        Admin { shared }
    }

    /// The `/status` document.
    pub fn status(&self) -> serde_json::Value {
        let rt = self.shared.runtime.load();
        let mut upstreams = serde_json::Map::new();
        let now_us = crate::clock::now_us();
        for p in &rt.pools {
            let backends: Vec<_> = p
                .members()
                .all
                .iter()
                .map(|b| {
                    let effective = f64::from(b.weight()) * b.health.ramp(p.cfg.slow_start, now_us);
                    let ms = b.average().map(|d| d.as_secs_f64() * 1000.0);
                    json!({
                        "address": b.addr_str,
                        "healthy": b.health.usable(crate::clock::now_ms()),
                        "active_healthy": b.health.healthy(),
                        "probed": b.health.probed(),
                        "ejected": b.health.ejected(crate::clock::now_ms()),
                        "weight": b.weight(),
                        "backup": b.role.backup(),
                        "in_flight": b.load.in_flight(),
                        "requests": b.load.requests(),
                        "failures": b.counts.failures(),
                        "response_time_ms": ms,
                        "effective_weight": (effective * 100.0).round() / 100.0,
                        "max_conns": b.load.max_conns(),
                        "admin_state": b.admin.state().name(),
                    })
                })
                .collect();
            upstreams.insert(
                p.cfg.name.clone(),
                json!({ "algorithm": p.cfg.algorithm.name(), "protocol": p.cfg.transport.protocol.name(), "tls": p.cfg.transport.tls.is_some(), "backends": backends }),
            );
        }
        let listeners: Vec<_> = rt
            .config
            .listeners
            .iter()
            .map(|l| {
                let protocol = if l.tcp.is_some() { "tcp" } else { "http" };
                json!({ "address": l.address.to_string(), "protocol": protocol, "tls": l.tls.is_some() })
            })
            .collect();
        let certificates = self.shared.tls.status();
        json!({ "generation": rt.generation, "listeners": listeners, "certificates": certificates, "upstreams": upstreams })
    }
}

impl Admin {
    /// A runtime write (drain, disable, enable, weight): authorize, parse,
    /// apply.
    async fn write(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let rt = self.shared.runtime.load();
        let auth = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes().to_vec());
        if let Err((status, why)) = ops::authorize(
            rt.config.admin_token.as_deref(),
            auth.as_deref(),
            rt.config.admin,
        ) {
            return reply(status, "text/plain", format!("{why}\n").into_bytes());
        }
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = session.read_request_body().await {
            body.extend_from_slice(&chunk);
            if body.len() > 4096 {
                return reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "text/plain",
                    b"body too large\n".to_vec(),
                );
            }
        }
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let req = session.req_header();
        match ops::parse(&req.method, req.uri.path(), &body) {
            None => reply(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
            Some(Err((status, why))) => {
                reply(status, "text/plain", format!("{why}\n").into_bytes())
            }
            Some(Ok(w)) => {
                let (status, msg) = ops::apply(&self.shared, &w, peer);
                reply(status, "text/plain", msg.into_bytes())
            }
        }
    }
}

/// The dashboard: one self-contained page (`dashboard.html`, embedded in the
/// binary) that reads `/status` and `/metrics` and writes through the admin
/// API. Its policy allows nothing from another host.
fn dashboard() -> Response<Vec<u8>> {
    const PAGE: &str = include_str!("dashboard.html");
    const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                       connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'";
    let mut r = reply(
        StatusCode::OK,
        "text/html; charset=utf-8",
        PAGE.as_bytes().to_vec(),
    );
    r.headers_mut().insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(CSP),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

fn reply(status: StatusCode, ctype: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = r.body().len();
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, len.into());
    r
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        if method == http::Method::POST || method == http::Method::PUT {
            return self.write(session).await;
        }
        let req = session.req_header();
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            return reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                b"method not allowed\n".to_vec(),
            );
        }
        match req.uri.path() {
            "/" => dashboard(),
            "/healthz" => reply(StatusCode::OK, "text/plain", b"ok".to_vec()),
            "/status" => {
                let mut body = serde_json::to_vec_pretty(&self.status()).unwrap_or_default();
                body.push(b'\n');
                reply(StatusCode::OK, "application/json", body)
            }
            "/metrics" => reply(
                StatusCode::OK,
                prometheus::TEXT_FORMAT,
                metrics::text(&self.shared),
            ),
            _ => reply(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_dashboard_loads_nothing_from_another_host() {
        let page = include_str!("dashboard.html");
        for bad in [
            "http://", "https://", "//cdn", "src=\"//", "@import", "url(",
        ] {
            assert!(!page.contains(bad), "the page names {bad}");
        }
        assert!(page.len() < 40 * 1024, "a few tens of KB at most");
    }
}
