//! Static checks of the Dockerfile and compose files (no Docker engine runs
//! on our machines): what a reviewer would check by eye, made repeatable.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn instructions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') || l.is_empty() && cur.is_empty() {
            continue;
        }
        cur.push_str(l.trim_end_matches('\\'));
        cur.push(' ');
        if !l.ends_with('\\') {
            let c = cur.trim().to_string();
            cur.clear();
            if let Some((k, v)) = c.split_once(' ') {
                out.push((k.to_ascii_uppercase(), v.trim().to_string()));
            }
        }
    }
    out
}

#[test]
fn dockerfile_is_multi_stage_locked_non_root_exec_form() {
    let ins = instructions();
    let froms: Vec<_> = ins.iter().filter(|(k, _)| k == "FROM").collect();
    assert!(froms.len() >= 2, "multi-stage");
    assert!(froms[0].1.contains(" AS "), "named builder stage");
    let runs: String = ins
        .iter()
        .filter(|(k, _)| k == "RUN")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(runs.contains("cmake"), "builder installs cmake");
    assert!(
        runs.contains("cargo build --release --locked"),
        "--locked build"
    );
    let user = ins.iter().rev().find(|(k, _)| k == "USER").expect("USER");
    assert!(user.1 != "root" && user.1 != "0", "non-root");
    assert!(ins
        .iter()
        .any(|(k, v)| k == "EXPOSE" && v.split_whitespace().any(|p| p == "8080")));
    let ep = ins
        .iter()
        .find(|(k, _)| k == "ENTRYPOINT")
        .expect("ENTRYPOINT");
    assert!(ep.1.starts_with('['), "exec form keeps bulb as PID 1");
    if let Some((_, sig)) = ins.iter().find(|(k, _)| k == "STOPSIGNAL") {
        assert_eq!(sig, "SIGTERM", "SIGQUIT would mean 'upgrade' to Pingora");
    }
}

#[test]
fn every_copy_source_exists_and_is_not_ignored() {
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).expect(".dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "target"),
        "target/ must not be sent as context"
    );
    for (k, v) in instructions() {
        if k != "COPY" || v.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = v
            .split_whitespace()
            .filter(|p| !p.starts_with("--"))
            .collect();
        for src in &parts[..parts.len() - 1] {
            assert!(
                root().join(src).exists(),
                "COPY source {src} does not exist"
            );
            assert!(
                !ignore.lines().any(|l| l.trim() == *src),
                "COPY source {src} is in .dockerignore"
            );
        }
    }
}

#[test]
fn compose_demo_builds_bulb_and_keeps_the_rest() {
    let c = std::fs::read_to_string(root().join("conf/compose/docker-compose.yml")).unwrap();
    let v: serde_yaml::Value = serde_yaml::from_str(&c).unwrap();
    let front = &v["services"]["front"];
    assert_eq!(front["build"].as_str(), Some("../.."));
    assert!(root()
        .join("conf/compose")
        .join("../..")
        .join("Dockerfile")
        .exists());
    assert_eq!(front["ports"][0].as_str(), Some("80:8080"));
    assert_eq!(
        front["environment"][0].as_str(),
        Some("NODES=web1:80 web2:80")
    );
    for w in ["web1", "web2"] {
        assert_eq!(
            v["services"][w]["image"].as_str(),
            Some("strm/helloworld-http")
        );
    }
    // The variant's mounted file is valid.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bulb"))
        .args(["-t", "-c"])
        .arg(root().join("conf/compose/bulb.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
