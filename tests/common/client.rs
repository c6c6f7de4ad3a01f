//! A small raw HTTP/1.1 client: one request per connection, the answer
//! read until the server closes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response as a client saw it.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, n: &str) -> Option<&str> {
        header_in(&self.headers, n)
    }
}

/// The first value of header `n` (any case) among `headers`.
pub fn header_in<'a>(headers: &'a [(String, String)], n: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(n))
        .map(|(_, v)| v.as_str())
}

/// Send `raw` and read the response until the server closes.
pub fn raw(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    s.write_all(raw)?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) if !out.is_empty() => {
            let _ = e;
            Ok(out)
        }
        Err(e) => Err(e),
    }
}

pub fn parse_resp(bytes: &[u8]) -> Option<Resp> {
    let text = String::from_utf8_lossy(bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// GET `path` with extra headers, `Connection: close`.
pub fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Resp> {
    let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str("Host: test.local\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let bytes = raw(addr, req.as_bytes())?;
    parse_resp(&bytes).ok_or_else(|| {
        std::io::Error::other(format!(
            "bad response: {:?}",
            String::from_utf8_lossy(&bytes)
        ))
    })
}

pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<Resp> {
    get_with(addr, path, &[])
}

/// Send raw bytes; everything the server answered, as text.
pub fn raw_text(addr: SocketAddr, bytes: &[u8]) -> String {
    String::from_utf8_lossy(&raw(addr, bytes).unwrap_or_default()).into_owned()
}

/// Send raw bytes; the status of the first response (None: closed without
/// one) and everything the server answered, as text.
pub fn raw_status(addr: SocketAddr, bytes: &[u8]) -> (Option<u16>, String) {
    let text = raw_text(addr, bytes);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|r| r.get(..3)?.parse().ok());
    (status, text)
}

/// Read one response framed by `Content-Length` from a keep-alive
/// connection: its status line and body; `None` at EOF.
pub fn read_framed(r: &mut impl std::io::BufRead) -> Option<(String, Vec<u8>)> {
    let mut status = String::new();
    if r.read_line(&mut status).ok()? == 0 {
        return None;
    }
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((status, body))
}
