//! `limits.rate.store` (SPEC "Fleets"): one rate limit shared by several
//! bulb processes through a real `redis-server` on 127.0.0.1; the local
//! bucket decides, and nothing fails, while Redis is down.

mod common;
use common::*;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A real redis-server on 127.0.0.1.
struct Redis {
    child: Reaped,
}

impl Redis {
    fn start(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let pong = || {
            let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
                return false;
            };
            let mut b = [0u8; 7];
            s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut b).is_ok() && &b == b"+PONG\r\n"
        };
        assert!(
            wait_for(Duration::from_secs(10), pong).is_some(),
            "redis-server did not start"
        );
        Redis {
            child: Reaped(child),
        }
    }

    fn stop(&mut self) {
        self.child.stop();
    }
}

/// Statuses of keep-alive GETs sent as fast as they are answered for `d`:
/// (passed, limited, anything else).
fn hammer(addr: SocketAddr, d: Duration) -> (u32, u32, u32) {
    let (mut ok, mut limited, mut other) = (0, 0, 0);
    let end = Instant::now() + d;
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    while Instant::now() < end {
        if s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").is_err() {
            other += 1;
            break;
        }
        let Some((status, _)) = read_framed(&mut r) else {
            other += 1;
            break;
        };
        match status.split(' ').nth(1) {
            Some("200") => ok += 1,
            Some("429") => limited += 1,
            _ => other += 1,
        }
    }
    (ok, limited, other)
}

/// Both bulbs hammered at once for `d`: the sum of what passed, and of what
/// neither passed nor was limited.
fn together(a: &Bulb, b: &Bulb, d: Duration) -> (u32, u32) {
    let (x, y) = (a.addr, b.addr);
    let t = std::thread::spawn(move || hammer(y, d));
    let (ok1, _, bad1) = hammer(x, d);
    let (ok2, _, bad2) = t.join().unwrap();
    (ok1 + ok2, bad1 + bad2)
}

const RATE: f64 = 40.0;
const BURST: u32 = 5;

#[test]
fn two_bulbs_share_one_limit_and_fall_back_to_their_own_while_redis_is_down() {
    let port = free_port();
    let mut redis = Redis::start(port);
    let backend = Backend::start("a", Mode::Ok);
    let conf = Conf::web(&[&backend]).top(&format!(
        "limits:\n  rate: {{key: client_ip, requests_per_second: {RATE}, burst: {BURST}, store: \"redis://127.0.0.1:{port}/0\", store_timeout: 20ms}}\n"
    ));
    let (one, two) = (Bulb::start(&conf.yaml()), Bulb::start(&conf.yaml()));
    let secs = 3.0;
    let shared = |what: &str| {
        let (ok, bad) = together(&one, &two, Duration::from_secs_f64(secs));
        let want = f64::from(BURST) + RATE * secs;
        eprintln!("{what}: {ok} passed through two bulbs in {secs} s; one limit allows {want}");
        assert_eq!(bad, 0, "{what}: no request fails");
        assert!(
            (f64::from(ok) - want).abs() <= want * 0.15,
            "{what}: {ok} passed through two bulbs; one shared limit allows {want}"
        );
    };
    shared("shared");
    let errors = |b: &Bulb| b.metric("bulb_rate_store_errors_total").unwrap_or(0.0);
    // At most the first check of each process (it connects and loads the
    // script) may miss its deadline.
    let first = errors(&one) + errors(&two);
    assert!(first <= 2.0, "{first} misses while Redis was up");

    // Redis down: each bulb limits alone (about twice the shared rate
    // passes), nothing fails, and the misses are counted.
    redis.stop();
    std::thread::sleep(Duration::from_millis(1500)); // the buckets refill
    let (ok, bad) = together(&one, &two, Duration::from_secs_f64(secs));
    eprintln!("Redis down: {ok} passed through two bulbs in {secs} s");
    assert_eq!(bad, 0, "no request fails while Redis is down");
    let alone = 2.0 * (f64::from(BURST) + RATE * secs);
    assert!(
        (f64::from(ok) - alone).abs() <= alone * 0.15,
        "{ok} passed with Redis down; two local buckets allow {alone}"
    );
    assert!(errors(&one) > 0.0 && errors(&two) > 0.0);
    assert!(
        one.logs().contains("rate store redis://127.0.0.1"),
        "{}",
        one.logs()
    );

    // Redis back: shared again.
    let _redis = Redis::start(port);
    let reconnected = wait_for(Duration::from_secs(10), || {
        let before = errors(&one) + errors(&two);
        let _ = together(&one, &two, Duration::from_millis(300));
        errors(&one) + errors(&two) == before
    });
    assert!(reconnected.is_some(), "the bulbs did not use Redis again");
    std::thread::sleep(Duration::from_millis(1500));
    shared("after Redis came back");
}

#[test]
fn a_bad_store_is_a_config_error() {
    let yaml = "listeners: [{address: 127.0.0.1:1}]\nupstreams:\n  web:\n    backends: [{address: 127.0.0.1:2}]\nlimits:\n  rate: {requests_per_second: 5, store: \"memcached://x\"}\n";
    assert_config_error(yaml, Some(6), "redis://HOST:PORT/DB");
}
