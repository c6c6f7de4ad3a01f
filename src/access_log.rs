//! The access log: nginx "combined" lines plus the upstream address and the
//! request time, or one JSON object per line (`format: json`). Requests hand lines to a writer thread over a bounded
//! channel and never wait: when the writer falls behind, lines are dropped
//! and counted. The writer sleeps until a line arrives, writes everything
//! queued by then in one go, and confirms a [`AccessLog::flush`] once what
//! was queued before it is written.

mod json;

use crate::config::{AccessLogSpec, LogFormat};
use arc_swap::ArcSwapOption;
use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one TCP session contributes to its log line.
pub struct SessionEntry<'a> {
    /// Client address.
    pub client: Option<SocketAddr>,
    /// The listener it arrived on.
    pub listener: SocketAddr,
    /// How it ended (`closed`, `idle_timeout`, `reset`, `no_backend`).
    pub end: &'a str,
    /// Bytes from the client to the backend.
    pub up: u64,
    /// Bytes from the backend to the client.
    pub down: u64,
    /// The backend, if one was reached.
    pub upstream: Option<SocketAddr>,
    /// Session duration.
    pub elapsed: Duration,
}

/// What one request contributes to its log line.
pub struct Entry<'a> {
    /// Client address.
    pub client: Option<SocketAddr>,
    /// Method.
    pub method: &'a str,
    /// Path and query.
    pub uri: &'a str,
    /// HTTP version.
    pub version: http::Version,
    /// Status sent; `None` when no response was (the client left first),
    /// written `499` as nginx does.
    pub status: Option<u16>,
    /// Body bytes sent to the client.
    pub bytes: usize,
    /// Referer header.
    pub referer: Option<&'a [u8]>,
    /// User-Agent header.
    pub user_agent: Option<&'a [u8]>,
    /// Backend address of the last attempt.
    pub upstream: Option<SocketAddr>,
    /// Time from request start to log.
    pub elapsed: Duration,
    /// The upstream the request was routed to (JSON only).
    pub upstream_name: Option<&'a str>,
    /// Backends tried (JSON only).
    pub attempts: u32,
    /// The request's `X-Request-Id` (JSON only).
    pub request_id: Option<&'a [u8]>,
    /// The request's W3C `traceparent`: bulb's with `tracing`, else the
    /// client's (JSON only: its trace id).
    pub traceparent: Option<&'a [u8]>,
    /// TLS version of the client connection (JSON only).
    pub tls_version: Option<&'a str>,
    /// The server name the client asked for in its TLS handshake (JSON only).
    pub sni: Option<&'a str>,
}

enum Msg {
    Line(String),
    Reopen,
    /// Write out everything queued so far, then answer.
    Flush(SyncSender<()>),
}

/// Handle to the access log; cheap to share.
pub struct AccessLog {
    tx: ArcSwapOption<SyncSender<Msg>>,
    /// Whether `tx` is set: read per request, where loading `tx` would
    /// cost an `ArcSwap` load even with the log off.
    on: AtomicBool,
    dropped: Arc<AtomicU64>,
    json: AtomicBool,
}

const QUEUE: usize = 16 * 1024;

impl AccessLog {
    /// Start logging to `target` in `format` (a writer thread per target).
    pub fn new(target: &AccessLogSpec, format: LogFormat) -> Self {
        let log = AccessLog {
            tx: ArcSwapOption::empty(),
            on: AtomicBool::new(false),
            dropped: Arc::new(AtomicU64::new(0)),
            json: AtomicBool::new(false),
        };
        log.retarget(target, format);
        log
    }

