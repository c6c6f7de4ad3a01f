//! TLS termination with HTTP/2 offered by ALPN (rustls), driven by curl.

mod common;
use common::certs::self_signed;
use common::*;
use std::process::Command;

#[test]
fn tls_listener_speaks_h2_and_http11() {
    let a = Backend::start("a", Mode::Ok);
    let dir = tempdir();
    let (cert, key) = self_signed(&dir);
    let yaml = Conf::web(&[&a])
        .no_admin()
        .listener(&format!("    tls: {{cert: \"{cert}\", key: \"{key}\"}}\n"))
        .yaml();
    let dir2 = tempdir();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let conf = dir2.join("bulb.yaml");
    std::fs::write(&conf, Bulb::render(&yaml, addr, addr, &dir2)).unwrap();
    let mut child = Bulb::spawn(&conf, &dir2, &[]);
    assert!(wait_for(std::time::Duration::from_secs(20), || {
        std::net::TcpStream::connect(addr).is_ok()
    })
    .is_some());
    let url = format!("https://localhost:{}/tls", addr.port());
    for (flag, want) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = Command::new("curl")
            .args([
                "-sk",
                flag,
                "--resolve",
                &format!("localhost:{}:127.0.0.1", addr.port()),
            ])
            .args(["-w", "\n%{http_code} %{http_version}", &url])
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.ends_with(&format!("200 {want}")),
            "{flag}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.starts_with('a'), "{text}");
    }
    let seen = a.seen().pop().unwrap();
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    let _ = child.kill();
    let _ = child.wait();
}

/// curl over TLS to `localhost:port` trusting `ca`: the status, or 0 when
/// the handshake fails.
fn status_trusting(port: u16, ca: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "--cacert", ca, "--resolve"])
        .arg(format!("localhost:{port}:127.0.0.1"))
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

#[test]
fn a_renewed_certificate_is_served_after_a_reload() {
    use common::certs::Ca;
    use std::time::Duration;
    let a = Backend::start("a", Mode::Ok);
    let dir = tempdir();
    let (old_ca, new_ca) = (Ca::new(&dir, "old"), Ca::new(&dir, "new"));
    let (old, new) = (old_ca.leaf("localhost"), new_ca.leaf("localhost"));
    let (cert, key) = (dir.join("live.pem"), dir.join("live.key"));
    let install = |leaf: &common::certs::Leaf| {
        std::fs::copy(&leaf.cert, &cert).unwrap();
        std::fs::copy(&leaf.key, &key).unwrap();
    };
    install(&old);
    let yaml = Conf::web(&[&a])
        .top("grace_period_seconds: 1\ngraceful_shutdown_timeout_seconds: 2\n")
        .listener(&format!(
            "    tls: {{cert: \"{}\", key: \"{}\"}}\n",
            cert.display(),
            key.display()
        ))
        .yaml();
    let mut bulb = Bulb::start(&yaml);
    let port = bulb.addr.port();
    assert_eq!(status_trusting(port, &old_ca.cert), 200, "{}", bulb.logs());
    // A broken certificate file: the reload is rejected, naming it, and the
    // old certificate stays in service.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    bulb.signal("HUP");
    bulb.expect_log("holds no PEM certificate", Duration::from_secs(5));
    assert_eq!(status_trusting(port, &old_ca.cert), 200);
    // Renewed files at the same paths (as certbot leaves them), then SIGHUP.
    install(&new);
    bulb.signal("HUP");
    assert!(
        wait_for(Duration::from_secs(10), || status_trusting(
            port,
            &new_ca.cert
        ) == 200)
        .is_some(),
        "the renewed certificate is not served after a reload: {}",
        bulb.logs()
    );
    // Once the old process has drained and exited, only the new one is left.
    assert!(bulb.wait_exit(Duration::from_secs(10)).is_some());
    assert_eq!(status_trusting(port, &old_ca.cert), 0);
    assert_eq!(status_trusting(port, &new_ca.cert), 200);
    bulb.stop_successors();
}
