//! Certificates obtained over ACME from a real ACME server (pebble).

mod common;
use common::acme::Pebble;
use common::tls::status_trusting;
use common::*;
use std::time::Duration;

/// A config with a plain listener on `http_port` (HTTP-01 answers and
/// redirects) and the TLS listener `{LISTEN}` ordering for `names`.
fn conf(a: &Backend, pebble: &Pebble, http_port: u16, storage: &str, names: &[&str]) -> String {
    Conf::web(&[a])
        .listener(&format!(
            "    tls:\n      acme: {{directory: \"{}\", email: ops@bulb.test, domains: [{}], storage: \"{storage}\", ca: \"{}\"}}\n  - address: \"127.0.0.1:{http_port}\"\n    redirect_https: true\n",
            pebble.directory,
            names.join(", "),
            pebble.api_ca
        ))
        .yaml()
}

/// Whether a handshake for `host` on `port` verifies against pebble's root
/// (and the request is answered) within a minute.
fn verified_within_a_minute(host: &str, port: u16, pebble: &Pebble) -> bool {
    wait_for(Duration::from_secs(60), || {
        status_trusting(host, port, &pebble.issuer_root) == 200
    })
    .is_some()
}

fn orders(bulb: &Bulb, result: &str) -> f64 {
    let m = bulb.admin_get("/metrics").body;
    let line = format!("bulb_acme_orders_total{{result=\"{result}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&line)?.parse().ok())
        .unwrap_or(-1.0)
}

#[test]
fn a_certificate_is_issued_over_http01_and_reused_after_a_restart() {
    let a = Backend::start("a", Mode::Ok);
    let http_port = free_port();
    let pebble = Pebble::start(http_port, 3600);
    let storage = tempdir().join("acme").display().to_string();
    let yaml = conf(
        &a,
        &pebble,
        http_port,
        &storage,
        &["a.bulb.test", "b.bulb.test"],
    );
    let bulb = Bulb::start(&yaml);
    let port = bulb.addr.port();
    // Before the order completes, a placeholder serves (unverifiable).
    assert!(
        verified_within_a_minute("a.bulb.test", port, &pebble),
        "no certificate from pebble: {}\n{}",
        bulb.logs(),
        pebble.logs()
    );
    assert_eq!(
        status_trusting("b.bulb.test", port, &pebble.issuer_root),
        200
    );
    assert_eq!(orders(&bulb, "ok"), 1.0);
    let status: serde_json::Value =
        serde_json::from_str(&bulb.admin_get("/status").body).expect("json");
    let c = &status["certificates"][0];
    assert_eq!(c["source"], "acme", "{status}");
    let mut names: Vec<&str> = c["names"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["a.bulb.test", "b.bulb.test"], "{status}");
    // The key and account are private to their owner.
    use std::os::unix::fs::PermissionsExt;
    for f in ["account.json", "a.bulb.test.key.pem"] {
        let mode = std::fs::metadata(format!("{storage}/{f}"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // A restart serves the stored certificate at once, with no new order.
    drop(bulb);
    let bulb = Bulb::start(&yaml);
    assert_eq!(
        status_trusting("a.bulb.test", bulb.addr.port(), &pebble.issuer_root),
        200
    );
    assert_eq!(orders(&bulb, "ok"), 0.0);
}

#[test]
fn a_failing_acme_server_is_logged_retried_and_never_fails_a_request() {
    let a = Backend::start("a", Mode::Ok);
    let http_port = free_port();
    let mut pebble = Pebble::start(http_port, 3600);
    pebble.pause();
    let storage = tempdir().join("acme").display().to_string();
    let bulb = Bulb::start(&conf(&a, &pebble, http_port, &storage, &["c.bulb.test"]));
    bulb.expect_log(
        "ACME: the order for c.bulb.test failed",
        Duration::from_secs(20),
    );
    assert!(orders(&bulb, "error") >= 1.0);
    // Requests are served meanwhile, over the placeholder certificate.
    let out = std::process::Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "--resolve"])
        .arg(format!("c.bulb.test:{}:127.0.0.1", bulb.addr.port()))
        .arg(format!("https://c.bulb.test:{}/", bulb.addr.port()))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    // The server comes back: the next try (backoff 10 s) succeeds.
    pebble.resume();
    assert!(
        verified_within_a_minute("c.bulb.test", bulb.addr.port(), &pebble),
        "{}",
        bulb.logs()
    );
}

#[test]
fn two_processes_sharing_a_storage_make_one_order() {
    let a = Backend::start("a", Mode::Ok);
    let http_port = free_port();
    let pebble = Pebble::start(http_port, 3600);
    let storage = tempdir().join("acme").display().to_string();
    let first = Bulb::start(&conf(&a, &pebble, http_port, &storage, &["d.bulb.test"]));
    // The second answers no challenge itself (another plain port): it
    // orders through the same storage or picks up the first one's result.
    let second = Bulb::start(&conf(&a, &pebble, free_port(), &storage, &["d.bulb.test"]));
    for b in [&first, &second] {
        assert!(
            verified_within_a_minute("d.bulb.test", b.addr.port(), &pebble),
            "{}",
            b.logs()
        );
    }
    assert_eq!(
        orders(&first, "ok") + orders(&second, "ok"),
        1.0,
        "{}",
        first.logs()
    );
}

/// Verified requests from four clients at once until `stop`: (ok, failed).
fn verified_load(
    host: &'static str,
    port: u16,
    root: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<(u32, u32)>> {
    (0..4)
        .map(|_| {
            let (root, stop) = (root.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0, 0);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    match status_trusting(host, port, &root) {
                        200 => ok += 1,
                        _ => failed += 1,
                    }
                }
                (ok, failed)
            })
        })
        .collect()
}

