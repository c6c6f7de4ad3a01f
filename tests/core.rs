//! Core behaviour: balancing, routing, health, headers, config validation.

mod common;
use common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[test]
fn round_robin_gives_equal_shares() {
    let bs: Vec<Backend> = (1..=3)
        .map(|i| Backend::start(&format!("b{i}"), Mode::Ok))
        .collect();
    let refs: Vec<&Backend> = bs.iter().collect();
    let bulb = Bulb::start(
        &Conf::web(&refs)
            .upstream("    algorithm: round_robin\n")
            .yaml(),
    );
    let m = tally(bulb.addr, "/", 300);
    for b in &bs {
        let n = m.get(b.name()).copied().unwrap_or(0);
        assert!(
            (99..=101).contains(&n),
            "{} got {n} of 300: {m:?}",
            b.name()
        );
    }
}

#[test]
fn weights_one_to_three() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    let yaml = Conf::empty()
        .backend(a.addr, "weight: 1")
        .backend(b.addr, "weight: 3")
        .yaml();
    let bulb = Bulb::start(&yaml);
    let m = tally(bulb.addr, "/", 400);
    let (na, nb) = (
        m.get("a").copied().unwrap_or(0),
        m.get("b").copied().unwrap_or(0),
    );
    assert!(
        (95..=105).contains(&na) && (285..=315).contains(&nb),
        "a={na} b={nb}"
    );
}

fn hash_map_of(bulb: &Bulb, keys: usize) -> HashMap<String, String> {
    (0..keys)
        .map(|k| {
            let user = format!("user-{k}");
            let r = get_with(bulb.addr, "/", &[("X-User", &user)]).unwrap();
            assert_eq!(r.status, 200);
            (user, r.body)
        })
        .collect()
}

#[test]
fn consistent_hash_is_stable_minimal_and_shared() {
    let bs: Vec<Backend> = (1..=3)
        .map(|i| Backend::start(&format!("h{i}"), Mode::Ok))
        .collect();
    let refs: Vec<&Backend> = bs.iter().collect();
    let alg = "    algorithm: consistent_hash\n    hash_key: header:X-User\n";
    let one = Bulb::start(&Conf::web(&refs).upstream(alg).yaml());
    let two = Bulb::start(&Conf::web(&refs).upstream(alg).yaml());
    let m1 = hash_map_of(&one, 200);
    // Same key, same backend, every time.
    assert_eq!(m1, hash_map_of(&one, 200));
    // A second process with the same file agrees on every key.
    assert_eq!(m1, hash_map_of(&two, 200));
    let used: std::collections::HashSet<&String> = m1.values().collect();
    assert_eq!(used.len(), 3, "all backends get keys");
    // Remove h3: only h3's keys move.
    let three = Bulb::start(&Conf::web(&refs[..2]).upstream(alg).yaml());
    let m3 = hash_map_of(&three, 200);
    for (k, v) in &m1 {
        if v != "h3" {
            assert_eq!(&m3[k], v, "key {k} moved although its backend stayed");
        }
    }
}

#[test]
fn least_connections_avoids_the_slow_backend() {
    let fast = Backend::start("fast", Mode::Ok);
    let slow = Backend::start("slow", Mode::Slow(Duration::from_millis(300)));
    let bulb = Bulb::start(
        &Conf::web(&[&fast, &slow])
            .upstream("    algorithm: least_connections\n")
            .yaml(),
    );
    let load = Load::start(bulb.addr, 6, Duration::from_secs(3));
    std::thread::sleep(Duration::from_secs(3));
    let st = load.finish();
    assert_eq!(st.errors + st.non2xx, 0, "{st:?}");
    let (f, s) = (
        st.by_body.get("fast").copied().unwrap_or(0),
        st.by_body.get("slow").copied().unwrap_or(0),
    );
    assert!(
        s * 5 < f,
        "slow={s} fast={f}: least_connections should favour the fast backend"
    );
}

