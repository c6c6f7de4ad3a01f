//! File text → [`Config`]: deserialise, then check everything, collecting
//! every problem with the line and column it stands at.

mod acme;
pub use acme::valid_dns_name;
mod health;
mod limits;
mod listeners;
mod policies;
mod routes;
mod tracing;
mod transport;
mod upstreams;

use super::defaults;
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
    /// Each of `keys` under `p` that the file gives is an error: it applies
    /// only to `what`.
    fn only_for(&mut self, p: &str, keys: &[(&str, bool)], what: &str) {
        for (k, given) in keys {
            if *given {
                self.err(&format!("{p}.{k}"), format!("`{k}` applies only to {what}"));
            }
        }
    }

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
        let mut listeners = self.listeners(&file.listeners);
        self.accept_proxy(&file.listeners, &file.trusted_proxies);
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
        let (access_log, access_log_format) = self.access_log(&file.access_log);
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
        self.acme_domains(&mut listeners, &routes);
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
        let resolvers = self.resolvers(&file.resolvers);
        let tracing = file.tracing.as_ref().and_then(|t| self.tracing(t));
        Config {
            resolvers,
            tracing,
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
            access_log_format,
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
            s.threads = defaults::threads();
        }
        if !given("pid_file") {
            s.pid_file = defaults::PID_FILE.into();
        }
        if !given("upgrade_sock") {
            s.upgrade_sock = defaults::UPGRADE_SOCK.into();
        }
        if !given("work_stealing") {
            s.work_stealing = defaults::work_stealing(s.threads);
        }
        s.grace_period_seconds
            .get_or_insert(defaults::GRACE_PERIOD_SECONDS);
        s.graceful_shutdown_timeout_seconds
            .get_or_insert(defaults::GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn server(extra: &str) -> ServerConf {
        let text = format!(
            "{extra}listeners: [{{address: 127.0.0.1:1}}]\nupstreams:\n  web:\n    backends: [{{address: 127.0.0.1:2}}]\n"
        );
        parse(&text, "t.yaml").expect("valid").server
    }

    #[test]
    fn one_worker_runs_without_work_stealing_unless_asked() {
        assert!(!server("threads: 1\n").work_stealing);
        assert!(server("threads: 1\nwork_stealing: true\n").work_stealing);
        assert!(server("threads: 2\n").work_stealing);
        assert!(!server("threads: 2\nwork_stealing: false\n").work_stealing);
    }
}
