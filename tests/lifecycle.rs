//! Signals under load: SIGHUP reload (routes, backends, listeners), SIGTERM,
//! SIGQUIT + `bulb -u`.

mod common;
use common::*;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Short drain settings for the stop and hand-over tests.
const GRACE: &str = "grace_period_seconds: 1\ngraceful_shutdown_timeout_seconds: 3\n";

#[test]
fn reload_swaps_backends_under_load_without_errors() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    let bulb = Bulb::start(&Conf::web(&[&a]).top(GRACE).yaml());
    assert_eq!(bulb.generation(), 1);
    let load = Load::start(bulb.addr, 4, Duration::from_secs(20));
    load.flows(20); // the load is running
    bulb.rewrite(&Conf::web(&[&b]).top(GRACE).yaml());
    bulb.signal("HUP");
    assert!(bulb.wait_generation(2), "{}", bulb.logs());
    let before = b.hits();
    load.flows(50); // and goes on after it
    let st = load.finish();
    assert_eq!(st.errors + st.non2xx, 0, "{st:?}");
    assert!(b.hits() > before, "traffic moved to b");
    let a_hits = a.hits();
    assert_eq!(tally(bulb.addr, "/", 10).get("b"), Some(&10));
    assert_eq!(a.hits(), a_hits, "a no longer gets traffic");
    assert!(bulb
        .admin_get("/metrics")
        .body
        .contains("bulb_config_reloads_total{result=\"success\"} 1"));
}

#[test]
fn invalid_reload_keeps_the_old_config() {
    let a = Backend::start("a", Mode::Ok);
    let bulb = Bulb::start(&Conf::web(&[&a]).top(GRACE).yaml());
    let load = Load::start(bulb.addr, 2, Duration::from_secs(10));
    std::fs::write(&bulb.conf, "listeners: [{address: \"127.0.0.1:1\"}]\nupstreams:\n  web:\n    backends: [{address: 127.0.0.1:2, weight: 0}]\n").unwrap();
    bulb.signal("HUP");
    assert!(wait_for(Duration::from_secs(5), || bulb
        .admin_get("/metrics")
        .body
        .contains("bulb_config_reloads_total{result=\"error\"} 1"))
    .is_some());
    load.flows(50); // and goes on after it
    let st = load.finish();
    assert_eq!(st.errors + st.non2xx, 0, "{st:?}");
    assert_eq!(bulb.generation(), 1);
    assert_eq!(bulb.get("/").unwrap().body, "a");
    let logs = bulb.logs();
    assert!(
        logs.contains("bulb.yaml:4:47: weight 0 is out of range"),
        "{logs}"
    );
}

#[test]
fn reload_keeps_health_state_and_probes_new_backends_first() {
    let a = Backend::start("a", Mode::Ok);
    let down = Backend::start("down", Mode::Ok);
    down.stop();
    let fresh = Backend::start("fresh", Mode::Ok);
    fresh.stop();
    let hc = "    health_check: {kind: tcp, interval: 10s, timeout: 300ms}\n    retries: 0\n";
    let bulb = Bulb::start(&Conf::web(&[&a, &down]).top(GRACE).upstream(hc).yaml());
    // Once `down` has failed its first probe, bring it back: with a 10 s
    // interval it stays marked down until the next probe, reload or not.
    let probed = || {
        let status: serde_json::Value =
            serde_json::from_str(&bulb.admin_get("/status").body).expect("json");
        status["upstreams"]["web"]["backends"]
            .as_array()
            .expect("backends")
            .iter()
            .any(|b| b["address"] == down.addr.to_string() && b["probed"] == true)
    };
    assert!(
        wait_for(Duration::from_secs(5), probed).is_some(),
        "no first probe of {}",
        down.addr
    );
    down.restart();
    bulb.rewrite(
        &Conf::web(&[&a, &down, &fresh])
            .top(GRACE)
            .upstream(hc)
            .yaml(),
    );
    bulb.signal("HUP");
    assert!(bulb.wait_generation(2));
    let m = tally(bulb.addr, "/", 30);
    assert_eq!(
        m.get("a"),
        Some(&30),
        "a reload must not mark a down backend up, nor send to an unprobed one: {m:?}"
    );
}

