//! Test harness: real backend servers and real bulb processes on 127.0.0.1
//! with ephemeral ports, and a small raw HTTP/1.1 client.
#![allow(dead_code)]

pub mod recorder;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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

/// A response as a client saw it.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, n: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    }
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

/// A free port on 127.0.0.1, below the kernel's ephemeral range so that the
/// client sockets of a load run cannot take it before bulb binds it.
pub fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = u64::from(std::process::id()) * 7919;
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = 20_000 + ((seed + n * 104_729) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn tempdir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "bulb-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn bulb_bin() -> &'static str {
    env!("CARGO_BIN_EXE_bulb")
}

/// A running bulb process.
pub struct Bulb {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: PathBuf,
    pub conf: PathBuf,
}

impl Bulb {
    /// Start bulb with `yaml`, in which `{LISTEN}`, `{ADMIN}` and `{DIR}` are
    /// replaced with a free listener, a free admin address and the temp dir.
    pub fn start(yaml: &str) -> Bulb {
        let dir = tempdir();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let conf = dir.join("bulb.yaml");
        let text = Self::render(yaml, addr, admin, &dir);
        std::fs::write(&conf, text).unwrap();
        let child = Self::spawn(&conf, &dir, &[]);
        let b = Bulb {
            child,
            addr,
            admin,
            dir,
            conf,
        };
        b.wait_ready();
        b
    }

    pub fn render(
        yaml: &str,
        addr: SocketAddr,
        admin: SocketAddr,
        dir: &std::path::Path,
    ) -> String {
        let header = format!(
            "pid_file: {d}/bulb.pid\nupgrade_sock: {d}/upgrade.sock\nthreads: 2\n",
            d = dir.display()
        );
        let body = yaml
            .replace("{LISTEN}", &addr.to_string())
            .replace("{ADMIN}", &admin.to_string())
            .replace("{DIR}", &dir.display().to_string());
        if body.contains("upgrade_sock") {
            body
        } else {
            header + &body
        }
    }

    pub fn spawn(conf: &std::path::Path, dir: &std::path::Path, extra: &[&str]) -> Child {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let out = std::fs::File::create(dir.join(format!("stdout.{n}"))).unwrap();
        let err = std::fs::File::create(dir.join(format!("stderr.{n}"))).unwrap();
        Command::new(bulb_bin())
            .arg("-c")
            .arg(conf)
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("NODES")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn bulb")
    }

    /// Rewrite the config file (same placeholders as `start`).
    pub fn rewrite(&self, yaml: &str) {
        std::fs::write(
            &self.conf,
            Self::render(yaml, self.addr, self.admin, &self.dir),
        )
        .unwrap();
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let conf = std::fs::read_to_string(&self.conf).unwrap_or_default();
        let has_admin = conf.contains(&self.admin.to_string());
        let up = |a: &SocketAddr| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok();
        loop {
            if up(&self.addr) && (!has_admin || up(&self.admin)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "bulb did not start; stderr:\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// Everything bulb wrote to stderr so far (all processes in this dir).
    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            let mut names: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            names.sort();
            for p in names {
                if p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("stderr"))
                {
                    s += &std::fs::read_to_string(&p).unwrap_or_default();
                }
            }
        }
        s
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout.1")).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> std::io::Result<Resp> {
        get(self.addr, path)
    }

    /// The config generation `/status` reports.
    pub fn generation(&self) -> u64 {
        let s = self.admin_get("/status").body;
        let v: serde_json::Value = serde_json::from_str(&s).expect("status JSON");
        v["generation"].as_u64().expect("generation")
    }

    /// Wait until a reload has produced generation `n`.
    pub fn wait_generation(&self, n: u64) -> bool {
        wait_for(Duration::from_secs(5), || self.generation() == n).is_some()
    }

    pub fn admin_get(&self, path: &str) -> Resp {
        get(self.admin, path).expect("admin request")
    }

    /// Wait for exit up to `limit`; returns the time it took.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Some(t.elapsed());
            }
            thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Bulb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: i32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(st.success(), "kill -{sig} {pid} failed");
}

/// Send `n` sequential requests; count answers by body (backend name).
pub fn tally(addr: SocketAddr, path: &str, n: usize) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for _ in 0..n {
        let r = get(addr, path).expect("request");
        assert_eq!(r.status, 200, "status {} body {}", r.status, r.body);
        *m.entry(r.body).or_default() += 1;
    }
    m
}

/// Poll `f` every 20 ms until it is true or `limit` passes; returns the time taken.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Results of a load run.
#[derive(Default, Debug)]
pub struct LoadStats {
    pub ok: u64,
    pub non2xx: u64,
    pub errors: u64,
    pub by_body: HashMap<String, u64>,
    pub statuses: HashMap<u16, u64>,
}

/// Background load: `threads` clients sending requests (new connection each)
/// until stopped; bounded by `max` duration.
pub struct Load {
    stop: Arc<AtomicBool>,
    handles: Vec<thread::JoinHandle<LoadStats>>,
}

impl Load {
    pub fn start(addr: SocketAddr, threads: usize, max: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                thread::spawn(move || {
                    let mut st = LoadStats::default();
                    let t = Instant::now();
                    while !stop.load(Ordering::SeqCst) && t.elapsed() < max {
                        match get(addr, "/") {
                            Ok(r) => {
                                *st.statuses.entry(r.status).or_default() += 1;
                                if (200..300).contains(&r.status) {
                                    st.ok += 1;
                                    *st.by_body.entry(r.body).or_default() += 1;
                                } else {
                                    st.non2xx += 1;
                                }
                            }
                            Err(_) => st.errors += 1,
                        }
                    }
                    st
                })
            })
            .collect();
        Load { stop, handles }
    }

    pub fn finish(self) -> LoadStats {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = LoadStats::default();
        for h in self.handles {
            let s = h.join().expect("load thread");
            total.ok += s.ok;
            total.non2xx += s.non2xx;
            total.errors += s.errors;
            for (k, v) in s.by_body {
                *total.by_body.entry(k).or_default() += v;
            }
            for (k, v) in s.statuses {
                *total.statuses.entry(k).or_default() += v;
            }
        }
        total
    }
}

/// `backends:` YAML list for these backends.
pub fn backends_yaml(bs: &[&Backend]) -> String {
    bs.iter()
        .map(|b| format!("      - address: {}\n", b.addr))
        .collect()
}
