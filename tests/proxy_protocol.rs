//! `accept_proxy_protocol` (SPEC "Fleets"): PROXY v1 and v2 from an L4
//! tier in front of bulb, on http and tcp listeners, through real bulb
//! processes; the carried address is the client everywhere.

mod common;
use common::recorder::Recorder;
use common::tcp::{read_line, TcpBackend, TcpMode};
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

fn v2_tcp6(src: [u8; 16], sport: u16) -> Vec<u8> {
    let mut h = V2_SIG.to_vec();
    h.extend_from_slice(&[0x21, 0x21, 0, 36 + 7]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&[0; 15]);
    h.push(1); // ::1
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&80u16.to_be_bytes());
    h.extend_from_slice(&[0x04, 0, 4, b'n', b'o', b'o', b'p']); // a TLV, skipped
    h
}

/// Connect from `from`, send `bytes`, read until the server closes.
fn send_from(from: &str, to: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let bind: SocketAddr = format!("{from}:0").parse().unwrap();
    sock.bind(&bind.into()).unwrap();
    sock.connect(&to.into()).unwrap();
    let mut s = TcpStream::from(sock);
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The last request head the recording backend saw, lower-cased.
fn upstream_head(r: &Recorder) -> String {
    let last = r.requests().pop().expect("upstream request");
    last.head.to_ascii_lowercase()
}

fn http_conf(r: &Recorder) -> Conf {
    Conf::addrs(&[r.addr])
        .listener("    accept_proxy_protocol: true\n")
        .access_log("{DIR}/access.log")
        .top(
            "trusted_proxies: [127.0.0.1/32]\n\
             routes:\n\
             \x20 - {path_prefix: /lan, upstream: web, allow: [203.0.113.0/24]}\n\
             \x20 - {upstream: web}\n",
        )
}

#[test]
fn v1_and_v2_set_the_client_address_for_headers_logs_and_allow_deny() {
    let r = Recorder::start();
    let bulb = Bulb::start(&http_conf(&r).yaml());
    let get = b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let v1 = [
        b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n".as_slice(),
        get,
    ]
    .concat();
    assert!(send_from("127.0.0.1", bulb.addr, &v1).starts_with(b"HTTP/1.1 200"));
    let head = upstream_head(&r);
    assert!(
        head.contains("\r\nx-forwarded-for: 203.0.113.7\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nx-real-ip: 203.0.113.7\r\n"), "{head}");
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    src[15] = 7;
    let v2 = [v2_tcp6(src, 4444), get.to_vec()].concat();
    assert!(send_from("127.0.0.1", bulb.addr, &v2).starts_with(b"HTTP/1.1 200"));
    let head = upstream_head(&r);
    assert!(
        head.contains("\r\nx-forwarded-for: 2001:db8::7\r\n"),
        "{head}"
    );
    // UNKNOWN keeps the peer's address.
    let unknown = [b"PROXY UNKNOWN\r\n".as_slice(), get].concat();
    assert!(send_from("127.0.0.1", bulb.addr, &unknown).starts_with(b"HTTP/1.1 200"));
    let head = upstream_head(&r);
    assert!(
        head.contains("\r\nx-forwarded-for: 127.0.0.1\r\n"),
        "{head}"
    );
    // allow/deny judge the carried address.
    let lan = |src: &str| {
        let req = format!("PROXY TCP4 {src} 127.0.0.1 5555 80\r\nGET /lan HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        String::from_utf8_lossy(&send_from("127.0.0.1", bulb.addr, req.as_bytes()))[..12]
            .to_string()
    };
    assert_eq!(lan("203.0.113.9"), "HTTP/1.1 200");
    assert_eq!(lan("198.51.100.1"), "HTTP/1.1 403");
    // The access log names the client.
    let log = bulb.dir.join("access.log");
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    let seen = wait_for(Duration::from_secs(5), || {
        let t = logged();
        t.lines().any(|l| l.starts_with("203.0.113.7 "))
            && t.lines().any(|l| l.starts_with("2001:db8::7 "))
    });
    assert!(seen.is_some(), "{}", logged());
}

#[test]
fn untrusted_malformed_missing_or_late_headers_are_closed_with_nothing_sent_upstream() {
    let r = Recorder::start();
    let bulb = Bulb::start(&http_conf(&r).yaml());
    let refused = || {
        bulb.metric("bulb_proxy_protocol_refused_total")
            .unwrap_or(0.0)
    };
    let before = refused();
    let get = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let v1 = [
        b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n".as_slice(),
        get,
    ]
    .concat();
    // From an address outside trusted_proxies, even with a valid header.
    assert!(send_from("127.0.0.2", bulb.addr, &v1).is_empty());
    // Malformed, or no header at all.
    assert!(send_from(
        "127.0.0.1",
        bulb.addr,
        b"PROXY TCP4 203.0.113.7 nope 1 2\r\nGET / HTTP/1.1\r\n\r\n"
    )
    .is_empty());
    assert!(send_from("127.0.0.1", bulb.addr, get).is_empty());
    // Slow: half a header, then nothing; closed at the 10 s deadline.
    let start = Instant::now();
    assert!(send_from("127.0.0.1", bulb.addr, b"PROXY TCP4 203.0.").is_empty());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(14),
        "{took:?}"
    );
    assert_eq!(r.connections(), 0, "nothing went upstream");
    assert!(refused() >= before + 4.0, "{before} -> {}", refused());
    // A good one still works.
    assert!(send_from("127.0.0.1", bulb.addr, &v1).starts_with(b"HTTP/1.1 200"));
}

#[test]
fn a_bulb_tcp_tier_sending_v2_carries_the_client_to_a_bulb_http_tier() {
    let r = Recorder::start();
    let inner = Bulb::start(&http_conf(&r).yaml());
    let outer = Bulb::start(
        &Conf::addrs(&[inner.addr])
            .named("tier")
            .listener("    protocol: tcp\n    upstream: tier\n    proxy_protocol: v2\n")
            .yaml(),
    );
    let get = b"GET /chain HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let resp = send_from("127.0.0.5", outer.addr, get);
    assert!(
        resp.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    let head = upstream_head(&r);
    assert!(
        head.contains("\r\nx-forwarded-for: 127.0.0.5\r\n"),
        "{head}"
    );
}

#[test]
fn a_tcp_listener_accepting_v1_passes_the_bytes_after_it_and_sends_the_client_on() {
    let echo = TcpBackend::start("echo", TcpMode::Proxy);
    let conf = Conf::empty()
        .named("db")
        .backend(echo.addr, "")
        .listener("    protocol: tcp\n    upstream: db\n    proxy_protocol: v1\n    accept_proxy_protocol: true\n")
        .top("trusted_proxies: [127.0.0.1/32]\n");
    let bulb = Bulb::start(&conf.yaml());
    let mut s = TcpStream::connect(bulb.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The header and the first bytes in one write: bulb reads past the
    // header and must pass those bytes on.
    s.write_all(b"PROXY TCP4 198.51.100.4 127.0.0.1 6000 5432\r\nping\n")
        .unwrap();
    let hello = read_line(&s).unwrap();
    assert_eq!(hello, "echo proxy v1 198.51.100.4:6000");
    assert_eq!(read_line(&s).unwrap(), "ping");
}

#[test]
fn accept_proxy_protocol_needs_trusted_proxies() {
    let yaml = "listeners:\n  - address: 127.0.0.1:1\n    accept_proxy_protocol: true\nupstreams:\n  web:\n    backends: [{address: 127.0.0.1:2}]\n";
    assert_config_error(yaml, Some(3), "needs `trusted_proxies`");
}

/// A GET over TLS (trusting `cert`) on a connection that first sends `proxy`.
fn tls_get_after(addr: SocketAddr, proxy: &[u8], cert: &str) -> String {
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(cert).expect("cert");
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.expect("pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(proxy).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /tls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request over TLS");
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

#[test]
fn on_a_tls_listener_the_header_comes_before_the_handshake() {
    let r = Recorder::start();
    let dir = tempdir();
    let ca = common::certs::Ca::new(&dir, "ca");
    let leaf = ca.leaf("localhost");
    let tls = format!(
        "    tls: {{cert: \"{}\", key: \"{}\"}}\n",
        leaf.cert, leaf.key
    );
    let bulb = Bulb::start(&http_conf(&r).listener(&tls).yaml());
    let resp = tls_get_after(
        bulb.addr,
        b"PROXY TCP4 192.0.2.44 127.0.0.1 7000 443\r\n",
        &ca.cert,
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let head = upstream_head(&r);
    assert!(
        head.contains("\r\nx-forwarded-for: 192.0.2.44\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nx-forwarded-proto: https\r\n"), "{head}");
}
