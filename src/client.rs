//! The client as bulb keys it: its address as bytes, for the consistent-hash
//! key (HTTP and TCP) and the rate-limit bucket.

use std::net::IpAddr;

/// A client address as a hash key (4 or 16 bytes, written into `buf`);
/// empty without one.
pub fn ip_key(ip: Option<IpAddr>, buf: &mut [u8; 16]) -> &[u8] {
    match ip {
        Some(IpAddr::V4(v4)) => {
            buf[..4].copy_from_slice(&v4.octets());
            &buf[..4]
        }
        Some(IpAddr::V6(v6)) => {
            *buf = v6.octets();
            &buf[..]
        }
        None => b"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_or_sixteen_bytes() {
        let mut buf = [0u8; 16];
        assert_eq!(
            ip_key(Some("10.1.2.3".parse().unwrap()), &mut buf),
            [10, 1, 2, 3]
        );
        assert_eq!(ip_key(Some("::1".parse().unwrap()), &mut buf).len(), 16);
        assert!(ip_key(None, &mut buf).is_empty());
    }
}
