//! least_time and slow start (SPEC "Least time and slow start") with real
//! backends of controlled speed under concurrent load.

mod common;
use common::*;
use std::collections::HashMap;
use std::time::Duration;

/// Shares of the answers, by backend name, over `secs` of load from 20 clients.
fn shares(bulb: &Bulb, secs: f64) -> HashMap<String, f64> {
    let load = Load::start(bulb.addr, 20, Duration::from_secs_f64(secs));
    std::thread::sleep(Duration::from_secs_f64(secs));
    let st = load.finish();
    assert_eq!(st.errors + st.non2xx, 0, "{st:?}");
    let total = st.ok as f64;
    st.by_body
        .into_iter()
        .map(|(k, v)| (k, v as f64 / total))
        .collect()
}

fn lt(extra: &str) -> String {
    format!("    algorithm: least_time\n{extra}")
}

#[test]
fn a_slow_backend_gets_little_and_recovers_when_fast() {
    let a = Backend::start("a", Mode::Slow(Duration::from_millis(1)));
    let b = Backend::start("b", Mode::Slow(Duration::from_millis(1)));
    let c = Backend::start("c", Mode::Slow(Duration::from_millis(50)));
    let bulb = Bulb::start(
        &Conf::web(&[&a, &b, &c])
            .upstream(&lt("    least_time: {metric: header, decay: 1s}\n"))
            .yaml(),
    );
    let s = shares(&bulb, 2.0);
    assert!(s.get("c").copied().unwrap_or(0.0) < 0.10, "{s:?}");
    let status: serde_json::Value =
        serde_json::from_str(&bulb.admin_get("/status").body).expect("json");
    let slow = status["upstreams"]["web"]["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .find(|x| x["address"] == c.addr.to_string())
        .and_then(|x| x["response_time_ms"].as_f64())
        .expect("response_time_ms");
    assert!(slow > 30.0, "{slow}");
    assert!(bulb
        .admin_get("/metrics")
        .body
        .contains("bulb_backend_response_time_seconds{"));
    // The slow one becomes fast: it is tried again within about half a decay
    // (its old average drifts toward the pool's), then its average forgets
    // the slow time with the decay's time constant: within 3 × decay its
    // share is back.
    c.set_mode(Mode::Slow(Duration::from_millis(1)));
    let _ = shares(&bulb, 3.0);
    let s = shares(&bulb, 1.5);
    let share = s.get("c").copied().unwrap_or(0.0);
    assert!((0.20..0.47).contains(&share), "{s:?}");
}

#[test]
fn equal_speeds_share_equally_and_weights_count() {
    let a = Backend::start("a", Mode::Slow(Duration::from_millis(1)));
    let b = Backend::start("b", Mode::Slow(Duration::from_millis(1)));
    let c = Backend::start("c", Mode::Slow(Duration::from_millis(1)));
    let bulb = Bulb::start(&Conf::web(&[&a, &b, &c]).upstream(&lt("")).yaml());
    let s = shares(&bulb, 2.0);
    for n in ["a", "b", "c"] {
        let v = s.get(n).copied().unwrap_or(0.0);
        assert!((v * 3.0 - 1.0).abs() < 0.15, "within ±15 % of equal: {s:?}");
    }
    // Weights 1:3 at equal speed: about 1:3 (the formula needs requests in
    // flight to share by weight: slower answers keep 20 clients' worth there).
    a.set_mode(Mode::Slow(Duration::from_millis(20)));
    b.set_mode(Mode::Slow(Duration::from_millis(20)));
    let w = Conf::empty()
        .upstream("    algorithm: least_time\n")
        .backend(a.addr, "weight: 1")
        .backend(b.addr, "weight: 3")
        .yaml();
    let bulb = Bulb::start(&w);
    let s = shares(&bulb, 2.0);
    let ratio = s.get("b").copied().unwrap_or(0.0) / s.get("a").copied().unwrap_or(1.0);
    assert!((2.0..4.5).contains(&ratio), "b/a = {ratio}: {s:?}");
}

#[test]
fn a_failing_backend_is_avoided() {
    let a = Backend::start("a", Mode::Slow(Duration::from_millis(1)));
    let b = Backend::start("b", Mode::Slow(Duration::from_millis(1)));
    let bad = Backend::start("bad", Mode::Close);
    let bulb = Bulb::start(
        &Conf::web(&[&a, &b, &bad])
            .upstream(&lt("    retries: 2\n"))
            .yaml(),
    );
    let _ = shares(&bulb, 1.0);
    let before = bad.hits();
    let s = shares(&bulb, 1.5);
    let total: f64 = s.values().sum();
    assert!(total > 0.99, "{s:?}");
    // Every reset is a slow sample: the bad backend sees few of the requests.
    let load = Load::start(bulb.addr, 20, Duration::from_secs(1));
    std::thread::sleep(Duration::from_secs(1));
    let st = load.finish();
    let bad_hits = bad.hits() - before;
    assert!(
        (bad_hits as f64) < 0.10 * st.ok as f64,
        "bad got {bad_hits} of {}",
        st.ok
    );
}

#[test]
fn slow_start_ramps_a_returning_backend_and_a_reloaded_one() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    let hc = "    health_check: {kind: http, path: /health, interval: 100ms, timeout: 200ms, healthy_after: 1, unhealthy_after: 1}\n    slow_start: 4s\n";
    let bulb = Bulb::start(&Conf::web(&[&a, &b]).upstream(hc).yaml());
    // Both start together (as soon as both pass their first check): equal shares at once.
    let healthy = |be: &Backend| bulb.backend("web", be.addr)["healthy"] == true;
    assert!(wait_for(Duration::from_secs(5), || healthy(&a) && healthy(&b)).is_some());
    let s = shares(&bulb, 1.0);
    assert!(s.get("b").copied().unwrap_or(0.0) > 0.35, "{s:?}");
    // b fails its checks, then returns: a small share in its first second,
    // its full share after 4 s.
    b.set_health_status(Some(500));
    assert!(wait_for(Duration::from_secs(3), || !shares(&bulb, 0.3)
        .contains_key("b"))
    .is_some());
    b.set_health_status(None);
    assert!(wait_for(Duration::from_secs(5), || healthy(&b)).is_some());
    let first = shares(&bulb, 1.0);
    let ramped = || bulb.backend("web", b.addr)["effective_weight"] == 1.0;
    assert!(
        wait_for(Duration::from_secs(10), ramped).is_some(),
        "slow start ends"
    );
    let later = shares(&bulb, 1.0);
    let (f, l) = (
        first.get("b").copied().unwrap_or(0.0),
        later.get("b").copied().unwrap_or(0.0),
    );
    assert!(f < 0.25, "first second after return: {first:?}");
    assert!(l > 0.4, "after slow_start: {later:?}");
    // A backend added by a reload ramps too.
    let c = Backend::start("c", Mode::Ok);
    bulb.rewrite(&Conf::web(&[&a, &b, &c]).upstream(hc).yaml());
    bulb.signal("HUP");
    assert!(bulb.wait_generation(2));
    assert!(wait_for(Duration::from_secs(5), || healthy(&c)).is_some());
    let s = shares(&bulb, 1.0);
    assert!(s.get("c").copied().unwrap_or(0.0) < 0.2, "{s:?}");
    let status = bulb.admin_get("/status").body;
    assert!(status.contains("effective_weight"), "{status}");
}

#[test]
fn config_errors_for_least_time_and_slow_start() {
    let dir = tempdir();
    let cases = [
        (
            "    algorithm: consistent_hash\n    slow_start: 5s\n",
            "slow_start cannot apply to consistent_hash",
        ),
        (
            "    least_time: {metric: header}\n",
            "apply only to algorithm: least_time",
        ),
        (
            "    algorithm: least_time\n    least_time: {metric: nope}\n",
            "unknown least_time metric",
        ),
    ];
    for (i, (extra, want)) in cases.iter().enumerate() {
        let yaml = format!(
            "listeners: [{{address: 127.0.0.1:1}}]\nupstreams:\n  web:\n{extra}    backends: [{{address: 127.0.0.1:2}}]\n"
        );
        let c = check_config(&dir, &format!("lt{i}.yaml"), &yaml);
        let (code, err) = (c.code, c.stderr);
        assert_eq!(code, Some(1), "case {i}: {err}");
        assert!(err.contains(want), "case {i}: {err}");
    }
}
