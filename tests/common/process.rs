//! bulb as a real process: free ports, a temp dir, the config file, start,
//! signals, logs, and waiting for conditions.

use super::client::{get, Resp};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

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
    /// Where this process's standard output goes.
    pub out: PathBuf,
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
        let (child, out) = Self::spawn_logged(&conf, &dir, &[]);
        let b = Bulb {
            child,
            out,
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
        Self::spawn_logged(conf, dir, extra).0
    }

    /// Like `spawn`, also returning the file its standard output goes to.
    pub fn spawn_logged(
        conf: &std::path::Path,
        dir: &std::path::Path,
        extra: &[&str],
    ) -> (Child, PathBuf) {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let out_path = dir.join(format!("stdout.{n}"));
        let out = std::fs::File::create(&out_path).unwrap();
        let err = std::fs::File::create(dir.join(format!("stderr.{n}"))).unwrap();
        let child = Command::new(bulb_bin())
            .arg("-c")
            .arg(conf)
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("NODES")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn bulb");
        (child, out_path)
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

    /// Wait up to `limit` until the logs contain `text`; panics with them
    /// if they do not.
    pub fn expect_log(&self, text: &str, limit: Duration) {
        assert!(
            wait_for(limit, || self.logs().contains(text)).is_some(),
            "no `{text}` in the logs:\n{}",
            self.logs()
        );
    }

    /// Stop every bulb running with this config file: successors a
    /// hand-over started are not our children.
    pub fn stop_successors(&self) {
        let out = Command::new("pgrep")
            .arg("-f")
            .arg(self.conf.display().to_string())
            .output()
            .expect("pgrep");
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").arg("-INT").arg(pid).status();
        }
    }

    /// What this process wrote to standard output so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
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

    /// The `/status` entry of backend `addr` in upstream `upstream`.
    pub fn backend(&self, upstream: &str, addr: impl std::fmt::Display) -> serde_json::Value {
        let addr = addr.to_string();
        let s = self.admin_get("/status").body;
        let v: serde_json::Value = serde_json::from_str(&s).expect("/status is JSON");
        v["upstreams"][upstream]["backends"]
            .as_array()
            .and_then(|a| a.iter().find(|b| b["address"] == addr.as_str()).cloned())
            .unwrap_or_else(|| panic!("{addr} not in {v}"))
    }

    /// The value of a metric line of `/metrics` (see [`metric`]).
    pub fn metric(&self, line_prefix: &str) -> Option<f64> {
        metric(&self.admin_get("/metrics").body, line_prefix)
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

/// Poll `f` every 20 ms until it is true or `limit` passes; returns the time taken.
/// The value of the first metric line of `text` (Prometheus text format)
/// that starts with `line_prefix` (a name, or a name with its labels).
pub fn metric(text: &str, line_prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

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

/// Resident memory of process `pid`, in KB.
pub fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `bulb -t -c FILE` on `yaml` written to `dir/name`: exit code and stderr.
pub fn check_config(dir: &std::path::Path, name: &str, yaml: &str) -> Checked {
    let f = dir.join(name);
    std::fs::write(&f, yaml).expect("write config");
    let out = Command::new(bulb_bin())
        .arg("-t")
        .arg("-c")
        .arg(&f)
        .output()
        .expect("run bulb -t");
    Checked {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        path: f.display().to_string(),
    }
}

/// Assert that `bulb -t` refuses `yaml` (as `bulb.yaml`) with `msg`, at
/// line `line` when given.
pub fn assert_config_error(yaml: &str, line: Option<u32>, msg: &str) {
    let c = check_config(&tempdir(), "bulb.yaml", yaml);
    assert_ne!(c.code, Some(0), "{yaml}");
    if let Some(l) = line {
        let at = format!("bulb.yaml:{l}:");
        assert!(c.stderr.contains(&at), "{yaml}: {}", c.stderr);
    }
    assert!(c.stderr.contains(msg), "{yaml}: {}", c.stderr);
}

/// What `bulb -t` said of a file.
pub struct Checked {
    /// Its exit code.
    pub code: Option<i32>,
    /// What it printed on stdout and stderr.
    pub stdout: String,
    pub stderr: String,
    /// The file's path (as it appears in the messages).
    pub path: String,
}

/// A peer process (redis-server, dnsmasq, a Python receiver) killed and
/// reaped when stopped or dropped.
pub struct Reaped(pub std::process::Child);

impl Reaped {
    /// Kill the process and wait for it.
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        self.stop();
    }
}
