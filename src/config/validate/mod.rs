//! File text → [`Config`]: deserialise, then check everything, collecting
//! every problem with the line and column it stands at.

mod transport;

use super::file::*;
use super::locate::{Locator, Pos};
use super::model::*;
use pingora::server::configuration::ServerConf;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File name as given.
    pub file: String,
    /// Where in the file, when known.
    pub pos: Option<Pos>,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: {}", self.file, p.line, p.col, self.msg),
            None => write!(f, "{}: {}", self.file, self.msg),
        }
    }
}

/// Read and validate the file at `path`.
pub fn load_file(path: &str) -> Result<Config, Vec<ConfigError>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) => Err(vec![ConfigError {
            file: path.to_string(),
            pos: None,
            msg: format!("cannot read file: {e}"),
        }]),
    }
}

/// Validate `text`, naming it `source` in messages.
pub fn parse(text: &str, source: &str) -> Result<Config, Vec<ConfigError>> {
    let mut v = Validator {
        file: source.to_string(),
        loc: Locator::new(text),
        errors: Vec::new(),
    };
    // An empty file is an empty mapping, which then fails for want of listeners.
    let text = if text.trim().is_empty() { "{}" } else { text };
    let file: Option<FileConfig> = v.serde(serde_yaml::from_str(text));
    let server: Option<ServerConf> = v.serde(serde_yaml::from_str(text));
    let (Some(file), Some(server)) = (file, server) else {
        return Err(v.errors);
    };
    v.top_level_keys();
    let config = v.config(file, server);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        Err(v.errors)
    }
}

struct Validator {
    file: String,
    loc: Locator,
    errors: Vec<ConfigError>,
}

impl Validator {
    fn serde<T>(&mut self, r: Result<T, serde_yaml::Error>) -> Option<T> {
        match r {
            Ok(t) => Some(t),
            Err(e) => {
                let pos = e.location().map(|l| Pos {
                    line: l.line(),
                    col: l.column(),
                });
                let mut msg = e.to_string();
                // serde_yaml appends " at line L column C"; we print it in front.
                if let Some(i) = msg.find(" at line ") {
                    msg.truncate(i);
                }
                if !self.errors.iter().any(|x| x.msg == msg && x.pos == pos) {
                    self.errors.push(ConfigError {
                        file: self.file.clone(),
                        pos,
                        msg,
                    });
                }
                None
            }
        }
    }

