//! Route policies (SPEC "Route policies"): allow/deny and strip_prefix so far.

mod common;
use common::*;

#[test]
fn allow_and_deny_judge_the_client_address_v4_and_v6() {
    let a = Backend::start("a", Mode::Ok);
    let v6 = free_port();
    let yaml = Conf::web(&[&a])
        .listener(&format!("  - address: \"[::1]:{v6}\"\n"))
        .top(
            "trusted_proxies: [127.0.0.3/32]\n\
             routes:\n\
             \x20 - {path_prefix: /v6only, upstream: web, allow: [\"::1/128\"]}\n\
             \x20 - {path_prefix: /lan, upstream: web, allow: [127.0.0.0/8, 10.0.0.0/8], deny: [127.0.0.2/32, 10.0.0.13]}\n\
             \x20 - {upstream: web}\n",
        )
        .yaml();
    let bulb = Bulb::start(&yaml);
    let ask = |from: &str, to: std::net::SocketAddr, path: &str, extra: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--interface",
                from,
            ])
            .args(extra.split_whitespace())
            .arg(format!("http://{to}{path}"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let v6addr: std::net::SocketAddr = format!("[::1]:{v6}").parse().unwrap();
    let seen = a.seen().len();
    assert_eq!(ask("127.0.0.1", bulb.addr, "/lan", ""), "200");
    assert_eq!(ask("127.0.0.2", bulb.addr, "/lan", ""), "403", "deny wins");
    assert_eq!(ask("127.0.0.1", bulb.addr, "/v6only", ""), "403");
    assert_eq!(ask("::1", v6addr, "/v6only", ""), "200");
    assert_eq!(ask("::1", v6addr, "/lan", ""), "403", "not in allow");
    // Behind a trusted proxy, the address it forwards is the one judged.
    assert_eq!(
        ask(
            "127.0.0.3",
            bulb.addr,
            "/lan",
            "-H X-Forwarded-For:10.0.0.13"
        ),
        "403"
    );
    assert_eq!(
        ask(
            "127.0.0.3",
            bulb.addr,
            "/lan",
            "-H X-Forwarded-For:10.9.9.9"
        ),
        "200"
    );
    // An untrusted peer cannot claim an allowed address.
    assert_eq!(
        ask(
            "127.0.0.2",
            bulb.addr,
            "/lan",
            "-H X-Forwarded-For:10.9.9.9"
        ),
        "403"
    );
    assert_eq!(ask("127.0.0.2", bulb.addr, "/other", ""), "200");
    assert_eq!(
        a.seen().len(),
        seen + 4,
        "a refused request reaches no backend"
    );
}

#[test]
fn bad_networks_are_config_errors() {
    let dir = tempdir();
    let yaml = "listeners: [{address: 127.0.0.1:1}]\nroutes:\n  - {upstream: web, allow: [10.0.0.0/33]}\nupstreams:\n  web:\n    backends: [{address: 127.0.0.1:2}]\n";
    let c = check_config(&dir, "bulb.yaml", yaml);
    assert_ne!(c.code, Some(0));
    assert!(c.stderr.contains("bulb.yaml:3:"), "{}", c.stderr);
    assert!(c.stderr.contains("is not an IP network"), "{}", c.stderr);
}

#[test]
fn strip_prefix_sends_the_rest_of_the_path_and_the_query() {
    let a = Backend::start("a", Mode::Ok);
    let yaml = Conf::web(&[&a])
        .top(
            "routes:\n\
             \x20 - {path_prefix: /api, upstream: web, strip_prefix: true}\n\
             \x20 - {upstream: web}\n",
        )
        .yaml();
    let bulb = Bulb::start(&yaml);
    for (sent, upstream) in [
        ("/api/x/y?q=1&r=%20", "/x/y?q=1&r=%20"),
        ("/api", "/"),
        ("/api?q", "/?q"),
        ("/other/api?q", "/other/api?q"),
    ] {
        let r = get(bulb.addr, sent).expect("get");
        assert_eq!(r.status, 200, "{sent}");
        let line = a.seen().pop().expect("seen").line;
        assert_eq!(line, format!("GET {upstream} HTTP/1.1"), "{sent}");
    }
}

#[test]
fn strip_prefix_needs_a_path_prefix() {
    let dir = tempdir();
    let yaml = "listeners: [{address: 127.0.0.1:1}]\nroutes:\n  - {upstream: web, strip_prefix: true}\nupstreams:\n  web:\n    backends: [{address: 127.0.0.1:2}]\n";
    let c = check_config(&dir, "bulb.yaml", yaml);
    assert_ne!(c.code, Some(0));
    assert!(c.stderr.contains("strip_prefix needs"), "{}", c.stderr);
}
