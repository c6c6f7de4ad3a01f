//! `/metrics`: one small function per metric family, encoded as Prometheus
//! text by the `prometheus` crate. Per-backend families are labelled
//! `upstream` and `backend`; what reached no backend has `backend=""`.

use crate::metrics::{Metrics, BUCKETS};
use crate::pool::{AdminState, BackendState, Counts, Pool, SessionEnd};
use crate::runtime::Runtime;
use crate::state::Shared;
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};
use std::sync::atomic::Ordering::Relaxed;

/// The `/metrics` text.
pub fn text(shared: &Shared) -> Vec<u8> {
    // The text format rejects a family without samples: leave those out.
    let families: Vec<MetricFamily> = families(shared)
        .into_iter()
        .filter(|f| !f.get_metric().is_empty())
        .collect();
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        log::error!("cannot encode metrics: {e}");
    }
    out
}

fn families(shared: &Shared) -> Vec<MetricFamily> {
    let rt = shared.runtime.load();
    let m = &shared.metrics;
    let now = crate::clock::now_ms();
    let counter_of = |v: &std::sync::atomic::AtomicU64| vec![counter(&[], v.load(Relaxed))];
    vec![
        family(
            "bulb_requests_total",
            "Requests answered, by upstream, backend and status.",
            MetricType::COUNTER,
            requests(&rt, m),
        ),
        family(
            "bulb_request_duration_seconds",
            "Time from request start to the end of the response.",
            MetricType::HISTOGRAM,
            rt.pools.iter().map(|p| duration(p)).collect(),
        ),
        family(
            "bulb_backend_healthy",
            "1 when the backend is usable (active and passive checks).",
            MetricType::GAUGE,
            per_backend(&rt, |b| Some(f64::from(u8::from(b.health.usable(now))))),
        ),
        family(
            "bulb_backend_in_flight",
            "Requests in progress on the backend.",
            MetricType::GAUGE,
            per_backend(&rt, |b| Some(b.load.in_flight() as f64)),
        ),
        family(
            "bulb_backend_failures_total",
            "Connect errors, timeouts and resets seen on the backend.",
            MetricType::COUNTER,
            failures(&rt),
        ),
        family(
            "bulb_backend_admin_state",
            "1 for the admin state in force (active, draining, disabled).",
            MetricType::GAUGE,
            admin_states(&rt),
        ),
        family(
            "bulb_backend_response_time_seconds",
            "Decaying average of the least_time metric (time to header by default).",
            MetricType::GAUGE,
            per_backend(&rt, |b| b.average().map(|d| d.as_secs_f64())),
        ),
        family(
            "bulb_tcp_sessions_total",
            "TCP sessions ended, by how (closed, idle_timeout, reset, no_backend).",
            MetricType::COUNTER,
            tcp_sessions(&rt),
        ),
        family(
            "bulb_tcp_bytes_total",
            "TCP bytes relayed: upstream = client to backend, downstream = back.",
            MetricType::COUNTER,
            tcp_bytes(&rt),
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
            counter_of(&m.retries),
        ),
        family(
            "bulb_access_log_dropped_total",
            "Access-log lines dropped because the writer fell behind.",
            MetricType::COUNTER,
            vec![counter(&[], shared.access_log.dropped())],
        ),
        family(
            "bulb_connections_refused_total",
            "Client connections closed because max_client_connections was reached.",
            MetricType::COUNTER,
            counter_of(&m.connections_refused),
        ),
        family(
            "bulb_trace_spans_dropped_total",
            "Trace spans dropped: the export queue was full, or the collector did not take them.",
            MetricType::COUNTER,
            counter_of(&m.trace_dropped),
        ),
        family(
            "bulb_rate_store_errors_total",
            "Rate checks the shared store (limits.rate.store) did not answer within store_timeout; the local bucket decided.",
            MetricType::COUNTER,
            counter_of(&m.rate_store_errors),
        ),
        family(
            "bulb_proxy_protocol_refused_total",
            "Connections closed on a listener with accept_proxy_protocol: from an untrusted address, or without a valid PROXY header within 10 s.",
            MetricType::COUNTER,
            counter_of(&m.proxy_refused),
        ),
        family(
            "bulb_requests_rejected_total",
            "Requests answered without reaching a backend: malformed (4xx), rate_limited (429), queue_full and queue_timeout (503).",
            MetricType::COUNTER,
            rejected(m),
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
            "bulb_certificate_expiry_timestamp_seconds",
            "End of validity of the certificate served for each name (Unix time).",
            MetricType::GAUGE,
            shared
                .tls
                .expiry_by_name()
                .iter()
                .map(|(name, t)| gauge(&[("name", name.as_str())], *t as f64))
                .collect(),
        ),
        family(
            "bulb_acme_orders_total",
            "ACME orders, by result.",
            MetricType::COUNTER,
            vec![
                counter(&[("result", "ok")], m.acme_orders_ok.load(Relaxed)),
                counter(&[("result", "error")], m.acme_orders_err.load(Relaxed)),
            ],
        ),
        family(
            "bulb_config_generation",
            "Generation of the running configuration.",
            MetricType::GAUGE,
            vec![gauge(&[], rt.generation as f64)],
        ),
    ]
}