#[test]
fn renewals_under_load_fail_no_request_even_while_the_acme_server_is_down() {
    let a = Backend::start("a", Mode::Ok);
    let http_port = free_port();
    let mut pebble = Pebble::start(http_port, 3600);
    let storage = tempdir().join("acme").display().to_string();
    // Valid an hour, renewed 5 s after issuance: renewals come every few seconds.
    let yaml = conf(&a, &pebble, http_port, &storage, &["e.bulb.test"])
        .replace("ca: ", "renew_before: 3595s, ca: ");
    let bulb = Bulb::start(&yaml);
    let port = bulb.addr.port();
    assert!(
        verified_within_a_minute("e.bulb.test", port, &pebble),
        "{}",
        bulb.logs()
    );
    let not_after = || {
        let s: serde_json::Value =
            serde_json::from_str(&bulb.admin_get("/status").body).expect("json");
        s["certificates"][0]["not_after"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = verified_load(
        "e.bulb.test",
        port,
        pebble.issuer_root.clone(),
        stop.clone(),
    );
    // A renewal happens under load.
    let first = not_after();
    assert!(
        wait_for(Duration::from_secs(30), || not_after() != first).is_some(),
        "not renewed: {}",
        bulb.logs()
    );
    // The ACME server goes away: the next renewal fails, the certificate
    // that serves stays, and it is logged and counted.
    pebble.pause();
    let errors = orders(&bulb, "error");
    assert!(
        wait_for(Duration::from_secs(30), || orders(&bulb, "error") > errors).is_some(),
        "{}",
        bulb.logs()
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, failed) = load
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    assert_eq!(failed, 0, "{ok} verified requests succeeded");
    assert!(ok > 20, "{ok}");
    bulb.expect_log("keeps serving", Duration::from_secs(1));
    // Back: a later try renews again (pebble has a new root now).
    let before = not_after();
    pebble.resume();
    assert!(
        wait_for(Duration::from_secs(60), || not_after() != before).is_some(),
        "{}",
        bulb.logs()
    );
    assert!(verified_within_a_minute("e.bulb.test", port, &pebble));
}

#[test]
fn a_certificate_is_issued_over_tls_alpn01_on_the_tls_listener_alone() {
    let a = Backend::start("a", Mode::Ok);
    let tls_port = free_port();
    // No plain listener at pebble's HTTP port: only TLS-ALPN-01 can succeed.
    let pebble = Pebble::start_with(free_port(), tls_port, 3600);
    let storage = tempdir().join("acme").display().to_string();
    let yaml = Conf::web(&[&a])
        .listener(&format!(
            "  - address: \"127.0.0.1:{tls_port}\"\n    tls:\n      acme: {{directory: \"{}\", domains: [f.bulb.test], challenge: tls-alpn-01, storage: \"{storage}\", ca: \"{}\"}}\n",
            pebble.directory, pebble.api_ca
        ))
        .yaml();
    let bulb = Bulb::start(&yaml);
    assert!(
        verified_within_a_minute("f.bulb.test", tls_port, &pebble),
        "{}\n{}",
        bulb.logs(),
        pebble.logs()
    );
    assert_eq!(orders(&bulb, "ok"), 1.0);
    // HTTP/2 is still what browsers get.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2",
            "--cacert",
            &pebble.issuer_root,
            "--resolve",
        ])
        .arg(format!("f.bulb.test:{tls_port}:127.0.0.1"))
        .args(["-o", "/dev/null", "-w", "%{http_version}"])
        .arg(format!("https://f.bulb.test:{tls_port}/"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2");
}
