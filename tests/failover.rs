//! Failure handling: retries, passive ejection, timeouts, backups, all-down,
//! unresolvable names.

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn killing_a_backend_mid_load_loses_nothing() {
    let bs: Vec<Backend> = (1..=3)
        .map(|i| Backend::start(&format!("b{i}"), Mode::Ok))
        .collect();
    let refs: Vec<&Backend> = bs.iter().collect();
    let extra = "    retries: 2\n    passive: {max_fails: 1, fail_timeout: 10s}\n    health_check: {kind: tcp, interval: 500ms, timeout: 300ms, unhealthy_after: 1}\n";
    let bulb = Bulb::start(&Conf::web(&refs).upstream(extra).yaml());
    let load = Load::start(bulb.addr, 4, Duration::from_secs(20));
    load.flows(50);
    bs[1].stop();
    // The health check sees it down; the load goes on through the change.
    let down = wait_for(Duration::from_secs(5), || {
        bulb.backend("web", bs[1].addr)["active_healthy"] == false
    });
    assert!(down.is_some(), "the stopped backend is marked down");
    load.flows(100);
    let st = load.finish();
    eprintln!(
        "mid-load kill: {} requests, {} non-2xx, {} socket errors, by backend {:?}",
        st.ok + st.non2xx + st.errors,
        st.non2xx,
        st.errors,
        st.by_body
    );
    assert_eq!(st.non2xx, 0, "{st:?}");
    assert_eq!(st.errors, 0, "{st:?}");
    assert!(st.ok > 100, "{st:?}");
}

#[test]
fn stopped_backend_without_checks_is_retried_transparently() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    b.stop();
    let bulb = Bulb::start(&Conf::web(&[&a, &b]).upstream("    retries: 1\n").yaml());
    let m = tally(bulb.addr, "/", 40);
    assert_eq!(m.get("a"), Some(&40), "{m:?}");
    assert!(
        bulb.backend("web", b.addr)["failures"]
            .to_string()
            .parse::<u64>()
            .unwrap()
            > 0
    );
}

#[test]
fn hanging_backend_gives_504_and_counts_a_failure() {
    let hang = Backend::start("hang", Mode::Hang);
    let bulb = Bulb::start(
        &Conf::web(&[&hang])
            .upstream("    read_timeout: 400ms\n    retries: 0\n")
            .yaml(),
    );
    let t = Instant::now();
    assert_eq!(bulb.get("/").unwrap().status, 504);
    assert!(
        t.elapsed() < Duration::from_millis(2000),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(bulb.backend("web", hang.addr)["failures"].to_string(), "1");
}

#[test]
fn a_trickled_response_head_is_cut_at_read_timeout() {
    // One byte every 100 ms: each read waits far less than `read_timeout`,
    // the whole 38-byte head takes ~3.8 s. The head has one deadline.
    let slow = Backend::start("slow", Mode::Trickle(Duration::from_millis(100)));
    let bulb = Bulb::start(
        &Conf::web(&[&slow])
            .upstream("    read_timeout: 1s\n    retries: 0\n")
            .yaml(),
    );
    let t = Instant::now();
    assert_eq!(bulb.get("/").unwrap().status, 504);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(3000),
        "{took:?}"
    );
}

#[test]
fn all_down_is_fast_then_recovers() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    a.stop();
    b.stop();
    // Without active checks: every tried backend refuses -> 502, fast.
    let plain = Bulb::start(&Conf::web(&[&a, &b]).upstream("    retries: 1\n").yaml());
    let t = Instant::now();
    assert_eq!(plain.get("/").unwrap().status, 502);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    // With active checks: nothing usable -> 503 without a connect.
    let checked = Bulb::start(&Conf::web(&[&a, &b]).upstream("    health_check: {kind: tcp, interval: 300ms, timeout: 200ms, healthy_after: 1}\n").yaml());
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(checked.get("/").unwrap().status, 503);
    }
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "20 × 503 took {:?}",
        t.elapsed()
    );
    a.restart();
    let back = wait_for(Duration::from_secs(3), || {
        checked.get("/").map(|r| r.status == 200).unwrap_or(false)
    });
    assert!(back.is_some(), "no recovery");
    assert_eq!(plain.get("/").unwrap().body, "a");
}

