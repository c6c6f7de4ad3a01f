//! The YAML file as written: plain serde structs, no defaults filled and no
//! cross-references checked (that is [`super::model`]'s job).

mod policy;
pub use policy::*;

use serde::Deserialize;
use std::collections::BTreeMap;

/// bulb's own sections of the file. Pingora's server keys sit beside them at
/// the top level and are read separately into `pingora::server::configuration::ServerConf`.
#[derive(Debug, Deserialize, Default)]
pub struct FileConfig {
    /// Listening sockets for proxied traffic.
    #[serde(default)]
    pub listeners: Vec<ListenerFile>,
    /// The admin HTTP service.
    #[serde(default)]
    pub admin: Option<AdminFile>,
    /// `stdout`, `off`/`false`, or a file path.
    #[serde(default)]
    pub access_log: Option<AccessLogFile>,
    /// Routing rules; first match wins.
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    /// Named pools of backends.
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamFile>,
    /// Limits on client connections.
    #[serde(default)]
    pub limits: Option<LimitsFile>,
    /// CIDRs of proxies in front of bulb whose `X-Forwarded-For` is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// DNS servers for hostnames and SRV (`IP` or `IP:PORT`); default: the system's.
    #[serde(default)]
    pub resolvers: Vec<String>,
    /// OpenTelemetry traces.
    pub tracing: Option<TracingFile>,
}

/// One listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFile {
    /// `IP:port`.
    pub address: String,
    /// TLS termination.
    pub tls: Option<TlsFile>,
    /// `http` (default) or `tcp`.
    pub protocol: Option<String>,
    /// tcp only: the upstream every connection goes to.
    pub upstream: Option<String>,
    /// tcp only: `v1` or `v2`, a PROXY protocol header to send the backend.
    pub proxy_protocol: Option<String>,
    /// tcp only: close a session idle this long in both directions.
    pub idle_timeout: Option<String>,
    /// http only: also accept cleartext HTTP/2 (prior knowledge).
    pub h2c: Option<bool>,
    /// Every connection starts with a PROXY header from `trusted_proxies`.
    pub accept_proxy_protocol: Option<bool>,
    /// http only, without `tls`: answer 308 to the same URL over HTTPS.
    pub redirect_https: Option<bool>,
}

/// TLS termination on a listener: one certificate (`cert` and `key`), or
/// several chosen by SNI (`certs`), or certificates bulb obtains (`acme`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// PEM certificate chain (the one-certificate form).
    pub cert: Option<String>,
    /// PEM private key (the one-certificate form).
    pub key: Option<String>,
    /// Certificates chosen by SNI; the first is the default.
    pub certs: Option<Vec<CertFile>>,
    /// Certificates obtained and renewed over ACME.
    pub acme: Option<AcmeFile>,
}

/// One certificate chain and its key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFile {
    /// PEM certificate chain.
    pub cert: String,
    /// PEM private key.
    pub key: String,
}

/// `tls.acme`: what bulb orders and where it keeps it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeFile {
    /// The ACME directory URL.
    pub directory: String,
    /// Contact address for the account.
    pub email: Option<String>,
    /// Names to order; default: every exact `host` of the routes.
    pub domains: Option<Vec<String>>,
    /// `http-01` (default) or `tls-alpn-01`.
    pub challenge: Option<String>,
    /// Directory for the account key and the certificates.
    pub storage: String,
    /// Renew when this much validity is left (default: a third of the lifetime).
    pub renew_before: Option<String>,
    /// PEM roots the directory's TLS chains to.
    pub ca: Option<String>,
}

/// The admin service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    /// `IP:port`; default `127.0.0.1:9901` (loopback only).
    pub address: Option<String>,
    /// Bearer token required for writes.
    pub token: Option<String>,
    /// Where runtime overrides (drain, disable, weight) are kept across restarts.
    pub state_file: Option<String>,
}

/// `access_log:` is a boolean (`false` = off), a target string, or a map
/// with `path` and `format`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum AccessLogFile {
    /// `true` = stdout, `false` = off.
    Flag(bool),
    /// `stdout`, `off` or a path.
    Target(String),
    /// `{path: stdout | off | PATH, format: combined | json}`.
    Table(AccessLogTable),
}

