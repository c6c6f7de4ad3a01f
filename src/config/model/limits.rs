//! Client-side limits (connections, timeouts, buffers, rate) and the
//! duration syntax every timeout uses.

use super::*;

/// The largest `limits.request_buffer_bytes`: Pingora keeps a buffered
/// request body in its retry buffer, which holds 64 KiB.
pub const MAX_REQUEST_BUFFER: usize = 64 * 1024;

/// Client-side limits.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsSpec {
    /// Largest total request header size.
    pub max_header_bytes: usize,
    /// Idle keep-alive timeout for client connections.
    pub client_keepalive_timeout: Duration,
    /// Per-connection read buffer for client connections (Pingora's L4
    /// buffer; its default of 64 KiB costs that much per idle client). 0,
    /// the default: none; the guard reads each request's start itself
    /// into a buffer that lives only until Pingora has taken it.
    pub client_read_buffer_bytes: usize,
    /// Longest time from a request's first byte to the end of its head.
    pub client_header_timeout: Duration,
    /// Most client connections open at once; `None`: no limit.
    pub max_client_connections: Option<usize>,
    /// Request bodies up to this size are read and checked whole before a
    /// backend is chosen (0: every body streams).
    pub request_buffer_bytes: usize,
    /// Longest wait for the next piece of a request body being buffered.
    pub client_body_timeout: Duration,
    /// Per-client request rate.
    pub rate: Option<RateSpec>,
}

impl Default for LimitsSpec {
    fn default() -> Self {
        LimitsSpec {
            max_header_bytes: defaults::MAX_HEADER_BYTES,
            client_keepalive_timeout: defaults::CLIENT_KEEPALIVE_TIMEOUT,
            client_read_buffer_bytes: defaults::CLIENT_READ_BUFFER_BYTES,
            client_header_timeout: defaults::CLIENT_HEADER_TIMEOUT,
            max_client_connections: None,
            request_buffer_bytes: defaults::REQUEST_BUFFER_BYTES,
            client_body_timeout: defaults::CLIENT_BODY_TIMEOUT,
            rate: None,
        }
    }
}

/// Why a duration string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// No number in front.
    #[error("invalid duration `{0}`: expected e.g. 500ms, 2s, 1m")]
    NoNumber(String),
    /// An unknown unit.
    #[error("invalid duration `{0}`: unit must be ms, s, m or h")]
    Unit(String),
}

/// Parse `500ms`, `2s`, `1m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| DurationError::NoNumber(s.to_string()))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        _ => return Err(DurationError::Unit(s.to_string())),
    };
    Ok(d)
}
