//! Route policies (SPEC "Route policies"): allow/deny, strip_prefix, header
//! rules and X-Request-Id, return, basic_auth. Sticky and split are in
//! `tests/sticky.rs`, compression in `tests/compress.rs`.

mod common;
use common::canned::{Canned, Page};
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
    let yaml = "listeners: [{address: 127.0.0.1:1}]\nroutes:\n  - {upstream: web, allow: [10.0.0.0/33]}\nupstreams:\n  web:\n    backends: [{address: 127.0.0.1:2}]\n";
    assert_config_error(yaml, Some(3), "is not an IP network");
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

/// The value of every `name:` line of a raw head.
fn lines_of(head: &str, name: &str) -> Vec<String> {
    head.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

#[test]
fn header_rules_both_ways_with_variables_and_request_ids() {
    let site = Canned::start(vec![Page::new(
        "/h",
        &[
            "Content-Type: text/plain",
            "Server: canned/1.0",
            "X-Backend: kept",
        ],
        "hello",
    )]);
    let conf = Conf::addrs(&[site.addr]).default_access_log().top(
        "access_log: {path: \"{DIR}/access.log\", format: json}\n\
         routes:\n\
         \x20 - path_prefix: /api\n\
         \x20   strip_prefix: true\n\
         \x20   upstream: web\n\
         \x20   request_headers:\n\
         \x20     set: {X-Env: prod, X-Orig: \"$scheme://$host$request_uri\", X-Client: $client_ip, X-Rid: \"${request_id}\"}\n\
         \x20     add: {X-Via: bulb}\n\
         \x20     remove: [X-Debug]\n\
         \x20   response_headers:\n\
         \x20     set: {Strict-Transport-Security: max-age=31536000}\n\
         \x20     add: {X-Served-For: $host}\n\
         \x20     remove: [Server]\n\
         \x20 - {upstream: web}\n",
    );
    let bulb = Bulb::start(&conf.yaml());
    let req = "GET /api/h?x=1 HTTP/1.1\r\nHost: Shop.Example.com:8080\r\nX-Debug: 1\r\nX-Env: dev\r\nX-Env: qa\r\nX-Via: edge\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n\r\n";
    let resp = parse_resp(&raw(bulb.addr, req.as_bytes()).expect("request")).expect("response");
    assert_eq!((resp.status, resp.body.as_str()), (200, "hello"));
    let up = site.heads().pop().expect("upstream head");
    assert!(up.starts_with("GET /h?x=1 HTTP/1.1\r\n"), "{up}");
    assert!(lines_of(&up, "x-debug").is_empty(), "{up}");
    assert_eq!(lines_of(&up, "x-env"), ["prod"]);
    assert_eq!(lines_of(&up, "x-via"), ["edge", "bulb"]);
    assert_eq!(
        lines_of(&up, "x-orig"),
        ["http://shop.example.com/api/h?x=1"]
    );
    assert_eq!(lines_of(&up, "x-client"), ["127.0.0.1"]);
    assert!(
        lines_of(&up, "x-hop").is_empty(),
        "hop-by-hop rules still hold: {up}"
    );
    let id = lines_of(&up, "x-request-id");
    assert_eq!(id.len(), 1, "{up}");
    assert_eq!(id[0].len(), 32, "bulb made an id: {up}");
    assert_eq!(lines_of(&up, "x-rid"), id);
    // The response: rules applied, the id comes back.
    let header = |n: &str| resp.header(n).map(str::to_string);
    assert_eq!(header("server"), None);
    assert_eq!(
        header("strict-transport-security").as_deref(),
        Some("max-age=31536000")
    );
    assert_eq!(header("x-served-for").as_deref(), Some("shop.example.com"));
    assert_eq!(header("x-backend").as_deref(), Some("kept"));
    assert_eq!(header("x-request-id"), Some(id[0].clone()));
    // A client's valid id is kept; an invalid one is replaced.
    let mine = get_with(bulb.addr, "/h", &[("X-Request-Id", "client-id:42.a_b")]).expect("get");
    assert_eq!(mine.header("x-request-id"), Some("client-id:42.a_b"));
    assert_eq!(
        lines_of(&site.heads().pop().unwrap(), "x-request-id"),
        ["client-id:42.a_b"]
    );
    let bad = get_with(bulb.addr, "/h", &[("X-Request-Id", "no/slashes")]).expect("get");
    let made = bad.header("x-request-id").expect("an id").to_string();
    assert_eq!(made.len(), 32);
    assert_eq!(
        lines_of(&site.heads().pop().unwrap(), "x-request-id"),
        std::slice::from_ref(&made)
    );
    // A route without rules still gets ids, and no other change.
    assert_eq!(bad.header("server"), Some("canned/1.0"));
    // Each id is in the access log.
    let log = bulb.dir.join("access.log");
    let has = |id: &str| {
        let needle = format!("\"request_id\":\"{id}\"");
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&needle))
    };
    assert!(
        wait_for(std::time::Duration::from_secs(5), || has(&id[0])
            && has("client-id:42.a_b")
            && has(&made))
        .is_some(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

#[test]
fn header_rules_are_checked() {
    let base = "listeners: [{address: 127.0.0.1:1}]\nupstreams:\n  web:\n    backends: [{address: 127.0.0.1:2}]\nroutes:\n";
    for (route, line, msg) in [
        (
            "  - {upstream: web, request_headers: {set: {X-A: \"$hots\"}}}\n",
            6,
            "unknown variable `$hots`",
        ),
        (
            "  - {upstream: web, response_headers: {add: {Connection: close}}}\n",
            6,
            "bulb manages it",
        ),
        (
            "  - {upstream: web, request_headers: {remove: [\"bad name\"]}}\n",
            6,
            "not a header name",
        ),
        (
            "  - {path_prefix: /x, return: {status: 301}}\n",
            6,
            "needs a `location`",
        ),
        (
            "  - {path_prefix: /x}\n",
            6,
            "exactly one of `upstream`, `split` and `return`",
        ),
        (
            "  - {upstream: web, return: {status: 204}}\n",
            6,
            "exactly one of",
        ),
    ] {
        assert_config_error(&format!("{base}{route}"), Some(line), msg);
    }
}

#[test]
fn return_answers_without_a_backend() {
    let a = Backend::start("a", Mode::Ok);
    let yaml = Conf::web(&[&a])
        .top(
            "routes:\n\
             \x20 - {path_prefix: /old, return: {status: 301, location: \"https://new.example.com$request_uri\"}}\n\
             \x20 - {path_prefix: /gone, return: {status: 410, body: \"gone for good\\n\"}}\n\
             \x20 - {upstream: web}\n",
        )
        .yaml();
    let bulb = Bulb::start(&yaml);
    let r = get(bulb.addr, "/old/page?q=1").expect("get");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some("https://new.example.com/old/page?q=1")
    );
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("x-request-id").map(str::len), Some(32));
    let r = get(bulb.addr, "/gone").expect("get");
    assert_eq!((r.status, r.body.as_str()), (410, "gone for good\n"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(a.hits(), 0, "nothing went upstream");
    assert_eq!(get(bulb.addr, "/x").expect("get").status, 200);
}

fn basic(user_pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

#[test]
fn basic_auth_lets_only_the_right_password_through_and_reloads_its_file() {
    let a = Backend::start("a", Mode::Ok);
    let dir = tempdir();
    let users = dir.join("htpasswd");
    let entry = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).expect("hash"));
    std::fs::write(
        &users,
        entry("alice", "wonderland") + &entry("bob", "builder"),
    )
    .unwrap();
    let yaml = Conf::web(&[&a])
        .top(&format!(
            "routes:\n\
             \x20 - {{path_prefix: /private, upstream: web, basic_auth: {{realm: staff, users_file: \"{}\"}}}}\n\
             \x20 - {{upstream: web}}\n",
            users.display()
        ))
        .yaml();
    let bulb = Bulb::start(&yaml);
    let ask = |auth: Option<&str>| {
        let headers: Vec<(&str, &str)> = auth.map(|v| ("Authorization", v)).into_iter().collect();
        get_with(bulb.addr, "/private/x", &headers).expect("get")
    };
    let refused = [
        None,
        Some(basic("alice:wrong")),
        Some(basic("carol:wonderland")),
        Some(basic("alicewonderland")),
        Some("Basic !!!notbase64".to_string()),
        Some("Bearer abc".to_string()),
        Some("Basic".to_string()),
    ];
    for auth in &refused {
        let r = ask(auth.as_deref());
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"staff\", charset=\"UTF-8\"")
        );
    }
    assert_eq!(a.hits(), 0, "nothing reaches a backend unless right");
    assert_eq!(ask(Some(&basic("alice:wonderland"))).status, 200);
    assert_eq!(
        ask(Some(&basic("alice:wonderland"))).status,
        200,
        "verified again from the cache"
    );
    assert_eq!(ask(Some(&basic("bob:builder"))).status, 200);
    assert_eq!(a.hits(), 3);
    assert_eq!(get(bulb.addr, "/public").expect("get").status, 200);
    // The file is read with the config: a reload applies a new password.
    std::fs::write(&users, entry("alice", "looking-glass")).unwrap();
    bulb.signal("HUP");
    assert!(bulb.wait_generation(2));
    assert_eq!(
        ask(Some(&basic("alice:wonderland"))).status,
        401,
        "old password, cached before"
    );
    assert_eq!(ask(Some(&basic("alice:looking-glass"))).status, 200);
    assert_eq!(ask(Some(&basic("bob:builder"))).status, 401);
}

#[test]
fn basic_auth_files_are_checked() {
    let dir = tempdir();
    let users = dir.join("md5");
    std::fs::write(&users, "alice:$apr1$abc$defghijklmnopqrstuvwx\n").unwrap();
    for (file, msg) in [
        (dir.join("missing").display().to_string(), "cannot read"),
        (
            users.display().to_string(),
            "line 1: user `alice` has no bcrypt hash",
        ),
    ] {
        let yaml = format!("listeners: [{{address: 127.0.0.1:1}}]\nupstreams:\n  web:\n    backends: [{{address: 127.0.0.1:2}}]\nroutes:\n  - upstream: web\n    basic_auth: {{users_file: \"{file}\"}}\n");
        assert_config_error(&yaml, Some(7), msg);
    }
}