#[test]
fn reload_adding_a_listener_never_refuses() {
    let a = Backend::start("a", Mode::Ok);
    let base = Conf::web(&[&a]).top(GRACE).yaml();
    let bulb = Bulb::start(&base);
    let second: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let load = Load::start(bulb.addr, 4, Duration::from_secs(20));
    load.flows(20); // the load is running
    bulb.rewrite(&base.replace(
        "listeners: [{address: \"{LISTEN}\"}]",
        &format!("listeners: [{{address: \"{{LISTEN}}\"}}, {{address: \"{second}\"}}]"),
    ));
    bulb.signal("HUP");
    let up = wait_for(Duration::from_secs(10), || {
        get(second, "/").map(|r| r.status == 200).unwrap_or(false)
    });
    assert!(up.is_some(), "new listener does not serve: {}", bulb.logs());
    load.flows(50); // and goes on after it
    let st = load.finish();
    assert_eq!(
        st.errors + st.non2xx,
        0,
        "old listener refused or failed during hand-over: {st:?}\n{}",
        bulb.logs()
    );
    assert!(st.ok > 50);
    assert_eq!(get(bulb.addr, "/").unwrap().body, "a");
    // The old process hands over and exits.
    let mut bulb = bulb;
    assert!(
        bulb.wait_exit(Duration::from_secs(10)).is_some(),
        "old process still running"
    );
    assert_eq!(get(second, "/").unwrap().body, "a");
    // Stop the successor: it is not our child, find it through the admin port.
    bulb.stop_successors();
}

#[test]
fn sigterm_idle_exits_quickly() {
    let a = Backend::start("a", Mode::Ok);
    let mut bulb = Bulb::start(&Conf::web(&[&a]).top(GRACE).yaml().replace(
        "grace_period_seconds: 1\ngraceful_shutdown_timeout_seconds: 3\n",
        "",
    ));
    assert_eq!(bulb.get("/").unwrap().status, 200);
    bulb.signal("TERM");
    let took = bulb
        .wait_exit(Duration::from_secs(10))
        .expect("exit after SIGTERM");
    assert!(took < Duration::from_secs(2), "idle exit took {took:?}");
    let st = bulb.child.wait().unwrap();
    assert!(st.success(), "{st:?}");
}

#[test]
fn sigterm_finishes_in_flight_requests() {
    let slow = Backend::start("slow", Mode::Slow(Duration::from_millis(1500)));
    let mut bulb = Bulb::start(&Conf::web(&[&slow]).top(GRACE).yaml());
    let addr = bulb.addr;
    let h = std::thread::spawn(move || get(addr, "/"));
    let arrived = wait_for(Duration::from_secs(5), || slow.hits() >= 1);
    assert!(arrived.is_some(), "the request reaches the backend");
    bulb.signal("TERM");
    let r = h.join().unwrap().expect("in-flight request completes");
    assert_eq!(r.status, 200);
    assert!(bulb.wait_exit(Duration::from_secs(6)).is_some());
}