#[test]
fn tcp_health_check_ejects_and_readmits() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    let hc = "    health_check: {kind: tcp, interval: 200ms, timeout: 200ms, healthy_after: 2, unhealthy_after: 2}\n    retries: 0\n";
    let bulb = Bulb::start(&Conf::web(&[&a, &b]).upstream(hc).yaml());
    assert_eq!(tally(bulb.addr, "/", 10).len(), 2);
    b.stop();
    let t = Instant::now();
    // interval × unhealthy_after = 400 ms; allow generous margin.
    let took = wait_for(Duration::from_secs(3), || {
        bulb.admin_get("/status")
            .body
            .contains("\"healthy\": false")
    });
    assert!(
        took.is_some(),
        "backend not marked down: {}",
        bulb.admin_get("/status").body
    );
    eprintln!(
        "active tcp check (200ms x 2): marked down {:?} after stop",
        t.elapsed()
    );
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        t.elapsed()
    );
    let m = tally(bulb.addr, "/", 20);
    assert_eq!(m.get("a"), Some(&20), "{m:?}");
    b.restart();
    let back = wait_for(Duration::from_secs(3), || {
        tally(bulb.addr, "/", 4).contains_key("b")
    });
    eprintln!("active tcp check (200ms, healthy_after 2): traffic again {back:?} after restart");
    assert!(back.is_some(), "backend did not get traffic again");
}

#[test]
fn http_health_check_fails_on_status() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    let hc = "    health_check: {kind: http, path: /health, expect_status: [200], interval: 200ms, timeout: 500ms, healthy_after: 1, unhealthy_after: 1}\n";
    let bulb = Bulb::start(&Conf::web(&[&a, &b]).upstream(hc).yaml());
    assert_eq!(tally(bulb.addr, "/", 10).len(), 2);
    b.set_health_status(Some(500));
    assert!(
        wait_for(Duration::from_secs(3), || !tally(bulb.addr, "/", 6)
            .contains_key("b"))
        .is_some()
    );
    let m = tally(bulb.addr, "/", 30);
    assert_eq!(m.get("a"), Some(&30), "{m:?}");
    b.set_health_status(None);
    assert!(wait_for(Duration::from_secs(3), || tally(bulb.addr, "/", 6)
        .contains_key("b"))
    .is_some());
}

#[test]
fn new_backend_with_checks_waits_for_first_probe() {
    // A backend that is down at start never receives a request.
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    b.stop();
    let hc = "    health_check: {kind: tcp, interval: 5s, timeout: 200ms}\n    retries: 0\n";
    let bulb = Bulb::start(&Conf::web(&[&a, &b]).upstream(hc).yaml());
    let m = tally(bulb.addr, "/", 20);
    assert_eq!(m.get("a"), Some(&20), "{m:?}");
}

#[test]
fn routes_by_host_and_path_404_and_503() {
    let api = Backend::start("api", Mode::Ok);
    let web = Backend::start("web", Mode::Ok);
    let dead = Backend::start("dead", Mode::Ok);
    dead.stop();
    let yaml = Conf::empty()
        .top(
            "routes:\n  - {host: api.example.com, path_prefix: /v1, upstream: api}\n\
             \x20 - {host: \"*.example.com\", upstream: web}\n  - {path_prefix: /down, upstream: down}\n",
        )
        .upstreams(&format!(
            "  api: {{backends: [{{address: \"{}\"}}]}}\n  web: {{backends: [{{address: \"{}\"}}]}}\n\
             \x20 down:\n    backends: [{{address: \"{}\"}}]\n    health_check: {{kind: tcp, interval: 1s, timeout: 200ms}}\n",
            api.addr, web.addr, dead.addr
        ))
        .yaml();
    let bulb = Bulb::start(&yaml);
    let h = |host: &str, path: &str| get_with(bulb.addr, path, &[("Host", host)]).unwrap();
    assert_eq!(h("API.example.com:8080", "/v1/x").body, "api");
    assert_eq!(h("api.example.com", "/v2").body, "web");
    assert_eq!(h("www.example.com", "/").body, "web");
    assert_eq!(h("other.org", "/").status, 404);
    assert_eq!(
        h("example.com", "/").status,
        404,
        "*.example.com does not match the bare domain"
    );
    let t = Instant::now();
    let r = h("x.org", "/down/a");
    assert_eq!(r.status, 503);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "503 took {:?}",
        t.elapsed()
    );
}

#[test]
fn headers_seen_by_the_backend() {
    let a = Backend::start("a", Mode::Ok);
    let bulb = Bulb::start(&Conf::web(&[&a]).yaml());
    let r = get_with(
        bulb.addr,
        "/p?q=1",
        &[
            ("Host", "Example.COM:8080"),
            ("X-Forwarded-For", "10.9.8.7"),
            ("X-Real-IP", "6.6.6.6"),
            ("Connection", "close, X-Secret"),
            ("X-Secret", "s"),
            ("Keep-Alive", "timeout=5"),
            ("X-Other", "kept"),
        ],
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let seen = a.seen().pop().unwrap();
    assert_eq!(seen.line, "GET /p?q=1 HTTP/1.1");
    assert_eq!(seen.header("host"), Some("Example.COM:8080"));
    assert_eq!(seen.header("x-forwarded-for"), Some("10.9.8.7, 127.0.0.1"));
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        seen.header("x-secret"),
        None,
        "header named in Connection is hop-by-hop"
    );
    assert_eq!(seen.header("keep-alive"), None);
    assert_eq!(seen.header("x-other"), Some("kept"));
}