/// The map form of `access_log:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogTable {
    /// `stdout` (default), `off` or a file path.
    pub path: Option<String>,
    /// `combined` (default) or `json`.
    pub format: Option<String>,
}

/// One routing rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    /// Exact host or `*.suffix`.
    pub host: Option<String>,
    /// Path prefix.
    pub path_prefix: Option<String>,
    /// Name of the upstream (or `split`, or `return`).
    pub upstream: Option<String>,
    /// Weighted upstreams (canary releases).
    pub split: Option<Vec<SplitFile>>,
    /// bulb answers itself: a status, maybe a `location` and a `body`.
    #[serde(rename = "return")]
    pub answer: Option<ReturnFile>,
    /// Client networks allowed (others get 403); empty: everyone.
    pub allow: Option<Vec<String>>,
    /// Client networks refused with 403 (wins over `allow`).
    pub deny: Option<Vec<String>>,
    /// Send the path upstream without `path_prefix` (`/api/x?q` → `/x?q`).
    pub strip_prefix: Option<bool>,
    /// Basic authentication against an htpasswd file of bcrypt entries.
    pub basic_auth: Option<BasicAuthFile>,
    /// Header edits on the request going upstream.
    pub request_headers: Option<HeaderRulesFile>,
    /// Header edits on the response going to the client.
    pub response_headers: Option<HeaderRulesFile>,
    /// Response encodings to compress with, preferred first.
    pub compress: Option<Vec<String>>,
}

/// One upstream pool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    /// `round_robin` (default), `random`, `least_connections`, `consistent_hash`.
    pub algorithm: Option<String>,
    /// Key for `consistent_hash`.
    pub hash_key: Option<String>,
    /// The servers.
    #[serde(default)]
    pub backends: Vec<BackendFile>,
    /// How often hostnames are re-resolved.
    pub discovery_interval: Option<String>,
    /// Active health checks.
    pub health_check: Option<HealthCheckFile>,
    /// Passive failure counting.
    pub passive: Option<PassiveFile>,
    /// Further backends tried after a connect failure.
    pub retries: Option<u32>,
    /// Upstream connect timeout.
    pub connect_timeout: Option<String>,
    /// Upstream read timeout.
    pub read_timeout: Option<String>,
    /// Upstream write timeout.
    pub write_timeout: Option<String>,
    /// `algorithm: least_time` settings.
    pub least_time: Option<LeastTimeFile>,
    /// Ramp a backend that becomes usable from ~0 to its weight over this.
    pub slow_start: Option<String>,
    /// Wait here when every usable backend is at `max_conns`.
    pub queue: Option<QueueFile>,
    /// `http1` (default), `h2` (TLS, ALPN h2 then http/1.1) or `h2c`.
    pub protocol: Option<String>,
    /// TLS toward the backends.
    pub tls: Option<UpstreamTlsFile>,
    /// Concurrent streams on one HTTP/2 backend connection.
    pub max_h2_streams: Option<usize>,
    /// Sticky sessions by cookie.
    pub sticky: Option<StickyFile>,
}

/// TLS toward an upstream's backends.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsFile {
    /// Server name sent and verified (default: the backend's hostname).
    pub sni: Option<String>,
    /// Check the chain and the hostname (default true).
    pub verify: Option<bool>,
    /// Extra trusted roots, PEM.
    pub ca: Option<String>,
    /// Client certificate chain for mutual TLS, PEM.
    pub cert: Option<String>,
    /// Its private key, PEM.
    pub key: Option<String>,
}

/// `least_time:` settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeastTimeFile {
    /// `header` (default), `last_byte` or `connect`.
    pub metric: Option<String>,
    /// Time constant of the moving average (default 10s).
    pub decay: Option<String>,
}

/// One backend entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendFile {
    /// `IP:port` or `hostname:port` (or `srv`).
    pub address: Option<String>,
    /// A DNS SRV name: every target and port it lists is a backend.
    pub srv: Option<String>,
    /// Relative weight, >= 1.
    pub weight: Option<u32>,
    /// Used only while no primary backend is usable.
    #[serde(default)]
    pub backup: bool,
    /// Requests (tcp: sessions) in flight on this backend at most.
    pub max_conns: Option<u32>,
}

