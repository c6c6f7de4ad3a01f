//! Table/property tests of the validator: many broken variants of the
//! example configuration; every one must give `Ok` or errors that name the
//! file (and, where YAML has one, a line inside it), never a panic.

use bulb::config::parse;

const VALUES: &[&str] = &[
    "",
    "0",
    "-1",
    "[]",
    "{}",
    "x",
    "\"\"",
    "99999999999999999999",
    "~",
    "true",
    "1.5",
    "[1, 2]",
    "{a: 1}",
    "0s",
    "5 parsecs",
    "*",
    ":",
    "- a",
    "&a",
    "*a",
    "!!binary AA==",
    "\"\\u0000\"",
];

fn check(text: &str, what: &str) {
    let lines = text.lines().count() + 1;
    match std::panic::catch_unwind(|| parse(text, "F")) {
        Err(_) => panic!("validator panicked on {what}:\n{text}"),
        Ok(Ok(_)) => {}
        Ok(Err(errors)) => {
            assert!(!errors.is_empty(), "{what}: Err without errors");
            for e in errors {
                let s = e.to_string();
                assert!(
                    s.starts_with("F:"),
                    "{what}: error does not name the file: {s}"
                );
                if let Some(p) = e.pos {
                    assert!(
                        p.line >= 1 && p.line <= lines,
                        "{what}: line {} outside the file: {s}",
                        p.line
                    );
                    assert!(p.col >= 1, "{what}: {s}");
                }
            }
        }
    }
}

fn example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/bulb.yaml")).unwrap()
}

#[test]
fn every_value_replaced_with_junk() {
    let base = example();
    let lines: Vec<&str> = base.lines().collect();
    let mut n = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(colon) = line.find(": ") else {
            continue;
        };
        if line.trim_start().starts_with('#') {
            continue;
        }
        for v in VALUES {
            let mut l = lines.clone();
            let replaced = format!("{}: {v}", &line[..colon]);
            l[i] = &replaced;
            check(&l.join("\n"), &format!("line {} = {v:?}", i + 1));
            n += 1;
        }
    }
    assert!(n > 300, "only {n} variants");
}

#[test]
fn every_line_deleted_or_duplicated() {
    let base = example();
    let lines: Vec<&str> = base.lines().collect();
    for i in 0..lines.len() {
        let mut l = lines.clone();
        l.remove(i);
        check(&l.join("\n"), &format!("without line {}", i + 1));
        let mut l = lines.clone();
        l.insert(i, lines[i]);
        check(&l.join("\n"), &format!("line {} twice", i + 1));
    }
}

#[test]
fn every_truncation() {
    let base = example();
    for cut in (0..base.len()).step_by(3) {
        if base.is_char_boundary(cut) {
            check(&base[..cut], &format!("cut at {cut}"));
        }
    }
}

#[test]
fn known_bad_inputs_name_their_line() {
    let cases = [
        ("listeners: [{address: nope}]\nupstreams: {web: {backends: [{address: 127.0.0.1:1}]}}\n", 1, "not an IP:port"),
        ("listeners: [{address: 127.0.0.1:1}]\nupstreams: {web: {backends: [{address: 'bad host:1'}]}}\n", 2, "valid hostname"),
        ("listeners: [{address: 127.0.0.1:1}]\nupstreams: {web: {backends: [{address: 127.0.0.1:0}]}}\n", 2, "not host:port"),
        ("listeners: [{address: 127.0.0.1:1}]\nupstreams: {web: {health_check: {kind: udp}, backends: [{address: 127.0.0.1:1}]}}\n", 2, "unknown health check kind"),
        ("listeners: [{address: 127.0.0.1:1}]\ntrusted_proxies: [10.0.0.0/99]\nupstreams: {web: {backends: [{address: 127.0.0.1:1}]}}\n", 2, "not an IP network"),
        ("listeners: [{address: 127.0.0.1:1}]\nupstreams: {web: {backends: [{address: 127.0.0.1:1, backup: true}]}}\n", 2, "only backup"),
        ("listeners: [{address: 127.0.0.1:1}]\nlimits: {max_client_connections: 0}\nupstreams: {web: {backends: [{address: 127.0.0.1:1}]}}\n", 2, "at least 1"),
        ("listeners:\n  - address: 127.0.0.1:1\n    tls: {cert: /nonexistent.pem, key: /nonexistent.key}\nupstreams: {web: {backends: [{address: 127.0.0.1:1}]}}\n", 3, "cannot read `/nonexistent.pem`"),
        ("listeners: [{address: 127.0.0.1:1}]\nupstreams:\n  a: {backends: [{address: 127.0.0.1:1}]}\n  b: {backends: [{address: 127.0.0.1:2}]}\n", 2, "routes` are required"),
        ("listeners: [{address: 127.0.0.1:1}\n", 2, "did not find expected"),
    ];
    for (text, line, msg) in cases {
        let errs = parse(text, "F").expect_err(text);
        let hit = errs
            .iter()
            .any(|e| e.pos.is_some_and(|p| p.line == line) && e.msg.contains(msg));
        assert!(
            hit,
            "expected line {line} `{msg}` in {:?}",
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn admin_defaults_to_loopback() {
    let c = parse("listeners: [{address: 127.0.0.1:1}]\nadmin: {}\nupstreams: {web: {backends: [{address: 127.0.0.1:1}]}}\n", "F").unwrap();
    assert_eq!(
        c.admin.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:9901")
    );
}
