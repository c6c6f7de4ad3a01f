//! Upstream choice policies (SPEC "Route policies"): `sticky` cookies and
//! weighted `split`s, through real bulb processes and real backends.

mod common;
use common::*;
use std::net::SocketAddr;
use std::time::Duration;

/// A client with a one-cookie jar.
struct Client {
    cookie: Option<String>,
}

impl Client {
    /// GET `/` through `addr` with the jar's cookie; the backend that
    /// answered, keeping any cookie set.
    fn get(&mut self, addr: SocketAddr) -> String {
        let headers: Vec<(&str, &str)> = self
            .cookie
            .as_deref()
            .map(|c| ("Cookie", c))
            .into_iter()
            .collect();
        let r = get_with(addr, "/", &headers).expect("get");
        assert_eq!(r.status, 200, "no request fails");
        if let Some(set) = r.header("set-cookie") {
            self.cookie = Some(set.split(';').next().unwrap().to_string());
        }
        r.body
    }
}

/// Every client of backend `gone` lands elsewhere and stays there; the
/// others stay where they were.
fn move_off(clients: &mut [Client], home: &mut [String], gone: &str, addr: SocketAddr) {
    for (c, h) in clients.iter_mut().zip(home.iter_mut()) {
        let before = c.cookie.clone();
        let now = c.get(addr);
        if h == gone {
            assert_ne!(now, gone);
            assert_ne!(c.cookie, before, "a new cookie");
            *h = now.clone();
        }
        assert_eq!(&now, h);
        assert_eq!(&c.get(addr), h);
    }
}

fn admin_post(admin: SocketAddr, path: &str) -> u16 {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    parse_resp(&raw(admin, req.as_bytes()).expect("admin")).map_or(0, |r| r.status)
}

#[test]
fn sticky_clients_stay_move_when_their_backend_goes_and_are_honoured_by_every_process() {
    let bs: Vec<Backend> = ["a", "b", "c"]
        .iter()
        .map(|n| Backend::start(n, Mode::Ok))
        .collect();
    let conf = Conf::web(&bs.iter().collect::<Vec<_>>())
        .upstream("    sticky: {cookie: BULB, max_age: 1h}\n    retries: 2\n");
    let bulb = Bulb::start(&conf.yaml());
    // 50 clients, 20 requests each: each stays on the backend it first got.
    let mut clients: Vec<Client> = (0..50).map(|_| Client { cookie: None }).collect();
    let mut home = Vec::new();
    for c in clients.iter_mut() {
        let first = c.get(bulb.addr);
        let cookie = c
            .cookie
            .clone()
            .expect("the first response sets the cookie");
        assert!(
            cookie.starts_with("BULB=") && cookie.len() == 5 + 24,
            "{cookie}"
        );
        assert!(!cookie.contains("127.0.0.1"), "no address leaks");
        for _ in 0..19 {
            assert_eq!(c.get(bulb.addr), first);
            assert_eq!(c.cookie.as_deref(), Some(cookie.as_str()), "not set again");
        }
        home.push(first);
    }
    for b in &bs {
        let n = home.iter().filter(|h| *h == b.name()).count();
        assert!(n >= 10, "{} has {n} of 50 clients: {home:?}", b.name());
    }
    // A second process with the same file, and this one after a reload,
    // honour the cookies.
    let other = Bulb::start(&conf.yaml());
    bulb.signal("HUP");
    assert!(bulb.wait_generation(2));
    for (c, h) in clients.iter_mut().zip(&home) {
        let cookie = c.cookie.clone();
        assert_eq!(&c.get(other.addr), h);
        assert_eq!(&c.get(bulb.addr), h);
        assert_eq!(c.cookie, cookie);
    }
    // Draining a backend moves its clients (a new cookie), then they stay.
    let path = format!("/upstreams/web/backends/{}/drain", bs[0].addr);
    assert_eq!(admin_post(bulb.admin, &path), 200);
    move_off(&mut clients, &mut home, "a", bulb.addr);
    // Killing a backend: its clients move with no failed request.
    bs[1].stop();
    move_off(&mut clients, &mut home, "b", bulb.addr);
    assert!(home.iter().all(|h| h == "c"));
}

#[test]
fn sticky_is_checked() {
    let yaml = "listeners: [{address: 127.0.0.1:1}]\nupstreams:\n  web:\n    algorithm: consistent_hash\n    sticky: {cookie: S}\n    backends: [{address: 127.0.0.1:2}]\n";
    assert_config_error(yaml, Some(5), "consistent_hash");
}

/// Share of `n` requests that `b` answered.
fn share(bulb: &Bulb, b: &Backend, n: u32) -> f64 {
    let before = b.hits();
    keep_alive_gets(bulb.addr, n);
    (b.hits() - before) as f64 / f64::from(n)
}

/// `n` keep-alive GETs on one connection.
fn keep_alive_gets(addr: SocketAddr, n: u32) {
    use std::io::{BufReader, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for _ in 0..n {
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        read_framed(&mut r).expect("a response");
    }
}

#[test]
fn split_sends_each_upstream_its_share_and_a_reload_changes_it() {
    let (v1, v2) = (
        Backend::start("v1", Mode::Ok),
        Backend::start("v2", Mode::Ok),
    );
    let conf = |w2: u32, w1: u32| {
        Conf::empty()
            .top(&format!(
                "routes:\n  - split: [{{upstream: v2, weight: {w2}}}, {{upstream: v1, weight: {w1}}}]\n"
            ))
            .upstreams(&format!(
                "  v1: {{backends: [{{address: \"{}\"}}]}}\n  v2: {{backends: [{{address: \"{}\"}}]}}\n",
                v1.addr, v2.addr
            ))
            .yaml()
    };
    let bulb = Bulb::start(&conf(5, 95));
    let canary = share(&bulb, &v2, 4000);
    assert!(
        (canary - 0.05).abs() <= 0.02,
        "v2 got {:.2}%",
        canary * 100.0
    );
    bulb.rewrite(&conf(50, 50));
    bulb.signal("HUP");
    assert!(bulb.wait_generation(2));
    let half = share(&bulb, &v2, 4000);
    assert!(
        (half - 0.5).abs() <= 0.02,
        "v2 got {:.2}% after the reload",
        half * 100.0
    );
}

#[test]
fn split_weights_are_checked() {
    let yaml = "listeners: [{address: 127.0.0.1:1}]\nupstreams:\n  web:\n    backends: [{address: 127.0.0.1:2}]\nroutes:\n  - split: [{upstream: web, weight: 0}]\n";
    assert_config_error(yaml, Some(6), "weight must be a whole number ≥ 1");
}
