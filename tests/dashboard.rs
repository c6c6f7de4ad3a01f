//! The dashboard (SPEC "Dashboard") in a real browser: headless Chromium
//! driven over WebDriver, against a real bulb and real backends.

mod common;
use common::browser::Browser;
use common::*;
use std::time::Duration;

const CHECK: &str = "    health_check: {kind: tcp, interval: 200ms, timeout: 200ms, healthy_after: 1, unhealthy_after: 1}\n";

/// The table row of the backend at `addr`.
fn row(b: &Backend) -> String {
    format!("tr[data-backend=\"{}\"]", b.addr)
}

fn open(browser: &Browser, bulb: &Bulb, bs: &[&Backend]) {
    browser.open(&format!("http://{}/", bulb.admin));
    for b in bs {
        let addr = b.addr.to_string();
        browser.wait_text(&row(b), Duration::from_secs(5), |t| {
            t.contains(&addr) && t.contains("up")
        });
    }
}

#[test]
fn the_dashboard_shows_backends_and_drives_the_admin_api() {
    let a = Backend::start("a", Mode::Ok);
    let b = Backend::start("b", Mode::Ok);
    let c = Backend::start("c", Mode::Ok);
    let yaml = Conf::web(&[&a, &b, &c])
        .upstream(CHECK)
        .top("grace_period_seconds: 1\ngraceful_shutdown_timeout_seconds: 2\n")
        .yaml();
    let bulb = Bulb::start(&yaml);
    let browser = Browser::start(1280, 800);
    open(&browser, &bulb, &[&a, &b, &c]);
    assert!(browser.text("#listeners").contains(&bulb.addr.to_string()));

    // Under load, requests per second show; the picture goes to target/tmp.
    let load = Load::start(bulb.addr, 4, Duration::from_secs(30));
    load.flows(100);
    browser.wait_text(
        &format!("{} td:nth-child(5)", row(&a)),
        Duration::from_secs(5),
        |t| t.parse::<f64>().is_ok_and(|v| v > 0.0),
    );
    // BULB_DASHBOARD_SHOT=docs/dashboard.png refreshes the README's picture.
    let shot = std::env::var_os("BULB_DASHBOARD_SHOT").map_or_else(
        || std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png"),
        |p| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p),
    );
    browser.screenshot(&shot);
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000));

    // A backend that dies shows as down within 5 s, in words.
    c.stop();
    browser.wait_text(&row(&c), Duration::from_secs(5), |t| t.contains("down"));

    // Drain from the page: the API and the row say so.
    browser.click(&format!("{} button[data-op=drain]", row(&a)));
    let drained = wait_for(Duration::from_secs(3), || {
        bulb.backend("web", a.addr)["admin_state"] == "draining"
    });
    assert!(drained.is_some(), "{}", browser.text("#msg"));
    browser.wait_text(&row(&a), Duration::from_secs(3), |t| t.contains("draining"));

    // A weight change applies.
    browser.type_into(&format!("{} input", row(&b)), "7");
    browser.click(&format!("{} button[data-op=weight]", row(&b)));
    let weighted = wait_for(Duration::from_secs(3), || {
        bulb.backend("web", b.addr)["weight"] == 7
    });
    assert!(weighted.is_some(), "{}", browser.text("#msg"));
    browser.wait_text(
        &format!("{} td:nth-child(8)", row(&b)),
        Duration::from_secs(3),
        |t| t.starts_with('7'),
    );

    // The page goes on updating across a reload.
    bulb.signal("HUP");
    assert!(bulb.wait_generation(2));
    browser.wait_text("#gen", Duration::from_secs(5), |t| t == "2");
    browser.wait_text("#conn", Duration::from_secs(3), |t| t == "live");
    let st = load.finish();
    assert_eq!(st.errors, 0, "{st:?}");

    // And across a hand-over to a new process (a listener is added): the
    // page reconnects to the successor, which lists the new listener.
    let second = format!("127.0.0.1:{}", free_port());
    bulb.rewrite(&yaml.replace(
        "listeners: [{address: \"{LISTEN}\"}]",
        &format!("listeners: [{{address: \"{{LISTEN}}\"}}, {{address: \"{second}\"}}]"),
    ));
    bulb.signal("HUP");
    browser.wait_text("#listeners", Duration::from_secs(15), |t| {
        t.contains(&second)
    });
    browser.wait_text("#conn", Duration::from_secs(3), |t| t == "live");
    bulb.stop_successors();
}

#[test]
fn with_a_token_a_write_without_it_fails_visibly() {
    let a = Backend::start("a", Mode::Ok);
    let yaml = Conf::web(&[&a]).yaml().replace(
        "admin: {address: \"{ADMIN}\"}",
        "admin: {address: \"{ADMIN}\", token: s3cret}",
    );
    let bulb = Bulb::start(&yaml);
    let browser = Browser::start(1280, 800);
    open(&browser, &bulb, &[&a]);
    browser.click(&format!("{} button[data-op=drain]", row(&a)));
    browser.wait_text("#msg", Duration::from_secs(3), |t| {
        t.contains("refused") && t.contains("token")
    });
    assert_eq!(bulb.backend("web", a.addr)["admin_state"], "active");
    // With the token (kept for the tab), the same click works.
    browser.type_into("#token", "s3cret");
    browser.click("#tokenform button");
    browser.click(&format!("{} button[data-op=drain]", row(&a)));
    let drained = wait_for(Duration::from_secs(3), || {
        bulb.backend("web", a.addr)["admin_state"] == "draining"
    });
    assert!(drained.is_some(), "{}", browser.text("#msg"));
    let kept = browser.js(
        "return sessionStorage.getItem('bulb-token');",
        serde_json::json!([]),
    );
    assert_eq!(kept, "s3cret");
}

#[test]
fn the_page_fits_a_phone() {
    let a = Backend::start("a", Mode::Ok);
    let bulb = Bulb::start(&Conf::web(&[&a]).yaml());
    let browser = Browser::start(390, 844);
    open(&browser, &bulb, &[&a]);
    // The page itself does not scroll sideways; the table scrolls in its box.
    let fits = browser.js(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
        serde_json::json!([]),
    );
    assert_eq!(fits, true);
}
