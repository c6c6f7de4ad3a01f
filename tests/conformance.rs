//! Strict HTTP/1 (SPEC "Strict HTTP/1 and request buffering"): raw-socket
//! clients against bulb in front of a backend that records the exact bytes it
//! receives. Every case asserts what reached the backend, not only the status.

mod common;
use common::recorder::Recorder;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A response read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

/// Write `parts` (with `gap` between them) on one connection, then read
/// every response until the server closes or stays silent for 3 s. Returns
/// the responses, whether the server closed, and how long it took.
fn exchange(addr: SocketAddr, parts: &[&[u8]], gap: Duration) -> (Vec<Answer>, bool, Duration) {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(gap);
        }
        if s.write_all(p).is_err() {
            break;
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (parse_all(&out), closed, t.elapsed())
}

/// Split a byte stream into responses (Content-Length framed, as bulb sends
/// them to HTTP/1.1 clients; 1xx heads have no body).
fn parse_all(mut b: &[u8]) -> Vec<Answer> {
    let mut v = Vec::new();
    while let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&b[..end]).to_string();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let len: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let start = end + 4;
        let stop = (start + len).min(b.len());
        v.push(Answer {
            status,
            body: String::from_utf8_lossy(&b[start..stop]).to_string(),
        });
        b = &b[stop..];
    }
    v
}

fn statuses(a: &[Answer]) -> Vec<u16> {
    a.iter().map(|r| r.status).collect()
}

/// Send each malformed request; each must get `want` (or a close without
/// answer when `want` is 0), promptly, and put no byte on any backend.
fn refused(bulb: &Bulb, rec: &Recorder, cases: &[(&str, Vec<u8>)], want: u16) {
    for (name, bytes) in cases {
        let (answers, closed, took) = exchange(bulb.addr, &[bytes], Duration::ZERO);
        assert_eq!(
            statuses(&answers),
            vec![want],
            "{name}: answers {answers:?}"
        );
        assert!(closed, "{name}: connection left open after {want}");
        assert!(took < Duration::from_secs(2), "{name}: took {took:?}");
        assert!(
            rec.bytes().is_empty(),
            "{name}: the backend received {:?}",
            String::from_utf8_lossy(&rec.bytes())
        );
    }
}

