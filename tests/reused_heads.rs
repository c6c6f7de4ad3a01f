//! Request and response heads are recycled between requests
//! (vendor/pingora-http PATCH.md, "Recycled heads"): every request on a
//! kept-alive client connection, forwarded over a pooled backend connection,
//! reaches the backend with exactly its own header lines, in its own case and
//! order — nothing left over from an earlier request's head — and each
//! response reaches the client with the backend's header lines spelled as the
//! backend spelled them (vendor/pingora-http PATCH.md, "Header-name case kept
//! only where it is not the usual one").

mod common;
use common::canned::{Canned, Page};
use common::recorder::Recorder;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

/// The names bulb adds to every forwarded request.
const ADDED: [&str; 4] = [
    "x-request-id",
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded-proto",
];

/// The header lines of a recorded head, request line left out.
fn lines(head: &str) -> Vec<&str> {
    head.split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn each_request_on_a_kept_alive_connection_carries_only_its_own_headers() {
    let rec = Recorder::start();
    let bulb = Bulb::start(&Conf::addrs(&[rec.addr]).yaml());
    // (request, the client's header lines bulb must pass on as they are, X-Forwarded-For)
    let cases: [(&[u8], &[&str], &str); 4] = [
        (
            b"GET /one HTTP/1.1\r\nHost: a\r\nX-Mixed-CASE: 1\r\nx-dup: a\r\nX-DUP: b\r\nCookie: c=1\r\n\r\n",
            &["Host: a", "X-Mixed-CASE: 1", "x-dup: a", "X-DUP: b", "Cookie: c=1"],
            "127.0.0.1",
        ),
        (
            b"GET /two?q=1 HTTP/1.1\r\nHost: b\r\nUser-Agent: ua\r\n\r\n",
            &["Host: b", "User-Agent: ua"],
            "127.0.0.1",
        ),
        (
            b"POST /three HTTP/1.1\r\nHost: c\r\nContent-Length: 3\r\nX-Forwarded-For: 10.0.0.9\r\n\r\nabc",
            &["Host: c", "Content-Length: 3"],
            "10.0.0.9, 127.0.0.1",
        ),
        (b"GET /four HTTP/1.1\r\nHost: d\r\n\r\n", &["Host: d"], "127.0.0.1"),
    ];
    let mut client = TcpStream::connect(bulb.addr).expect("connect");
    let mut answers = BufReader::new(client.try_clone().expect("clone"));
    for (i, (request, _, _)) in cases.iter().enumerate() {
        client.write_all(request).expect("send");
        let (status, _) = read_framed(&mut answers).expect("an answer");
        assert!(status.starts_with("HTTP/1.1 200"), "request {i}: {status}");
    }
    let recorded = rec.requests();
    assert_eq!(recorded.len(), cases.len());
    // One backend connection: the heads were recycled on both sides.
    assert_eq!(rec.connections(), 1);
    let targets = [
        "GET /one HTTP/1.1",
        "GET /two?q=1 HTTP/1.1",
        "POST /three HTTP/1.1",
        "GET /four HTTP/1.1",
    ];
    for (i, ((_, own, xff), got)) in cases.iter().zip(&recorded).enumerate() {
        assert_eq!(got.line(), targets[i]);
        let all = lines(&got.head);
        let passed: Vec<&str> = all
            .iter()
            .copied()
            .filter(|l| {
                let name = l.split(':').next().unwrap_or("").to_ascii_lowercase();
                !ADDED.contains(&name.as_str())
            })
            .collect();
        assert_eq!(&passed, own, "request {i}: {}", got.head);
        for name in ADDED {
            assert_eq!(
                got.headers(name).len(),
                1,
                "request {i}: {name} in {}",
                got.head
            );
        }
        assert_eq!(
            got.headers("x-forwarded-for"),
            vec![xff.to_string()],
            "request {i}"
        );
        assert_eq!(got.headers("x-real-ip"), vec!["127.0.0.1"], "request {i}");
        // bulb's own lines are spelled as the SPEC spells them.
        assert!(all.contains(&"X-Real-IP: 127.0.0.1"), "{}", got.head);
        assert!(all.contains(&"X-Forwarded-Proto: http"), "{}", got.head);
        assert!(all.iter().any(|l| l.starts_with("X-Forwarded-For: ")));
        assert!(all.iter().any(|l| l.starts_with("X-Request-Id: ")));
        assert_eq!(
            all.len(),
            own.len() + ADDED.len(),
            "request {i}: {}",
            got.head
        );
    }
    assert_eq!(recorded[2].body, b"abc");
}

/// The header lines of one response read from `r` (status line left out),
/// after its body is read.
fn response_lines(r: &mut impl BufRead) -> Vec<String> {
    let mut status = String::new();
    r.read_line(&mut status).expect("status line");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let (mut lines, mut len) = (Vec::new(), 0usize);
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("a header line");
        let line = line.trim_end_matches("\r\n").to_string();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().expect("a length");
        }
        lines.push(line);
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).expect("the body");
    lines
}

#[test]
fn each_response_reaches_the_client_spelled_as_the_backend_spelled_it() {
    let odd = [
        "content-type: text/plain",
        "X-Mixed-CASE: 1",
        "x-dup: a",
        "X-DUP: b",
        "Etag: \"go\"",
    ];
    let usual = [
        "Content-Type: text/plain",
        "ETag: \"v\"",
        "Last-Modified: x",
    ];
    let site = Canned::start(vec![
        Page::new("/odd", &odd, "odd"),
        Page::new("/usual", &usual, "usual"),
    ]);
    let bulb = Bulb::start(&Conf::addrs(&[site.addr]).yaml());
    let mut client = TcpStream::connect(bulb.addr).expect("connect");
    let mut answers = BufReader::new(client.try_clone().expect("clone"));
    for (path, want) in [
        ("/odd", &odd[..]),
        ("/usual", &usual[..]),
        ("/odd", &odd[..]),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
        client.write_all(request.as_bytes()).expect("send");
        let got = response_lines(&mut answers);
        let from_backend: Vec<&str> = got
            .iter()
            .map(String::as_str)
            .filter(|l| want.iter().any(|w| w.eq_ignore_ascii_case(l)))
            .collect();
        assert_eq!(&from_backend, want, "{path}: {got:?}");
        let length = format!("Content-Length: {}", if path == "/odd" { 3 } else { 5 });
        assert!(got.contains(&length), "{path}: {got:?}");
    }
}
