//! Certificates per name on one TLS listener (SNI), and `redirect_https`.

mod common;
use common::certs::Ca;
use common::tls::{served_cn, status_trusting};
use common::*;

#[test]
fn sni_picks_exact_then_wildcard_then_the_default() {
    let a = Backend::start("a", Mode::Ok);
    let dir = tempdir();
    let ca = Ca::new(&dir, "ca");
    let leaves = [
        ca.leaf("a.example.com"),
        ca.leaf("b.example.com"),
        ca.leaf("*.example.com"),
    ];
    let certs: Vec<String> = leaves
        .iter()
        .map(|l| format!("{{cert: \"{}\", key: \"{}\"}}", l.cert, l.key))
        .collect();
    let bulb = Bulb::start(
        &Conf::web(&[&a])
            .listener(&format!("    tls: {{certs: [{}]}}\n", certs.join(", ")))
            .default_access_log()
            .top("access_log: {path: \"{DIR}/access.log\", format: json}\n")
            .yaml(),
    );
    let port = bulb.addr.port();
    for (sni, want) in [
        (Some("a.example.com"), "a.example.com"),
        (Some("b.example.com"), "b.example.com"),
        (Some("c.example.com"), "*.example.com"),
        // One label more only; the bare domain and unknown names get the default.
        (Some("x.c.example.com"), "a.example.com"),
        (Some("example.com"), "a.example.com"),
        (Some("other.test"), "a.example.com"),
        (None, "a.example.com"),
    ] {
        assert_eq!(served_cn(port, sni), want, "SNI {sni:?}");
    }
    // Each name verifies against the CA, end to end.
    for host in ["a.example.com", "b.example.com", "c.example.com"] {
        assert_eq!(status_trusting(host, port, &ca.cert), 200, "{host}");
    }
    // The JSON access log names the server each client asked for.
    let log = bulb.dir.join("access.log");
    let logged = wait_for(std::time::Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|t| {
            t.lines().any(|l| {
                l.contains("\"sni\":\"c.example.com\"") && l.contains("\"tls_version\":\"TLSv1_3\"")
            })
        })
    });
    assert!(
        logged.is_some(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let status: serde_json::Value =
        serde_json::from_str(&bulb.admin_get("/status").body).expect("json");
    let certs = status["certificates"].as_array().expect("certificates");
    assert_eq!(certs.len(), 3, "{status}");
    assert_eq!(certs[2]["names"][0], "*.example.com");
    assert_eq!(certs[0]["source"], "file");
    assert_eq!(certs[0]["listener"], bulb.addr.to_string());
    let not_after = certs[0]["not_after"].as_str().expect("not_after");
    assert!(
        not_after.len() == 20 && not_after.ends_with('Z') && not_after.as_bytes()[10] == b'T',
        "{not_after}"
    );
    let metrics = bulb.admin_get("/metrics").body;
    assert!(
        metrics.contains("bulb_certificate_expiry_timestamp_seconds{name=\"*.example.com\"}"),
        "{metrics}"
    );
}

#[test]
fn certs_and_cert_are_checked() {
    let dir = tempdir();
    let ca = Ca::new(&dir, "ca");
    let leaf = ca.leaf("a.example.com");
    for (tls, want) in [
        (
            format!(
                "{{cert: \"{}\", key: \"{}\", certs: [{{cert: \"{}\", key: \"{}\"}}]}}",
                leaf.cert, leaf.key, leaf.cert, leaf.key
            ),
            "not both",
        ),
        ("{certs: []}".to_string(), "at least one certificate"),
        (format!("{{cert: \"{}\"}}", leaf.cert), "needs its `key`"),
        (
            format!(
                "{{certs: [{{cert: \"{}\", key: \"{}\"}}]}}",
                leaf.cert, ca.cert
            ),
            "holds no PEM private key",
        ),
    ] {
        let yaml = format!(
            "listeners:\n  - address: 127.0.0.1:1\n    tls: {tls}\nupstreams:\n  web:\n    backends: [{{address: 127.0.0.1:2}}]\n"
        );
        let c = check_config(&dir, "bulb.yaml", &yaml);
        assert_ne!(c.code, Some(0), "{tls}");
        assert!(c.stderr.contains(want), "{tls}: {}", c.stderr);
        assert!(
            c.stderr.contains("bulb.yaml:3:"),
            "line of `tls`: {}",
            c.stderr
        );
    }
}

#[test]
fn redirect_https_sends_308_except_acme_challenges() {
    let a = Backend::start("a", Mode::Ok);
    let dir = tempdir();
    let ca = Ca::new(&dir, "ca");
    let leaf = ca.leaf("example.com");
    let tls_port = free_port();
    let bulb = Bulb::start(
        &Conf::web(&[&a])
            .listener(&format!(
                "    redirect_https: true\n  - address: \"127.0.0.1:{tls_port}\"\n    tls: {{cert: \"{}\", key: \"{}\"}}\n",
                leaf.cert, leaf.key
            ))
            .yaml(),
    );
    let ask = |target: &str| {
        raw_text(
            bulb.addr,
            format!(
                "GET {target} HTTP/1.1\r\nHost: example.com:{}\r\nConnection: close\r\n\r\n",
                bulb.addr.port()
            )
            .as_bytes(),
        )
    };
    let r = ask("/a/b?x=1&y=%20z");
    assert!(r.starts_with("HTTP/1.1 308"), "{r}");
    assert!(
        r.contains(&format!(
            "location: https://example.com:{tls_port}/a/b?x=1&y=%20z\r\n"
        )) || r.contains(&format!(
            "Location: https://example.com:{tls_port}/a/b?x=1&y=%20z\r\n"
        )),
        "{r}"
    );
    assert!(a.seen().is_empty(), "a redirect reaches no backend");
    let r = ask("/.well-known/acme-challenge/token-1");
    assert!(
        r.starts_with("HTTP/1.1 200"),
        "challenges are not redirected: {r}"
    );
    assert_eq!(a.seen().len(), 1);
    // The TLS listener serves, and is not redirected.
    assert_eq!(status_trusting("example.com", tls_port, &ca.cert), 200);
}

#[test]
fn diff_names_certificate_changes_without_a_hand_over() {
    let dir = tempdir();
    let ca = Ca::new(&dir, "ca");
    let (a, b) = (ca.leaf("a.example.com"), ca.leaf("b.example.com"));
    let pair = |l: &common::certs::Leaf| format!("{{cert: \"{}\", key: \"{}\"}}", l.cert, l.key);
    let conf = |certs: &str| {
        format!(
            "listeners:\n  - address: 127.0.0.1:1\n    tls: {{certs: [{certs}]}}\nupstreams:\n  web:\n    backends: [{{address: 127.0.0.1:2}}]\n"
        )
    };
    let old = dir.join("old.yaml");
    std::fs::write(&old, conf(&pair(&a))).unwrap();
    std::fs::write(
        dir.join("new.yaml"),
        conf(&format!("{}, {}", pair(&a), pair(&b))),
    )
    .unwrap();
    let out = std::process::Command::new(bulb_bin())
        .args(["-t", "-c"])
        .arg(dir.join("new.yaml"))
        .arg("--diff")
        .arg(&old)
        .output()
        .expect("bulb");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("certificate added {} on 127.0.0.1:1", b.cert)),
        "{text}"
    );
    assert!(!text.contains("hands the sockets over"), "{text}");
}

