//! A real TCP backend on 127.0.0.1 for layer-4 tests, and a client helper.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What a TCP backend does with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpMode {
    /// Send `NAME\n`, then echo every byte back.
    Echo,
    /// Read until EOF, then answer `NAME got N` and close.
    ReplyAtEof,
    /// Expect a PROXY header; answer `NAME proxy v1|v2 CLIENT_IP:PORT\n`, then echo.
    Proxy,
    /// Accept and hold the connection; never read or write.
    Hold,
    /// Accept and close at once.
    Close,
}

/// A TCP backend.
pub struct TcpBackend {
    pub addr: SocketAddr,
    pub name: String,
    accepted: Arc<AtomicU64>,
    stopped: Arc<AtomicBool>,
    /// Set once the listening socket is closed.
    closed: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

/// A listening socket with a deep accept queue: tests open thousands of
/// sessions at once, and a SYN dropped from a full queue (std's backlog is
/// 128) is retried only after a second, past bulb's connect timeout.
fn listen(addr: SocketAddr) -> TcpListener {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.set_reuse_address(true).expect("reuse");
    s.bind(&addr.into()).expect("bind tcp backend");
    s.listen(4096).expect("listen");
    s.into()
}

impl TcpBackend {
    pub fn start(name: &str, mode: TcpMode) -> TcpBackend {
        Self::serve(listen("127.0.0.1:0".parse().unwrap()), name, mode)
    }

    /// Listen again on `addr` (after `stop`).
    pub fn restart(addr: SocketAddr, name: &str, mode: TcpMode) -> TcpBackend {
        Self::serve(listen(addr), name, mode)
    }

    fn serve(listener: TcpListener, name: &str, mode: TcpMode) -> TcpBackend {
        let addr = listener.local_addr().expect("addr");
        let b = TcpBackend {
            addr,
            name: name.to_string(),
            accepted: Arc::new(AtomicU64::new(0)),
            stopped: Arc::new(AtomicBool::new(false)),
            closed: Arc::new(AtomicBool::new(false)),
            held: Arc::new(Mutex::new(Vec::new())),
        };
        let (accepted, stopped, held) = (b.accepted.clone(), b.stopped.clone(), b.held.clone());
        let closed = b.closed.clone();
        let name = name.to_string();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                accepted.fetch_add(1, Ordering::SeqCst);
                match mode {
                    TcpMode::Hold => held.lock().unwrap().push(conn),
                    TcpMode::Close => drop(conn),
                    _ => {
                        let name = name.clone();
                        let held = held.clone();
                        if let Ok(c) = conn.try_clone() {
                            held.lock().unwrap().push(c);
                        }
                        thread::spawn(move || handle(conn, &name, mode));
                    }
                }
            }
            drop(listener);
            closed.store(true, Ordering::SeqCst);
        });
        b
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Stop listening and close every open connection.
    /// Returns once the address refuses connections: a connect that the
    /// closing listener's queue took would otherwise be reset, not refused.
    pub fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            // Wake the accept loop so that it sees `stopped`.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        }
        let t = std::time::Instant::now();
        while !self.closed.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(5));
        }
        self.release();
    }

    /// Close every open connection (the listener stays).
    pub fn release(&self) {
        for c in self.held.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for TcpBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn handle(mut c: TcpStream, name: &str, mode: TcpMode) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
    match mode {
        TcpMode::Echo => {
            if c.write_all(format!("{name}\n").as_bytes()).is_err() {
                return;
            }
            echo(c);
        }
        TcpMode::ReplyAtEof => {
            let mut all = Vec::new();
            let _ = c.read_to_end(&mut all);
            let _ = c.write_all(format!("{name} got {}", all.len()).as_bytes());
            let _ = c.shutdown(Shutdown::Both);
        }
        TcpMode::Proxy => {
            let Some((version, client)) = read_proxy_header(&mut c) else {
                let _ = c.write_all(b"no proxy header\n");
                return;
            };
            if c.write_all(format!("{name} proxy {version} {client}\n").as_bytes())
                .is_err()
            {
                return;
            }
            echo(c);
        }
        TcpMode::Hold | TcpMode::Close => {}
    }
}

fn echo(mut c: TcpStream) {
    let mut buf = [0u8; 65536];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = c.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if c.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Parse a PROXY v1 or v2 header: (version, client address).
fn read_proxy_header(c: &mut TcpStream) -> Option<(&'static str, SocketAddr)> {
    let mut first = [0u8; 12];
    c.read_exact(&mut first[..5]).ok()?;
    if &first[..5] == b"PROXY" {
        let mut line = b"PROXY".to_vec();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            c.read_exact(&mut b).ok()?;
            line.push(b[0]);
        }
        let text = String::from_utf8(line).ok()?;
        let parts: Vec<&str> = text.trim_end().split(' ').collect();
        let ip: std::net::IpAddr = parts.get(2)?.parse().ok()?;
        let port: u16 = parts.get(4)?.parse().ok()?;
        return Some(("v1", SocketAddr::new(ip, port)));
    }
    c.read_exact(&mut first[5..]).ok()?;
    if first != *b"\r\n\r\n\0\r\nQUIT\n" {
        return None;
    }
    let mut head = [0u8; 4];
    c.read_exact(&mut head).ok()?;
    let len = u16::from_be_bytes([head[2], head[3]]) as usize;
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).ok()?;
    match head[1] {
        0x11 => {
            let ip = std::net::Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            Some(("v2", SocketAddr::new(ip.into(), port)))
        }
        0x21 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&body[..16]);
            let port = u16::from_be_bytes([body[32], body[33]]);
            Some((
                "v2",
                SocketAddr::new(std::net::Ipv6Addr::from(o).into(), port),
            ))
        }
        _ => None,
    }
}

/// Connect to `addr` (from `from`, a loopback address, when given) and read
/// the first line the backend sends (its name, for `Echo`).
pub fn tcp_hello(addr: SocketAddr, from: Option<&str>) -> std::io::Result<(TcpStream, String)> {
    let s = match from {
        Some(ip) => {
            let sock = socket_from(ip)?;
            sock.connect(&addr.into())?;
            TcpStream::from(sock)
        }
        None => TcpStream::connect_timeout(&addr, Duration::from_secs(5))?,
    };
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let line = read_line(&s)?;
    Ok((s, line))
}

fn socket_from(ip: &str) -> std::io::Result<socket2::Socket> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let bind: SocketAddr = format!("{ip}:0").parse().map_err(std::io::Error::other)?;
    sock.bind(&bind.into())?;
    Ok(sock)
}

/// Read one `\n`-terminated line (without it).
pub fn read_line(mut s: &TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b)? {
            0 => break,
            _ if b[0] == b'\n' => break,
            _ => line.push(b[0]),
        }
    }
    Ok(String::from_utf8_lossy(&line).to_string())
}
