//! The gRPC health probe: one unary `grpc.health.v1.Health/Check` call
//! over HTTP/2, its protobuf message written and read by hand (two fields
//! do not justify a protobuf dependency).

use super::{ProbeError, USER_AGENT};
use bytes::{BufMut, Bytes, BytesMut};
use pingora_core::connectors::http::Connector;
use pingora_core::protocols::http::client::HttpSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;

/// The method called.
const CHECK_PATH: &[u8] = b"/grpc.health.v1.Health/Check";
/// `HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: u64 = 1;
/// The longest health response read (it is a few bytes).
const MAX_RESPONSE: usize = 4096;

/// What a gRPC health answer said, when not SERVING.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The backend answered over HTTP/1 (its ALPN had no `h2`).
    #[error("the backend does not speak HTTP/2")]
    NotHttp2,
    /// Not HTTP 200.
    #[error("HTTP status {0}")]
    Http(u16),
    /// A non-zero `grpc-status` (e.g. 12 UNIMPLEMENTED: no health service;
    /// 5 NOT_FOUND: unknown service).
    #[error("grpc-status {0}")]
    Status(String),
    /// A status other than SERVING (0 UNKNOWN, 2 NOT_SERVING, 3 SERVICE_UNKNOWN).
    #[error("serving status {0} (1 is SERVING)")]
    NotServing(u64),
    /// The answer is not a health response.
    #[error("malformed response")]
    Malformed,
}

/// The request message: a length-prefixed `HealthCheckRequest{service}`.
fn request_message(service: &str) -> Bytes {
    let mut msg = BytesMut::new();
    if !service.is_empty() {
        msg.put_u8(0x0a); // field 1, length-delimited
        put_varint(&mut msg, service.len() as u64);
        msg.put_slice(service.as_bytes());
    }
    let mut framed = BytesMut::with_capacity(5 + msg.len());
    framed.put_u8(0); // not compressed
    framed.put_u32(msg.len() as u32);
    framed.put_slice(&msg);
    framed.freeze()
}

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &c) in b.iter().enumerate().take(10) {
        v |= u64::from(c & 0x7f) << (7 * i);
        if c & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The serving status in a length-prefixed `HealthCheckResponse`
/// (absent field: 0, UNKNOWN). Unknown fields are skipped.
fn serving_status(body: &[u8]) -> Result<u64, GrpcError> {
    let (head, rest) = body.split_at_checked(5).ok_or(GrpcError::Malformed)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if head[0] != 0 || rest.len() < len {
        return Err(GrpcError::Malformed);
    }
    let mut msg = &rest[..len];
    let mut status = 0;
    while !msg.is_empty() {
        let (key, n) = varint(msg).ok_or(GrpcError::Malformed)?;
        msg = &msg[n..];
        match key & 7 {
            0 => {
                let (v, n) = varint(msg).ok_or(GrpcError::Malformed)?;
                msg = &msg[n..];
                if key >> 3 == 1 {
                    status = v;
                }
            }
            2 => {
                let (l, n) = varint(msg).ok_or(GrpcError::Malformed)?;
                let end = n
                    .checked_add(usize::try_from(l).map_err(|_| GrpcError::Malformed)?)
                    .filter(|&e| e <= msg.len())
                    .ok_or(GrpcError::Malformed)?;
                msg = &msg[end..];
            }
            5 => msg = msg.get(4..).ok_or(GrpcError::Malformed)?,
            1 => msg = msg.get(8..).ok_or(GrpcError::Malformed)?,
            _ => return Err(GrpcError::Malformed),
        }
    }
    Ok(status)
}

/// `grpc-status` of a header block, if present and not `0`.
fn failed_status(h: &http::HeaderMap) -> Option<String> {
    h.get("grpc-status")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|s| s != "0")
}

/// Ask the backend at `peer` whether `service` is SERVING.
pub async fn check(
    connector: &Connector,
    peer: &HttpPeer,
    service: &str,
) -> Result<(), ProbeError> {
    let (session, _) = connector.get_http_session(peer).await?;
    let HttpSession::H2(mut h2) = session else {
        return Err(GrpcError::NotHttp2.into());
    };
    let mut req = RequestHeader::build("POST", CHECK_PATH, None)?;
    let authority = if peer.sni.is_empty() {
        peer._address.to_string()
    } else {
        peer.sni.clone()
    };
    req.insert_header("host", authority)?;
    req.insert_header("content-type", "application/grpc")?;
    req.insert_header("te", "trailers")?;
    req.insert_header("user-agent", USER_AGENT)?;
    h2.write_request_header(Box::new(req), false)?;
    h2.write_request_body(request_message(service), true)
        .await?;
    h2.read_response_header().await?;
    let resp = h2.response_header().ok_or(GrpcError::Malformed)?;
    if resp.status.as_u16() != 200 {
        return Err(GrpcError::Http(resp.status.as_u16()).into());
    }
    // A trailers-only answer carries grpc-status in the head.
    if let Some(s) = failed_status(&resp.headers) {
        return Err(GrpcError::Status(s).into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = h2.read_response_body().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_RESPONSE {
            return Err(GrpcError::Malformed.into());
        }
    }
    if let Some(trailers) = h2.read_trailers().await? {
        if let Some(s) = failed_status(&trailers) {
            return Err(GrpcError::Status(s).into());
        }
    }
    match serving_status(&body)? {
        SERVING => Ok(()),
        other => Err(GrpcError::NotServing(other).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encoding() {
        assert_eq!(&request_message("")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(
            &request_message("ab")[..],
            &[0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']
        );
    }

    #[test]
    fn response_decoding() {
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 1]).unwrap(), 1);
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 2]).unwrap(), 2);
        // An empty message is UNKNOWN; unknown fields are skipped.
        assert_eq!(serving_status(&[0, 0, 0, 0, 0]).unwrap(), 0);
        assert_eq!(
            serving_status(&[0, 0, 0, 0, 5, 0x12, 1, b'x', 0x08, 1]).unwrap(),
            1
        );
        assert!(serving_status(&[0, 0, 0]).is_err());
        assert!(serving_status(&[0, 0, 0, 0, 9, 0x08]).is_err());
        assert!(serving_status(&[0, 0, 0, 0, 2, 0x12, 50]).is_err());
    }
}
