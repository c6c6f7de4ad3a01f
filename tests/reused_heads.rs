//! Request and response heads are recycled between requests
//! (vendor/pingora-http PATCH.md, "Recycled heads"): every request on a
//! kept-alive client connection, forwarded over a pooled backend connection,
//! reaches the backend with exactly its own header lines, in its own case and
//! order — nothing left over from an earlier request's head.

mod common;
use common::recorder::Recorder;
use common::*;
use std::io::{BufReader, Write};
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
        assert_eq!(
            all.len(),
            own.len() + ADDED.len(),
            "request {i}: {}",
            got.head
        );
    }
    assert_eq!(recorded[2].body, b"abc");
}
