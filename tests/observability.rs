//! Admin endpoints, metrics and the access log.

mod common;
use common::*;
use std::time::Duration;

/// Fast TCP health checks for the observability tests.
const TCP_CHECK: &str =
    "    health_check: {kind: tcp, interval: 200ms, timeout: 200ms, unhealthy_after: 1, healthy_after: 1}\n";

#[test]
fn healthz_status_and_metrics() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    let bulb = Bulb::start(&Conf::web(&[&a, &b]).upstream(TCP_CHECK).yaml());
    let h = bulb.admin_get("/healthz");
    assert_eq!((h.status, h.body.as_str()), (200, "ok"));

    tally(bulb.addr, "/", 10);
    let s: serde_json::Value = serde_json::from_str(&bulb.admin_get("/status").body).unwrap();
    assert_eq!(s["generation"], 1);
    let web = &s["upstreams"]["web"];
    assert_eq!(web["algorithm"], "round_robin");
    let bs = web["backends"].as_array().unwrap();
    assert_eq!(bs.len(), 2);
    for be in bs {
        for k in [
            "address",
            "healthy",
            "weight",
            "backup",
            "in_flight",
            "requests",
            "failures",
        ] {
            assert!(!be[k].is_null(), "missing {k} in {be}");
        }
        assert_eq!(be["requests"], 5);
        assert_eq!(be["healthy"], true);
        assert_eq!(be["weight"], 1);
        assert_eq!(be["backup"], false);
        assert_eq!(be["in_flight"], 0);
    }

    let m = bulb.admin_get("/metrics");
    assert_eq!(m.status, 200);
    for name in [
        "bulb_requests_total",
        "bulb_request_duration_seconds_bucket",
        "bulb_request_duration_seconds_count",
        "bulb_backend_healthy",
        "bulb_backend_in_flight",
        "bulb_config_reloads_total",
    ] {
        assert!(m.body.contains(name), "{name} missing:\n{}", m.body);
    }
    let a_label = format!(
        "bulb_requests_total{{upstream=\"web\",backend=\"{}\",status=\"200\"}}",
        a.addr
    );
    assert_eq!(metric(&m.body, &a_label), Some(5.0), "{}", m.body);
    assert_eq!(
        metric(
            &m.body,
            "bulb_request_duration_seconds_count{upstream=\"web\"}"
        ),
        Some(10.0)
    );

    // The health gauge drops when a backend stops.
    let gauge = format!(
        "bulb_backend_healthy{{upstream=\"web\",backend=\"{}\"}}",
        b.addr
    );
    assert_eq!(metric(&m.body, &gauge), Some(1.0));
    b.stop();
    assert!(wait_for(Duration::from_secs(3), || metric(
        &bulb.admin_get("/metrics").body,
        &gauge
    ) == Some(0.0))
    .is_some());
}

#[test]
fn admin_is_not_served_on_the_proxy_listener() {
    let a = Backend::start("a", Mode::Ok);
    let bulb = Bulb::start(&Conf::web(&[&a]).upstream(TCP_CHECK).yaml());
    for p in ["/status", "/metrics", "/healthz"] {
        let r = bulb.get(p).unwrap();
        assert_eq!(
            r.body, "a",
            "{p} on the proxy listener must go to the backend"
        );
    }
}

#[test]
fn counters_survive_reload_and_removed_backends_disappear() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    let bulb = Bulb::start(&Conf::web(&[&a, &b]).upstream(TCP_CHECK).yaml());
    tally(bulb.addr, "/", 10);
    bulb.rewrite(&Conf::web(&[&a]).upstream(TCP_CHECK).yaml());
    bulb.signal("HUP");
    assert!(bulb.wait_generation(2));
    let m = bulb.admin_get("/metrics").body;
    let a_label = format!(
        "bulb_requests_total{{upstream=\"web\",backend=\"{}\",status=\"200\"}}",
        a.addr
    );
    assert_eq!(metric(&m, &a_label), Some(5.0), "{m}");
    assert!(
        !m.contains(&b.addr.to_string()),
        "removed backend still exported:\n{m}"
    );
    assert_eq!(
        metric(&m, "bulb_config_reloads_total{result=\"success\"}"),
        Some(1.0)
    );
}

#[test]
fn access_log_to_a_file_and_reopen_on_hup() {
    let a = Backend::start("a", Mode::Ok);
    let dir_marker = "{DIR}/access.log";
    let bulb = Bulb::start(
        &Conf::web(&[&a])
            .default_access_log()
            .top(&format!("access_log: {dir_marker}\n"))
            .upstream(TCP_CHECK)
            .yaml(),
    );
    let log = bulb.dir.join("access.log");
    tally(bulb.addr, "/x?y=1", 3);
    assert!(
        wait_for(Duration::from_secs(3), || std::fs::read_to_string(&log)
            .map(|s| s.lines().count() == 3)
            .unwrap_or(false))
        .is_some()
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().next().unwrap();
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains("\"GET /x?y=1 HTTP/1.1\" 200 1 \"-\" \"-\""),
        "{line}"
    );
    assert!(line.contains(&a.addr.to_string()), "{line}");
    // logrotate: move the file away, HUP, new lines go to a new file.
    std::fs::rename(&log, bulb.dir.join("access.log.1")).unwrap();
    bulb.signal("HUP");
    assert!(bulb.wait_generation(2));
    tally(bulb.addr, "/", 2);
    assert!(
        wait_for(Duration::from_secs(3), || std::fs::read_to_string(&log)
            .map(|s| s.lines().count() == 2)
            .unwrap_or(false))
        .is_some()
    );
}

#[test]
fn json_access_log_lines_parse_and_carry_ids() {
    let a = Backend::start("a", Mode::Ok);
    let conf = Conf::web(&[&a])
        .default_access_log()
        .top("access_log: {path: \"{DIR}/access.log\", format: json}\n");
    let bulb = Bulb::start(&conf.yaml());
    let hostile = b"GET /q?x=%22y HTTP/1.1\r\nHost: a\r\nUser-Agent: tab\there \"quoted\" back\\slash \xc3\xa9\r\nX-Request-Id: req-42\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nConnection: close\r\n\r\n";
    assert!(raw_text(bulb.addr, hostile).starts_with("HTTP/1.1 200"));
    let log = bulb.dir.join("access.log");
    let lines = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("each line is JSON"))
            .filter(|v| v["uri"] == "/q?x=%22y")
            .collect::<Vec<_>>()
    };
    assert!(wait_for(Duration::from_secs(5), || !lines().is_empty()).is_some());
    let v = &lines()[0];
    assert_eq!(v["status"], 200);
    assert_eq!(v["method"], "GET");
    assert_eq!(v["user_agent"], "tab\there \"quoted\" back\\slash é");
    assert_eq!(v["request_id"], "req-42");
    assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(v["upstream"], "web");
    assert_eq!(v["backend"], a.addr.to_string());
    assert_eq!(v["attempts"], 1);
    assert!(v["duration"].as_f64().is_some_and(|d| d >= 0.0), "{v}");
    assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
    // A bad format is a config error with its place.
    let bad = Conf::web(&[&a])
        .default_access_log()
        .top("access_log: {path: stdout, format: xml}\n")
        .yaml()
        .replace("{LISTEN}", "127.0.0.1:1")
        .replace("{ADMIN}", "127.0.0.1:2");
    let c = check_config(&bulb.dir, "bad.yaml", &bad);
    assert_eq!(c.code, Some(1), "{}", c.stderr);
    assert!(
        c.stderr.contains("unknown access_log format `xml`"),
        "{}",
        c.stderr
    );
}
