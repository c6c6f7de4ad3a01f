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
