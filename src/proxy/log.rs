//! The last phase: count the request on its backend and upstream, and
//! write its access-log line.

use super::respond::final_response;
use super::Ctx;
use crate::access_log::Entry;
use crate::config::TimeMetric;
use crate::state::Shared;
use crate::trace::span::{Finished, RequestTrace};
use http::header;
use pingora_core::protocols::tls::Sni;
use pingora_proxy::Session;

/// Count and log one finished request.
pub fn finish(shared: &Shared, session: &Session, ctx: &mut Ctx, failed: bool) {
    if !failed {
        ctx.sample(TimeMetric::LastByte);
    }
    ctx.attempts.end();
    let status = final_response(session).map(|r| r.status.as_u16());
    let elapsed = ctx.start.elapsed();
    if let Some(pool) = &ctx.pool {
        pool.latency.observe(elapsed);
        let counts = ctx
            .attempts
            .last()
            .map_or(&pool.unattributed, |b| &b.counts);
        if let Some(s) = status {
            counts.count_status(s);
        }
    }
    // The trace's own context, when tracing: its trace id is the log's
    // (only a JSON line carries it).
    let traceparent = ctx
        .trace
        .as_ref()
        .filter(|_| shared.access_log.json())
        .map(|t| t.traceparent());
    if let Some(t) = ctx.trace.take().filter(|t| t.sampled) {
        send_spans(shared, session, ctx, *t, status);
    }
    if shared.access_log.enabled() {
        let req = session.req_header();
        // What only a JSON line carries is looked up only for one.
        let json = shared.access_log.json();
        let header = |name: &str| json.then(|| req.headers.get(name)).flatten();
        let ssl = json
            .then(|| session.digest()?.ssl_digest.as_ref())
            .flatten();
        shared.access_log.log(Entry {
            client: session.client_addr().and_then(|a| a.as_inet()).copied(),
            method: req.method.as_str(),
            uri: req.uri.path_and_query().map_or("/", |p| p.as_str()),
            version: req.version,
            status,
            bytes: session.body_bytes_sent(),
            referer: req.headers.get(header::REFERER).map(|v| v.as_bytes()),
            user_agent: req.headers.get(header::USER_AGENT).map(|v| v.as_bytes()),
            upstream: ctx.attempts.last().map(|b| b.addr),
            elapsed,
            upstream_name: ctx.pool.as_ref().map(|p| p.cfg.name.as_str()),
            attempts: ctx.attempts.count(),
            request_id: header("x-request-id").map(|v| v.as_bytes()),
            traceparent: match &traceparent {
                Some(tp) => Some(tp.as_bytes()),
                None => header("traceparent").map(|v| v.as_bytes()),
            },
            tls_version: ssl.map(|t| &*t.version),
            sni: ssl
                .and_then(|t| t.extension.get::<Sni>())
                .map(|s| s.0.as_str()),
        });
    }
}

/// Export the spans of a sampled request.
fn send_spans(shared: &Shared, session: &Session, ctx: &Ctx, t: RequestTrace, status: Option<u16>) {
    let rt = shared.runtime.load();
    let Some(tracer) = &rt.tracer else { return };
    let req = session.req_header();
    let spans = t.request_spans(&Finished {
        method: req.method.as_str(),
        path: req.uri.path(),
        status,
        client: ctx.client,
        bytes: session.body_bytes_sent(),
        upstream: ctx.pool.as_ref().map(|p| p.cfg.name.as_str()),
        request_id: ctx.request_id(),
    });
    tracer.send(spans, &shared.metrics.trace_dropped);
}
