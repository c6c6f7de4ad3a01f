//! The validated configuration: every default filled, every reference
//! checked. Nothing here touches the network.

mod limits;
mod policy;
mod tls;
mod upstream;

use super::defaults;

pub use limits::*;
pub use policy::*;
pub use tls::*;
pub use upstream::*;

use pingora::server::configuration::ServerConf;
use std::net::SocketAddr;
use std::time::Duration;

/// A whole, valid bulb configuration.
#[derive(Debug)]
pub struct Config {
    /// Where it came from (a path, or `NODES`), for messages.
    pub source: String,
    /// Pingora's own server settings, with bulb's defaults applied.
    pub server: ServerConf,
    /// Proxy listeners.
    pub listeners: Vec<ListenerSpec>,
    /// Admin listener, if any.
    pub admin: Option<SocketAddr>,
    /// Bearer token for admin writes; without one, writes only on loopback.
    pub admin_token: Option<String>,
    /// File keeping admin overrides across restarts and upgrades.
    pub admin_state_file: Option<String>,
    /// Access log target.
    pub access_log: AccessLogSpec,
    /// Access log line format.
    pub access_log_format: LogFormat,
    /// Routing rules, first match wins.
    pub routes: Vec<RouteSpec>,
    /// Upstream pools; routes refer to them by index.
    pub upstreams: Vec<UpstreamSpec>,
    /// Client-side limits.
    pub limits: LimitsSpec,
    /// Peers whose `X-Forwarded-For` is believed (see `proxy::real_client`).
    pub trusted_proxies: Vec<Cidr>,
    /// DNS servers for hostnames and SRV; empty: the system's.
    pub resolvers: Vec<SocketAddr>,
    /// OpenTelemetry traces, when configured.
    pub tracing: Option<TracingSpec>,
}

/// `tracing:` as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSpec {
    /// The collector's OTLP/HTTP traces URL.
    pub otlp: String,
    /// `service.name`.
    pub service_name: String,
    /// Share of new traces sampled.
    pub sample_ratio: f64,
}

impl Config {
    /// What a reload from `self` to `new` cannot apply in place, because a
    /// running process reads it once, at start: the listening sockets, the
    /// admin address, Pingora's server keys, the client read buffer and the
    /// HTTP/2 idle timeout (`limits.client_keepalive_timeout`). A reload that
    /// changes any of them hands the sockets over to a new process.
    pub fn fixed_at_start_changes(&self, new: &Config) -> Vec<&'static str> {
        fn sockets(c: &Config) -> Vec<(SocketAddr, bool, bool, bool)> {
            c.listeners.iter().map(|l| l.socket()).collect()
        }
        let (a, b) = (&self.limits, &new.limits);
        [
            (sockets(self) != sockets(new), "listeners"),
            (self.admin != new.admin, "admin"),
            (self.server != new.server, "Pingora server keys"),
            (
                a.client_read_buffer_bytes != b.client_read_buffer_bytes,
                "limits.client_read_buffer_bytes",
            ),
            (
                a.client_keepalive_timeout != b.client_keepalive_timeout,
                "limits.client_keepalive_timeout (the HTTP/2 idle timeout)",
            ),
        ]
        .into_iter()
        .filter_map(|(changed, what)| changed.then_some(what))
        .collect()
    }
}

