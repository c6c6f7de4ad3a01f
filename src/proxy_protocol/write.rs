//! Writing the PROXY protocol header (versions 1 and 2) that tells a
//! backend the client's address.

use crate::config::ProxyProtocol;
use std::net::SocketAddr;

use super::V2_SIGNATURE;

/// The header for a connection from `client` to `local` (bulb's listener).
pub fn header(version: ProxyProtocol, client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    match version {
        ProxyProtocol::V1 => v1(client, local),
        ProxyProtocol::V2 => v2(client, local),
    }
}

fn v1(client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    match (client, local) {
        (SocketAddr::V4(c), SocketAddr::V4(l)) => format!(
            "PROXY TCP4 {} {} {} {}\r\n",
            c.ip(),
            l.ip(),
            c.port(),
            l.port()
        ),
        (c, l) => format!(
            "PROXY TCP6 {} {} {} {}\r\n",
            v6(c),
            v6(l),
            c.port(),
            l.port()
        ),
    }
    .into_bytes()
}

fn v6(a: SocketAddr) -> std::net::Ipv6Addr {
    match a {
        SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped(),
        SocketAddr::V6(v6) => *v6.ip(),
    }
}

fn v2(client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    let mut h = Vec::with_capacity(16 + 36);
    h.extend_from_slice(&V2_SIGNATURE);
    h.push(0x21); // version 2, PROXY command
    match (client, local) {
        (SocketAddr::V4(c), SocketAddr::V4(l)) => {
            h.push(0x11); // AF_INET, STREAM
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&c.ip().octets());
            h.extend_from_slice(&l.ip().octets());
            h.extend_from_slice(&c.port().to_be_bytes());
            h.extend_from_slice(&l.port().to_be_bytes());
        }
        (c, l) => {
            h.push(0x21); // AF_INET6, STREAM
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&v6(c).octets());
            h.extend_from_slice(&v6(l).octets());
            h.extend_from_slice(&c.port().to_be_bytes());
            h.extend_from_slice(&l.port().to_be_bytes());
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_headers() {
        let c: SocketAddr = "10.1.2.3:4567".parse().unwrap();
        let l: SocketAddr = "127.0.0.1:5432".parse().unwrap();
        assert_eq!(
            header(ProxyProtocol::V1, c, l),
            b"PROXY TCP4 10.1.2.3 127.0.0.1 4567 5432\r\n"
        );
        let v2 = header(ProxyProtocol::V2, c, l);
        assert_eq!(&v2[..12], &V2_SIGNATURE);
        assert_eq!(&v2[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&v2[16..20], &[10, 1, 2, 3]);
        assert_eq!(&v2[24..28], &[0x11, 0xd7, 0x15, 0x38]);
        let c6: SocketAddr = "[2001:db8::1]:1000".parse().unwrap();
        assert!(String::from_utf8(header(ProxyProtocol::V1, c6, l))
            .unwrap()
            .starts_with("PROXY TCP6 2001:db8::1 ::ffff:127.0.0.1 1000 5432"));
        assert_eq!(header(ProxyProtocol::V2, c6, l).len(), 16 + 36);
    }
}