#[test]
fn content_length_lists_reach_the_backend_as_one_header() {
    let rec = Recorder::start();
    let bulb = Bulb::start(&Conf::addrs(&[rec.addr]).yaml());
    let cases: [&[u8]; 2] = [
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    ];
    for (i, case) in cases.iter().enumerate() {
        let next = b"GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
        let (answers, _, _) = exchange(bulb.addr, &[case, next], Duration::from_millis(50));
        assert_eq!(statuses(&answers), vec![200, 200], "case {i}");
        let reqs = rec.requests();
        let (post, get) = (&reqs[reqs.len() - 2], &reqs[reqs.len() - 1]);
        assert_eq!(
            post.headers("content-length"),
            vec!["5"],
            "case {i}: {}",
            post.head
        );
        assert_eq!(post.body, b"hello");
        assert!(
            get.head.starts_with("GET /b HTTP/1.1\r\n"),
            "case {i}: {}",
            get.head
        );
    }
    // On the wire: one Content-Length per forwarded POST, never a list.
    let wire = String::from_utf8_lossy(&rec.bytes()).to_lowercase();
    assert_eq!(wire.matches("content-length").count(), 2, "{wire}");
    assert!(!wire.contains("5, 5"));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let rec = Recorder::start();
    let bulb = Bulb::start(&Conf::addrs(&[rec.addr]).yaml());
    // Three requests in one write, a body in the middle.
    let one: &[u8] = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let (answers, closed, _) = exchange(bulb.addr, &[one], Duration::ZERO);
    let bodies: Vec<&str> = answers.iter().map(|a| a.body.as_str()).collect();
    assert_eq!(bodies, vec!["/1", "/2", "/3"], "{answers:?}");
    assert!(closed);
    let lines: Vec<String> = rec
        .requests()
        .iter()
        .map(|r| r.line().to_string())
        .collect();
    assert_eq!(
        lines,
        ["GET /1 HTTP/1.1", "POST /2 HTTP/1.1", "GET /3 HTTP/1.1"]
    );
    assert_eq!(rec.requests()[1].body, b"abc");
    // Back-to-back writes: the next request arrives while one is in flight.
    for round in 0..20 {
        let a = format!("GET /a{round} HTTP/1.1\r\nHost: a\r\n\r\n");
        let b = format!("GET /b{round} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let (answers, _, _) = exchange(bulb.addr, &[a.as_bytes(), b.as_bytes()], Duration::ZERO);
        let bodies: Vec<&str> = answers.iter().map(|a| a.body.as_str()).collect();
        assert_eq!(
            bodies,
            vec![format!("/a{round}"), format!("/b{round}")],
            "round {round}"
        );
    }
    // A chunked body followed by a pipelined request, then keep-alive goes on.
    let chunked: &[u8] = b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\nGET /d HTTP/1.1\r\nHost: a\r\n\r\n";
    let last: &[u8] = b"GET /e HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let (answers, _, _) = exchange(bulb.addr, &[chunked, last], Duration::from_millis(100));
    let bodies: Vec<&str> = answers.iter().map(|a| a.body.as_str()).collect();
    assert_eq!(bodies, vec!["/c", "/d", "/e"]);
    let reqs = rec.requests();
    assert_eq!(reqs[reqs.len() - 3].body, b"xyz");
}

#[test]
fn malformed_chunked_bodies_never_reach_a_backend() {
    let rec = Recorder::start();
    let bulb = Bulb::start(&Conf::addrs(&[rec.addr]).yaml());
    let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let bodies: [(&str, &str); 10] = [
        ("empty chunk size", "\r\nhello\r\n0\r\n\r\n"),
        ("bare LF in an extension", "5;x\nhello\r\n0\r\n\r\n"),
        ("bare LF after the size", "5\nhello\r\n0\r\n\r\n"),
        ("size past 2^64", "10000000000000000\r\nhello\r\n0\r\n\r\n"),
        (
            "size past 2^64 after zeros",
            "0000010000000000000000\r\nhello\r\n0\r\n\r\n",
        ),
        ("NUL in an extension", "5;a\0b\r\nhello\r\n0\r\n\r\n"),
        ("not hex", "zz\r\nhello\r\n0\r\n\r\n"),
        ("no CRLF after data", "5\r\nhelloX0\r\n\r\n"),
        ("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"),
        ("extension without name", "5;=1\r\nhello\r\n0\r\n\r\n"),
    ];
    let cases: Vec<(&str, Vec<u8>)> = bodies
        .iter()
        .map(|(n, b)| (*n, format!("{head}{b}").into_bytes()))
        .collect();
    refused(&bulb, &rec, &cases, 400);
    // Well-formed chunked bodies pass, decoded: extensions, and sizes with
    // more leading zeros than 16 digits (`1*HEXDIG`; only the value is bounded).
    let ok = [
        format!("{head}5;name=\"v\"\r\nhello\r\n0\r\n\r\n"),
        format!("{head}00000000000000000000005\r\nhello\r\n00000000000000000000\r\n\r\n"),
    ];
    for (i, body) in ok.iter().enumerate() {
        let (answers, _, _) = exchange(bulb.addr, &[body.as_bytes()], Duration::ZERO);
        assert_eq!(statuses(&answers), vec![200], "{body:?}");
        assert_eq!(rec.requests()[i].body, b"hello", "{body:?}");
    }
}

#[test]
fn transfer_codings_other_than_chunked_are_refused() {
    let rec = Recorder::start();
    let bulb = Bulb::start(&Conf::addrs(&[rec.addr]).yaml());
    let req = |te: &str| {
        format!("POST / HTTP/1.1\r\nHost: a\r\n{te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n").into_bytes()
    };
    let not_implemented = vec![
        ("gzip, chunked", req("Transfer-Encoding: gzip, chunked")),
        (
            "identity, chunked",
            req("Transfer-Encoding: identity, chunked"),
        ),
        (
            "chunked, chunked",
            req("Transfer-Encoding: chunked, chunked"),
        ),
        (
            "two headers",
            req("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"),
        ),
    ];
    refused(&bulb, &rec, &not_implemented, 501);
    let bad = vec![
        ("gzip alone", req("Transfer-Encoding: gzip")),
        ("chunked then gzip", req("Transfer-Encoding: chunked, gzip")),
        (
            "with Content-Length",
            req("Transfer-Encoding: chunked\r\nContent-Length: 5"),
        ),
    ];
    refused(&bulb, &rec, &bad, 400);
}

#[test]
fn request_targets_and_hosts_are_validated() {
    let rec = Recorder::start();
    let bulb = Bulb::start(&Conf::addrs(&[rec.addr]).yaml());
    let line = |l: &[u8]| [l, b"\r\nHost: a\r\n\r\n"].concat();
    let host = |h: &str| format!("GET / HTTP/1.1\r\n{h}\r\n\r\n").into_bytes();
    let cases = vec![
        ("space in target", line(b"GET /a b HTTP/1.1")),
        ("NUL in target", line(b"GET /a\0b HTTP/1.1")),
        ("CR in target", line(b"GET /a\rb HTTP/1.1")),
        ("no leading slash", line(b"GET a HTTP/1.1")),
        ("bad escape", line(b"GET /%zz HTTP/1.1")),
        ("raw UTF-8", line("GET /é HTTP/1.1".as_bytes())),
        ("fragment", line(b"GET /a#b HTTP/1.1")),
        ("quote", line(b"GET /\"x\" HTTP/1.1")),
        ("asterisk with GET", line(b"GET * HTTP/1.1")),
        ("authority form", line(b"GET a.example:80 HTTP/1.1")),
        ("other scheme", line(b"GET ftp://a/x HTTP/1.1")),
        ("userinfo", line(b"GET http://u@a/x HTTP/1.1")),
        ("bare LF line end", b"GET / HTTP/1.1\nHost: a\n\n".to_vec()),
        ("two spaces", line(b"GET  / HTTP/1.1")),
        ("no Host", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("empty Host", host("Host:")),
        ("two Hosts", host("Host: a\r\nHost: a")),
        ("Host with slash", host("Host: a/b")),
        ("Host with space", host("Host: a b")),
        ("Host unclosed v6", host("Host: [::1")),
        ("Host bad port", host("Host: a:99999")),
        (
            "Host differs from the absolute target",
            line(b"GET http://b.example/x HTTP/1.1"),
        ),
        (
            "absolute form without Host",
            b"GET http://b.example/x HTTP/1.1\r\n\r\n".to_vec(),
        ),
    ];
    refused(&bulb, &rec, &cases, 400);

    // Absolute form: the backend gets origin form and the URI's authority as Host
    // (HTTP/1.1 must still send a Host; HTTP/1.0 need not).
    for (version, extra) in [("1.1", "Host: B.example:81\r\n"), ("1.0", "")] {
        let abs = format!(
            "GET http://B.example:81/x?y=1 HTTP/{version}\r\n{extra}Connection: close\r\n\r\n"
        );
        let (answers, _, _) = exchange(bulb.addr, &[abs.as_bytes()], Duration::ZERO);
        assert_eq!(statuses(&answers), vec![200], "{abs}");
        let r = rec.requests().pop().expect("forwarded");
        assert!(r.line().starts_with("GET /x?y=1 HTTP/1."), "{}", r.line());
        assert_eq!(r.headers("host"), vec!["B.example:81"]);
    }
    // HTTP/1.0 needs no Host; OPTIONS * passes as is.
    let old: &[u8] = b"GET /old HTTP/1.0\r\n\r\n";
    assert_eq!(
        statuses(&exchange(bulb.addr, &[old], Duration::ZERO).0),
        vec![200]
    );
    let star: &[u8] = b"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    assert_eq!(
        statuses(&exchange(bulb.addr, &[star], Duration::ZERO).0),
        vec![200]
    );
    assert_eq!(
        rec.requests().pop().expect("forwarded").line(),
        "OPTIONS * HTTP/1.1"
    );
    // Characters browsers leave unescaped pass unchanged.
    let loose: &[u8] = b"GET /a[1]?q={x}|^ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    assert_eq!(
        statuses(&exchange(bulb.addr, &[loose], Duration::ZERO).0),
        vec![200]
    );
    assert_eq!(
        rec.requests().pop().expect("forwarded").line(),
        "GET /a[1]?q={x}|^ HTTP/1.1"
    );
}

