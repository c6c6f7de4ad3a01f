//! `return`: bulb answers the route itself (a redirect, a fixed page);
//! nothing goes upstream.

use crate::config::Answer;
use http::header::{self, HeaderValue};
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Answer `a`, with `location` (its template expanded for this request).
pub async fn answer(
    session: &mut Session,
    a: &Answer,
    location: Option<HeaderValue>,
    request_id: &[u8],
) -> Result<bool> {
    let mut resp = ResponseHeader::build(a.status, Some(5))?;
    if let Some(location) = location {
        resp.insert_header(header::LOCATION, location)?;
    }
    if !a.body.is_empty() {
        resp.insert_header(header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
    }
    resp.insert_header(header::CONTENT_LENGTH, a.body.len())?;
    resp.insert_header(super::request_id::NAME_STR, request_id)?;
    let head_only = session.req_header().method == http::Method::HEAD || a.body.is_empty();
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(a.body.clone()), true)
            .await?;
    }
    Ok(true)
}
