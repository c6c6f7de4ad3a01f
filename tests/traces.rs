//! OpenTelemetry traces (SPEC "Traces and access-log format") exported to a
//! real OTLP/HTTP receiver: spans per request and per attempt, W3C
//! `traceparent` upstream, sampling, a receiver that is down.

mod common;
use common::otlp::Receiver;
use common::recorder::Recorder;
use common::tcp::{TcpBackend, TcpMode};
use common::*;
use serde_json::Value;
use std::time::Duration;

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn tracing(r: &Receiver, ratio: f64) -> String {
    format!(
        "tracing: {{otlp: \"{}\", service_name: edge, sample_ratio: {ratio}}}\n",
        r.url()
    )
}

/// The `traceparent` the backend got with its last request: (trace id, span id, flags).
fn upstream_context(rec: &Recorder) -> (String, String, String) {
    let head = rec.requests().pop().expect("a request upstream").head;
    let tp = head
        .lines()
        .find_map(|l| l.strip_prefix("traceparent: "))
        .unwrap_or_else(|| panic!("no traceparent upstream: {head}"));
    let p: Vec<&str> = tp.trim().split('-').collect();
    assert_eq!((p.len(), p[0]), (4, "00"), "{tp}");
    (p[1].into(), p[2].into(), p[3].into())
}

fn traced_get(bulb: &Bulb, path: &str, trace: &str, flags: &str) -> u16 {
    let tp = format!("00-{trace}-{CLIENT_SPAN}-{flags}");
    get_with(bulb.addr, path, &[("traceparent", &tp)])
        .expect("get")
        .status
}

