//! bulb's additions: strict request heads and chunk lines.
//!
//! Pingora parses requests with `Request::parse` and chunk lines with
//! `parse_chunk_size`. Upstream httparse is lenient in ways that let a front
//! proxy and a backend disagree about where a request ends, and Pingora
//! "repairs" a request line httparse refuses by percent-encoding its target.
//! A load balancer must be the strictest parser in the chain, so:
//!
//! - a request line must be exactly `method SP request-target SP
//!   HTTP/1.x CRLF`, with the target made only of the bytes RFC 3986 allows
//!   (and those browsers leave unescaped) and well-formed `%XX` escapes
//!   (RFC 9112 §3);
//! - every line of a request head ends in CRLF: no bare LF (RFC 9112 §2.2);
//! - any request-line error is reported as [`Error::Token`] (no new error
//!   variant: hyper, in the same build, matches them all), which bulb's
//!   Pingora answers with 400 instead of rewriting the target;
//! - a chunk line is `1*HEXDIG *( BWS ";" BWS token [ BWS "=" BWS ( token /
//!   quoted-string ) ] ) BWS CRLF` whose size fits 64 bits, leading zeros
//!   allowed in any number (RFC 9112 §7.1).

use crate::{Error, InvalidChunkSize, Status};

/// Whether `b` may appear literally in a request target: RFC 3986
/// unreserved, sub-delims, ":", "@", "/", "?", plus the bytes browsers send
/// unescaped in paths and queries (WHATWG URL: `[ ] { } | \ ^` and backquote).
/// Never: controls, space, DEL, `"`, `<`, `>`, `#`, bytes above 0x7E. "%" is
/// checked separately.
#[inline]
fn is_target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?[]{}|\\^`".contains(&b)
}

/// Whether `b` is a `tchar` (RFC 9110 §5.6.2).
#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Check a complete request head (`head` ends with its empty line) that the
/// lenient parser accepted.
pub(crate) fn check_request_head(head: &[u8]) -> Result<(), Error> {
    let mut i = 0;
    // RFC 9112 §2.2: empty lines before the request line may be ignored.
    while head[i..].starts_with(b"\r\n") {
        i += 2;
    }
    let line_end = match head[i..].iter().position(|&b| b == b'\n') {
        Some(p) => i + p,
        None => return Err(Error::Token),
    };
    check_request_line(&head[i..line_end])?;
    // Every LF in the head must be preceded by CR.
    for (p, &b) in head.iter().enumerate().skip(line_end) {
        if b == b'\n' && (p == 0 || head[p - 1] != b'\r') {
            return Err(Error::NewLine);
        }
    }
    Ok(())
}

/// `line` is the request line up to (not including) its LF.
fn check_request_line(line: &[u8]) -> Result<(), Error> {
    let line = line.strip_suffix(b"\r").ok_or(Error::Token)?;
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(Error::Token);
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err(Error::Token);
    }
    if target.is_empty() {
        return Err(Error::Token);
    }
    let mut k = 0;
    while k < target.len() {
        let b = target[k];
        if b == b'%' {
            let hex = target.get(k + 1..k + 3).ok_or(Error::Token)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(Error::Token);
            }
            k += 3;
        } else if is_target_byte(b) {
            k += 1;
        } else {
            return Err(Error::Token);
        }
    }
    Ok(())
}

/// The strict replacement for `parse_chunk_size`: `(index after CRLF, size)`.
pub(crate) fn parse_chunk_size(buf: &[u8]) -> Result<Status<(usize, u64)>, InvalidChunkSize> {
    let mut i = 0;
    let mut size: u64 = 0;
    while let Some(&b) = buf.get(i) {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => break,
        };
        if size >> 60 != 0 {
            return Err(InvalidChunkSize); // the value would pass 2^64 - 1
        }
        size = (size << 4) | u64::from(d);
        i += 1;
    }
    if i == buf.len() {
        return Ok(Status::Partial);
    }
    if i == 0 {
        return Err(InvalidChunkSize); // an empty size is not a last chunk
    }
    loop {
        i = skip_bws(buf, i);
        match buf.get(i) {
            None => return Ok(Status::Partial),
            Some(b'\r') => {
                return match buf.get(i + 1) {
                    None => Ok(Status::Partial),
                    Some(b'\n') => Ok(Status::Complete((i + 2, size))),
                    Some(_) => Err(InvalidChunkSize),
                };
            }
            Some(b';') => {
                i = skip_bws(buf, i + 1);
                i = match token_end(buf, i)? {
                    Some(end) => end,
                    None => return Ok(Status::Partial),
                };
                let j = skip_bws(buf, i);
                match buf.get(j) {
                    None => return Ok(Status::Partial),
                    Some(b'=') => {
                        let v = skip_bws(buf, j + 1);
                        let end = match buf.get(v) {
                            None => return Ok(Status::Partial),
                            Some(b'"') => quoted_end(buf, v + 1)?,
                            Some(_) => token_end(buf, v)?,
                        };
                        i = match end {
                            Some(end) => end,
                            None => return Ok(Status::Partial),
                        };
                    }
                    Some(_) => i = j,
                }
            }
            Some(_) => return Err(InvalidChunkSize),
        }
    }
}

fn skip_bws(buf: &[u8], mut i: usize) -> usize {
    while matches!(buf.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// End of a non-empty token starting at `i`; `None` when the buffer ends first.
fn token_end(buf: &[u8], i: usize) -> Result<Option<usize>, InvalidChunkSize> {
    let mut j = i;
    while let Some(&b) = buf.get(j) {
        if !is_tchar(b) {
            return if j == i { Err(InvalidChunkSize) } else { Ok(Some(j)) };
        }
        j += 1;
    }
    Ok(None)
}

/// End (after the closing quote) of a quoted-string whose opening quote is
/// just before `i`: qdtext is HTAB, SP, VCHAR except `"` and `\`, obs-text;
/// quoted-pair is `\` followed by HTAB, SP, VCHAR or obs-text.
fn quoted_end(buf: &[u8], mut i: usize) -> Result<Option<usize>, InvalidChunkSize> {
    let text = |b: u8| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80;
    while let Some(&b) = buf.get(i) {
        match b {
            b'"' => return Ok(Some(i + 1)),
            b'\\' => match buf.get(i + 1) {
                None => return Ok(None),
                Some(&q) if text(q) => i += 2,
                Some(_) => return Err(InvalidChunkSize),
            },
            _ if text(b) => i += 1,
            _ => return Err(InvalidChunkSize),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let ok: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"\r\nGET /a%20b?x=1&y=[] HTTP/1.1\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\n\r\n",
            b"GET http://a.example:80/x HTTP/1.0\r\n\r\n",
        ];
        for h in ok {
            assert_eq!(check_request_head(h), Ok(()), "{:?}", core::str::from_utf8(h));
        }
        let bad: &[&[u8]] = &[
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"GET /a\x00 HTTP/1.1\r\n\r\n",
            b"GET /%zz HTTP/1.1\r\n\r\n",
            b"GET /% HTTP/1.1\r\n\r\n",
            b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n",
            b"GET /a#frag HTTP/1.1\r\n\r\n",
            b"GET /<x> HTTP/1.1\r\n\r\n",
            b"GET /\"x\" HTTP/1.1\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 \r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1\n\r\n",
            b"\nGET / HTTP/1.1\r\n\r\n",
        ];
        for h in bad {
            assert!(check_request_head(h).is_err(), "{:?}", h);
        }
        assert_eq!(
            check_request_head(b"GET / HTTP/1.1\r\nHost: a\n\r\n"),
            Err(Error::NewLine)
        );
    }

    #[test]
    fn chunk_lines() {
        let ok: &[(&[u8], usize, u64)] = &[
            (b"5\r\nhello", 3, 5),
            (b"0\r\n\r\n", 3, 0),
            (b"aB;x\r\n", 6, 0xab),
            (b"5 ; name = \"v\\\"al\" ;b\r\n", 23, 5),
            (b"ffffffffffffffff\r\n", 18, u64::MAX),
            (b"00000000000000000000004e\r\n", 26, 0x4e),
            (b"0000000000000000000ffffffffffffffff\r\n", 37, u64::MAX),
            (b"00000000000000000000\r\n\r\n", 22, 0),
        ];
        for (buf, at, size) in ok {
            assert_eq!(parse_chunk_size(buf), Ok(Status::Complete((*at, *size))));
        }
        let bad: &[&[u8]] = &[
            b"\r\n",
            b";x\r\n",
            b"5;x\n",
            b"5\n",
            b"5;x\ny\r\n",
            b"5;\x00\r\n",
            b"5;=a\r\n",
            b"5;a=\r\n",
            b"5x\r\n",
            b"10000000000000000\r\n",
            b"0000010000000000000000\r\n",
            b"5\rx",
            b"-5\r\n",
            b"0x5\r\n",
        ];
        for buf in bad {
            assert_eq!(parse_chunk_size(buf), Err(InvalidChunkSize), "{:?}", buf);
        }
        for partial in [&b"5"[..], b"5;", b"5;a", b"5;a=\"x", b"5\r"] {
            assert_eq!(parse_chunk_size(partial), Ok(Status::Partial));
        }
    }
}
