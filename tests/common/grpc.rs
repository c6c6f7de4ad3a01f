//! Real gRPC and HTTPS peers (Python grpcio, `tests/peers/grpc_peer.py`),
//! and the Python environment every Python peer runs in (the OTLP receiver
//! of `tests/common/otlp.rs` too).
//!
//! The peers run in a virtual environment the tests make themselves under
//! `target/tmp/pyenv` (a stock Debian refuses `pip install` into the system
//! Python, PEP 668); it is made once and reused by later runs.

use super::certs::Leaf;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/grpc_peer.py")
}

/// What the peers import; the environment is ready when all of them load.
const PACKAGES: [&str; 3] = ["grpcio", "grpcio-health-checking", "opentelemetry-proto"];

/// The Python interpreter of the peers' virtual environment, made on first use.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyenv");
        let python = dir.join("bin/python");
        let ready = |py: &Path| {
            Command::new(py)
                .args([
                    "-c",
                    "import grpc, grpc_health.v1, opentelemetry.proto.collector.trace.v1.trace_service_pb2",
                ])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if ready(&python) {
            return python;
        }
        // Built beside and renamed into place, so that a half-made
        // environment (an interrupted run, a parallel test binary) is never used.
        let building = dir.with_extension(format!("building-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&building);
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&building),
            "python3 -m venv (Debian: apt-get install python3-venv)",
        );
        run(
            Command::new(building.join("bin/python"))
                .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
                .args(PACKAGES),
            "pip install grpcio grpcio-health-checking opentelemetry-proto into the test environment",
        );
        if std::fs::rename(&building, &dir).is_err() {
            if ready(&python) {
                let _ = std::fs::remove_dir_all(&building); // another run made it first
            } else {
                let _ = std::fs::remove_dir_all(&dir); // a broken one from an older run
                let _ = std::fs::rename(&building, &dir);
            }
        }
        assert!(ready(&python), "{} cannot import the peers' packages", python.display());
        python
    })
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A gRPC (or HTTPS) server process.
pub struct GrpcPeer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub addr: SocketAddr,
}

impl GrpcPeer {
    fn spawn(args: &[&str]) -> GrpcPeer {
        let mut child = Command::new(python())
            .arg(script())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the peers' python");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port: u16 = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("peer {args:?} did not start: {line:?}"));
        GrpcPeer {
            child,
            stdin,
            stdout,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
        }
    }

    /// A cleartext (h2c) gRPC server answering as `name`.
    pub fn h2c(name: &str) -> GrpcPeer {
        Self::spawn(&["serve", name])
    }

    /// A gRPC server over TLS with `cert`/`key`; with `client_ca`, it
    /// requires a client certificate signed by it.
    pub fn tls(name: &str, leaf: &Leaf, client_ca: Option<&str>) -> GrpcPeer {
        let mut args = vec!["serve", name, "--cert", &leaf.cert, "--key", &leaf.key];
        if let Some(ca) = client_ca {
            args.extend(["--client-ca", ca]);
        }
        Self::spawn(&args)
    }

    /// An HTTP/1.1 server over TLS answering `name`.
    pub fn https(name: &str, leaf: &Leaf) -> GrpcPeer {
        Self::spawn(&["https", name, "--cert", &leaf.cert, "--key", &leaf.key])
    }

    /// Set the health status of `service` (`""`: the server).
    pub fn set_health(&mut self, service: &str, status: &str) {
        let svc = if service.is_empty() { "-" } else { service };
        writeln!(self.stdin, "health {svc} {status}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "OK");
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for GrpcPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a client reaches bulb.
pub enum Channel<'a> {
    /// h2c, with this `:authority` if given.
    Clear(Option<&'a str>),
    /// TLS trusting `ca`, checking the name `name`.
    Tls { ca: &'a str, name: &'a str },
}

/// Run gRPC calls (`ops`, see grpc_peer.py) over one channel to `target`.
pub fn grpc_calls(target: SocketAddr, ops: &Value, channel: Channel) -> Vec<Value> {
    let mut cmd = Command::new(python());
    cmd.arg(script())
        .args(["call", &target.to_string(), &ops.to_string()]);
    match channel {
        Channel::Clear(None) => {}
        Channel::Clear(Some(a)) => {
            cmd.args(["--authority", a]);
        }
        Channel::Tls { ca, name } => {
            cmd.args(["--ca", ca, "--name", name]);
        }
    }
    let out = cmd.output().expect("the peers' python");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str::<Value>(&text)
        .unwrap_or_else(|e| {
            panic!(
                "grpc client output {text:?} ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .as_array()
        .cloned()
        .unwrap()
}
