//! Fuzz the patched HTTP/1 parser bulb runs under Pingora (vendor/httparse):
//! request heads and chunk lines from raw bytes. Neither may panic, and a
//! head it accepts has a request line of the strict form.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    if let Ok(httparse::Status::Complete(n)) = req.parse(data) {
        let head = &data[..n];
        assert!(!head.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
        let path = req.path.unwrap_or_default();
        assert!(!path.is_empty() && !path.contains(' '));
    }
    let _ = httparse::parse_chunk_size(data);
});
