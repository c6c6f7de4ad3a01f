//! The hello-world compose demo, reproduced on loopback: bulb in NODES mode
//! in front of backends that behave like strm/helloworld-http. Plus
//! WebSocket pass-through, which the demo's nginx config allows.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Nodes {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    out: std::path::PathBuf,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nodes(nodes: &str) -> Nodes {
    let dir = tempdir();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let out = dir.join("stdout");
    let child = Command::new(bulb_bin())
        .env_clear()
        .env("NODES", nodes)
        .env("LISTEN", addr.to_string())
        .env("ADMIN", admin.to_string())
        .current_dir(&dir)
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("stderr")).unwrap(),
        ))
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(20), || TcpStream::connect(addr).is_ok()).is_some());
    Nodes {
        child,
        addr,
        admin,
        out,
    }
}

#[test]
fn nodes_mode_behaves_like_the_nginx_container() {
    let web1 = Backend::start("web1", Mode::Http10);
    let web2 = Backend::start("web2", Mode::Http10);
    // Names, as in compose: `localhost` stands in for Docker's DNS names.
    let mut n = start_nodes(&format!(
        "localhost:{} localhost:{}",
        web1.addr.port(),
        web2.addr.port()
    ));
    let seen = |n: &Nodes, count: usize| {
        let mut m = std::collections::HashMap::new();
        for _ in 0..count {
            let r = get(n.addr, "/").expect("request");
            assert_eq!(r.status, 200, "{r:?}");
            *m.entry(r.body).or_insert(0) += 1;
        }
        m
    };
    let m = seen(&n, 20);
    assert!(
        m.contains_key("Hello from web1") && m.contains_key("Hello from web2"),
        "{m:?}"
    );
    // One node stops: every request still succeeds.
    web2.stop();
    let m = seen(&n, 30);
    assert_eq!(m.get("Hello from web1"), Some(&30), "{m:?}");
    // Back: used again (TCP checks every 2 s).
    web2.restart();
    assert!(wait_for(Duration::from_secs(6), || seen(&n, 4)
        .contains_key("Hello from web2"))
    .is_some());
    // Access log on stdout.
    let out = std::fs::read_to_string(&n.out).unwrap();
    assert!(out.contains("\"GET / HTTP/1.1\" 200"), "{out}");
    assert!(get(n.admin, "/healthz").unwrap().status == 200);
    // docker stop: SIGTERM, exit within 2 s.
    signal(n.child.id() as i32, "TERM");
    let t = std::time::Instant::now();
    assert!(wait_for(Duration::from_secs(5), || matches!(
        n.child.try_wait(),
        Ok(Some(_))
    ))
    .is_some());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn nodes_mode_waits_for_names_that_do_not_resolve_yet() {
    let web1 = Backend::start("web1", Mode::Http10);
    let n = start_nodes(&format!(
        "localhost:{} not-up-yet.invalid:80",
        web1.addr.port()
    ));
    for _ in 0..10 {
        assert_eq!(get(n.addr, "/").unwrap().body, "Hello from web1");
    }
}

/// A WebSocket echo backend: answers the handshake with 101, then echoes
/// each (small, masked) client text frame back as an unmasked frame.
fn ws_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let h = String::from_utf8_lossy(&head).to_ascii_lowercase();
                if !h.contains("upgrade: websocket") || !h.contains("connection: upgrade") {
                    let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                    return;
                }
                let _ = s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n");
                loop {
                    let mut hdr = [0u8; 2];
                    if s.read_exact(&mut hdr).is_err() {
                        return;
                    }
                    let len = (hdr[1] & 0x7f) as usize;
                    let mut mask = [0u8; 4];
                    let mut payload = vec![0u8; len];
                    if s.read_exact(&mut mask).is_err() || s.read_exact(&mut payload).is_err() {
                        return;
                    }
                    for (i, b) in payload.iter_mut().enumerate() {
                        *b ^= mask[i % 4];
                    }
                    let mut reply = vec![0x81, (len + 6) as u8];
                    reply.extend_from_slice(b"echo: ");
                    reply.extend_from_slice(&payload);
                    if s.write_all(&reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn websocket_passes_through() {
    let ws = ws_backend();
    let yaml = Conf::empty().named("ws").backend(ws, "").yaml();
    let bulb = Bulb::start(&yaml);
    let mut s = TcpStream::connect(bulb.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"GET /chat HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );
    for msg in ["hello", "second frame"] {
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | msg.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(msg.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        s.write_all(&frame).unwrap();
        let want = format!("echo: {msg}");
        let mut got = vec![0u8; 2 + want.len()];
        s.read_exact(&mut got).unwrap();
        assert_eq!(got[0], 0x81);
        assert_eq!(&got[2..], want.as_bytes());
    }
}
