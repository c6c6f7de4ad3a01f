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

#[test]
fn a_renewed_certificate_is_served_after_a_reload_in_the_same_process() {
    use common::certs::Ca;
    use common::tls::{status_trusting, TlsConn};
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
        .listener(&format!(
            "    tls: {{cert: \"{}\", key: \"{}\"}}\n",
            cert.display(),
            key.display()
        ))
        .yaml();
    let bulb = Bulb::start(&yaml);
    let port = bulb.addr.port();
    assert_eq!(
        status_trusting("localhost", port, &old_ca.cert),
        200,
        "{}",
        bulb.logs()
    );
    // A connection opened before the renewal.
    let mut open = TlsConn::open(port, "localhost");
    assert_eq!(open.get("localhost"), 200);
    // A broken certificate file: the reload is rejected, naming it, and the
    // old certificate stays in service.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    bulb.signal("HUP");
    bulb.expect_log("holds no PEM certificate", Duration::from_secs(5));
    assert_eq!(status_trusting("localhost", port, &old_ca.cert), 200);
    // Renewed files at the same paths (as certbot leaves them), then SIGHUP:
    // the next handshake gets the new certificate, from the same process,
    // and the connection opened before keeps working.
    install(&new);
    bulb.signal("HUP");
    assert!(
        wait_for(Duration::from_secs(10), || status_trusting(
            "localhost",
            port,
            &new_ca.cert
        ) == 200)
        .is_some(),
        "the renewed certificate is not served after a reload: {}",
        bulb.logs()
    );
    assert_eq!(status_trusting("localhost", port, &old_ca.cert), 0);
    assert_eq!(
        open.get("localhost"),
        200,
        "the open connection still works"
    );
    assert_eq!(open.subject(), "localhost");
    assert!(
        bulb.logs().contains("serving new certificates")
            && !bulb.logs().contains("handing the sockets over"),
        "{}",
        bulb.logs()
    );
    // The same process: a successor would count its generations from 1.
    let status: serde_json::Value =
        serde_json::from_str(&bulb.admin_get("/status").body).expect("json");
    assert_eq!(status["generation"], 2, "{status}");
}
