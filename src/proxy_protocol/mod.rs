//! The PROXY protocol (HAProxy's `proxy-protocol.txt`, versions 1 and 2):
//! [`write`] the header bulb's TCP listeners send a backend, [`read`] the
//! one an L4 tier in front of bulb sends (`accept_proxy_protocol`).

pub mod read;
pub mod write;

/// The v2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