    /// Switch to `target` and `format` (a reload may change them); also
    /// reopens a file.
    pub fn retarget(&self, target: &AccessLogSpec, format: LogFormat) {
        self.json.store(format == LogFormat::Json, Relaxed);
        let tx = match target {
            AccessLogSpec::Off => None,
            t => {
                let (tx, rx) = sync_channel(QUEUE);
                let t = t.clone();
                let spawned = std::thread::Builder::new()
                    .name("bulb-access-log".into())
                    .spawn(move || writer(t, rx));
                match spawned {
                    Ok(_) => Some(tx),
                    Err(e) => {
                        log::error!("cannot start the access-log writer: {e}");
                        None
                    }
                }
            }
        };
        self.on.store(tx.is_some(), Relaxed);
        self.tx.store(tx.map(Arc::new));
    }

    /// Reopen the log file (after logrotate moved it).
    pub fn reopen(&self) {
        if let Some(tx) = self.tx.load().as_ref() {
            let _ = tx.try_send(Msg::Reopen);
        }
    }

    /// Whether lines are JSON (which carry more fields than combined ones).
    pub fn json(&self) -> bool {
        self.json.load(Relaxed)
    }

    /// Whether lines are being written.
    pub fn enabled(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// Lines dropped so far because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Wait (up to `limit`) until every line queued so far is written:
    /// for a process about to exit. False when the writer did not confirm.
    pub fn flush(&self, limit: Duration) -> bool {
        let Some(tx) = self.tx.load_full() else {
            return true;
        };
        let (done_tx, done_rx) = sync_channel(1);
        if tx.send(Msg::Flush(done_tx)).is_err() {
            return false;
        }
        done_rx.recv_timeout(limit).is_ok()
    }

    /// Queue one request line; never blocks.
    pub fn log(&self, e: Entry<'_>) {
        self.send_as(|now| json::request(&e, now), |now| format_line(&e, now));
    }

    /// Queue one TCP session line; never blocks.
    pub fn log_session(&self, e: SessionEntry<'_>) {
        self.send_as(|now| json::session(&e, now), |now| format_session(&e, now));
    }

    /// Format a line as the configured format says, then queue it.
    fn send_as(
        &self,
        json: impl FnOnce(SystemTime) -> String,
        combined: impl FnOnce(SystemTime) -> String,
    ) {
        let now = SystemTime::now();
        self.send(if self.json() {
            json(now)
        } else {
            combined(now)
        });
    }

    fn send(&self, line: String) {
        if let Some(tx) = self.tx.load().as_ref() {
            if let Err(TrySendError::Full(_)) = tx.try_send(Msg::Line(line)) {
                self.dropped.fetch_add(1, Relaxed);
            }
        }
    }
}

fn open(t: &AccessLogSpec) -> Box<dyn Write + Send> {
    match t {
        AccessLogSpec::File(p) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            Ok(f) => Box::new(f),
            Err(e) => {
                log::error!("cannot open access log {p}: {e}; logging to stderr");
                Box::new(std::io::stderr())
            }
        },
        _ => Box::new(std::io::stdout()),
    }
}

/// Write lines as they come: block until one arrives, then take everything
/// queued behind it before flushing, so a busy log costs one write per batch.
fn writer(t: AccessLogSpec, rx: Receiver<Msg>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, open(&t));
    let mut next = rx.recv();
    while let Ok(msg) = next {
        match msg {
            Msg::Line(l) => {
                let _ = out.write_all(l.as_bytes());
            }
            Msg::Reopen => {
                let _ = out.flush();
                out = std::io::BufWriter::with_capacity(64 * 1024, open(&t));
            }
            Msg::Flush(done) => {
                let _ = out.flush();
                let _ = done.send(());
            }
        }
        next = match rx.try_recv() {
            Ok(m) => Ok(m),
            Err(TryRecvError::Empty) => {
                let _ = out.flush();
                rx.recv()
            }
            Err(TryRecvError::Disconnected) => break,
        };
    }
    let _ = out.flush();
}

fn escaped(out: &mut String, b: Option<&[u8]>) {
    match b {
        None => out.push('-'),
        Some(b) => {
            for &c in b {
                match c {
                    b'"' | b'\\' => {
                        let _ = write!(out, "\\x{c:02X}");
                    }
                    0x20..=0x7e => out.push(c as char),
                    _ => {
                        let _ = write!(out, "\\x{c:02X}");
                    }
                }
            }
        }
    }
}

