//! Runtime operations (SPEC "Runtime operations"): drain, disable, enable
//! and weight through the admin API; who may; overrides across SIGHUP and
//! restarts.

mod common;
use common::*;
use std::net::SocketAddr;
use std::time::Duration;

/// An admin write; the status.
fn write(admin: SocketAddr, method: &str, path: &str, body: &str, token: Option<&str>) -> u16 {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    parse_resp(&raw(admin, req.as_bytes()).expect("admin")).map_or(0, |r| r.status)
}

#[test]
fn drain_under_load_loses_nothing_and_enable_brings_it_back() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Slow(Duration::from_millis(20)));
    let bulb = Bulb::start(&Conf::web(&[&a, &b]).yaml());
    let load = Load::start(bulb.addr, 4, Duration::from_secs(10));
    load.flows(20);
    let path = format!("/upstreams/web/backends/{}/drain", b.addr);
    assert_eq!(write(bulb.admin, "POST", &path, "", None), 200);
    assert!(
        wait_for(Duration::from_secs(2), || bulb.backend("web", b.addr)
            ["in_flight"]
            == 0)
        .is_some(),
        "in-flight requests on the drained backend did not finish"
    );
    let hits = b.hits();
    load.flows(50); // fifty more requests, none of them on b
    assert_eq!(b.hits(), hits, "a drained backend got new requests");
    assert_eq!(bulb.backend("web", b.addr)["admin_state"], "draining");
    assert!(bulb.admin_get("/metrics").body.contains(&format!(
        "bulb_backend_admin_state{{upstream=\"web\",backend=\"{}\",state=\"draining\"}} 1",
        b.addr
    )));
    let enable = format!("/upstreams/web/backends/{}/enable", b.addr);
    assert_eq!(write(bulb.admin, "POST", &enable, "", None), 200);
    let back = wait_for(Duration::from_secs(5), || b.hits() > hits);
    assert!(back.is_some(), "enabled backend got nothing");
    let st = load.finish();
    assert_eq!(st.errors + st.non2xx, 0, "{st:?}");
    assert!(b.hits() > hits, "enabled backend got nothing");
}