/// The queue for requests when every usable backend is at `max_conns`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueFile {
    /// Waiting requests at most.
    pub size: usize,
    /// Longest wait.
    pub timeout: Option<String>,
}

/// Per-client request rate limit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateFile {
    /// `client_ip` or `header:NAME`.
    pub key: Option<String>,
    /// Sustained rate.
    pub requests_per_second: f64,
    /// Requests allowed at once above the rate.
    pub burst: Option<u32>,
    /// `redis://HOST:PORT/DB`: one bucket per key shared by every bulb naming it.
    pub store: Option<String>,
    /// How long a request waits for the store before the local bucket decides.
    pub store_timeout: Option<String>,
}

/// Active health checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckFile {
    /// `tcp`, `http` or `grpc`.
    pub kind: String,
    /// grpc only: the service name asked about (default: the whole server).
    pub service: Option<String>,
    /// HTTP path.
    pub path: Option<String>,
    /// HTTP Host header.
    pub host: Option<String>,
    /// Accepted HTTP statuses.
    pub expect_status: Option<Vec<u16>>,
    /// Probe interval.
    pub interval: Option<String>,
    /// Probe timeout.
    pub timeout: Option<String>,
    /// Consecutive successes to mark a backend up.
    pub healthy_after: Option<u32>,
    /// Consecutive failures to mark it down.
    pub unhealthy_after: Option<u32>,
}

/// Passive failure counting, like nginx's `max_fails` / `fail_timeout`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassiveFile {
    /// Failures within `fail_timeout` that eject a backend.
    pub max_fails: Option<u32>,
    /// Window for counting, and how long an ejection lasts.
    pub fail_timeout: Option<String>,
}

/// Client-side limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Largest total size of request headers, in bytes.
    pub max_header_bytes: Option<usize>,
    /// How long an idle keep-alive client connection is kept.
    pub client_keepalive_timeout: Option<String>,
    /// Per-connection read buffer for client connections, in bytes.
    pub client_read_buffer_bytes: Option<usize>,
    /// Longest time from a request's first byte to the end of its head.
    pub client_header_timeout: Option<String>,
    /// Most client connections open at once (all listeners).
    pub max_client_connections: Option<usize>,
    /// Request bodies up to this size are read whole before a backend is chosen.
    pub request_buffer_bytes: Option<usize>,
    /// Longest wait for the next piece of a request body being buffered.
    pub client_body_timeout: Option<String>,
    /// Per-client request rate.
    pub rate: Option<RateFile>,
}

/// Top-level keys that Pingora's `ServerConf` reads.
pub const PINGORA_KEYS: &[&str] = &[
    "version",
    "client_bind_to_ipv4",
    "client_bind_to_ipv6",
    "ca_file",
    "daemon",
    "error_log",
    "upstream_debug_ssl_keylog",
    "pid_file",
    "upgrade_sock",
    "user",
    "group",
    "working_directory",
    "threads",
    "listener_tasks_per_fd",
    "work_stealing",
    "runtime_enable_alt_timer",
    "upstream_keepalive_pool_size",
    "upstream_connect_offload_threadpools",
    "upstream_connect_offload_thread_per_pool",
    "downstream_tls_offload_threadpools",
    "downstream_tls_offload_thread_per_pool",
    "grace_period_seconds",
    "graceful_shutdown_timeout_seconds",
    "max_retries",
    "upgrade_sock_connect_accept_max_retries",
    "max_blocking_threads",
    "blocking_threads_ttl_seconds",
    "fast_timeout_to_tokio_threshold_seconds",
    "runtime_metrics_poll_time_histogram",
    "runtime_metrics_poll_time_histogram_scale",
    "runtime_metrics_poll_time_histogram_resolution_micros",
    "runtime_metrics_poll_time_histogram_buckets",
    "daemon_wait_for_ready",
    "daemon_ready_timeout_seconds",
    "daemon_notify_timeout_seconds",
];

/// Top-level keys that are bulb's.
pub const BULB_KEYS: &[&str] = &[
    "resolvers",
    "tracing",
    "listeners",
    "admin",
    "access_log",
    "routes",
    "upstreams",
    "limits",
    "trusted_proxies",
];