#[test]
fn acme_sections_are_checked() {
    let dir = tempdir();
    let blocked = dir.join("file");
    std::fs::write(&blocked, "").unwrap();
    for (acme, want) in [
        (
            "{directory: \"ftp://x\", domains: [a.test], storage: \"{DIR}/s\"}".to_string(),
            "is not an http(s) URL",
        ),
        (
            "{directory: \"https://x/dir\", domains: [\"bad_name!\"], storage: \"{DIR}/s\"}"
                .to_string(),
            "is not a DNS name",
        ),
        (
            format!(
                "{{directory: \"https://x/dir\", domains: [a.test], storage: \"{}/sub\"}}",
                blocked.display()
            ),
            "cannot create",
        ),
        (
            "{directory: \"https://x/dir\", email: nobody, domains: [a.test], storage: \"{DIR}/s\"}"
                .to_string(),
            "is not an email address",
        ),
        (
            "{directory: \"https://x/dir\", storage: \"{DIR}/s\"}".to_string(),
            "no names to order",
        ),
    ] {
        let acme = acme.replace("{DIR}", &dir.display().to_string());
        let yaml = format!(
            "listeners:\n  - address: 127.0.0.1:1\n    tls: {{acme: {acme}}}\nupstreams:\n  web:\n    backends: [{{address: 127.0.0.1:2}}]\n"
        );
        let c = check_config(&dir, "bulb.yaml", &yaml);
        assert_ne!(c.code, Some(0), "{acme}");
        assert!(c.stderr.contains(want), "{acme}: {}", c.stderr);
        assert!(c.stderr.contains("bulb.yaml:3:"), "line: {}", c.stderr);
    }
}
