//! The admin HTTP service, on `admin.address` only: `/healthz`, `/status`
//! (JSON) and `/metrics` (Prometheus text, encoded by the `prometheus` crate).

use crate::metrics::BUCKETS;
pub mod ops;

use crate::pool::{AdminState, SessionEnd};
use crate::state::Shared;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;
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
        json!({ "generation": rt.generation, "upstreams": upstreams })
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> Vec<u8> {
        // The text format rejects a family without samples: leave those out.
        let families: Vec<MetricFamily> = self
            .families()
            .into_iter()
            .filter(|f| !f.get_metric().is_empty())
            .collect();
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            log::error!("cannot encode metrics: {e}");
        }
        out
    }

    fn families(&self) -> Vec<MetricFamily> {
        let rt = self.shared.runtime.load();
        let m = &self.shared.metrics;
        let mut requests = Vec::new();
        let mut duration = Vec::new();
        let mut healthy = Vec::new();
        let mut in_flight = Vec::new();
        let mut failures = Vec::new();
        let mut sessions = Vec::new();
        let mut times = Vec::new();
        let mut admin_states = Vec::new();
        let mut bytes = Vec::new();
        let now = crate::clock::now_ms();
        for p in &rt.pools {
            let up = p.cfg.name.as_str();
            let members = p.members();
            // What reached no backend is labelled `backend=""`.
            let counted = std::iter::once(("", &p.unattributed))
                .chain(members.all.iter().map(|b| (b.addr_str.as_str(), &b.counts)));
            for (be, c) in counted {
                for (status, n) in c.status_counts() {
                    let status = status.to_string();
                    let l = [
                        ("upstream", up),
                        ("backend", be),
                        ("status", status.as_str()),
                    ];
                    requests.push(counter(&l, n));
                }
                for end in SessionEnd::ALL {
                    let n = c.sessions(end);
                    if n > 0 {
                        let l = [("upstream", up), ("backend", be), ("result", end.name())];
                        sessions.push(counter(&l, n));
                    }
                }
                let (to_backend, to_client) = c.tcp_bytes();
                for (direction, n) in [("upstream", to_backend), ("downstream", to_client)] {
                    if n > 0 {
                        let l = [("upstream", up), ("backend", be), ("direction", direction)];
                        bytes.push(counter(&l, n));
                    }
                }
            }
            for b in &members.all {
                let be = b.addr_str.as_str();
                healthy.push(gauge(
                    &[("upstream", up), ("backend", be)],
                    f64::from(u8::from(b.health.usable(now))),
                ));
                in_flight.push(gauge(
                    &[("upstream", up), ("backend", be)],
                    b.load.in_flight() as f64,
                ));
                failures.push(counter(
                    &[("upstream", up), ("backend", be)],
                    b.counts.failures(),
                ));
                for st in [
                    AdminState::Active,
                    AdminState::Draining,
                    AdminState::Disabled,
                ] {
                    let l = [("upstream", up), ("backend", be), ("state", st.name())];
                    admin_states.push(gauge(&l, f64::from(u8::from(b.admin.state() == st))));
                }
                if let Some(avg) = b.average() {
                    times.push(gauge(
                        &[("upstream", up), ("backend", be)],
                        avg.as_secs_f64(),
                    ));
                }
            }
            let (cum, count, sum) = p.latency.snapshot();
            let mut h = Histogram::default();
            h.set_sample_count(count);
            h.set_sample_sum(sum);
            h.set_bucket(
                BUCKETS
                    .iter()
                    .zip(cum)
                    .map(|(ub, c)| {
                        let mut b = Bucket::default();
                        b.set_upper_bound(*ub);
                        b.set_cumulative_count(c);
                        b
                    })
                    .collect(),
            );
            let mut metric = Metric::default();
            metric.set_label(labels(&[("upstream", up)]));
            metric.set_histogram(h);
            duration.push(metric);
        }
        let unrouted = m.unrouted.load(Relaxed);
        if unrouted > 0 {
            requests.push(counter(
                &[("upstream", ""), ("backend", ""), ("status", "404")],
                unrouted,
            ));
        }
        vec![
            family(
                "bulb_requests_total",
                "Requests answered, by upstream, backend and status.",
                MetricType::COUNTER,
                requests,
            ),
            family(
                "bulb_request_duration_seconds",
                "Time from request start to the end of the response.",
                MetricType::HISTOGRAM,
                duration,
            ),
            family(
                "bulb_backend_healthy",
                "1 when the backend is usable (active and passive checks).",
                MetricType::GAUGE,
                healthy,
            ),
            family(
                "bulb_backend_in_flight",
                "Requests in progress on the backend.",
                MetricType::GAUGE,
                in_flight,
            ),
            family(
                "bulb_backend_failures_total",
                "Connect errors, timeouts and resets seen on the backend.",
                MetricType::COUNTER,
                failures,
            ),
            family(
                "bulb_backend_admin_state",
                "1 for the admin state in force (active, draining, disabled).",
                MetricType::GAUGE,
                admin_states,
            ),
            family(
                "bulb_backend_response_time_seconds",
                "Decaying average of the least_time metric (time to header by default).",
                MetricType::GAUGE,
                times,
            ),
            family(
                "bulb_tcp_sessions_total",
                "TCP sessions ended, by how (closed, idle_timeout, reset, no_backend).",
                MetricType::COUNTER,
                sessions,
            ),
            family(
                "bulb_tcp_bytes_total",
                "TCP bytes relayed: upstream = client to backend, downstream = back.",
                MetricType::COUNTER,
                bytes,
            ),
            family(
                "bulb_config_reloads_total",
                "Configuration reloads, by result.",
                MetricType::COUNTER,
                vec![
                    counter(&[("result", "success")], m.reloads_ok.load(Relaxed)),
                    counter(&[("result", "error")], m.reloads_err.load(Relaxed)),
                ],
            ),
            family(
                "bulb_retries_total",
                "Requests retried on another backend.",
                MetricType::COUNTER,
                vec![counter(&[], m.retries.load(Relaxed))],
            ),
            family(
                "bulb_access_log_dropped_total",
                "Access-log lines dropped because the writer fell behind.",
                MetricType::COUNTER,
                vec![counter(&[], self.shared.access_log.dropped())],
            ),
            family(
                "bulb_connections_refused_total",
                "Client connections closed because max_client_connections was reached.",
                MetricType::COUNTER,
                vec![counter(&[], m.connections_refused.load(Relaxed))],
            ),
            family(
                "bulb_requests_rejected_total",
                "Requests answered without reaching a backend: malformed (4xx), rate_limited (429), queue_full and queue_timeout (503).",
                MetricType::COUNTER,
                vec![
                    counter(&[("reason", "malformed")], m.rejected.load(Relaxed)),
                    counter(&[("reason", "rate_limited")], m.rate_limited.load(Relaxed)),
                    counter(&[("reason", "queue_full")], m.queue_full.load(Relaxed)),
                    counter(&[("reason", "queue_timeout")], m.queue_timeout.load(Relaxed)),
                ],
            ),
            family(
                "bulb_queue_depth",
                "Requests waiting for a backend below its max_conns.",
                MetricType::GAUGE,
                rt.pools
                    .iter()
                    .map(|p| gauge(&[("upstream", p.cfg.name.as_str())], p.capacity.depth() as f64))
                    .collect(),
            ),
            family(
                "bulb_config_generation",
                "Generation of the running configuration.",
                MetricType::GAUGE,
                vec![gauge(&[], rt.generation as f64)],
            ),
        ]
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

fn labels(l: &[(&str, &str)]) -> Vec<LabelPair> {
    l.iter()
        .map(|(k, v)| {
            let mut p = LabelPair::default();
            p.set_name(k.to_string());
            p.set_value(v.to_string());
            p
        })
        .collect()
}

fn counter(l: &[(&str, &str)], v: u64) -> Metric {
    let mut c = Counter::default();
    c.set_value(v as f64);
    let mut m = Metric::default();
    m.set_label(labels(l));
    m.set_counter(c);
    m
}

fn gauge(l: &[(&str, &str)], v: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(v);
    let mut m = Metric::default();
    m.set_label(labels(l));
    m.set_gauge(g);
    m
}

fn family(name: &str, help: &str, t: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.into());
    f.set_help(help.into());
    f.set_field_type(t);
    f.set_metric(metrics);
    f
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
            "/healthz" => reply(StatusCode::OK, "text/plain", b"ok".to_vec()),
            "/status" => {
                let mut body = serde_json::to_vec_pretty(&self.status()).unwrap_or_default();
                body.push(b'\n');
                reply(StatusCode::OK, "application/json", body)
            }
            "/metrics" => reply(StatusCode::OK, prometheus::TEXT_FORMAT, self.metrics()),
            _ => reply(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        }
    }
}
