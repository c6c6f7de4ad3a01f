//! The validated configuration: every default filled, every reference
//! checked. Nothing here touches the network.

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
    /// Routing rules, first match wins.
    pub routes: Vec<RouteSpec>,
    /// Upstream pools; routes refer to them by index.
    pub upstreams: Vec<UpstreamSpec>,
    /// Client-side limits.
    pub limits: LimitsSpec,
    /// Peers whose `X-Forwarded-For` is believed (see `proxy::real_client`).
    pub trusted_proxies: Vec<Cidr>,
}

impl Config {
    /// What a reload from `self` to `new` cannot apply in place, because a
    /// running process reads it once, at start: the listening sockets, the
    /// admin address, Pingora's server keys, the client read buffer and the
    /// HTTP/2 idle timeout (`limits.client_keepalive_timeout`). A reload that
    /// changes any of them hands the sockets over to a new process.
    pub fn fixed_at_start_changes(&self, new: &Config) -> Vec<&'static str> {
        fn sockets(c: &Config) -> Vec<(SocketAddr, Option<&TlsFiles>, bool)> {
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
}

impl ListenerSpec {
    /// What the listening socket is: address, TLS and protocol. A reload
    /// that changes this needs a hand-over; a change of the TCP settings
    /// does not (they are read per session).
    pub fn socket(&self) -> (SocketAddr, Option<&TlsFiles>, bool) {
        (self.address, self.tls.as_ref(), self.tcp.is_some())
    }
}

/// How long a TCP session may be idle in both directions by default
/// (nginx's `proxy_timeout` is 10 minutes).
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

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

/// A certificate chain and its private key, as PEM file paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: String,
    /// Private key.
    pub key: String,
    /// A hash of both files' contents when the config was loaded: the same
    /// paths with renewed contents are a different listener socket to a
    /// reload (which then hands over to a process that loads them).
    pub contents: u64,
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
    /// Index into [`Config::upstreams`].
    pub upstream: usize,
}

/// Backend selection algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Weighted round robin.
    RoundRobin,
    /// Weighted random.
    Random,
    /// Fewest in-flight requests divided by weight.
    LeastConnections,
    /// Ketama consistent hashing.
    ConsistentHash,
    /// Lowest average time × (in flight + 1) ÷ weight.
    LeastTime,
}

impl Algorithm {
    /// The name used in the file and on `/status`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::Random => "random",
            Algorithm::LeastConnections => "least_connections",
            Algorithm::ConsistentHash => "consistent_hash",
            Algorithm::LeastTime => "least_time",
        }
    }
}

/// What a consistent hash is computed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The client's IP address.
    ClientIp,
    /// Path and query.
    Uri,
    /// Path only.
    Path,
    /// A request header.
    Header(http::HeaderName),
    /// A cookie.
    Cookie(String),
}

/// A backend as configured (before name resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// Host part: an IP literal or a name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Already an address when `host` is an IP literal.
    pub ip: Option<SocketAddr>,
    /// Weight, >= 1.
    pub weight: u32,
    /// Backup server.
    pub backup: bool,
    /// Requests (tcp: sessions) in flight at most.
    pub max_conns: Option<u32>,
}

/// Kind of active probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// TCP connect.
    Tcp,
    /// HTTP GET.
    Http {
        /// Request path.
        path: String,
        /// Host header.
        host: String,
        /// Accepted statuses.
        expect_status: Vec<u16>,
    },
    /// `grpc.health.v1.Health/Check`: SERVING is up.
    Grpc {
        /// The service asked about; empty: the server as a whole.
        service: String,
    },
}

/// Active health checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    /// Probe kind.
    pub kind: ProbeKind,
    /// Time between probes.
    pub interval: Duration,
    /// Probe timeout.
    pub timeout: Duration,
    /// Consecutive successes to mark up.
    pub healthy_after: u32,
    /// Consecutive failures to mark down.
    pub unhealthy_after: u32,
}

/// Passive failure counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassiveSpec {
    /// Failures within `fail_timeout` that eject.
    pub max_fails: u32,
    /// Counting window and ejection time.
    pub fail_timeout: Duration,
}