#[test]
fn weight_changes_the_share_and_survives_a_reload() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    let bulb = Bulb::start(&Conf::web(&[&a, &b]).yaml());
    let path = format!("/upstreams/web/backends/{}/weight", b.addr);
    assert_eq!(
        write(bulb.admin, "PUT", &path, r#"{"weight": 3}"#, None),
        200
    );
    let m = tally(bulb.addr, "/", 40);
    assert_eq!(m.get("b"), Some(&30), "{m:?}");
    assert_eq!(bulb.backend("web", b.addr)["weight"], 3);
    // Bad bodies and unknown names.
    assert_eq!(
        write(bulb.admin, "PUT", &path, r#"{"weight": 0}"#, None),
        400
    );
    assert_eq!(write(bulb.admin, "PUT", &path, "nope", None), 400);
    assert_eq!(
        write(
            bulb.admin,
            "POST",
            "/upstreams/nope/backends/127.0.0.1:1/drain",
            "",
            None
        ),
        404
    );
    assert_eq!(
        write(
            bulb.admin,
            "POST",
            "/upstreams/web/backends/127.0.0.1:1/drain",
            "",
            None
        ),
        404
    );
    // A reload keeps the override for a backend that stays.
    bulb.rewrite(&Conf::web(&[&a, &b]).upstream("    retries: 2\n").yaml());
    bulb.signal("HUP");
    assert!(bulb.wait_generation(2));
    assert_eq!(tally(bulb.addr, "/", 40).get("b"), Some(&30));
}

#[test]
fn writes_need_the_token_when_one_is_set() {
    let a = Backend::start("a", Mode::Ok);
    let bulb = Bulb::start(&Conf::web(&[&a]).yaml().replace(
        "admin: {address: \"{ADMIN}\"}",
        "admin: {address: \"{ADMIN}\", token: s3cret}",
    ));
    let path = format!("/upstreams/web/backends/{}/disable", a.addr);
    assert_eq!(write(bulb.admin, "POST", &path, "", None), 401);
    assert_eq!(write(bulb.admin, "POST", &path, "", Some("wrong")), 403);
    assert_eq!(bulb.backend("web", a.addr)["admin_state"], "active");
    assert_eq!(write(bulb.admin, "POST", &path, "", Some("s3cret")), 200);
    assert_eq!(bulb.backend("web", a.addr)["admin_state"], "disabled");
    // Disabled: nothing usable, 503, while health checks would go on.
    assert_eq!(bulb.get("/").expect("request").status, 503);
    assert!(
        bulb.logs().contains("admin: 127.0.0.1 set upstream web"),
        "{}",
        bulb.logs()
    );
}

#[test]
fn the_state_file_carries_overrides_across_a_restart() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    let yaml = Conf::web(&[&a, &b]).yaml().replace(
        "admin: {address: \"{ADMIN}\"}",
        "admin: {address: \"{ADMIN}\", state_file: \"{DIR}/state.json\"}",
    );
    let mut bulb = Bulb::start(&yaml);
    let drain = format!("/upstreams/web/backends/{}/drain", a.addr);
    let weight = format!("/upstreams/web/backends/{}/weight", b.addr);
    assert_eq!(write(bulb.admin, "POST", &drain, "", None), 200);
    assert_eq!(
        write(bulb.admin, "PUT", &weight, r#"{"weight": 7}"#, None),
        200
    );
    let saved = std::fs::read_to_string(bulb.dir.join("state.json")).expect("state file");
    assert!(saved.contains("draining"), "{saved}");
    // Restart: same file, same directory.
    bulb.signal("INT");
    assert!(bulb.wait_exit(Duration::from_secs(5)).is_some());
    let again = Bulb::spawn(&bulb.conf, &bulb.dir, &[]);
    bulb.child = again;
    bulb.wait_ready();
    assert_eq!(bulb.backend("web", a.addr)["admin_state"], "draining");
    assert_eq!(bulb.backend("web", b.addr)["weight"], 7);
    assert_eq!(tally(bulb.addr, "/", 10).get("b"), Some(&10));
    // A corrupt file is logged and ignored, never fatal.
    std::fs::write(bulb.dir.join("state.json"), "{not json").expect("write");
    bulb.signal("INT");
    assert!(bulb.wait_exit(Duration::from_secs(5)).is_some());
    bulb.child = Bulb::spawn(&bulb.conf, &bulb.dir, &[]);
    bulb.wait_ready();
    assert_eq!(bulb.backend("web", a.addr)["admin_state"], "active");
    assert!(bulb.logs().contains("is not valid"), "{}", bulb.logs());
}

#[test]
fn diff_reports_changes_and_the_keys_that_move() {
    let dir = tempdir();
    let write_conf = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, body).expect("write");
        p
    };
    let old = write_conf(
        "old.yaml",
        "listeners: [{address: 127.0.0.1:1}]\nupstreams:\n  web:\n    algorithm: consistent_hash\n    backends: [{address: 10.0.0.1:80}, {address: 10.0.0.2:80}, {address: 10.0.0.3:80}]\n",
    );
    let new = write_conf(
        "new.yaml",
        "listeners: [{address: 127.0.0.1:1}, {address: 127.0.0.1:2}]\nroutes: [{upstream: web}]\nupstreams:\n  web:\n    algorithm: consistent_hash\n    backends: [{address: 10.0.0.1:80}, {address: 10.0.0.2:80}]\n  api:\n    backends: [{address: 10.0.0.9:80, weight: 2}]\n",
    );
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bulb_bin())
            .args(args)
            .output()
            .expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (new_s, old_s) = (new.display().to_string(), old.display().to_string());
    let (code, json) = run(&["-t", "-c", &new_s, "--diff", &old_s, "--format", "json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["listeners"]["added"][0], "127.0.0.1:2 (http)");
    assert_eq!(v["listeners"]["hand_over"], true);
    assert_eq!(v["listeners"]["hand_over_for"][0], "listeners");
    assert_eq!(v["upstreams"]["added"][0], "api");
    let web = &v["upstreams"]["changed"]["web"];
    assert_eq!(web["backends_removed"][0], "10.0.0.3:80");
    let moved = web["keys_moved_percent"].as_f64().expect("percent");
    assert!(
        (25.0..42.0).contains(&moved),
        "removing one of three moved {moved} %"
    );
    // Re-weighting, in text.
    let reweighed = write_conf(
        "w.yaml",
        "listeners: [{address: 127.0.0.1:1}]\nupstreams:\n  web:\n    algorithm: consistent_hash\n    backends: [{address: 10.0.0.1:80, weight: 3}, {address: 10.0.0.2:80}, {address: 10.0.0.3:80}]\n",
    );
    let (code, text) = run(&[
        "-t",
        "-c",
        &reweighed.display().to_string(),
        "--diff",
        &old_s,
    ]);
    assert_eq!(code, Some(0));
    assert!(
        text.contains("backend ~ 10.0.0.1:80 weight 1 -> 3"),
        "{text}"
    );
    assert!(text.contains("% of keys move"), "{text}");
    // An invalid NEW exits 1.
    let bad = write_conf("bad.yaml", "listeners: []\n");
    let (code, _) = run(&["-t", "-c", &bad.display().to_string(), "--diff", &old_s]);
    assert_eq!(code, Some(1));
}
