//! One request's trace: its span, and one child span per attempt, built
//! into OpenTelemetry's `SpanData` when the request ends.

use super::context::Parent;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

/// One try on a backend.
struct Attempt {
    span_id: [u8; 8],
    start: SystemTime,
    end: Option<SystemTime>,
    backend: SocketAddr,
    /// `ok`, `connect_error`, `error`, `timeout`; `None` while open.
    outcome: Option<&'static str>,
}

/// The trace of one request (or TCP session).
pub struct RequestTrace {
    /// Trace id (the client's, or new).
    pub trace_id: [u8; 16],
    /// This request's span id.
    pub span_id: [u8; 8],
    /// The client's span, when it sent a `traceparent`.
    pub parent: Option<[u8; 8]>,
    /// Whether the spans are exported.
    pub sampled: bool,
    /// The route that took the request (its `path_prefix`, or `/`).
    pub route: String,
    start: SystemTime,
    attempts: Vec<Attempt>,
}

/// How a request ended, for its span.
pub struct Finished<'a> {
    /// Method.
    pub method: &'a str,
    /// Path as sent.
    pub path: &'a str,
    /// Status sent, if any.
    pub status: Option<u16>,
    /// Client address.
    pub client: Option<IpAddr>,
    /// Response body bytes.
    pub bytes: usize,
    /// Upstream name.
    pub upstream: Option<&'a str>,
    /// `X-Request-Id`.
    pub request_id: &'a [u8],
}

fn id8() -> [u8; 8] {
    crate::random::nonzero_u64().to_be_bytes()
}

fn status(failed: bool, why: &str) -> Status {
    if failed {
        Status::error(why.to_string())
    } else {
        Status::Unset
    }
}

impl RequestTrace {
    /// A trace under `parent` (kept, with its sampling decision), or a new
    /// one sampled with probability `ratio`.
    pub fn new(parent: Option<Parent>, ratio: f64) -> RequestTrace {
        let (trace_id, sampled) = match parent {
            Some(p) => (p.trace_id, p.sampled),
            None => {
                let mut t = [0u8; 16];
                t[..8].copy_from_slice(&crate::random::nonzero_u64().to_be_bytes());
                t[8..].copy_from_slice(&crate::random::u64().to_be_bytes());
                let draw = (crate::random::u64() >> 11) as f64 / (1u64 << 53) as f64;
                (t, draw < ratio)
            }
        };
        RequestTrace {
            trace_id,
            span_id: id8(),
            parent: parent.map(|p| p.span_id),
            sampled,
            route: "/".to_string(),
            start: SystemTime::now(),
            attempts: Vec::new(),
        }
    }

    /// A try on `backend` begins; the `traceparent` it sends upstream.
    pub fn attempt(&mut self, backend: SocketAddr) {
        self.close("abandoned");
        self.attempts.push(Attempt {
            span_id: id8(),
            start: SystemTime::now(),
            end: None,
            backend,
            outcome: None,
        });
    }

    /// The `traceparent` for the current try (the request's own span
    /// before any).
    pub fn traceparent(&self) -> String {
        let span = self.attempts.last().map_or(&self.span_id, |a| &a.span_id);
        super::context::format(&self.trace_id, span, self.sampled)
    }

    /// The current try ended as `outcome`.
    pub fn close(&mut self, outcome: &'static str) {
        if let Some(a) = self.attempts.last_mut().filter(|a| a.outcome.is_none()) {
            a.outcome = Some(outcome);
            a.end = Some(SystemTime::now());
        }
    }