/// One upstream pool.
#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    /// Name from the file.
    pub name: String,
    /// Selection algorithm.
    pub algorithm: Algorithm,
    /// Key for consistent hashing.
    pub hash_key: HashKey,
    /// Backends as configured.
    pub backends: Vec<BackendSpec>,
    /// Re-resolution interval for hostnames.
    pub discovery_interval: Duration,
    /// Active checks.
    pub health_check: Option<HealthCheckSpec>,
    /// Passive checks.
    pub passive: Option<PassiveSpec>,
    /// Further backends tried after a connect failure.
    pub retries: u32,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read timeout.
    pub read_timeout: Duration,
    /// Write timeout.
    pub write_timeout: Duration,
    /// What `least_time` measures, and how fast its average forgets.
    pub least_time: LeastTimeSpec,
    /// Ramp a backend that becomes usable over this long.
    pub slow_start: Option<Duration>,
    /// Where requests wait when every usable backend is full.
    pub queue: Option<QueueSpec>,
    /// How bulb speaks to the backends.
    pub transport: TransportSpec,
}

/// The protocol spoken to an upstream's backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1, in clear or over TLS.
    Http1,
    /// HTTP/2 over TLS (ALPN `h2`, falling back to `http/1.1`).
    H2,
    /// Cleartext HTTP/2 by prior knowledge.
    H2c,
}

impl UpstreamProtocol {
    /// The name used in the file.
    pub fn name(self) -> &'static str {
        match self {
            UpstreamProtocol::Http1 => "http1",
            UpstreamProtocol::H2 => "h2",
            UpstreamProtocol::H2c => "h2c",
        }
    }
}

/// The default `max_h2_streams`: concurrent streams per backend connection.
pub const DEFAULT_MAX_H2_STREAMS: usize = 100;

/// How bulb connects to an upstream's backends.
#[derive(Debug, Clone)]
pub struct TransportSpec {
    /// Protocol.
    pub protocol: UpstreamProtocol,
    /// TLS toward the backends.
    pub tls: Option<UpstreamTls>,
    /// Concurrent streams on one HTTP/2 connection.
    pub max_h2_streams: usize,
}

impl Default for TransportSpec {
    fn default() -> Self {
        TransportSpec {
            protocol: UpstreamProtocol::Http1,
            tls: None,
            max_h2_streams: DEFAULT_MAX_H2_STREAMS,
        }
    }
}

/// TLS toward backends, its files loaded and checked.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// Server name sent and verified; `None`: each backend's hostname.
    pub sni: Option<String>,
    /// Chain and hostname are checked.
    pub verify: bool,
    /// Trusted roots (platform roots plus the `ca` file), when `ca` is set.
    pub ca: Option<std::sync::Arc<pingora_core::protocols::tls::CaType>>,
    /// Client certificate and key for mutual TLS.
    pub client: Option<std::sync::Arc<pingora_core::utils::tls::CertKey>>,
    /// A hash of the trusted roots' and client certificate's contents:
    /// upstream connections made under them are reused only by peers with
    /// the same key (Pingora's reuse hash leaves the trusted roots out); the
    /// same files reloaded keep the key, and so the pooled connections.
    pub pool_key: u64,
}

/// The queue of an upstream whose backends have `max_conns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    /// Waiting requests at most; beyond, 503 at once.
    pub size: usize,
    /// Longest wait; beyond, 503.
    pub timeout: Duration,
}

/// What a rate limit counts requests by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    /// The client address (trusted proxies applied).
    ClientIp,
    /// A request header's value (absent: the client address).
    Header(http::HeaderName),
}

/// The largest `limits.rate.burst`.
pub const MAX_RATE_BURST: u32 = 100_000;

/// A per-client token bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSpec {
    /// What identifies a client.
    pub key: RateKey,
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: u32,
}

/// What `least_time` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeMetric {
    /// Time to the response head.
    Header,
    /// Time to the end of the response.
    LastByte,
    /// Time to connect (the only one a TCP session has).
    Connect,
}

/// `least_time` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeastTimeSpec {
    /// The measured time.
    pub metric: TimeMetric,
    /// Time constant of the exponentially decaying average.
    pub decay: Duration,
}

impl Default for LeastTimeSpec {
    fn default() -> Self {
        LeastTimeSpec {
            metric: TimeMetric::Header,
            decay: Duration::from_secs(10),
        }
    }
}

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
            max_header_bytes: 16 * 1024,
            client_keepalive_timeout: Duration::from_secs(60),
            client_read_buffer_bytes: 0,
            client_header_timeout: Duration::from_secs(10),
            max_client_connections: None,
            request_buffer_bytes: 64 * 1024,
            client_body_timeout: Duration::from_secs(60),
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
        _ => return Err(DurationError::Unit(s.to_string())),
    };
    Ok(d)
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