/// An IP network, `10.0.0.0/8` or `2001:db8::/32` (a bare address is /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub addr: std::net::IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl Cidr {
    /// Parse `ADDR/LEN` or `ADDR`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, l) = s.split_once('/').map_or((s, None), |(a, l)| (a, Some(l)));
        let addr: std::net::IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            Some(l) => l.trim().parse::<u8>().ok().filter(|l| *l <= max)?,
            None => max,
        };
        Some(Cidr { addr, len })
    }

    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::*;
        let (a, b, bits) = match (self.addr, ip) {
            (V4(a), V4(b)) => (
                u128::from(u32::from(a)) << 96,
                u128::from(u32::from(b)) << 96,
                self.len,
            ),
            (V6(a), V6(b)) => (u128::from(a), u128::from(b), self.len),
            (V6(a), V4(b)) => match a.to_ipv4_mapped() {
                Some(a) => (
                    u128::from(u32::from(a)) << 96,
                    u128::from(u32::from(b)) << 96,
                    self.len.saturating_sub(96),
                ),
                None => return false,
            },
            (V4(a), V6(b)) => match b.to_ipv4_mapped() {
                Some(b) => (
                    u128::from(u32::from(a)) << 96,
                    u128::from(u32::from(b)) << 96,
                    self.len,
                ),
                None => return false,
            },
        };
        if bits == 0 {
            return true;
        }
        let mask = u128::MAX << (128 - u32::from(bits));
        a & mask == b & mask
    }
}

/// A proxy listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Bind address.
    pub address: SocketAddr,
    /// TLS termination.
    pub tls: Option<TlsFiles>,
    /// A TCP (layer 4) listener: what it forwards to; `None` for HTTP.
    pub tcp: Option<TcpSpec>,
    /// Cleartext HTTP/2 by prior knowledge is accepted beside HTTP/1.
    pub h2c: bool,
    /// Plain requests get a 308 to the same URL over HTTPS.
    pub redirect_https: bool,
    /// `accept_proxy_protocol`: connections start with a PROXY header.
    pub accept_proxy: bool,
}

impl ListenerSpec {
    /// What the listening socket is: address, TLS or not, and protocol. A
    /// reload that changes this needs a hand-over; a change of the TCP
    /// settings does not (they are read per session), nor one of the
    /// certificates (loaded into the running listener).
    pub fn socket(&self) -> (SocketAddr, bool, bool, bool) {
        (
            self.address,
            self.tls.is_some(),
            self.tcp.is_some(),
            self.accept_proxy,
        )
    }
}

/// What a TCP listener does with each connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSpec {
    /// Name of the upstream every connection goes to.
    pub upstream: String,
    /// PROXY protocol header sent to the backend first.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Close a session with no bytes in either direction this long.
    pub idle_timeout: Duration,
}

/// PROXY protocol version (HAProxy's spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// The text header.
    V1,
    /// The binary header.
    V2,
}

/// Where access-log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogSpec {
    /// No access log.
    Off,
    /// Standard output.
    Stdout,
    /// Append to this file.
    File(String),
}

/// The access log's line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// nginx "combined" plus the backend and the request time.
    #[default]
    Combined,
    /// One JSON object per line.
    Json,
}

/// How a route matches the request's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// Exact, lower-case.
    Exact(String),
    /// `*.example.com` stored as `.example.com`, lower-case.
    Suffix(String),
}

/// One routing rule.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// Host condition.
    pub host: Option<HostMatch>,
    /// Path prefix condition.
    pub path_prefix: Option<String>,
    /// Where its requests go.
    pub target: RouteTarget,
    /// `allow`/`deny`: which client addresses the route serves.
    pub access: Option<Access>,
    /// `basic_auth`.
    pub auth: Option<std::sync::Arc<BasicAuth>>,
    /// Bytes of the path to drop before it goes upstream (`strip_prefix`:
    /// the length of `path_prefix`; 0: none).
    pub strip: usize,
    /// Header rules and compression; `None` when the route has none.
    pub edits: Option<std::sync::Arc<Edits>>,
}

impl RouteSpec {
    /// A route of every request to upstream `upstream`, with no policy.
    pub fn to_upstream(upstream: usize) -> RouteSpec {
        RouteSpec {
            host: None,
            path_prefix: None,
            target: RouteTarget::Upstream(upstream),
            access: None,
            auth: None,
            strip: 0,
            edits: None,
        }
    }
}

/// A route's `allow` and `deny` lists, judged on the client address (after
/// `trusted_proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// When not empty, only these networks are served.
    pub allow: Vec<Cidr>,
    /// Never served; wins over `allow`.
    pub deny: Vec<Cidr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.9.9.9".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nope").is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("2x").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("").is_err());
    }
}
