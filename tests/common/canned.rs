//! A real HTTP/1.1 backend on 127.0.0.1 that answers each path with a fixed
//! response (status line and headers as given, `Content-Length` added),
//! keeps connections alive, and records the request heads it saw.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread;

/// One canned answer: the path it is for, the head lines after the status
/// line (`"Content-Type: text/html"`), and the body.
#[derive(Clone)]
pub struct Page {
    pub path: String,
    pub head: Vec<String>,
    pub body: Vec<u8>,
}

impl Page {
    pub fn new(path: &str, head: &[&str], body: impl Into<Vec<u8>>) -> Page {
        Page {
            path: path.into(),
            head: head.iter().map(|h| h.to_string()).collect(),
            body: body.into(),
        }
    }
}

/// The backend.
pub struct Canned {
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Canned {
    pub fn start(pages: Vec<Page>) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (pages, seen) = (Arc::new(pages), heads.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (pages, seen) = (pages.clone(), seen.clone());
                thread::spawn(move || {
                    let mut w = conn.try_clone().expect("clone");
                    let mut r = BufReader::new(conn);
                    loop {
                        let mut head = String::new();
                        loop {
                            let mut line = String::new();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            head.push_str(&line);
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let target = head.split(' ').nth(1).unwrap_or("");
                        let path = target.split('?').next().unwrap_or("").to_string();
                        seen.lock().unwrap().push(head);
                        let page = pages.iter().find(|p| p.path == path);
                        let mut out = Vec::new();
                        match page {
                            Some(p) => {
                                out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
                                for h in &p.head {
                                    out.extend_from_slice(format!("{h}\r\n").as_bytes());
                                }
                                out.extend_from_slice(
                                    format!("Content-Length: {}\r\n\r\n", p.body.len()).as_bytes(),
                                );
                                out.extend_from_slice(&p.body);
                            }
                            None => out.extend_from_slice(
                                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                            ),
                        }
                        if w.write_all(&out).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Canned { addr, heads }
    }

    /// The request heads seen so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// A response read whole, its body as bytes (chunked framing removed).
pub struct BinResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl BinResp {
    pub fn header(&self, n: &str) -> Option<&str> {
        super::client::header_in(&self.headers, n)
    }
}

/// Send `req` (with `Connection: close`) and read the whole response.
pub fn fetch(addr: SocketAddr, path: &str, headers: &[(&str, &str)], version: &str) -> BinResp {
    let mut req = format!("GET {path} {version}\r\nHost: test.local\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let bytes = super::client::raw(addr, req.as_bytes()).expect("request");
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&bytes[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = bytes[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    BinResp {
        status: status.expect("a status"),
        headers,
        body,
    }
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = s.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&s[..i]).unwrap_or("0");
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        let rest = &s[i + 2..];
        if n == 0 {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}