#[test]
fn expect_continue_is_answered_by_bulb_and_keeps_the_connection() {
    let rec = Recorder::start();
    let bulb = Bulb::start(&Conf::addrs(&[rec.addr]).yaml());
    let mut s = TcpStream::connect(bulb.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    s.write_all(
        b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .expect("write");
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).expect("100 Continue");
    assert_eq!(&buf[..n], b"HTTP/1.1 100 Continue\r\n\r\n");
    assert!(
        rec.bytes().is_empty(),
        "nothing goes upstream before the body"
    );
    s.write_all(b"hello").expect("body");
    let n = s.read(&mut buf).expect("response");
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(!text.to_lowercase().contains("connection: close"), "{text}");
    // The same connection serves the next request.
    s.write_all(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("write");
    let n = s.read(&mut buf).expect("second response");
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("/next"),
        "{text}"
    );
    let reqs = rec.requests();
    assert_eq!(reqs[0].body, b"hello");
    assert!(reqs[0].headers("expect").is_empty(), "{}", reqs[0].head);
    assert_eq!(rec.connections(), 1);
    drop(s);

    let rec2 = Recorder::start();
    let bulb2 = Bulb::start(&Conf::addrs(&[rec2.addr]).yaml());
    let unknown = vec![(
        "200-ok",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 200-ok\r\n\r\nhello".to_vec(),
    )];
    refused(&bulb2, &rec2, &unknown, 417);
}

#[test]
fn a_buffered_body_is_retried_on_another_backend_after_a_connect_failure() {
    let rec = Recorder::start();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let yaml = Conf::empty()
        .upstream("    retries: 1\n")
        .backend(dead_addr, "")
        .backend(rec.addr, "")
        .yaml();
    let bulb = Bulb::start(&yaml);
    for i in 0..6 {
        let body = format!("payload-{i}");
        let chunked = i % 2 == 1;
        let req = if chunked {
            format!(
                "POST /p{i} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            )
        } else {
            format!(
                "POST /p{i} HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        let (answers, _, _) = exchange(bulb.addr, &[req.as_bytes()], Duration::ZERO);
        assert_eq!(statuses(&answers), vec![200], "request {i}");
        assert_eq!(
            rec.requests().pop().expect("forwarded").body,
            body.as_bytes()
        );
    }
    let m = bulb.admin_get("/metrics").body;
    let retries = m
        .lines()
        .find_map(|l| l.strip_prefix("bulb_retries_total "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        retries >= 1.0,
        "no request met the dead backend first:\n{m}"
    );
}

#[test]
fn large_bodies_stream_and_a_framing_error_ends_the_upstream_connection() {
    let rec = Recorder::start();
    let bulb = Bulb::start(&Conf::addrs(&[rec.addr]).yaml());
    let head = "POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunk = "x".repeat(40_000);
    let good = format!("{head}9c40\r\n{chunk}\r\n9c40\r\n{chunk}\r\n0\r\n\r\n");
    let (answers, _, _) = exchange(bulb.addr, &[good.as_bytes()], Duration::ZERO);
    assert_eq!(statuses(&answers), vec![200]);
    assert_eq!(rec.requests()[0].body.len(), 80_000);
    // Past the buffer the head has gone upstream; a bad chunk line then
    // aborts the request and the upstream connection is not used again.
    let bad = format!("{head}9c40\r\n{chunk}\r\n9c40\r\n{chunk}\r\nzz\r\n");
    let (answers, closed, took) = exchange(bulb.addr, &[bad.as_bytes()], Duration::ZERO);
    assert!(statuses(&answers).iter().all(|s| *s == 400), "{answers:?}");
    assert!(closed && took < Duration::from_secs(2), "{closed} {took:?}");
    let last = rec.connections() - 1;
    assert!(
        wait_for(Duration::from_secs(3), || rec.closed(last)).is_some(),
        "upstream connection kept after a framing error"
    );
    let (answers, _, _) = exchange(
        bulb.addr,
        &[b"GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"],
        Duration::ZERO,
    );
    assert_eq!(statuses(&answers), vec![200]);
    let after = rec.connections() - 1;
    assert!(after > last, "reused the aborted upstream connection");
    assert!(String::from_utf8_lossy(&rec.conn_bytes(after)).starts_with("GET /after "));
}

#[test]
fn a_stalled_body_is_answered_within_the_body_timeout() {
    let rec = Recorder::start();
    let bulb = Bulb::start(
        &Conf::addrs(&[rec.addr])
            .top("limits: {client_body_timeout: 1s}\n")
            .yaml(),
    );
    for (name, req) in [
        (
            "short Content-Length",
            &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"[..],
        ),
        (
            "unfinished chunked",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        ),
    ] {
        let (answers, closed, took) = exchange(bulb.addr, &[req], Duration::ZERO);
        assert_eq!(statuses(&answers), vec![408], "{name}");
        assert!(closed, "{name}");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "{name}: {took:?}"
        );
    }
    assert!(
        rec.bytes().is_empty(),
        "{:?}",
        String::from_utf8_lossy(&rec.bytes())
    );
}