/// Call `f` with the counters of each pool (labelled `backend=""`: what
/// reached no backend) and of each of its backends.
fn each_counts(rt: &Runtime, mut f: impl FnMut(&str, &str, &Counts)) {
    for p in &rt.pools {
        let up = p.cfg.name.as_str();
        f(up, "", &p.unattributed);
        for b in &p.members().all {
            f(up, &b.addr_str, &b.counts);
        }
    }
}

/// Call `f` for each backend of each pool, with its upstream's name.
fn each_backend(rt: &Runtime, mut f: impl FnMut(&str, &BackendState)) {
    for p in &rt.pools {
        for b in &p.members().all {
            f(&p.cfg.name, b);
        }
    }
}

/// One gauge per backend that has a `value`.
fn per_backend(rt: &Runtime, value: impl Fn(&BackendState) -> Option<f64>) -> Vec<Metric> {
    let mut out = Vec::new();
    each_backend(rt, |up, b| {
        if let Some(v) = value(b) {
            out.push(gauge(&[("upstream", up), ("backend", &b.addr_str)], v));
        }
    });
    out
}

fn requests(rt: &Runtime, m: &Metrics) -> Vec<Metric> {
    let mut out = Vec::new();
    each_counts(rt, |up, be, c| {
        for (status, n) in c.status_counts() {
            let status = status.to_string();
            out.push(counter(
                &[("upstream", up), ("backend", be), ("status", &status)],
                n,
            ));
        }
    });
    let unrouted = m.unrouted.load(Relaxed);
    if unrouted > 0 {
        let l = [("upstream", ""), ("backend", ""), ("status", "404")];
        out.push(counter(&l, unrouted));
    }
    out
}

fn duration(p: &Pool) -> Metric {
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
    metric.set_label(labels(&[("upstream", &p.cfg.name)]));
    metric.set_histogram(h);
    metric
}

fn failures(rt: &Runtime) -> Vec<Metric> {
    let mut out = Vec::new();
    each_backend(rt, |up, b| {
        let l = [("upstream", up), ("backend", b.addr_str.as_str())];
        out.push(counter(&l, b.counts.failures()));
    });
    out
}

fn admin_states(rt: &Runtime) -> Vec<Metric> {
    let mut out = Vec::new();
    each_backend(rt, |up, b| {
        for st in [
            AdminState::Active,
            AdminState::Draining,
            AdminState::Disabled,
        ] {
            let l = [
                ("upstream", up),
                ("backend", &b.addr_str),
                ("state", st.name()),
            ];
            out.push(gauge(&l, f64::from(u8::from(b.admin.state() == st))));
        }
    });
    out
}

fn tcp_sessions(rt: &Runtime) -> Vec<Metric> {
    let mut out = Vec::new();
    each_counts(rt, |up, be, c| {
        for end in SessionEnd::ALL {
            let n = c.sessions(end);
            if n > 0 {
                out.push(counter(
                    &[("upstream", up), ("backend", be), ("result", end.name())],
                    n,
                ));
            }
        }
    });
    out
}

fn tcp_bytes(rt: &Runtime) -> Vec<Metric> {
    let mut out = Vec::new();
    each_counts(rt, |up, be, c| {
        let (to_backend, to_client) = c.tcp_bytes();
        for (direction, n) in [("upstream", to_backend), ("downstream", to_client)] {
            if n > 0 {
                out.push(counter(
                    &[("upstream", up), ("backend", be), ("direction", direction)],
                    n,
                ));
            }
        }
    });
    out
}

fn rejected(m: &Metrics) -> Vec<Metric> {
    [
        ("malformed", &m.rejected),
        ("rate_limited", &m.rate_limited),
        ("queue_full", &m.queue_full),
        ("queue_timeout", &m.queue_timeout),
    ]
    .into_iter()
    .map(|(reason, v)| counter(&[("reason", reason)], v.load(Relaxed)))
    .collect()
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