#[test]
fn hostname_backend_resolves() {
    let a = Backend::start("local", Mode::Ok);
    let yaml = Conf::empty()
        .backend(format!("localhost:{}", a.addr.port()), "")
        .yaml();
    let bulb = Bulb::start(&yaml);
    assert!(wait_for(Duration::from_secs(5), || bulb
        .get("/")
        .map(|r| r.status == 200)
        .unwrap_or(false))
    .is_some());
    assert_eq!(bulb.get("/").unwrap().body, "local");
}

#[test]
fn connect_failure_is_502_and_hang_is_504() {
    let dead = Backend::start("dead", Mode::Ok);
    dead.stop();
    let hang = Backend::start("hang", Mode::Hang);
    let yaml = Conf::empty()
        .top("routes: [{path_prefix: /hang, upstream: hang}, {upstream: dead}]\n")
        .upstreams(&format!(
            "  dead: {{backends: [{{address: \"{}\"}}], retries: 0}}\n\
             \x20 hang: {{backends: [{{address: \"{}\"}}], read_timeout: 500ms, retries: 0}}\n",
            dead.addr, hang.addr
        ))
        .yaml();
    let bulb = Bulb::start(&yaml);
    assert_eq!(bulb.get("/").unwrap().status, 502);
    let t = Instant::now();
    assert_eq!(bulb.get("/hang").unwrap().status, 504);
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(450) && e < Duration::from_millis(2500),
        "504 after {e:?}"
    );
}

fn check(yaml: &str) -> (bool, String, String) {
    let c = check_config(&tempdir(), "t.yaml", yaml);
    (
        c.code == Some(0),
        c.stdout.replace(&c.path, "F"),
        c.stderr.replace(&c.path, "F"),
    )
}

#[test]
fn config_test_flag_reports_places() {
    let ok = "listeners: [{address: 127.0.0.1:1}]\nupstreams:\n  web:\n    backends: [{address: 127.0.0.1:2}]\n";
    let (s, out, _) = check(ok);
    assert!(s);
    assert_eq!(out.trim(), "bulb: configuration F is valid");

    // unknown key inside a bulb section
    let (s, _, err) = check("listeners: [{address: 127.0.0.1:1}]\nupstreams:\n  web:\n    backends: [{address: 127.0.0.1:2}]\n    algoritm: random\n");
    assert!(!s);
    assert!(
        err.contains("F:5:5: ") && err.contains("unknown field `algoritm`"),
        "{err}"
    );

    // unknown top-level key
    let (s, _, err) = check(&format!("{ok}listners: []\n"));
    assert!(!s);
    assert!(
        err.contains("F:5:1: unknown top-level key `listners`"),
        "{err}"
    );

    // wrong type
    let (s, _, err) = check("listeners: [{address: 127.0.0.1:1}]\nupstreams:\n  web:\n    retries: lots\n    backends: [{address: 127.0.0.1:2}]\n");
    assert!(!s);
    assert!(
        err.contains("F:4:14: ") && err.contains("invalid type"),
        "{err}"
    );

    // weight 0 and a route to a missing upstream: both reported
    let (s, _, err) = check(
        "listeners: [{address: 127.0.0.1:1}]\nroutes:\n  - upstream: nope\nupstreams:\n  web:\n    backends:\n      - address: 127.0.0.1:2\n        weight: 0\n",
    );
    assert!(!s);
    assert!(err.contains("F:8:17: weight 0 is out of range"), "{err}");
    assert!(err.contains("F:3:15: route names upstream `nope`"), "{err}");

    // bad duration, bad hash key, no listeners
    let (s, _, err) = check(
        "upstreams:\n  web:\n    algorithm: consistent_hash\n    hash_key: body\n    read_timeout: 5 parsecs\n    backends: [{address: 127.0.0.1:2}]\n",
    );
    assert!(!s);
    assert!(err.contains("F:4:15: invalid hash_key `body`"), "{err}");
    assert!(err.contains("F:5:19: invalid duration"), "{err}");
    assert!(
        err.contains("at least one entry under `listeners`"),
        "{err}"
    );
}