    fn err_at(&mut self, pos: Option<Pos>, msg: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            pos,
            msg: msg.into(),
        });
    }

    /// An error about the value at `path` (or, failing that, the nearest
    /// enclosing part of the file).
    fn err(&mut self, path: &str, msg: impl Into<String>) {
        let pos = self.loc.nearest(path);
        self.err_at(pos, msg);
    }

    fn top_level_keys(&mut self) {
        let unknown: Vec<String> = self
            .loc
            .top_keys()
            .iter()
            .filter(|k| !PINGORA_KEYS.contains(&k.as_str()) && !BULB_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            let pos = self.loc.key(&k);
            self.err_at(
                pos,
                format!(
                    "unknown top-level key `{k}` (neither a bulb section nor a Pingora server key)"
                ),
            );
        }
    }

    fn duration(&mut self, path: &str, v: &Option<String>, default: Duration) -> Duration {
        match v {
            None => default,
            Some(s) => match parse_duration(s) {
                Ok(d) if d.is_zero() => {
                    self.err(path, format!("`{s}` must be greater than zero"));
                    default
                }
                Ok(d) => d,
                Err(e) => {
                    self.err(path, e.to_string());
                    default
                }
            },
        }
    }

    fn socket_addr(&mut self, path: &str, s: &str) -> Option<SocketAddr> {
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(path, format!("`{s}` is not an IP:port address"));
                None
            }
        }
    }

    fn config(&mut self, file: FileConfig, server: ServerConf) -> Config {
        let server = self.server(server);
        let listeners = self.listeners(&file.listeners);
        let admin = file.admin.as_ref().and_then(|a| match &a.address {
            Some(addr) => self.socket_addr("admin.address", addr),
            None => Some(SocketAddr::from(([127, 0, 0, 1], 9901))),
        });
        if let Some(a) = admin {
            if listeners.iter().any(|l| l.address == a) {
                self.err(
                    "admin.address",
                    format!("admin address {a} is also a proxy listener"),
                );
            }
        }
        let access_log = match &file.access_log {
            None | Some(AccessLogFile::Flag(true)) => AccessLogSpec::Stdout,
            Some(AccessLogFile::Flag(false)) => AccessLogSpec::Off,
            Some(AccessLogFile::Target(s)) => match s.as_str() {
                "stdout" | "-" => AccessLogSpec::Stdout,
                "off" => AccessLogSpec::Off,
                "" => {
                    self.err(
                        "access_log",
                        "access_log must be stdout, off or a file path",
                    );
                    AccessLogSpec::Off
                }
                p => AccessLogSpec::File(p.to_string()),
            },
        };
        let names: Vec<String> = file.upstreams.keys().cloned().collect();
        let upstreams: Vec<UpstreamSpec> = file
            .upstreams
            .iter()
            .map(|(name, u)| self.upstream(name, u))
            .collect();
        if upstreams.is_empty() {
            let pos = self.loc.key("upstreams");
            self.err_at(pos, "at least one upstream is required under `upstreams`");
        }
        self.tcp_upstreams(&listeners, &upstreams);
        let routes = self.routes(&file.routes, &names, &listeners);
        let limits = self.limits(&file.limits);
        let trusted_proxies = file
            .trusted_proxies
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let parsed = Cidr::parse(c);
                if parsed.is_none() {
                    self.err(
                        &format!("trusted_proxies[{i}]"),
                        format!("`{c}` is not an IP network like 10.0.0.0/8"),
                    );
                }
                parsed
            })
            .collect();
        Config {
            source: self.file.clone(),
            server,
            listeners,
            admin,
            admin_token: file.admin.as_ref().and_then(|a| {
                let t = a.token.clone()?;
                if t.trim().is_empty() {
                    self.err("admin.token", "admin.token must not be empty");
                }
                Some(t)
            }),
            admin_state_file: file.admin.as_ref().and_then(|a| a.state_file.clone()),
            access_log,
            routes,
            upstreams,
            limits,
            trusted_proxies,
        }
    }

    /// Apply bulb's container-friendly defaults where the file is silent.
    fn server(&mut self, mut s: ServerConf) -> ServerConf {
        let given = |k: &str| self.loc.top_keys().iter().any(|t| t == k);
        if !given("threads") {
            s.threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        }
        if !given("pid_file") {
            s.pid_file = "/tmp/bulb.pid".into();
        }
        if !given("upgrade_sock") {
            s.upgrade_sock = "/tmp/bulb_upgrade.sock".into();
        }
        s.grace_period_seconds.get_or_insert(1);
        s.graceful_shutdown_timeout_seconds.get_or_insert(5);
        if s.threads == 0 {
            self.err("threads", "threads must be at least 1");
            s.threads = 1;
        }
        match s.validate() {
            Ok(s) => s,
            Err(e) => {
                self.err_at(None, format!("{e}"));
                ServerConf::default()
            }
        }
    }

    fn listeners(&mut self, ls: &[ListenerFile]) -> Vec<ListenerSpec> {
        if ls.is_empty() {
            let pos = self.loc.key("listeners");
            self.err_at(pos, "at least one entry under `listeners` is required");
        }
        let mut out: Vec<ListenerSpec> = Vec::new();
        for (i, l) in ls.iter().enumerate() {
            let path = format!("listeners[{i}].address");
            let Some(address) = self.socket_addr(&path, &l.address) else {
                continue;
            };
            if out.iter().any(|o| o.address == address) {
                self.err(&path, format!("listener {address} is given twice"));
            }
            let tls = l.tls.as_ref().map(|t| {
                let contents = crate::config::certs::check_listener(&t.cert, &t.key)
                    .unwrap_or_else(|e| {
                        self.err(&format!("listeners[{i}].tls.cert"), e.to_string());
                        0
                    });
                TlsFiles {
                    cert: t.cert.clone(),
                    key: t.key.clone(),
                    contents,
                }
            });
            let tcp = self.listener_protocol(i, l);
            if tcp.is_some() && tls.is_some() {
                self.err(
                    &format!("listeners[{i}].tls"),
                    "a tcp listener passes TLS through as bytes: remove `tls` (termination is for http listeners)",
                );
            }
            let h2c = l.h2c.unwrap_or(false);
            if h2c && (tcp.is_some() || tls.is_some()) {
                self.err(
                    &format!("listeners[{i}].h2c"),
                    if tcp.is_some() {
                        "h2c applies only to http listeners"
                    } else {
                        "a TLS listener already offers HTTP/2 through ALPN: remove `h2c` (it is for cleartext listeners)"
                    },
                );
            }
            out.push(ListenerSpec {
                address,
                tls,
                tcp,
                h2c,
            });
        }
        out
    }

    /// `protocol` and the keys that go with it: `upstream`,
    /// `proxy_protocol` and `idle_timeout` belong to tcp listeners only.
    fn listener_protocol(&mut self, i: usize, l: &ListenerFile) -> Option<TcpSpec> {
        let p = format!("listeners[{i}]");
        let tcp = match l.protocol.as_deref() {
            None | Some("http") => false,
            Some("tcp") => true,
            Some(other) => {
                self.err(
                    &format!("{p}.protocol"),
                    format!("unknown protocol `{other}`: use http or tcp"),
                );
                false
            }
        };
        if !tcp {
            for (key, given) in [
                ("upstream", l.upstream.is_some()),
                ("proxy_protocol", l.proxy_protocol.is_some()),
                ("idle_timeout", l.idle_timeout.is_some()),
            ] {
                if given {
                    self.err(
                        &format!("{p}.{key}"),
                        format!("`{key}` applies only to a listener with `protocol: tcp` (http listeners use routes)"),
                    );
                }
            }
            return None;
        }
        let Some(upstream) = l.upstream.clone() else {
            self.err(
                &p,
                "a tcp listener needs `upstream: NAME`, the pool for its connections",
            );
            return None;
        };
        let proxy_protocol = match l.proxy_protocol.as_deref() {
            None => None,
            Some("v1") => Some(ProxyProtocol::V1),
            Some("v2") => Some(ProxyProtocol::V2),
            Some(other) => {
                self.err(
                    &format!("{p}.proxy_protocol"),
                    format!("unknown PROXY protocol version `{other}`: use v1 or v2"),
                );
                None
            }
        };
        let idle_timeout = self.duration(
            &format!("{p}.idle_timeout"),
            &l.idle_timeout,
            DEFAULT_TCP_IDLE_TIMEOUT,
        );
        Some(TcpSpec {
            upstream,
            proxy_protocol,
            idle_timeout,
        })
    }

    /// Every tcp listener names a defined upstream whose hash key, if any,
    /// is the client address (a TCP session has no URI, header or cookie).
    fn tcp_upstreams(&mut self, listeners: &[ListenerSpec], upstreams: &[UpstreamSpec]) {
        for (i, l) in listeners.iter().enumerate() {
            let Some(t) = &l.tcp else { continue };
            let p = format!("listeners[{i}].upstream");
            match upstreams.iter().find(|u| u.name == t.upstream) {
                None => self.err(
                    &p,
                    format!("tcp listener names upstream `{}`, which is not defined", t.upstream),
                ),
                Some(u)
                    if u.algorithm == Algorithm::ConsistentHash
                        && u.hash_key != HashKey::ClientIp =>
                {
                    self.err(
                        &p,
                        format!(
                            "upstream `{}` hashes on something other than client_ip, which a tcp listener cannot provide",
                            u.name
                        ),
                    )
                }
                Some(u) => self.tcp_transport(&p, u),
            }
        }
    }

    fn routes(
        &mut self,
        rs: &[RouteFile],
        names: &[String],
        listeners: &[ListenerSpec],
    ) -> Vec<RouteSpec> {
        if rs.is_empty() {
            if listeners.iter().all(|l| l.tcp.is_some()) {
                return Vec::new(); // no HTTP listener: nothing to route
            }
            // Without routes, HTTP goes to the one upstream no tcp listener
            // takes (or the only upstream there is).
            let tcp_only = |n: &String| {
                listeners
                    .iter()
                    .any(|l| l.tcp.as_ref().is_some_and(|t| t.upstream == *n))
            };
            let http: Vec<usize> = (0..names.len()).filter(|&i| !tcp_only(&names[i])).collect();
            let upstream = match (names.len(), http.as_slice()) {
                (1, _) => 0,
                (_, [one]) => *one,
                _ => {
                    let pos = self.loc.key("upstreams");
                    self.err_at(
                        pos,
                        "`routes` are required when more than one upstream could take HTTP requests",
                    );
                    0
                }
            };
            return vec![RouteSpec {
                host: None,
                path_prefix: None,
                upstream,
            }];
        }
        let mut out = Vec::new();
        for (i, r) in rs.iter().enumerate() {
            let Some(upstream) = names.iter().position(|n| *n == r.upstream) else {
                self.err(
                    &format!("routes[{i}].upstream"),
                    format!(
                        "route names upstream `{}`, which is not defined",
                        r.upstream
                    ),
                );
                continue;
            };
            let host = r.host.as_ref().and_then(|h| {
                let h = h.to_ascii_lowercase();
                let bad = h.is_empty()
                    || h.contains(|c: char| !(c.is_ascii_alphanumeric() || "-._*".contains(c)))
                    || h[1..].contains('*');
                if bad || (h.starts_with('*') && !h.starts_with("*.")) {
                    self.err(
                        &format!("routes[{i}].host"),
                        format!("invalid host `{h}`: use an exact name or `*.suffix`"),
                    );
                    return None;
                }
                Some(match h.strip_prefix('*') {
                    Some(suffix) => HostMatch::Suffix(suffix.to_string()),
                    None => HostMatch::Exact(h),
                })
            });
            if let Some(p) = &r.path_prefix {
                if !p.starts_with('/') {
                    self.err(
                        &format!("routes[{i}].path_prefix"),
                        "path_prefix must start with `/`",
                    );
                }
            }
            out.push(RouteSpec {
                host,
                path_prefix: r.path_prefix.clone(),
                upstream,
            });
        }
        out
    }

    fn upstream(&mut self, name: &str, u: &UpstreamFile) -> UpstreamSpec {
        let p = format!("upstreams.{name}");
        let algorithm = match u.algorithm.as_deref() {
            None | Some("round_robin") => Algorithm::RoundRobin,
            Some("random") => Algorithm::Random,
            Some("least_connections") | Some("least_conn") => Algorithm::LeastConnections,
            Some("consistent_hash") => Algorithm::ConsistentHash,
            Some("least_time") => Algorithm::LeastTime,
            Some(other) => {
                self.err(
                    &format!("{p}.algorithm"),
                    format!("unknown algorithm `{other}`: use round_robin, random, least_connections, least_time or consistent_hash"),
                );
                Algorithm::RoundRobin
            }
        };
        let hash_key = match (&u.hash_key, algorithm) {
            (None, _) => HashKey::ClientIp,
            (Some(k), Algorithm::ConsistentHash) => self.hash_key(&format!("{p}.hash_key"), k),
            (Some(_), _) => {
                self.err(
                    &format!("{p}.hash_key"),
                    "hash_key applies only to algorithm: consistent_hash",
                );
                HashKey::ClientIp
            }
        };
        if u.backends.is_empty() {
            let pos = self.loc.key(&p);
            self.err_at(pos, format!("upstream `{name}` has no backends"));
        }
        let mut backends: Vec<BackendSpec> = Vec::new();
        for (i, b) in u.backends.iter().enumerate() {
            if let Some(spec) = self.backend(&format!("{p}.backends[{i}]"), b) {
                if backends
                    .iter()
                    .any(|o| o.host == spec.host && o.port == spec.port)
                {
                    self.err(
                        &format!("{p}.backends[{i}].address"),
                        format!("backend `{}` is listed twice", b.address),
                    );
                }
                backends.push(spec);
            }
        }
        if !backends.is_empty() && backends.iter().all(|b| b.backup) {
            let pos = self.loc.key(&format!("{p}.backends"));
            self.err_at(pos, format!("upstream `{name}` has only backup backends"));
        }
        let health_check = u
            .health_check
            .as_ref()
            .map(|h| self.health(&format!("{p}.health_check"), h));
        let passive = u.passive.as_ref().map(|ps| {
            let max_fails = ps.max_fails.unwrap_or(1);
            if max_fails == 0 {
                self.err(
                    &format!("{p}.passive.max_fails"),
                    "max_fails must be at least 1 (omit `passive` to disable)",
                );
            }
            PassiveSpec {
                max_fails: max_fails.max(1),
                fail_timeout: self.duration(
                    &format!("{p}.passive.fail_timeout"),
                    &ps.fail_timeout,
                    Duration::from_secs(10),
                ),
            }
        });
        let transport = self.transport(&p, u, &backends);
        let spec = UpstreamSpec {
            name: name.to_string(),
            algorithm,
            hash_key,
            backends,
            discovery_interval: self.duration(
                &format!("{p}.discovery_interval"),
                &u.discovery_interval,
                Duration::from_secs(5),
            ),
            health_check,
            passive,
            retries: u.retries.unwrap_or(1),
            connect_timeout: self.duration(
                &format!("{p}.connect_timeout"),
                &u.connect_timeout,
                Duration::from_secs(2),
            ),
            read_timeout: self.duration(
                &format!("{p}.read_timeout"),
                &u.read_timeout,
                Duration::from_secs(30),
            ),
            write_timeout: self.duration(
                &format!("{p}.write_timeout"),
                &u.write_timeout,
                Duration::from_secs(30),
            ),
            least_time: self.least_time(&p, u, algorithm),
            slow_start: self.slow_start(&p, u, algorithm),
            queue: u.queue.as_ref().map(|q| QueueSpec {
                size: q.size,
                timeout: self.duration(
                    &format!("{p}.queue.timeout"),
                    &q.timeout,
                    Duration::from_secs(5),
                ),
            }),
            transport,
        };
        self.transport_and_health(&p, &spec);
        spec
    }

    fn least_time(&mut self, p: &str, u: &UpstreamFile, algorithm: Algorithm) -> LeastTimeSpec {
        let mut out = LeastTimeSpec::default();
        let Some(lt) = &u.least_time else {
            return out;
        };
        if algorithm != Algorithm::LeastTime {
            self.err(
                &format!("{p}.least_time"),
                "least_time settings apply only to algorithm: least_time",
            );
        }
        out.metric = match lt.metric.as_deref() {
            None | Some("header") => TimeMetric::Header,
            Some("last_byte") => TimeMetric::LastByte,
            Some("connect") => TimeMetric::Connect,
            Some(other) => {
                self.err(
                    &format!("{p}.least_time.metric"),
                    format!(
                        "unknown least_time metric `{other}`: use header, last_byte or connect"
                    ),
                );
                TimeMetric::Header
            }
        };
        out.decay = self.duration(&format!("{p}.least_time.decay"), &lt.decay, out.decay);
        out
    }

    fn slow_start(&mut self, p: &str, u: &UpstreamFile, algorithm: Algorithm) -> Option<Duration> {
        let d = u.slow_start.as_ref()?;
        let path = format!("{p}.slow_start");
        if algorithm == Algorithm::ConsistentHash {
            self.err(
                &path,
                "slow_start cannot apply to consistent_hash: a key maps to one backend, there is no share to ramp",
            );
            return None;
        }
        Some(self.duration(&path, &Some(d.clone()), Duration::from_secs(30)))
    }

    fn rate(&mut self, r: &RateFile) -> Option<RateSpec> {
        let key = match r.key.as_deref() {
            None | Some("client_ip") => RateKey::ClientIp,
            Some(k) => match k
                .strip_prefix("header:")
                .and_then(|n| http::HeaderName::from_bytes(n.as_bytes()).ok())
            {
                Some(n) => RateKey::Header(n),
                None => {
                    self.err(
                        "limits.rate.key",
                        format!("invalid rate key `{k}`: use client_ip or header:NAME"),
                    );
                    return None;
                }
            },
        };
        if !(r.requests_per_second > 0.0 && r.requests_per_second <= 1e6) {
            self.err(
                "limits.rate.requests_per_second",
                "requests_per_second must be more than 0 (and at most 1000000)",
            );
            return None;
        }
        let burst = r
            .burst
            .unwrap_or(r.requests_per_second.ceil() as u32)
            .max(1);
        if burst > MAX_RATE_BURST {
            self.err(
                "limits.rate.burst",
                format!("burst must be 1 to {MAX_RATE_BURST}"),
            );
            return None;
        }
        Some(RateSpec {
            key,
            per_second: r.requests_per_second,
            burst,
        })
    }

    fn hash_key(&mut self, path: &str, k: &str) -> HashKey {
        let key = match k.split_once(':') {
            None if k == "client_ip" => Some(HashKey::ClientIp),
            None if k == "uri" => Some(HashKey::Uri),
            None if k == "path" => Some(HashKey::Path),
            Some(("header", n)) if valid_token(n) => http::HeaderName::from_bytes(n.as_bytes())
                .ok()
                .map(HashKey::Header),
            Some(("cookie", n)) if valid_token(n) => Some(HashKey::Cookie(n.to_string())),
            _ => None,
        };
        key.unwrap_or_else(|| {
            self.err(
                path,
                format!(
                    "invalid hash_key `{k}`: use client_ip, uri, path, header:NAME or cookie:NAME"
                ),
            );
            HashKey::ClientIp
        })
    }

    fn backend(&mut self, p: &str, b: &BackendFile) -> Option<BackendSpec> {
        let weight = b.weight.unwrap_or(1);
        if !(1..=10_000).contains(&weight) {
            self.err(
                &format!("{p}.weight"),
                format!("weight {weight} is out of range: must be 1 to 10000"),
            );
        }
        let apath = format!("{p}.address");
        let (host, port) = match split_host_port(&b.address) {
            Some(hp) => hp,
            None => {
                self.err(&apath, format!("`{}` is not host:port", b.address));
                return None;
            }
        };
        let ip = host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port));
        if ip.is_none() && !valid_hostname(&host) {
            self.err(
                &apath,
                format!("`{host}` is neither an IP address nor a valid hostname"),
            );
            return None;
        }
        Some(BackendSpec {
            host,
            port,
            ip,
            weight: weight.clamp(1, 10_000),
            backup: b.backup,
            max_conns: b.max_conns.filter(|&n| {
                if n == 0 {
                    self.err(
                        &format!("{p}.max_conns"),
                        "max_conns must be at least 1 (omit it for no limit)",
                    );
                }
                n > 0
            }),
        })
    }

    fn health(&mut self, p: &str, h: &HealthCheckFile) -> HealthCheckSpec {
        if h.service.is_some() && h.kind != "grpc" {
            self.err(
                &format!("{p}.service"),
                "`service` applies only to kind: grpc",
            );
        }
        let kind = match h.kind.as_str() {
            "tcp" | "grpc" => {
                for (k, given) in [
                    ("path", h.path.is_some()),
                    ("host", h.host.is_some()),
                    ("expect_status", h.expect_status.is_some()),
                ] {
                    if given {
                        self.err(
                            &format!("{p}.{k}"),
                            format!("`{k}` applies only to kind: http"),
                        );
                    }
                }
                if h.kind == "grpc" {
                    ProbeKind::Grpc {
                        service: h.service.clone().unwrap_or_default(),
                    }
                } else {
                    ProbeKind::Tcp
                }
            }
            "http" => {
                let path = h.path.clone().unwrap_or_else(|| "/".into());
                if !path.starts_with('/') {
                    self.err(&format!("{p}.path"), "path must start with `/`");
                }
                let expect_status = h.expect_status.clone().unwrap_or_else(|| vec![200]);
                if expect_status.is_empty()
                    || expect_status.iter().any(|s| !(100..=599).contains(s))
                {
                    self.err(
                        &format!("{p}.expect_status"),
                        "expect_status must list HTTP statuses (100-599)",
                    );
                }
                ProbeKind::Http {
                    path,
                    host: h.host.clone().unwrap_or_else(|| "localhost".into()),
                    expect_status,
                }
            }
            other => {
                self.err(
                    &format!("{p}.kind"),
                    format!("unknown health check kind `{other}`: use tcp, http or grpc"),
                );
                ProbeKind::Tcp
            }
        };
        let mut count = |k: &str, v: Option<u32>, d: u32| {
            let n = v.unwrap_or(d);
            if n == 0 {
                self.err(&format!("{p}.{k}"), format!("{k} must be at least 1"));
            }
            n.max(1)
        };
        let healthy_after = count("healthy_after", h.healthy_after, 2);
        let unhealthy_after = count("unhealthy_after", h.unhealthy_after, 3);
        HealthCheckSpec {
            kind,
            interval: self.duration(
                &format!("{p}.interval"),
                &h.interval,
                Duration::from_secs(2),
            ),
            timeout: self.duration(&format!("{p}.timeout"), &h.timeout, Duration::from_secs(1)),
            healthy_after,
            unhealthy_after,
        }
    }

    fn limits(&mut self, l: &Option<LimitsFile>) -> LimitsSpec {
        let mut out = LimitsSpec::default();
        if let Some(l) = l {
            if let Some(n) = l.max_header_bytes {
                if n < 1024 {
                    self.err(
                        "limits.max_header_bytes",
                        "max_header_bytes must be at least 1024",
                    );
                }
                out.max_header_bytes = n.max(1024);
            }
            if let Some(n) = l.client_read_buffer_bytes {
                if n != 0 && !(1024..=1024 * 1024).contains(&n) {
                    self.err(
                        "limits.client_read_buffer_bytes",
                        "client_read_buffer_bytes must be 0 (unbuffered) or 1024 to 1048576",
                    );
                }
                out.client_read_buffer_bytes = if n == 0 {
                    0
                } else {
                    n.clamp(1024, 1024 * 1024)
                };
            }
            out.client_header_timeout = self.duration(
                "limits.client_header_timeout",
                &l.client_header_timeout,
                out.client_header_timeout,
            );
            if let Some(n) = l.max_client_connections {
                if n == 0 {
                    self.err(
                        "limits.max_client_connections",
                        "max_client_connections must be at least 1 (omit it for no limit)",
                    );
                }
                out.max_client_connections = Some(n.max(1));
            }
            out.client_keepalive_timeout = self.duration(
                "limits.client_keepalive_timeout",
                &l.client_keepalive_timeout,
                out.client_keepalive_timeout,
            );
            if let Some(n) = l.request_buffer_bytes {
                let max = MAX_REQUEST_BUFFER;
                if n > max {
                    self.err(
                        "limits.request_buffer_bytes",
                        format!("request_buffer_bytes must be 0 to {max} (Pingora's request retry buffer)"),
                    );
                }
                out.request_buffer_bytes = n.min(max);
            }
            out.rate = l.rate.as_ref().and_then(|r| self.rate(r));
            out.client_body_timeout = self.duration(
                "limits.client_body_timeout",
                &l.client_body_timeout,
                out.client_body_timeout,
            );
        }
        out
    }
}

/// Split `host:port`, `[v6]:port` or `v6lit` forms. `None` when malformed.
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        s.rsplit_once(':')?
    };
    if host.is_empty() || host.contains(':') && !s.starts_with('[') {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some((host.to_string(), port))
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!#$%&'*+^`|~".contains(&b))
}