    fn context(&self, span: [u8; 8]) -> SpanContext {
        let flags = if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(span),
            flags,
            false,
            TraceState::default(),
        )
    }

    fn span(&self, id: [u8; 8], parent: Option<[u8; 8]>, kind: SpanKind, name: String) -> SpanData {
        SpanData {
            span_context: self.context(id),
            parent_span_id: parent.map_or(SpanId::INVALID, SpanId::from_bytes),
            parent_span_is_remote: parent.is_some() && parent == self.parent,
            span_kind: kind,
            name: name.into(),
            start_time: self.start,
            end_time: SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("bulb").build(),
        }
    }

    /// The request's span and its attempts' spans.
    pub fn request_spans(mut self, f: &Finished<'_>) -> Vec<SpanData> {
        self.close(if f.status.is_some() { "ok" } else { "error" });
        let mut out = Vec::with_capacity(1 + self.attempts.len());
        let mut req = self.span(
            self.span_id,
            self.parent,
            SpanKind::Server,
            format!("{} {}", f.method, self.route),
        );
        let mut attrs = vec![
            KeyValue::new("http.request.method", f.method.to_string()),
            KeyValue::new("http.route", self.route.clone()),
            KeyValue::new("url.path", f.path.to_string()),
            KeyValue::new("http.response.body.size", f.bytes as i64),
            KeyValue::new("bulb.attempts", self.attempts.len() as i64),
            KeyValue::new(
                "bulb.request_id",
                String::from_utf8_lossy(f.request_id).into_owned(),
            ),
        ];
        if let Some(s) = f.status {
            attrs.push(KeyValue::new("http.response.status_code", i64::from(s)));
        }
        if let Some(c) = f.client {
            attrs.push(KeyValue::new("client.address", c.to_string()));
        }
        if let Some(u) = f.upstream {
            attrs.push(KeyValue::new("bulb.upstream", u.to_string()));
        }
        req.attributes = attrs;
        req.status = status(f.status.is_none_or(|s| s >= 500), "no response or 5xx");
        out.push(req);
        let mut previous: Option<&'static str> = None;
        for (n, a) in self.attempts.iter().enumerate() {
            let mut s = self.span(
                a.span_id,
                Some(self.span_id),
                SpanKind::Client,
                f.method.to_string(),
            );
            s.start_time = a.start;
            s.end_time = a.end.unwrap_or_else(SystemTime::now);
            let outcome = a.outcome.unwrap_or("ok");
            let mut attrs = vec![
                KeyValue::new("server.address", a.backend.ip().to_string()),
                KeyValue::new("server.port", i64::from(a.backend.port())),
                KeyValue::new("bulb.attempt", n as i64 + 1),
                KeyValue::new("bulb.outcome", outcome),
            ];
            if let Some(p) = previous {
                attrs.push(KeyValue::new("bulb.retry_reason", p));
            }
            if outcome == "ok" {
                if let Some(s) = f.status {
                    attrs.push(KeyValue::new("http.response.status_code", i64::from(s)));
                }
            }
            s.attributes = attrs;
            s.status = status(outcome != "ok", outcome);
            out.push(s);
            previous = Some(outcome);
        }
        out
    }

    /// The span of a TCP session from `client` relayed to `backend`.
    pub fn session_span(
        &self,
        client: Option<SocketAddr>,
        backend: Option<SocketAddr>,
        end: &str,
        bytes: (u64, u64),
    ) -> SpanData {
        let mut s = self.span(
            self.span_id,
            None,
            SpanKind::Server,
            "tcp session".to_string(),
        );
        let mut attrs = vec![
            KeyValue::new("bulb.end", end.to_string()),
            KeyValue::new("bulb.bytes_up", bytes.0 as i64),
            KeyValue::new("bulb.bytes_down", bytes.1 as i64),
        ];
        if let Some(c) = client {
            attrs.push(KeyValue::new("client.address", c.ip().to_string()));
        }
        if let Some(b) = backend {
            attrs.push(KeyValue::new("server.address", b.ip().to_string()));
            attrs.push(KeyValue::new("server.port", i64::from(b.port())));
        }
        s.attributes = attrs;
        s.status = status(backend.is_none(), "no backend");
        s
    }
}