#[test]
fn sigint_stops_fast() {
    let a = Backend::start("a", Mode::Ok);
    let mut bulb = Bulb::start(&Conf::web(&[&a]).top(GRACE).yaml());
    bulb.signal("INT");
    let took = bulb
        .wait_exit(Duration::from_secs(5))
        .expect("exit after SIGINT");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn sigquit_upgrade_under_load() {
    let a = Backend::start("a", Mode::Ok);
    let mut old = Bulb::start(&Conf::web(&[&a]).top(GRACE).yaml());
    let load = Load::start(old.addr, 4, Duration::from_secs(20));
    load.flows(20); // the load is running
    let mut new = Bulb::spawn(&old.conf, &old.dir, &["-u"]);
    let sock = old.dir.join("upgrade.sock");
    assert!(
        wait_for(Duration::from_secs(10), || sock.exists()).is_some(),
        "successor never listened on upgrade_sock"
    );
    old.signal("QUIT");
    assert!(
        old.wait_exit(Duration::from_secs(10)).is_some(),
        "old process did not exit"
    );
    load.flows(50); // and goes on after it
    let st = load.finish();
    assert_eq!(st.errors + st.non2xx, 0, "{st:?}\n{}", old.logs());
    assert!(st.ok > 50);
    assert_eq!(get(old.addr, "/").unwrap().body, "a");
    assert!(
        TcpStream::connect(old.admin).is_ok(),
        "admin listener handed over too"
    );
    let _ = new.kill();
    let _ = new.wait();
    let _ = Instant::now();
}

#[test]
fn daemon_mode_writes_pid_file_serves_and_reloads() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    let dir = tempdir();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let conf = dir.join("bulb.yaml");
    let yaml = Bulb::render(&Conf::web(&[&a]).no_admin().yaml(), addr, addr, &dir);
    std::fs::write(&conf, yaml).unwrap();
    // A relative path, as typed in a shell: it must still be found after
    // daemonizing (which leaves the working directory), on reload.
    let st = std::process::Command::new(bulb_bin())
        .current_dir(&dir)
        .arg("-d")
        .arg("-c")
        .arg("bulb.yaml")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        st.success(),
        "the foreground process returns once daemonized"
    );
    let pidf = dir.join("bulb.pid");
    assert!(wait_for(Duration::from_secs(10), || pidf.exists()
        && get(addr, "/").is_ok())
    .is_some());
    assert_eq!(get(addr, "/").unwrap().body, "a");
    let pid: i32 = std::fs::read_to_string(&pidf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let yaml = Bulb::render(&Conf::web(&[&b]).no_admin().yaml(), addr, addr, &dir);
    std::fs::write(&conf, yaml).unwrap();
    signal(pid, "HUP");
    assert!(
        wait_for(Duration::from_secs(5), || get(addr, "/")
            .is_ok_and(|r| r.body == "b"))
        .is_some(),
        "the daemon did not reload its (relative) configuration file"
    );
    signal(pid, "TERM");
    assert!(
        wait_for(Duration::from_secs(5), || TcpStream::connect(addr).is_err()).is_some(),
        "daemon did not stop"
    );
}

#[test]
fn reload_removing_a_listener_closes_it_and_keeps_the_rest() {
    let a = Backend::start("a", Mode::Ok);
    let second: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let base = Conf::web(&[&a]).top(GRACE).yaml();
    let two = base.replace(
        "listeners: [{address: \"{LISTEN}\"}]",
        &format!("listeners: [{{address: \"{{LISTEN}}\"}}, {{address: \"{second}\"}}]"),
    );
    let bulb = Bulb::start(&two);
    // The harness waits for the first listener only; Pingora binds the
    // others in turn.
    assert!(wait_for(Duration::from_secs(5), || get(second, "/")
        .is_ok_and(|r| r.body == "a"))
    .is_some());
    let load = Load::start(bulb.addr, 2, Duration::from_secs(20));
    bulb.rewrite(&base);
    bulb.signal("HUP");
    let closed = wait_for(Duration::from_secs(15), || {
        TcpStream::connect(second).is_err()
    });
    assert!(
        closed.is_some(),
        "removed listener still accepts: {}",
        bulb.logs()
    );
    load.flows(50); // and goes on after it
    let st = load.finish();
    assert_eq!(st.errors + st.non2xx, 0, "{st:?}");
    assert_eq!(get(bulb.addr, "/").unwrap().body, "a");
    let mut bulb = bulb;
    assert!(bulb.wait_exit(Duration::from_secs(10)).is_some());
    bulb.stop_successors();
}

