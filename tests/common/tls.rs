//! TLS clients for tests: curl for one request, `openssl s_client` for the
//! certificate a handshake gets and for a connection kept open.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

/// curl over TLS to `host:port` (resolved to 127.0.0.1) trusting only
/// `ca`: the status, or 0 when the handshake or verification fails.
pub fn status_trusting(host: &str, port: u16, ca: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", "--cacert", ca, "--resolve"])
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

/// The subject common name of the certificate a handshake with
/// 127.0.0.1:`port` gets, sending `sni` (or no SNI).
pub fn served_cn(port: u16, sni: Option<&str>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")]);
    match sni {
        Some(n) => cmd.args(["-servername", n]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("openssl (the CI script installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    subject_cn(&text).unwrap_or_else(|| panic!("no certificate: {text}"))
}

fn subject_cn(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("subject="))?;
    Some(line.rsplit("CN = ").next()?.trim().to_string())
}

/// One TLS connection kept open (`openssl s_client`), for HTTP/1.1 requests.
pub struct TlsConn {
    child: Child,
    stdin: ChildStdin,
    chunks: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    subject: Option<String>,
}

impl TlsConn {
    /// Connect to 127.0.0.1:`port` with `sni`.
    pub fn open(port: u16, sni: &str) -> TlsConn {
        let mut child = Command::new("openssl")
            .args(["s_client", "-nocommands", "-ign_eof", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-servername", sni])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl");
        let stdin = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let (tx, chunks) = channel();
        std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            while let Ok(n @ 1..) = out.read(&mut b) {
                if tx.send(b[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        TlsConn {
            child,
            stdin,
            chunks,
            buf: Vec::new(),
            subject: None,
        }
    }

    /// Read until `done` finds what it wants in the buffer (10 s at most).
    fn until<T>(&mut self, done: impl Fn(&[u8]) -> Option<T>) -> T {
        loop {
            if let Some(t) = done(&self.buf) {
                return t;
            }
            let c = self
                .chunks
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| {
                    panic!("TLS connection: {}", String::from_utf8_lossy(&self.buf))
                });
            self.buf.extend_from_slice(&c);
        }
    }

    /// `GET /` on this connection: the status (the response is read whole).
    pub fn get(&mut self, host: &str) -> u16 {
        write!(self.stdin, "GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        self.stdin.flush().unwrap();
        let (start, head_end) = self.until(|b| {
            let start = find(b, b"HTTP/1.1 ")?;
            Some((start, start + find(&b[start..], b"\r\n\r\n")? + 4))
        });
        if self.subject.is_none() {
            self.subject = subject_cn(&String::from_utf8_lossy(&self.buf[..start]));
        }
        let head = String::from_utf8_lossy(&self.buf[start..head_end]).to_string();
        let status = head[9..12].parse().unwrap_or(0);
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        self.until(|b| (b.len() >= head_end + length).then_some(()));
        self.buf.drain(..head_end + length);
        status
    }

    /// The subject common name of the certificate this connection got.
    pub fn subject(&self) -> String {
        self.subject.clone().unwrap_or_default()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Drop for TlsConn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