thread_local! {
    /// The last formatted timestamp, by second: formatting a date per request is waste.
    static CLF_CACHE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
}

/// `addr - - [time` (the time cached per second: formatting a date per
/// line is waste).
fn client_and_time(s: &mut String, client: Option<SocketAddr>, now: SystemTime) {
    match client {
        Some(a) => {
            let _ = write!(s, "{}", a.ip());
        }
        None => s.push('-'),
    }
    s.push_str(" - - [");
    CLF_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if c.0 != secs || c.1.is_empty() {
            c.1.clear();
            clf_time(&mut c.1, now);
            c.0 = secs;
        }
        s.push_str(&c.1);
    });
}

/// One TCP session line, in the same columns as a request:
/// `addr - - [time] "TCP LISTENER" END bytes_down bytes_up upstream duration`.
pub fn format_session(e: &SessionEntry<'_>, now: SystemTime) -> String {
    let mut s = String::with_capacity(128);
    client_and_time(&mut s, e.client, now);
    let _ = write!(s, "] \"TCP {}\" {} {} {} ", e.listener, e.end, e.down, e.up);
    match e.upstream {
        Some(u) => {
            let _ = write!(s, "{u}");
        }
        None => s.push('-'),
    }
    let _ = writeln!(s, " {:.3}", e.elapsed.as_secs_f64());
    s
}

/// The status written for a request that got no response (nginx's "client
/// closed request").
pub(crate) const CLIENT_CLOSED: u16 = 499;

/// One line: `addr - - [time] "METHOD URI VERSION" status bytes "referer" "ua" upstream rt`.
pub fn format_line(e: &Entry<'_>, now: SystemTime) -> String {
    let mut s = String::with_capacity(160);
    client_and_time(&mut s, e.client, now);
    s.push_str("] \"");
    escaped(&mut s, Some(e.method.as_bytes()));
    s.push(' ');
    escaped(&mut s, Some(e.uri.as_bytes()));
    let status = e.status.unwrap_or(CLIENT_CLOSED);
    let _ = write!(s, " {:?}\" {} {} \"", e.version, status, e.bytes);
    escaped(&mut s, e.referer);
    s.push_str("\" \"");
    escaped(&mut s, e.user_agent);
    s.push_str("\" ");
    match e.upstream {
        Some(u) => {
            let _ = write!(s, "{u}");
        }
        None => s.push('-'),
    }
    let _ = writeln!(s, " {:.3}", e.elapsed.as_secs_f64());
    s
}

/// Civil date and time (UTC) of `now`: year, month, day, seconds of the day.
fn civil(now: SystemTime) -> (i64, i64, i64, u64) {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d, rem) = crate::clock::civil(secs as i64);
    (y, m, d, rem as u64)
}

/// `21/Nov/2026:10:51:08 +0000` (UTC).
fn clf_time(s: &mut String, now: SystemTime) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, rem) = civil(now);
    let _ = write!(
        s,
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_format() {
        let e = Entry {
            client: Some("127.0.0.1:5000".parse().unwrap()),
            method: "GET",
            uri: "/a?b=\"c\"",
            version: http::Version::HTTP_11,
            status: Some(200),
            bytes: 12,
            referer: None,
            user_agent: Some(b"curl/8"),
            upstream: Some("127.0.0.1:9001".parse().unwrap()),
            elapsed: Duration::from_millis(3),
            upstream_name: Some("web"),
            attempts: 1,
            request_id: None,
            traceparent: None,
            tls_version: None,
            sni: None,
        };
        let t = UNIX_EPOCH + Duration::from_secs(1_795_258_268);
        assert_eq!(
            format_line(&e, t),
            "127.0.0.1 - - [21/Nov/2026:10:51:08 +0000] \"GET /a?b=\\x22c\\x22 HTTP/1.1\" 200 12 \"-\" \"curl/8\" 127.0.0.1:9001 0.003\n"
        );
    }
}