#[test]
fn reload_changing_what_is_read_at_start_hands_over() {
    // Pingora's server keys and the client read buffer are read once, when
    // the process starts: a reload must not accept them and go on without.
    let a = Backend::start("a", Mode::Ok);
    let base = Conf::web(&[&a]).top(GRACE).yaml();
    let mut bulb = Bulb::start(&base);
    let load = Load::start(bulb.addr, 2, Duration::from_secs(20));
    load.flows(20); // the load is running
    bulb.rewrite(&base.replace(
        "graceful_shutdown_timeout_seconds: 3",
        "graceful_shutdown_timeout_seconds: 4\nlimits: {client_read_buffer_bytes: 8192}",
    ));
    bulb.signal("HUP");
    assert!(
        bulb.wait_exit(Duration::from_secs(10)).is_some(),
        "the old process must hand over to one that reads the new keys: {}",
        bulb.logs()
    );
    load.flows(50); // and goes on after it
    let st = load.finish();
    assert_eq!(st.errors + st.non2xx, 0, "{st:?}\n{}", bulb.logs());
    assert_eq!(get(bulb.addr, "/").unwrap().body, "a");
    let logs = bulb.logs();
    assert!(
        logs.contains(
            "Pingora server keys, limits.client_read_buffer_bytes changed: handing the sockets over"
        ),
        "{logs}"
    );
    bulb.stop_successors();
}

#[test]
fn reload_changing_the_upgrade_socket_is_rejected() {
    let a = Backend::start("a", Mode::Ok);
    let conf = |sock: &str| {
        format!(
            "pid_file: {{DIR}}/bulb.pid\nupgrade_sock: {{DIR}}/{sock}\n{}",
            Conf::web(&[&a]).top(GRACE).yaml()
        )
    };
    let mut bulb = Bulb::start(&conf("one.sock"));
    bulb.rewrite(&conf("two.sock"));
    bulb.signal("HUP");
    bulb.expect_log(
        "`upgrade_sock` cannot change on reload",
        Duration::from_secs(5),
    );
    assert!(bulb.wait_exit(Duration::from_millis(500)).is_none());
    assert_eq!(get(bulb.addr, "/").unwrap().body, "a");
}

#[test]
fn a_second_sighup_during_a_hand_over_starts_no_second_successor() {
    // A slow request keeps the old process draining after the hand-over;
    // a SIGHUP it gets meanwhile (a second `systemctl reload`) must not
    // start another successor, which would wait for sockets nobody sends.
    let slow = Backend::start("slow", Mode::Slow(Duration::from_millis(2000)));
    let base = Conf::web(&[&slow]).top(GRACE).yaml();
    let mut bulb = Bulb::start(&base);
    let addr = bulb.addr;
    let h = std::thread::spawn(move || get(addr, "/"));
    let arrived = wait_for(Duration::from_secs(5), || slow.hits() >= 1);
    assert!(arrived.is_some(), "the request reaches the backend");
    bulb.rewrite(&base.replace(
        "graceful_shutdown_timeout_seconds: 3",
        "graceful_shutdown_timeout_seconds: 4",
    ));
    bulb.signal("HUP");
    bulb.expect_log("successor bulb started", Duration::from_secs(10));
    // A pause, not a wait for a condition: the second HUP is meant to land
    // while the hand-over is under way or just done, as a second reload would.
    std::thread::sleep(Duration::from_millis(300));
    bulb.signal("HUP");
    let r = h.join().unwrap().expect("the in-flight request completes");
    assert_eq!(r.status, 200);
    assert!(bulb.wait_exit(Duration::from_secs(10)).is_some());
    let logs = bulb.logs();
    assert_eq!(logs.matches("successor bulb started").count(), 1, "{logs}");
    assert!(logs.contains("SIGHUP ignored"), "{logs}");
    assert_eq!(get(addr, "/").unwrap().status, 200);
    bulb.stop_successors();
}
