//! A real HTTP backend on 127.0.0.1 whose behaviour a test sets (answer,
//! hang, close, fail), and which remembers the requests it saw.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How a test backend answers.
#[derive(Clone, Debug)]
pub enum Mode {
    /// 200 with body `NAME`.
    Ok,
    /// Like Ok, after a delay.
    Slow(Duration),
    /// Accept, read the request, never answer.
    Hang,
    /// Answer with this status.
    Status(u16),
    /// HTTP/1.0, close after each response, like strm/helloworld-http.
    Http10,
    /// Read the request, then close without answering (a reset before any
    /// response byte).
    Close,
    /// Send the response head one byte per interval (a slow-loris backend).
    Trickle(Duration),
}

/// A request as a backend saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, n: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    }
}

struct BackendInner {
    name: String,
    mode: Mutex<Mode>,
    /// Status for paths starting with /health (None: as `mode`).
    health_status: Mutex<Option<u16>>,
    seen: Mutex<Vec<Seen>>,
    hits: AtomicU64,
    /// Requests being answered now, and the most at once.
    active: AtomicU64,
    peak: AtomicU64,
    stopped: AtomicBool,
}

/// A real HTTP backend on 127.0.0.1.
pub struct Backend {
    pub addr: SocketAddr,
    inner: Arc<BackendInner>,
    generation: Arc<AtomicU64>,
}

impl Backend {
    pub fn start(name: &str, mode: Mode) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(BackendInner {
            name: name.to_string(),
            mode: Mutex::new(mode),
            health_status: Mutex::new(None),
            seen: Mutex::new(Vec::new()),
            hits: AtomicU64::new(0),
            active: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let b = Backend {
            addr,
            inner,
            generation: Arc::new(AtomicU64::new(0)),
        };
        b.serve(listener);
        b
    }

    fn serve(&self, listener: TcpListener) {
        let inner = self.inner.clone();
        let gen = self.generation.clone();
        let my_gen = gen.load(Ordering::SeqCst);
        thread::spawn(move || {
            for conn in listener.incoming() {
                if gen.load(Ordering::SeqCst) != my_gen || inner.stopped.load(Ordering::SeqCst) {
                    break; // listener is dropped: the port refuses from now on
                }
                let Ok(conn) = conn else { continue };
                let inner = inner.clone();
                let gen = gen.clone();
                thread::spawn(move || handle(conn, inner, gen, my_gen));
            }
        });
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn set_mode(&self, m: Mode) {
        *self.inner.mode.lock().unwrap() = m;
    }

    pub fn set_health_status(&self, s: Option<u16>) {
        *self.inner.health_status.lock().unwrap() = s;
    }

    /// The most requests this backend answered at once.
    pub fn peak(&self) -> u64 {
        self.inner.peak.load(Ordering::SeqCst)
    }

    pub fn hits(&self) -> u64 {
        self.inner.hits.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// Close the listener and every connection: the port refuses.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        // Wake the accept loop so it drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok() {
            assert!(Instant::now() < deadline, "backend did not stop");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Listen again on the same port.
    pub fn restart(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("rebind {}: {e}", self.addr),
            }
        };
        self.inner.stopped.store(false, Ordering::SeqCst);
        self.serve(listener);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if !self.inner.stopped.load(Ordering::SeqCst) {
            self.inner.stopped.store(true, Ordering::SeqCst);
            self.generation.fetch_add(1, Ordering::SeqCst);
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
        }
    }
}

fn handle(conn: TcpStream, inner: Arc<BackendInner>, gen: Arc<AtomicU64>, my_gen: u64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut w = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_string();
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        if gen.load(Ordering::SeqCst) != my_gen {
            let _ = w.shutdown(Shutdown::Both);
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("/").to_string();
        let is_health = path.starts_with("/health");
        if !is_health {
            inner.hits.fetch_add(1, Ordering::SeqCst);
            inner.seen.lock().unwrap().push(Seen {
                line: line.clone(),
                headers,
            });
        }
        let mode = inner.mode.lock().unwrap().clone();
        let health = *inner.health_status.lock().unwrap();
        let now = inner.active.fetch_add(1, Ordering::SeqCst) + 1;
        inner.peak.fetch_max(now, Ordering::SeqCst);
        let _active = Active(&inner.active);
        let (status, close, v10) = match (&mode, is_health, health) {
            (_, true, Some(s)) => (s, false, false),
            (Mode::Hang, false, _) => {
                thread::sleep(Duration::from_secs(3600));
                return;
            }
            (Mode::Slow(d), _, _) => {
                thread::sleep(*d);
                (200, false, false)
            }
            (Mode::Status(s), false, _) => (*s, false, false),
            (Mode::Close, false, _) => {
                let _ = w.shutdown(Shutdown::Both);
                return;
            }
            (Mode::Http10, _, _) => (200, true, true),
            (Mode::Trickle(d), false, _) => {
                for b in b"HTTP/1.1 200 X\r\nContent-Length: 0\r\n\r\n" {
                    thread::sleep(*d);
                    if w.write_all(&[*b]).is_err() {
                        return;
                    }
                }
                continue;
            }
            _ => (200, false, false),
        };
        let body = inner.name.to_string();
        let resp = if v10 {
            format!("HTTP/1.0 {status} X\r\nContent-Type: text/html\r\n\r\nHello from {body}")
        } else {
            format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        if w.write_all(resp.as_bytes()).is_err() || close {
            let _ = w.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Counts a request as being answered until dropped.
struct Active<'a>(&'a AtomicU64);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
