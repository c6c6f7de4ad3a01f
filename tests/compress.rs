//! `compress` (SPEC "Route policies"): zstd, br and gzip through a real
//! bulb, each decoded back to the backend's bytes; small, binary and
//! already-encoded responses untouched; routes without it unchanged.

mod common;
use common::canned::{fetch, Canned, Page};
use common::*;
use std::io::Read;

fn text(n: usize) -> Vec<u8> {
    let words = ["upstream ", "backend ", "route ", "policy ", "bulb\n"];
    (0..)
        .map(|i| words[i % 5])
        .flat_map(|w| w.bytes())
        .take(n)
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn decode(encoding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .expect("gzip");
        }
        "br" => {
            brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .expect("br");
        }
        "zstd" => out = zstd::decode_all(data).expect("zstd"),
        other => panic!("unexpected encoding {other}"),
    }
    out
}

#[test]
fn each_encoding_decodes_to_the_backends_bytes_and_only_text_worth_it_is_compressed() {
    let big = text(20_000);
    let js = text(5_000);
    let site = Canned::start(vec![
        Page::new(
            "/big.html",
            &["Content-Type: text/html; charset=utf-8", "ETag: \"v1\""],
            big.clone(),
        ),
        Page::new(
            "/data.json",
            &["Content-Type: application/json"],
            text(3000),
        ),
        Page::new("/small.txt", &["Content-Type: text/plain"], text(500)),
        Page::new("/img.png", &["Content-Type: image/png"], text(20_000)),
        Page::new(
            "/pre.js",
            &[
                "Content-Type: application/javascript",
                "Content-Encoding: gzip",
            ],
            gzip(&js),
        ),
        Page::new(
            "/varies",
            &["Content-Type: text/css", "Vary: Origin"],
            text(2000),
        ),
    ]);
    let yaml = Conf::addrs(&[site.addr])
        .top(
            "routes:\n\
             \x20 - {path_prefix: /c, strip_prefix: true, upstream: web, compress: [zstd, br, gzip]}\n\
             \x20 - {upstream: web}\n",
        )
        .yaml();
    let bulb = Bulb::start(&yaml);
    let ask = |path: &str, ae: &str| fetch(bulb.addr, path, &[("Accept-Encoding", ae)], "HTTP/1.1");

    for enc in ["zstd", "br", "gzip"] {
        let r = ask("/c/big.html", enc);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some(enc));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(r.header("content-length"), None);
        assert_eq!(
            r.header("etag"),
            Some("W/\"v1\""),
            "a changed body has a weak tag"
        );
        assert!(
            r.body.len() < big.len() / 3,
            "{enc}: {} bytes",
            r.body.len()
        );
        assert_eq!(
            decode(enc, &r.body),
            big,
            "{enc} decodes to the backend's bytes"
        );
    }
    // The route's order among what the client accepts (q=0 is a refusal).
    let r = ask("/c/data.json", "gzip, br;q=0.5, zstd");
    assert_eq!(r.header("content-encoding"), Some("zstd"));
    let r = ask("/c/data.json", "gzip;q=1, zstd;q=0");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(decode("gzip", &r.body), text(3000));
    // An existing Vary is extended, not replaced.
    let r = ask("/c/varies", "gzip");
    let vary: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("vary"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(vary, ["Origin", "Accept-Encoding"]);

    // Not for small, binary or already-encoded responses.
    for (path, body) in [
        ("/c/small.txt", text(500)),
        ("/c/img.png", text(20_000)),
        ("/c/pre.js", gzip(&js)),
    ] {
        let r = ask(path, "zstd, br, gzip");
        assert_eq!(r.body, body, "{path} untouched");
        assert_eq!(
            r.header("content-length"),
            Some(body.len().to_string().as_str()),
            "{path}"
        );
    }
    assert_eq!(
        ask("/c/pre.js", "gzip").header("content-encoding"),
        Some("gzip")
    );
    assert_eq!(ask("/c/img.png", "gzip").header("vary"), None);
    // Not for a client that accepts none of them, nor for HTTP/1.0.
    let r = ask("/c/big.html", "identity");
    assert_eq!(
        (r.header("content-encoding"), r.body.len()),
        (None, big.len())
    );
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    let r = fetch(
        bulb.addr,
        "/c/big.html",
        &[("Accept-Encoding", "gzip")],
        "HTTP/1.0",
    );
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, big);

    // A route without `compress` passes the backend's response as it was.
    let r = ask("/big.html", "zstd, br, gzip");
    assert_eq!(r.body, big);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("vary"), None);
    assert_eq!(r.header("etag"), Some("\"v1\""));
    assert_eq!(r.header("content-length"), Some("20000"));
}

#[test]
fn unknown_encodings_are_config_errors() {
    let yaml = "listeners: [{address: 127.0.0.1:1}]\nroutes:\n  - {upstream: web, compress: [gzip, deflate]}\nupstreams:\n  web:\n    backends: [{address: 127.0.0.1:2}]\n";
    assert_config_error(yaml, Some(3), "unknown encoding `deflate`");
}

#[test]
fn http2_clients_get_compressed_responses_too() {
    let big = text(20_000);
    let site = Canned::start(vec![Page::new(
        "/big.html",
        &["Content-Type: text/html"],
        big.clone(),
    )]);
    let yaml = Conf::addrs(&[site.addr])
        .listener("    h2c: true\n")
        .top("routes:\n  - {upstream: web, compress: [gzip]}\n")
        .yaml();
    let bulb = Bulb::start(&yaml);
    let dir = tempdir();
    let (head, body) = (dir.join("head"), dir.join("body"));
    let ok = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-H",
            "Accept-Encoding: gzip",
            "-D",
        ])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .arg(format!("http://{}/big.html", bulb.addr))
        .status()
        .expect("curl");
    assert!(ok.success());
    let head = std::fs::read_to_string(&head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/2 200"), "{head}");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(
        !head.contains("transfer-encoding"),
        "no HTTP/1 framing on HTTP/2: {head}"
    );
    assert_eq!(decode("gzip", &std::fs::read(&body).unwrap()), big);
}
