//! A real ACME server for tests: Debian's `pebble` (Let's Encrypt's test
//! server) with `pebble-challtestsrv` as its DNS, answering every name with
//! 127.0.0.1, both on loopback with free ports.

use super::certs::Ca;
use super::process::{free_port, tempdir, wait_for};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running pebble and its DNS server.
pub struct Pebble {
    pebble: Option<Child>,
    dns: Child,
    dns_port: u16,
    config: PathBuf,
    /// The directory URL.
    pub directory: String,
    /// The root pebble's own API certificate chains to (`acme.ca`).
    pub api_ca: String,
    /// The root the certificates pebble issues chain to (fetched at each start).
    pub issuer_root: String,
    mgmt_port: u16,
    dir: PathBuf,
}

fn spawn(cmd: &mut Command, log: PathBuf) -> Child {
    let out = std::fs::File::create(log).unwrap();
    cmd.stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("pebble (the CI script installs the Debian package)")
}

impl Pebble {
    /// Start pebble validating HTTP-01 challenges on 127.0.0.1:`http_port`,
    /// issuing certificates valid `validity_secs`.
    pub fn start(http_port: u16, validity_secs: u64) -> Pebble {
        Self::start_with(http_port, free_port(), validity_secs)
    }

    /// Like `start`, validating TLS-ALPN-01 challenges on 127.0.0.1:`tls_port`.
    pub fn start_with(http_port: u16, tls_port: u16, validity_secs: u64) -> Pebble {
        let dir = tempdir();
        let ca = Ca::new(&dir, "pebble-api");
        let leaf = ca.leaf("localhost");
        let dns_port = free_port();
        let dns = spawn(
            Command::new("pebble-challtestsrv").args([
                "-dns01",
                &format!("127.0.0.1:{dns_port}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("127.0.0.1:{}", free_port()),
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ]),
            dir.join("challtestsrv.log"),
        );
        let (port, mgmt_port) = (free_port(), free_port());
        let config = dir.join("pebble.json");
        std::fs::write(
            &config,
            serde_json::json!({"pebble": {
                "listenAddress": format!("127.0.0.1:{port}"),
                "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
                "certificate": leaf.cert, "privateKey": leaf.key,
                "httpPort": http_port, "tlsPort": tls_port,
                "ocspResponderURL": "", "externalAccountBindingRequired": false,
                "certificateValidityPeriod": validity_secs,
            }})
            .to_string(),
        )
        .unwrap();
        let mut p = Pebble {
            pebble: None,
            dns,
            dns_port,
            config,
            directory: format!("https://localhost:{port}/dir"),
            api_ca: ca.cert.clone(),
            issuer_root: String::new(),
            mgmt_port,
            dir,
        };
        p.resume();
        p
    }

    /// Stop pebble (its DNS server stays); state is lost, as pebble keeps none.
    pub fn pause(&mut self) {
        if let Some(mut c) = self.pebble.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start pebble again (after `pause`), on the same ports.
    pub fn resume(&mut self) {
        let n = std::fs::read_dir(&self.dir).map(|d| d.count()).unwrap_or(0);
        let child = spawn(
            Command::new("pebble")
                .arg("-config")
                .arg(&self.config)
                .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns_port)])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .env("PEBBLE_AUTHZREUSE", "0"),
            self.dir.join(format!("pebble.{n}.log")),
        );
        self.pebble = Some(child);
        let api = self.directory.trim_start_matches("https://localhost:");
        let port: u16 = api.split('/').next().unwrap().parse().unwrap();
        assert!(
            wait_for(Duration::from_secs(20), || {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
                    && TcpStream::connect(("127.0.0.1", self.mgmt_port)).is_ok()
            })
            .is_some(),
            "pebble did not start: {}",
            self.logs()
        );
        // Each start makes a new issuing root.
        let root = self.dir.join(format!("issuer-root.{n}.pem"));
        let ok = Command::new("curl")
            .args(["-s", "--cacert", &self.api_ca, "-o"])
            .arg(&root)
            .arg(format!("https://localhost:{}/roots/0", self.mgmt_port))
            .status()
            .expect("curl");
        assert!(ok.success(), "pebble's issuing root");
        self.issuer_root = root.display().to_string();
    }

    /// What pebble and its DNS server logged.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for e in std::fs::read_dir(&self.dir).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "log") {
                s += &std::fs::read_to_string(e.path()).unwrap_or_default();
            }
        }
        s
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.pause();
        let _ = self.dns.kill();
        let _ = self.dns.wait();
    }
}
