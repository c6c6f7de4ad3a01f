//! Capacity protection (SPEC "Capacity protection"): max_conns with a FIFO
//! queue, and per-client rate limits.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `n` requests at once; their statuses and how long each took.
fn burst(bulb: &Bulb, n: usize) -> Vec<(u16, Duration)> {
    let addr = bulb.addr;
    let handles: Vec<_> = (0..n)
        .map(|_| {
            std::thread::spawn(move || {
                let t = Instant::now();
                let s = get(addr, "/").map_or(0, |r| r.status);
                (s, t.elapsed())
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect()
}

fn count(r: &[(u16, Duration)], status: u16) -> usize {
    r.iter().filter(|(s, _)| *s == status).count()
}

/// Requests waiting in the queue of upstream `web` now.
fn queue_depth(bulb: &Bulb) -> f64 {
    bulb.metric("bulb_queue_depth{upstream=\"web\"}")
        .unwrap_or(-1.0)
}

fn capped(b: &Backend, max: u32, queue: &str) -> String {
    Conf::empty()
        .upstream(queue)
        .backend(b.addr, &format!("max_conns: {max}"))
        .yaml()
}

#[test]
fn max_conns_is_never_exceeded_and_the_queue_serves_everyone() {
    let slow = Backend::start("slow", Mode::Slow(Duration::from_millis(150)));
    let bulb = Bulb::start(&capped(&slow, 2, "    queue: {size: 100, timeout: 10s}\n"));
    let r = burst(&bulb, 20);
    assert_eq!(count(&r, 200), 20, "{r:?}");
    assert_eq!(slow.peak(), 2, "the backend saw {} at once", slow.peak());
    let status = bulb.admin_get("/status").body;
    assert!(status.contains("\"max_conns\": 2"), "{status}");
    let m = bulb.admin_get("/metrics").body;
    assert!(m.contains("bulb_queue_depth{upstream=\"web\"} 0"), "{m}");
}

#[test]
fn a_full_queue_answers_503_at_once_and_the_rest_succeed() {
    let slow = Backend::start("slow", Mode::Slow(Duration::from_millis(300)));
    let bulb = Bulb::start(&capped(&slow, 2, "    queue: {size: 2, timeout: 10s}\n"));
    let r = burst(&bulb, 20);
    let (ok, full) = (count(&r, 200), count(&r, 503));
    assert_eq!(ok + full, 20, "{r:?}");
    assert!((4..=8).contains(&ok), "{ok} succeeded: {r:?}");
    assert!(
        r.iter()
            .filter(|(s, _)| *s == 503)
            .all(|(_, t)| *t < Duration::from_millis(250)),
        "503s were not immediate: {r:?}"
    );
    assert!(slow.peak() <= 2);
    let m = bulb.admin_get("/metrics").body;
    assert!(
        m.contains("bulb_requests_rejected_total{reason=\"queue_full\"}"),
        "{m}"
    );
}

#[test]
fn a_queue_timeout_is_503_after_about_the_timeout() {
    let slow = Backend::start("slow", Mode::Slow(Duration::from_millis(1500)));
    let bulb = Bulb::start(&capped(&slow, 1, "    queue: {size: 10, timeout: 300ms}\n"));
    let r = burst(&bulb, 2);
    let late: Vec<_> = r.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!(late.len(), 1, "{r:?}");
    let t = late[0].1;
    assert!(
        t >= Duration::from_millis(250) && t < Duration::from_millis(1200),
        "{t:?}"
    );
    assert!(bulb
        .admin_get("/metrics")
        .body
        .contains("bulb_requests_rejected_total{reason=\"queue_timeout\"} 1"));
}

#[test]
fn a_client_that_leaves_the_queue_frees_its_place() {
    let slow = Backend::start("slow", Mode::Slow(Duration::from_millis(1000)));
    let conf = Conf::empty()
        .access_log("{DIR}/access.log")
        .upstream("    queue: {size: 1, timeout: 10s}\n")
        .backend(slow.addr, "max_conns: 1")
        .yaml();
    let bulb = Bulb::start(&conf);
    let addr = bulb.addr;
    let first = std::thread::spawn(move || get(addr, "/").map_or(0, |r| r.status));
    assert!(wait_for(Duration::from_secs(5), || slow.hits() == 1).is_some());
    // The second waits in the queue, then goes away.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("write");
    assert!(wait_for(Duration::from_secs(5), || queue_depth(&bulb) == 1.0).is_some());
    drop(s);
    assert!(wait_for(Duration::from_secs(5), || queue_depth(&bulb) == 0.0).is_some());
    // Its place is free: the third is queued, not refused.
    let mut third = TcpStream::connect(addr).expect("connect");
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut out = String::new();
    let _ = third.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(first.join().expect("first"), 200);
    assert_eq!(
        slow.hits(),
        2,
        "the client that left never reached the backend"
    );
    // It is logged as nginx logs a client that closed first: 499.
    let log = bulb.dir.join("access.log");
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    let found = wait_for(Duration::from_secs(5), || logged().contains("\" 499 "));
    assert!(found.is_some(), "{}", logged());
}

#[test]
fn rate_limits_per_client_with_retry_after() {
    let a = Backend::start("a", Mode::Ok);
    let conf = Conf::web(&[&a])
        .top("trusted_proxies: [127.0.0.1]\nlimits: {rate: {requests_per_second: 10, burst: 5}}\n")
        .yaml();
    let bulb = Bulb::start(&conf);
    let client =
        |xff: &str| get_with(bulb.addr, "/", &[("X-Forwarded-For", xff)]).expect("request");
    let first: Vec<Resp> = (0..8).map(|_| client("10.0.0.1")).collect();
    let passed = first.iter().filter(|r| r.status == 200).count();
    assert!((5..=6).contains(&passed), "{passed} passed at once");
    let limited = first.iter().find(|r| r.status == 429).expect("a 429");
    let retry: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        a.hits() as usize,
        passed,
        "a limited request reached the backend"
    );
    // Another client has its own bucket.
    assert_eq!(client("10.0.0.2").status, 200);
    // Then about 10 per second: one try every 50 ms for a second, with the
    // bucket emptied first.
    while client("10.0.0.1").status == 200 {}
    let t = Instant::now();
    let mut later = 0;
    for i in 0..20u32 {
        if client("10.0.0.1").status == 200 {
            later += 1;
        }
        let next = Duration::from_millis(50) * (i + 1);
        std::thread::sleep(next.saturating_sub(t.elapsed()));
    }
    assert!((8..=12).contains(&later), "{later} passed in a second");
    let m = bulb.admin_get("/metrics").body;
    assert!(
        m.contains("bulb_requests_rejected_total{reason=\"rate_limited\"}"),
        "{m}"
    );
}

#[test]
fn requests_queued_during_a_reload_are_served_and_new_limits_apply() {
    let slow = Backend::start("slow", Mode::Slow(Duration::from_millis(400)));
    let bulb = Bulb::start(&capped(&slow, 1, "    queue: {size: 10, timeout: 10s}\n"));
    let addr = bulb.addr;
    let queued = std::thread::spawn(move || {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(move || get(addr, "/").map_or(0, |r| r.status)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect::<Vec<_>>()
    });
    // One at the backend, three queued.
    assert!(wait_for(Duration::from_secs(5), || queue_depth(&bulb) == 3.0).is_some());
    bulb.rewrite(&capped(&slow, 3, "    queue: {size: 10, timeout: 10s}\n"));
    bulb.signal("HUP");
    assert!(bulb.wait_generation(2));
    assert_eq!(queued.join().expect("queued"), vec![200; 4]);
    // The new cap is in force (also for those that were queued): three at once.
    let r = burst(&bulb, 6);
    assert_eq!(count(&r, 200), 6, "{r:?}");
    assert_eq!(slow.peak(), 3);
}
