//! An upstream's validated model: algorithm, backends, health checks,
//! transport, queue, least time.

use super::*;

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
    /// `host` is a DNS SRV name (`port` is 0): its targets are the
    /// backends, with the records' weights, higher priorities as backups.
    pub srv: bool,
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
    /// Sticky sessions by cookie.
    pub sticky: Option<super::StickySpec>,
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
            max_h2_streams: defaults::MAX_H2_STREAMS,
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
    /// A Redis URL: the bucket lives there, shared by every bulb naming it.
    pub store: Option<String>,
    /// How long a request waits for the store before the local bucket decides.
    pub store_timeout: Duration,
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
            decay: defaults::LEAST_TIME_DECAY,
        }
    }
}
