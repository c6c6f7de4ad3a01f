//! SRV discovery and `resolvers` (SPEC "Fleets") against a real DNS
//! server: Debian's dnsmasq on 127.0.0.1, serving SRV and A records.

mod common;
use common::*;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A real dnsmasq answering `srv` (`(port, priority, weight)` of target
/// `a.test`, which is 127.0.0.1) for `_http._tcp.api.test`, with a 1 s TTL.
struct Dns {
    child: Reaped,
}

impl Dns {
    fn start(port: u16, srv: &[(u16, u16, u16)]) -> Dns {
        let mut args = vec![
            "--keep-in-foreground".to_string(),
            format!("--port={port}"),
            "--listen-address=127.0.0.1".into(),
            "--bind-interfaces".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--conf-file=/dev/null".into(),
            "--pid-file".into(),
            "--local-ttl=1".into(),
            "--host-record=a.test,127.0.0.1".into(),
        ];
        for (p, prio, w) in srv {
            args.push(format!(
                "--srv-host=_http._tcp.api.test,a.test,{p},{prio},{w}"
            ));
        }
        let child = Command::new("dnsmasq")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian package dnsmasq)");
        // Ready when it answers a query (any answer) on its UDP port.
        let asked = wait_for(Duration::from_secs(10), || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x04test\x00\x00\x01\x00\x01";
            let mut b = [0u8; 512];
            s.send_to(q, ("127.0.0.1", port)).is_ok() && s.recv(&mut b).is_ok()
        });
        assert!(asked.is_some(), "dnsmasq did not start");
        Dns {
            child: Reaped(child),
        }
    }

    fn stop(&mut self) {
        self.child.stop();
    }
}

#[test]
fn srv_targets_become_backends_follow_their_records_and_survive_a_dns_outage() {
    let bs: Vec<Backend> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| Backend::start(n, Mode::Ok))
        .collect();
    let port = free_port();
    let mut dns = Dns::start(
        port,
        &[
            (bs[0].addr.port(), 10, 1),
            (bs[1].addr.port(), 10, 3),
            (bs[2].addr.port(), 20, 1),
        ],
    );
    // A long discovery_interval: only the records' 1 s TTL makes bulb ask
    // again soon.
    let conf = Conf::empty()
        .top(&format!("resolvers: [\"127.0.0.1:{port}\"]\n"))
        .upstreams("  web:\n    discovery_interval: 60s\n    backends:\n      - srv: _http._tcp.api.test\n");
    let bulb = Bulb::start(&conf.yaml());
    let listed = |b: &Backend| {
        let v: serde_json::Value =
            serde_json::from_str(&bulb.admin_get("/status").body).expect("json");
        v["upstreams"]["web"]["backends"].as_array().and_then(|a| {
            a.iter()
                .find(|x| x["address"] == b.addr.to_string().as_str())
                .cloned()
        })
    };
    assert!(wait_for(Duration::from_secs(10), || listed(&bs[2]).is_some()).is_some());
    let (a, b, c) = (
        listed(&bs[0]).unwrap(),
        listed(&bs[1]).unwrap(),
        listed(&bs[2]).unwrap(),
    );
    assert_eq!(
        (a["weight"].as_u64(), a["backup"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(
        (b["weight"].as_u64(), b["backup"].as_bool()),
        (Some(3), Some(false))
    );
    assert_eq!(
        c["backup"].as_bool(),
        Some(true),
        "a higher priority is a backup"
    );
    for _ in 0..400 {
        assert_eq!(get(bulb.addr, "/").expect("get").status, 200);
    }
    let (ha, hb) = (bs[0].hits() as f64, bs[1].hits() as f64);
    assert!(
        (hb / (ha + hb) - 0.75).abs() < 0.05,
        "weights 1:3 gave {ha}:{hb}"
    );
    assert_eq!(bs[2].hits(), 0, "the backup is idle while primaries serve");

    // The records change: bulb follows within the TTL, not the 60 s interval.
    dns.stop();
    let mut dns = Dns::start(
        port,
        &[(bs[1].addr.port(), 10, 3), (bs[3].addr.port(), 10, 1)],
    );
    let followed = wait_for(Duration::from_secs(8), || {
        listed(&bs[3]).is_some() && listed(&bs[0]).is_none() && listed(&bs[2]).is_none()
    });
    assert!(followed.is_some(), "{}", bulb.admin_get("/status").body);

    // The DNS server goes away: the last answer stays, requests still work.
    dns.stop();
    let logged = wait_for(Duration::from_secs(15), || {
        bulb.logs()
            .contains("cannot resolve SRV _http._tcp.api.test")
    });
    assert!(logged.is_some(), "{}", bulb.logs());
    assert!(listed(&bs[1]).is_some() && listed(&bs[3]).is_some());
    for _ in 0..20 {
        assert_eq!(get(bulb.addr, "/").expect("get").status, 200);
    }
}

#[test]
fn hostnames_are_asked_of_the_resolvers_named() {
    let a = Backend::start("a", Mode::Ok);
    let port = free_port();
    let _dns = Dns::start(port, &[]);
    let conf = Conf::empty()
        .top(&format!("resolvers: [\"127.0.0.1:{port}\"]\n"))
        .backend(format!("a.test:{}", a.addr.port()), "");
    let bulb = Bulb::start(&conf.yaml());
    // `a.test` exists only in that DNS server.
    let r = get(bulb.addr, "/").expect("get");
    assert_eq!((r.status, r.body.as_str()), (200, "a"));
}

#[test]
fn srv_entries_and_resolvers_are_checked() {
    for (extra, backend, msg) in [
        (
            "",
            "{srv: _http._tcp.x.test, weight: 2}",
            "`weight` applies only to `address` entries",
        ),
        ("", "{srv: \"bad name!\"}", "is not a DNS name"),
        (
            "",
            "{address: 127.0.0.1:2, srv: _a._tcp.x.test}",
            "exactly one of `address` and `srv`",
        ),
        (
            "resolvers: [\"not-an-ip\"]\n",
            "{address: 127.0.0.1:2}",
            "is not an IP address or IP:PORT",
        ),
    ] {
        let yaml = format!("{extra}listeners: [{{address: 127.0.0.1:1}}]\nupstreams:\n  web:\n    backends: [{backend}]\n");
        assert_config_error(&yaml, None, msg);
    }
}
