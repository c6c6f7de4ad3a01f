//! Upstreams: algorithm, hash key, least time, slow start, and each backend.

use super::*;

impl Validator {
    pub(super) fn upstream(&mut self, name: &str, u: &UpstreamFile) -> UpstreamSpec {
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
                    let key = if b.address.is_some() {
                        "address"
                    } else {
                        "srv"
                    };
                    let text = b.address.as_deref().or(b.srv.as_deref()).unwrap_or("");
                    self.err(
                        &format!("{p}.backends[{i}].{key}"),
                        format!("backend `{text}` is listed twice"),
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
            let max_fails = ps.max_fails.unwrap_or(defaults::MAX_FAILS);
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
                    defaults::FAIL_TIMEOUT,
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
                defaults::DISCOVERY_INTERVAL,
            ),
            health_check,
            passive,
            retries: u.retries.unwrap_or(defaults::RETRIES),
            connect_timeout: self.duration(
                &format!("{p}.connect_timeout"),
                &u.connect_timeout,
                defaults::CONNECT_TIMEOUT,
            ),
            read_timeout: self.duration(
                &format!("{p}.read_timeout"),
                &u.read_timeout,
                defaults::READ_TIMEOUT,
            ),
            write_timeout: self.duration(
                &format!("{p}.write_timeout"),
                &u.write_timeout,
                defaults::WRITE_TIMEOUT,
            ),
            least_time: self.least_time(&p, u, algorithm),
            slow_start: self.slow_start(&p, u, algorithm),
            queue: u.queue.as_ref().map(|q| QueueSpec {
                size: q.size,
                timeout: self.duration(
                    &format!("{p}.queue.timeout"),
                    &q.timeout,
                    defaults::QUEUE_TIMEOUT,
                ),
            }),
            transport,
            sticky: self.sticky(&p, u, algorithm),
        };
        self.transport_and_health(&p, &spec);
        spec
    }

    pub(super) fn least_time(
        &mut self,
        p: &str,
        u: &UpstreamFile,
        algorithm: Algorithm,
    ) -> LeastTimeSpec {
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

    pub(super) fn slow_start(
        &mut self,
        p: &str,
        u: &UpstreamFile,
        algorithm: Algorithm,
    ) -> Option<Duration> {
        let d = u.slow_start.as_ref()?;
        let path = format!("{p}.slow_start");
        if algorithm == Algorithm::ConsistentHash {
            self.err(
                &path,
                "slow_start cannot apply to consistent_hash: a key maps to one backend, there is no share to ramp",
            );
            return None;
        }
        Some(self.duration(&path, &Some(d.clone()), defaults::SLOW_START))
    }

    pub(super) fn hash_key(&mut self, path: &str, k: &str) -> HashKey {
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

    pub(super) fn backend(&mut self, p: &str, b: &BackendFile) -> Option<BackendSpec> {
        let weight = b.weight.unwrap_or(defaults::WEIGHT);
        if !(1..=10_000).contains(&weight) {
            self.err(
                &format!("{p}.weight"),
                format!("weight {weight} is out of range: must be 1 to 10000"),
            );
        }
        let apath = format!("{p}.address");
        let (address, srv) = match (&b.address, &b.srv) {
            (Some(a), None) => (a, false),
            (None, Some(name)) => (name, true),
            _ => {
                self.err(p, "a backend needs exactly one of `address` and `srv`");
                return None;
            }
        };
        if srv {
            let spath = format!("{p}.srv");
            if !valid_hostname(address.trim_end_matches('.')) {
                self.err(&spath, format!("`{address}` is not a DNS name"));
                return None;
            }
            let given = [("weight", b.weight.is_some()), ("backup", b.backup)];
            self.only_for(
                p,
                &given,
                "`address` entries (an SRV record gives weight and priority)",
            );
            return Some(BackendSpec {
                host: address.clone(),
                port: 0,
                ip: None,
                weight: 1,
                backup: false,
                max_conns: self.max_conns(p, b.max_conns),
                srv: true,
            });
        }
        let (host, port) = match split_host_port(address) {
            Some(hp) => hp,
            None => {
                self.err(&apath, format!("`{address}` is not host:port"));
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
            max_conns: self.max_conns(p, b.max_conns),
            srv: false,
        })
    }

    fn max_conns(&mut self, p: &str, n: Option<u32>) -> Option<u32> {
        n.filter(|&n| {
            if n == 0 {
                self.err(
                    &format!("{p}.max_conns"),
                    "max_conns must be at least 1 (omit it for no limit)",
                );
            }
            n > 0
        })
    }

    /// `resolvers`: `IP` or `IP:PORT` (port 53 when omitted).
    pub(super) fn resolvers(&mut self, rs: &[String]) -> Vec<SocketAddr> {
        rs.iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let parsed = r
                    .parse::<SocketAddr>()
                    .ok()
                    .or_else(|| r.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)));
                if parsed.is_none() {
                    self.err(
                        &format!("resolvers[{i}]"),
                        format!("`{r}` is not an IP address or IP:PORT of a DNS server"),
                    );
                }
                parsed
            })
            .collect()
    }
}
