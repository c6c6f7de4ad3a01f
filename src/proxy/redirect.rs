//! Answers bulb gives before routing: ACME's HTTP-01 challenges, and for
//! `redirect_https: true` on a plain listener a 308 to the same host, path
//! and query over HTTPS (challenges excepted: they are asked over plain HTTP).

use crate::runtime::Runtime;
use http::header;
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Where ACME's HTTP-01 challenges are asked.
pub const ACME_CHALLENGE: &str = "/.well-known/acme-challenge/";

/// The HTTPS URL for a request to `host` (as sent, maybe with a port) and
/// `target` (path and query), on `port` (left out when 443).
pub fn https_location(host: &[u8], target: &str, port: u16) -> Option<String> {
    let host = std::str::from_utf8(host).ok()?;
    // Drop the port the client used for the plain listener (`[v6]:port` too).
    let name = match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    };
    if name.is_empty() {
        return None;
    }
    let target = if target.starts_with('/') { target } else { "/" };
    Some(if port == 443 {
        format!("https://{name}{target}")
    } else {
        format!("https://{name}:{port}{target}")
    })
}

/// Answer an ACME HTTP-01 challenge from the storage (before routing, on
/// any plain listener): `Ok(true)` when answered. Only where some TLS
/// listener has `acme`; a token with no pending answer gets 404.
pub async fn acme_challenge(rt: &Runtime, session: &mut Session) -> Result<bool> {
    if !rt.acme {
        return Ok(false);
    }
    let req = session.req_header();
    let Some(token) = req.uri.path().strip_prefix(ACME_CHALLENGE) else {
        return Ok(false);
    };
    let (status, body) = match crate::acme::answer_http01(&rt.config, token) {
        Some(answer) => (200, answer),
        None => (404, String::new()),
    };
    let mut resp = ResponseHeader::build(status, Some(2))?;
    resp.insert_header(header::CONTENT_TYPE, "application/octet-stream")?;
    resp.insert_header(header::CONTENT_LENGTH, body.len())?;
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body.into()), true).await?;
    Ok(true)
}

/// Answer the request with a redirect when its listener asks for one:
/// `Ok(true)` when answered.
pub async fn to_https(rt: &Runtime, session: &mut Session) -> Result<bool> {
    let Some(port) = rt.https_port else {
        return Ok(false);
    };
    let local = session.server_addr().and_then(|a| a.as_inet()).copied();
    if !local
        .and_then(|a| rt.listener(a))
        .is_some_and(|l| l.redirect_https)
    {
        return Ok(false);
    }
    let req = session.req_header();
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    if target.starts_with(ACME_CHALLENGE) {
        return Ok(false);
    }
    let host = super::upstream::request_host(req);
    let Some(location) = https_location(host, target, port) else {
        return super::respond::refuse(session, super::respond::Outcome::Status(400)).await;
    };
    let mut resp = ResponseHeader::build(308, Some(2))?;
    resp.insert_header(header::LOCATION, location)?;
    resp.insert_header(header::CONTENT_LENGTH, 0)?;
    session.write_response_header(Box::new(resp), true).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_host_path_and_query_on_https() {
        let l = |h: &str, t: &str, p| https_location(h.as_bytes(), t, p);
        assert_eq!(
            l("example.com:8080", "/a/b?x=1&y", 443).as_deref(),
            Some("https://example.com/a/b?x=1&y")
        );
        assert_eq!(
            l("example.com", "/", 8443).as_deref(),
            Some("https://example.com:8443/")
        );
        assert_eq!(l("[::1]:80", "/p", 443).as_deref(), Some("https://[::1]/p"));
        assert_eq!(l("[::1]", "/p", 443).as_deref(), Some("https://[::1]/p"));
        assert_eq!(l("", "/", 443), None);
    }
}
