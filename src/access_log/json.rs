//! `access_log.format: json`: one object per line, the combined line's
//! fields and more (upstream, backend, attempts, request id, trace id, TLS
//! version). Every string is JSON-escaped (serde_json), so a client's quotes,
//! backslashes or control bytes can never break a line; bytes that are not
//! UTF-8 become U+FFFD.

use super::{civil, Entry, SessionEntry, CLIENT_CLOSED};
use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-21T10:51:08.123Z`.
fn time(now: SystemTime) -> String {
    let (y, m, d, rem) = civil(now);
    let ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.subsec_millis());
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn text(b: Option<&[u8]>) -> Value {
    b.map_or(Value::Null, |b| {
        Value::String(String::from_utf8_lossy(b).into_owned())
    })
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`),
/// if it is one (and not all zeros).
fn trace_id(tp: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(tp).ok()?.trim();
    let mut parts = s.split('-');
    let (_version, id) = (parts.next()?, parts.next()?);
    let (parent, flags) = (parts.next()?, parts.next()?);
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 32) && hex(parent, 16) && hex(flags, 2) && id.bytes().any(|b| b != b'0'))
        .then(|| id.to_ascii_lowercase())
}

fn line(v: Map<String, Value>) -> String {
    let mut s = Value::Object(v).to_string();
    s.push('\n');
    s
}

/// One request.
pub fn request(e: &Entry<'_>, now: SystemTime) -> String {
    let mut v = Map::new();
    v.insert("time".into(), json!(time(now)));
    v.insert("client".into(), json!(e.client.map(|a| a.ip().to_string())));
    v.insert("method".into(), json!(e.method));
    v.insert("uri".into(), json!(e.uri));
    v.insert("version".into(), json!(format!("{:?}", e.version)));
    v.insert("status".into(), json!(e.status.unwrap_or(CLIENT_CLOSED)));
    v.insert("bytes".into(), json!(e.bytes));
    v.insert("referer".into(), text(e.referer));
    v.insert("user_agent".into(), text(e.user_agent));
    v.insert("upstream".into(), json!(e.upstream_name));
    v.insert("backend".into(), json!(e.upstream.map(|a| a.to_string())));
    v.insert("attempts".into(), json!(e.attempts));
    v.insert("duration".into(), json!(e.elapsed.as_secs_f64()));
    v.insert("request_id".into(), text(e.request_id));
    v.insert("trace_id".into(), json!(e.traceparent.and_then(trace_id)));
    if let Some(t) = e.tls_version {
        v.insert("tls_version".into(), json!(t));
    }
    if let Some(n) = e.sni {
        v.insert("sni".into(), json!(n));
    }
    line(v)
}

/// One TCP session.
pub fn session(e: &SessionEntry<'_>, now: SystemTime) -> String {
    let mut v = Map::new();
    v.insert("time".into(), json!(time(now)));
    v.insert("client".into(), json!(e.client.map(|a| a.ip().to_string())));
    v.insert("protocol".into(), json!("tcp"));
    v.insert("listener".into(), json!(e.listener.to_string()));
    v.insert("result".into(), json!(e.end));
    v.insert("bytes_to_backend".into(), json!(e.up));
    v.insert("bytes_to_client".into(), json!(e.down));
    v.insert("backend".into(), json!(e.upstream.map(|a| a.to_string())));
    v.insert("duration".into(), json!(e.elapsed.as_secs_f64()));
    line(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hostile_fields_stay_one_valid_object() {
        let e = Entry {
            client: Some("127.0.0.1:5000".parse().unwrap()),
            method: "GET",
            uri: "/a?b=\"c\"\\",
            version: http::Version::HTTP_11,
            status: None,
            bytes: 0,
            referer: Some(b"x\"\n\x01\xff"),
            user_agent: Some(b"tab\there"),
            upstream: None,
            elapsed: Duration::from_millis(3),
            upstream_name: Some("web"),
            attempts: 0,
            request_id: Some(b"r-1"),
            traceparent: Some(b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            tls_version: Some("TLSv1.3"),
            sni: Some("shop.example.com"),
        };
        let t = UNIX_EPOCH + Duration::from_millis(1_795_258_268_042);
        let s = request(&e, t);
        assert_eq!(s.matches('\n').count(), 1, "{s}");
        let v: Value = serde_json::from_str(&s).expect("valid JSON");
        assert_eq!(v["time"], "2026-11-21T10:51:08.042Z");
        assert_eq!(v["status"], 499);
        assert_eq!(v["uri"], "/a?b=\"c\"\\");
        assert_eq!(v["referer"], "x\"\n\u{1}\u{fffd}");
        assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(v["request_id"], "r-1");
        assert_eq!(v["backend"], Value::Null);
        assert_eq!(
            trace_id(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id(b"garbage"), None);
    }
}