#[test]
fn a_request_has_one_span_and_one_child_per_attempt_and_its_context_goes_upstream() {
    let otlp = Receiver::start(0);
    let rec = Recorder::start();
    let conf = Conf::addrs(&[rec.addr])
        .default_access_log()
        .top(&tracing(&otlp, 1.0))
        .top("access_log: {path: \"{DIR}/access.log\", format: json}\n")
        .top("routes:\n  - {path_prefix: /api, upstream: web}\n  - {upstream: web}\n");
    let bulb = Bulb::start(&conf.yaml());
    // A sampled client context is kept: same trace, the client's span as parent.
    assert_eq!(traced_get(&bulb, "/api/x", CLIENT_TRACE, "01"), 200);
    let (trace, attempt_span, flags) = upstream_context(&rec);
    assert_eq!((trace.as_str(), flags.as_str()), (CLIENT_TRACE, "01"));
    let spans = otlp.trace(CLIENT_TRACE, 2);
    assert_eq!(spans.len(), 2, "{spans:?}");
    let req = spans
        .iter()
        .find(|s| s["kind"] == 2)
        .expect("a server span");
    let att = spans
        .iter()
        .find(|s| s["kind"] == 3)
        .expect("a client span");
    assert_eq!(req["parent_span_id"], CLIENT_SPAN);
    assert_eq!(att["parent_span_id"], req["span_id"]);
    assert_eq!(
        att["span_id"],
        attempt_span.as_str(),
        "the backend's parent is the attempt"
    );
    assert_eq!(req["service"], "edge");
    assert_eq!(req["name"], "GET /api");
    let a = &req["attributes"];
    assert_eq!(a["http.request.method"], "GET");
    assert_eq!(a["http.route"], "/api");
    assert_eq!(a["http.response.status_code"], 200);
    assert_eq!(a["client.address"], "127.0.0.1");
    assert_eq!(a["bulb.upstream"], "web");
    assert_eq!(att["attributes"]["server.port"], i64::from(rec.addr.port()));
    assert_eq!(att["attributes"]["bulb.outcome"], "ok");
    // No context from the client: a new trace, which the backend continues.
    assert_eq!(get(bulb.addr, "/other").expect("get").status, 200);
    let (fresh, _, flags) = upstream_context(&rec);
    assert_ne!(fresh, CLIENT_TRACE);
    assert_eq!(flags, "01");
    let spans = otlp.trace(&fresh, 2);
    assert_eq!(spans.len(), 2);
    assert!(
        spans
            .iter()
            .any(|s| s["kind"] == 2 && s["parent_span_id"] == ""),
        "{spans:?}"
    );
    // The JSON access log carries the trace id.
    let log = bulb.dir.join("access.log");
    let logged = wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|t| {
            t.contains(&format!("\"trace_id\":\"{CLIENT_TRACE}\""))
                && t.contains(&format!("\"trace_id\":\"{fresh}\""))
        })
    });
    assert!(
        logged.is_some(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

#[test]
fn a_retried_request_shows_two_attempts() {
    let otlp = Receiver::start(0);
    let ok = Backend::start("ok", Mode::Ok);
    let dead = format!("127.0.0.1:{}", free_port());
    let conf = Conf::empty()
        .backend(&dead, "")
        .backend(ok.addr, "")
        .upstream("    retries: 1\n")
        .top(&tracing(&otlp, 1.0));
    let bulb = Bulb::start(&conf.yaml());
    let mut retried: Option<Vec<Value>> = None;
    for i in 0..6 {
        let trace = format!("{:032x}", 0xabc0 + i);
        assert_eq!(traced_get(&bulb, "/", &trace, "01"), 200);
        let spans = otlp.trace(&trace, 2);
        if spans.len() == 3 {
            retried = Some(spans);
            break;
        }
    }
    let spans = retried.expect("one of six requests went to the dead backend first");
    let mut attempts: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 3).collect();
    attempts.sort_by_key(|s| s["attributes"]["bulb.attempt"].as_i64());
    let a = |i: usize, k: &str| attempts[i]["attributes"][k].clone();
    assert_eq!(
        (a(0, "bulb.outcome"), a(1, "bulb.outcome")),
        ("connect_error".into(), "ok".into())
    );
    assert_eq!(a(1, "bulb.retry_reason"), "connect_error");
    assert_eq!(
        attempts[0]["status"], 2,
        "a failed attempt has status ERROR"
    );
    let req = spans.iter().find(|s| s["kind"] == 2).unwrap();
    assert_eq!(req["attributes"]["bulb.attempts"], 2);
}

#[test]
fn sampling_keeps_sampled_parents_and_a_dead_receiver_only_drops_spans() {
    let mut otlp = Receiver::start(0);
    let rec = Recorder::start();
    let bulb = Bulb::start(&Conf::addrs(&[rec.addr]).top(&tracing(&otlp, 0.0)).yaml());
    // Ratio 0: a new trace is not sampled (its context still goes upstream,
    // flagged so), a client's sampled one is.
    assert_eq!(get(bulb.addr, "/").expect("get").status, 200);
    let (unsampled, _, flags) = upstream_context(&rec);
    assert_eq!(flags, "00");
    let unsampled_parent = format!("{:032x}", 0x5eed);
    assert_eq!(traced_get(&bulb, "/", &unsampled_parent, "00"), 200);
    assert_eq!(traced_get(&bulb, "/", CLIENT_TRACE, "01"), 200);
    assert_eq!(
        otlp.trace(CLIENT_TRACE, 2).len(),
        2,
        "a sampled parent is kept"
    );
    // Spans are exported in order: those before would have arrived by now.
    let all = otlp.spans();
    assert!(
        !all.iter()
            .any(|s| s["trace_id"] == unsampled.as_str()
                || s["trace_id"] == unsampled_parent.as_str()),
        "{all:?}"
    );

    // The receiver goes away: requests are unaffected, spans are dropped and counted.
    otlp.stop();
    let dropped = || bulb.metric("bulb_trace_spans_dropped_total").unwrap_or(0.0);
    let before = dropped();
    for i in 0..20 {
        let trace = format!("{:032x}", 0xd00d + i);
        assert_eq!(traced_get(&bulb, "/", &trace, "01"), 200);
    }
    assert!(
        wait_for(Duration::from_secs(15), || dropped() >= before + 40.0).is_some(),
        "{}",
        dropped()
    );
}

#[test]
fn a_tcp_session_has_a_span() {
    let otlp = Receiver::start(0);
    let echo = TcpBackend::start("echo", TcpMode::Echo);
    let conf = Conf::empty()
        .named("db")
        .backend(echo.addr, "")
        .listener("    protocol: tcp\n    upstream: db\n")
        .top(&tracing(&otlp, 1.0));
    let bulb = Bulb::start(&conf.yaml());
    let (s, hello) = common::tcp::tcp_hello(bulb.addr, Some("127.0.0.7")).expect("session");
    assert_eq!(hello, "echo");
    drop(s);
    let found = wait_for(Duration::from_secs(10), || {
        otlp.spans()
            .iter()
            .any(|s| s["name"] == "tcp session" && s["attributes"]["client.address"] == "127.0.0.7")
    });
    assert!(found.is_some(), "{:?}", otlp.spans());
}

#[test]
fn tracing_is_checked() {
    for (t, msg) in [
        ("{otlp: \"https://collector:4318/v1/traces\"}", "plain HTTP"),
        (
            "{otlp: \"http://127.0.0.1:4318/v1/traces\", sample_ratio: 1.5}",
            "sample_ratio must be from 0 to 1",
        ),
    ] {
        let yaml = format!("tracing: {t}\nlisteners: [{{address: 127.0.0.1:1}}]\nupstreams:\n  web:\n    backends: [{{address: 127.0.0.1:2}}]\n");
        assert_config_error(&yaml, Some(1), msg);
    }
}

#[test]
fn a_stopping_bulb_exports_its_last_spans() {
    let otlp = Receiver::start(0);
    let rec = Recorder::start();
    let mut bulb = Bulb::start(&Conf::addrs(&[rec.addr]).top(&tracing(&otlp, 1.0)).yaml());
    let last = format!("{:032x}", 0x1a57);
    assert_eq!(traced_get(&bulb, "/", &last, "01"), 200);
    // Stopped at once: the spans wait in the queue for a batch to fill.
    bulb.signal("TERM");
    assert!(bulb.wait_exit(Duration::from_secs(10)).is_some());
    assert_eq!(
        otlp.trace(&last, 2).len(),
        2,
        "exported before the process exited"
    );
}
