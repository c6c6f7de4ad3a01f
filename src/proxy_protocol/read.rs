//! Reading a PROXY protocol header, v1 or v2, at the start of a
//! connection: strictly (anything malformed is refused), TLVs skipped, and
//! without taking more of the stream than the header when it is v2.

use super::V2_SIGNATURE;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A v1 header is at most this long, `\r\n` included.
const V1_MAX: usize = 107;
/// The longest v2 header bulb reads (TLVs included).
pub const V2_MAX: usize = 16 + 4096;

/// What the bytes read so far are.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    /// A header, not whole yet: read until there are at least this many
    /// bytes (v1: one more line's worth; the caller may read further).
    Need(usize),
    /// A whole header of `len` bytes; `source` is the client it names
    /// (`None` for v1 `UNKNOWN`, v2 `LOCAL` or an address family bulb does
    /// not route: the peer's address stands).
    Done {
        /// Header length.
        len: usize,
        /// The client's address.
        source: Option<SocketAddr>,
    },
    /// Not a valid header.
    Bad(&'static str),
}

/// Parse the start of a connection.
pub fn parse(buf: &[u8]) -> Parse {
    if buf.len() < 12 {
        let v1 = b"PROXY ".starts_with(&buf[..buf.len().min(6)]);
        let v2 = V2_SIGNATURE.starts_with(buf);
        return if v1 || v2 {
            Parse::Need(if v2 && !v1 { 16 } else { 15 })
        } else {
            Parse::Bad("not a PROXY protocol header")
        };
    }
    if buf.starts_with(&V2_SIGNATURE) {
        v2(buf)
    } else if buf.starts_with(b"PROXY ") {
        v1(buf)
    } else {
        Parse::Bad("not a PROXY protocol header")
    }
}

fn v1(buf: &[u8]) -> Parse {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Parse::Bad("v1 header longer than 107 bytes")
        } else {
            Parse::Need(buf.len() + 1)
        };
    };
    if end + 2 > V1_MAX {
        return Parse::Bad("v1 header longer than 107 bytes");
    }
    let Ok(line) = std::str::from_utf8(&buf[6..end]) else {
        return Parse::Bad("v1 header is not text");
    };
    let parts: Vec<&str> = line.split(' ').collect();
    let done = |source| Parse::Done {
        len: end + 2,
        source,
    };
    match parts.as_slice() {
        ["UNKNOWN", ..] => done(None),
        [proto @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v4 = *proto == "TCP4";
            let ip = |s: &str| {
                let ip: IpAddr = s.parse().ok()?;
                (ip.is_ipv4() == v4).then_some(ip)
            };
            let port = |s: &str| {
                let canonical = !s.is_empty() && (s == "0" || !s.starts_with('0'));
                if canonical && s.len() <= 5 && s.bytes().all(|c| c.is_ascii_digit()) {
                    s.parse::<u16>().ok()
                } else {
                    None
                }
            };
            match (ip(src), ip(dst), port(sport), port(dport)) {
                (Some(s), Some(_), Some(sp), Some(_)) => done(Some(SocketAddr::new(s, sp))),
                _ => Parse::Bad("v1 header with a bad address or port"),
            }
        }
        _ => Parse::Bad("v1 header is neither TCP4, TCP6 nor UNKNOWN"),
    }
}

fn v2(buf: &[u8]) -> Parse {
    if buf.len() < 16 {
        return Parse::Need(16);
    }
    let (ver_cmd, family) = (buf[12], buf[13]);
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if ver_cmd >> 4 != 2 {
        return Parse::Bad("v2 header of another version");
    }
    if 16 + len > V2_MAX {
        return Parse::Bad("v2 header longer than bulb reads");
    }
    if buf.len() < 16 + len {
        return Parse::Need(16 + len);
    }
    let body = &buf[16..16 + len];
    let done = |source| Parse::Done {
        len: 16 + len,
        source,
    };
    match ver_cmd & 0x0f {
        0 => return done(None), // LOCAL: the proxy's own connection
        1 => {}
        _ => return Parse::Bad("v2 header with an unknown command"),
    }
    match family {
        0x11 if len >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            done(Some(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        0x21 if len >= 36 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&body[..16]);
            let port = u16::from_be_bytes([body[32], body[33]]);
            done(Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), port)))
        }
        0x11 | 0x21 => Parse::Bad("v2 header too short for its addresses"),
        // UNSPEC, UDP, unix sockets: nothing bulb can use as a client address.
        _ => done(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProxyProtocol;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn what_bulb_writes_it_reads() {
        for (client, local) in [
            ("10.1.2.3:4567", "127.0.0.1:80"),
            ("[2001:db8::1]:443", "[::1]:8080"),
        ] {
            for v in [ProxyProtocol::V1, ProxyProtocol::V2] {
                let mut h = super::super::write::header(v, addr(client), addr(local));
                let len = h.len();
                h.extend_from_slice(b"GET / HTTP/1.1\r\n");
                assert_eq!(
                    parse(&h),
                    Parse::Done {
                        len,
                        source: Some(addr(client))
                    },
                    "{v:?}"
                );
            }
        }
    }

    #[test]
    fn partial_unknown_local_and_bad_headers() {
        assert_eq!(parse(b"PROX"), Parse::Need(15));
        assert_eq!(parse(&V2_SIGNATURE[..5]), Parse::Need(16));
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4"), Parse::Need(19));
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parse::Done {
                len: 15,
                source: None
            }
        );
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        assert_eq!(
            parse(&local),
            Parse::Done {
                len: 16,
                source: None
            }
        );
        let mut tlv = V2_SIGNATURE.to_vec();
        tlv.extend_from_slice(&[
            0x21, 0x11, 0x00, 15, 10, 0, 0, 1, 10, 0, 0, 2, 0x1f, 0x90, 0, 80, 0x04, 0, 0,
        ]);
        assert_eq!(
            parse(&tlv),
            Parse::Done {
                len: 31,
                source: Some(addr("10.0.0.1:8080"))
            }
        );
        for bad in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 80 81\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 080 81\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 81\r\n",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        ] {
            assert!(
                matches!(parse(bad), Parse::Bad(_)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse(b""), Parse::Need(15));
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 100]].concat();
        assert!(matches!(parse(&long), Parse::Bad(_)));
        let mut v3 = V2_SIGNATURE.to_vec();
        v3.extend_from_slice(&[0x31, 0x11, 0, 12]);
        assert!(matches!(parse(&v3), Parse::Bad(_)));
    }
}
