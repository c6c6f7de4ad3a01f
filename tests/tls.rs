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
    let yaml = format!(
        "listeners:\n  - address: \"{{LISTEN}}\"\n    tls: {{cert: \"{cert}\", key: \"{key}\"}}\naccess_log: off\n\
         upstreams:\n  web:\n    backends: [{{address: \"{}\"}}]\n",
        a.addr
    );
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
