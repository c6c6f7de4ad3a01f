//! Fuzz bulb's own request-path logic on parsed requests: the framing, target,
//! Host and Expect checks with their normalisation, the smuggling and
//! size checks, the forwarding-header edits with trusted proxies, and routing.
#![no_main]
use bulb::config::Cidr;
use libfuzzer_sys::fuzz_target;
use pingora_http::RequestHeader;

fuzz_target!(|data: &[u8]| {
    // First line: method and path; then `Name: value` lines, as raw bytes.
    let mut lines = data.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let mut parts = first.splitn(2, |&b| b == b' ');
    let method = std::str::from_utf8(parts.next().unwrap_or_default()).unwrap_or("GET");
    let path = parts.next().unwrap_or(b"/");
    let Ok(mut req) = RequestHeader::build(method, path, None) else { return };
    for l in lines {
        if let Some(i) = l.iter().position(|&b| b == b':') {
            let (k, v) = (&l[..i], &l[i + 1..]);
            if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k), http::HeaderValue::from_bytes(v)) {
                let _ = req.append_header(k, v);
            }
        }
    }
    if let Ok(plan) = bulb::proxy::checks::check(&req, false, 16 * 1024) {
        let mut normalised = req.clone();
        let _ = bulb::proxy::checks::normalise(&mut normalised, &plan);
    }
    let trusted = [Cidr::parse("10.0.0.0/8").unwrap(), Cidr::parse("127.0.0.1").unwrap()];
    let peer = "127.0.0.1".parse().unwrap();
    let xff = req.headers.get("x-forwarded-for").map(|v| v.as_bytes().to_vec());
    let client = bulb::proxy::forward::real_client(peer, xff.as_deref(), &trusted);
    let mut edited = req.clone();
    let _ = bulb::proxy::forward::edit_request_headers(&mut edited, Some(peer), client, data.len() % 2 == 0, false);
});
