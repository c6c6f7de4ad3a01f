//! A backend that records the exact bytes it receives, per connection, and
//! answers each request it can frame with 200 and the request target as body.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One request as the recorder framed it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The head, request line to empty line, as received.
    pub head: String,
    /// The decoded body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// Every value of header `name`.
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// The request line.
    pub fn line(&self) -> &str {
        self.head.split("\r\n").next().unwrap_or_default()
    }
}

#[derive(Default)]
struct Conn {
    bytes: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct State {
    conns: Vec<Arc<Mutex<Conn>>>,
    requests: Vec<Recorded>,
}

/// The recording backend.
pub struct Recorder {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let c = Arc::new(Mutex::new(Conn::default()));
                st.lock().unwrap().conns.push(c.clone());
                let st = st.clone();
                thread::spawn(move || serve(conn, c, st));
            }
        });
        Recorder { addr, state }
    }

    /// Every byte received, all connections in order of acceptance.
    pub fn bytes(&self) -> Vec<u8> {
        let st = self.state.lock().unwrap();
        st.conns
            .iter()
            .flat_map(|c| c.lock().unwrap().bytes.clone())
            .collect()
    }

    /// Bytes received on connection `i`.
    pub fn conn_bytes(&self, i: usize) -> Vec<u8> {
        self.state.lock().unwrap().conns[i]
            .lock()
            .unwrap()
            .bytes
            .clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().conns.len()
    }

    /// Whether the peer closed connection `i`.
    pub fn closed(&self, i: usize) -> bool {
        self.state.lock().unwrap().conns[i].lock().unwrap().closed
    }

    /// Requests framed so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

/// Reads from a connection, recording every byte.
struct Tap {
    conn: TcpStream,
    rec: Arc<Mutex<Conn>>,
    buf: Vec<u8>,
}

impl Tap {
    /// Read more; false at EOF or error.
    fn fill(&mut self) -> bool {
        let mut b = [0u8; 8192];
        match self.conn.read(&mut b) {
            Ok(0) | Err(_) => {
                self.rec.lock().unwrap().closed = true;
                false
            }
            Ok(n) => {
                self.rec.lock().unwrap().bytes.extend_from_slice(&b[..n]);
                self.buf.extend_from_slice(&b[..n]);
                true
            }
        }
    }

    fn take_until(&mut self, pat: &[u8]) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(pat.len()).position(|w| w == pat) {
                return Some(self.buf.drain(..i + pat.len()).collect());
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill() {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }
}

fn serve(conn: TcpStream, rec: Arc<Mutex<Conn>>, st: Arc<Mutex<State>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut w) = conn.try_clone() else { return };
    let mut tap = Tap {
        conn,
        rec,
        buf: Vec::new(),
    };
    while let Some(head) = tap.take_until(b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&head).to_string();
        let r = Recorded {
            head,
            body: Vec::new(),
        };
        let chunked = r
            .headers("transfer-encoding")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("chunked"));
        let body = if chunked {
            read_chunked(&mut tap)
        } else {
            let n = r
                .headers("content-length")
                .first()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            tap.take(n)
        };
        let Some(body) = body else { return };
        let target = r.line().split(' ').nth(1).unwrap_or("").to_string();
        st.lock().unwrap().requests.push(Recorded { body, ..r });
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{target}",
            target.len()
        );
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

fn read_chunked(tap: &mut Tap) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = tap.take_until(b"\r\n")?;
        let size = std::str::from_utf8(&line[..line.len() - 2]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            // Trailers, then the empty line.
            while tap.take_until(b"\r\n")?.len() > 2 {}
            return Some(body);
        }
        body.extend(tap.take(size)?);
        tap.take(2)?;
    }
}