#[test]
fn passive_ejection_and_readmission() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    let bulb = Bulb::start(
        &Conf::web(&[&a, &b])
            .upstream("    retries: 1\n    passive: {max_fails: 2, fail_timeout: 1s}\n")
            .yaml(),
    );
    b.stop();
    let baddr = b.addr.to_string();
    // Two failures eject b; from then on it is not even tried.
    let m = tally(bulb.addr, "/", 10);
    assert_eq!(m.get("a"), Some(&10));
    assert_eq!(bulb.backend("web", &baddr)["healthy"].to_string(), "false");
    let fails = bulb.backend("web", &baddr)["failures"].to_string();
    assert_eq!(fails, "2", "ejected after max_fails");
    tally(bulb.addr, "/", 10);
    assert_eq!(
        bulb.backend("web", &baddr)["failures"].to_string(),
        "2",
        "an ejected backend gets no attempts"
    );
    // After fail_timeout it is tried again; back up, it serves.
    b.restart();
    let t = Instant::now();
    assert!(wait_for(Duration::from_secs(4), || tally(bulb.addr, "/", 4)
        .contains_key("b"))
    .is_some());
    eprintln!(
        "passive: ejected after 2 failures; readmitted {:?} after restart (fail_timeout 1s)",
        t.elapsed()
    );
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "readmitted before fail_timeout: {:?}",
        t.elapsed()
    );
}

#[test]
fn backup_only_while_primaries_are_down() {
    let p = Backend::start("primary", Mode::Ok);
    let bk = Backend::start("backup", Mode::Ok);
    let yaml = Conf::empty()
        .upstream("    health_check: {kind: tcp, interval: 200ms, timeout: 200ms, healthy_after: 1, unhealthy_after: 1}\n")
        .backend(p.addr, "")
        .backend(bk.addr, "backup: true")
        .yaml();
    let bulb = Bulb::start(&yaml);
    assert_eq!(tally(bulb.addr, "/", 20).get("primary"), Some(&20));
    p.stop();
    assert!(wait_for(Duration::from_secs(3), || tally(bulb.addr, "/", 5)
        .get("backup")
        == Some(&5))
    .is_some());
    p.restart();
    assert!(wait_for(Duration::from_secs(3), || tally(bulb.addr, "/", 5)
        .get("primary")
        == Some(&5))
    .is_some());
    assert_eq!(tally(bulb.addr, "/", 20).get("primary"), Some(&20));
}

#[test]
fn unresolvable_name_beside_a_good_backend() {
    let a = Backend::start("a", Mode::Ok);
    let yaml = Conf::empty()
        .upstream("    discovery_interval: 500ms\n")
        .backend(a.addr, "")
        .backend("no-such-host.invalid:80", "")
        .yaml();
    let bulb = Bulb::start(&yaml);
    assert_eq!(tally(bulb.addr, "/", 20).get("a"), Some(&20));
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(tally(bulb.addr, "/", 5).get("a"), Some(&5));
    let logs = bulb.logs();
    assert!(
        logs.contains("cannot resolve no-such-host.invalid:80"),
        "{logs}"
    );
    assert!(!logs.contains("panicked"));
}

#[test]
fn reset_before_response_is_retried_for_get_but_not_for_post() {
    let bad = Backend::start("bad", Mode::Close);
    let good = Backend::start("good", Mode::Ok);
    let yaml = Conf::addrs(&[bad.addr, good.addr])
        .upstream("    retries: 1\n    algorithm: consistent_hash\n    hash_key: header:X-K\n")
        .yaml();
    let bulb = Bulb::start(&yaml);
    // Find a key that hashes to `bad` first.
    let key = (0..200)
        .map(|i| format!("k{i}"))
        .find(|k| {
            let before = bad.hits();
            let _ = get_with(bulb.addr, "/", &[("X-K", k)]);
            bad.hits() > before
        })
        .expect("some key maps to bad");
    let r = get_with(bulb.addr, "/", &[("X-K", &key)]).unwrap();
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "good"),
        "GET is replayed on the next backend"
    );
    let (b0, g0) = (bad.hits(), good.hits());
    let req = format!("POST /x HTTP/1.1\r\nHost: t\r\nX-K: {key}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    let r = parse_resp(&raw(bulb.addr, req.as_bytes()).unwrap()).unwrap();
    assert_eq!(r.status, 502);
    assert_eq!(
        (bad.hits() - b0, good.hits() - g0),
        (1, 0),
        "the POST was sent once, not replayed"
    );
}
