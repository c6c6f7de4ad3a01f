//! Real gRPC and HTTPS peers (Python grpcio, `tests/peers/grpc_peer.py`).

use super::certs::Leaf;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/grpc_peer.py")
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
        let mut child = Command::new("python3")
            .arg(script())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (the CI script installs grpcio)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port: u16 = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!("peer {args:?} did not start (is grpcio installed? `pip install grpcio grpcio-health-checking`): {line:?}")
            });
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
    let mut cmd = Command::new("python3");
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
    let out = cmd.output().expect("python3");
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
