//! `NODES` mode: the environment of the `strm/nginx-balancer` container
//! (`NODES="web1:80 web2:80"`, optional `LISTEN`, `ADMIN`) turned into a
//! configuration with the same behaviour as that container's nginx.

use super::validate::{parse, split_host_port, ConfigError};
use super::Config;

/// Build the configuration for `NODES` mode.
pub fn from_env(
    nodes: &str,
    listen: Option<&str>,
    admin: Option<&str>,
) -> Result<Config, Vec<ConfigError>> {
    let err = |msg: String| {
        vec![ConfigError {
            file: "NODES".into(),
            pos: None,
            msg,
        }]
    };
    let list: Vec<&str> = nodes.split_whitespace().collect();
    if list.is_empty() {
        return Err(err(
            "NODES is empty: give space-separated host:port pairs".into()
        ));
    }
    let mut backends = String::new();
    for n in &list {
        if split_host_port(n).is_none() || n.contains(['"', '\\']) {
            return Err(err(format!("`{n}` is not host:port")));
        }
        backends.push_str(&format!("      - address: \"{n}\"\n"));
    }
    let listen = listen.unwrap_or("0.0.0.0:8080");
    if listen.contains(['"', '\\']) {
        return Err(err(format!("LISTEN `{listen}` is not IP:port")));
    }
    let admin = match admin {
        Some(a) if a.contains(['"', '\\']) => {
            return Err(err(format!("ADMIN `{a}` is not IP:port")))
        }
        Some(a) => format!("admin:\n  address: \"{a}\"\n"),
        None => String::new(),
    };
    let text = format!(
        "listeners:\n  - address: \"{listen}\"\n{admin}access_log: stdout\n\
         upstreams:\n  nodes:\n    algorithm: least_connections\n    backends:\n{backends}\
         \x20   discovery_interval: 5s\n\
         \x20   health_check: {{ kind: tcp, interval: 2s, timeout: 1s, healthy_after: 1, unhealthy_after: 2 }}\n\
         \x20   passive: {{ max_fails: 3, fail_timeout: 30s }}\n\
         \x20   retries: 2\n"
    );
    parse(&text, "NODES")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_least_conn_pool() {
        let c = from_env("web1:80 web2:80", None, None).expect("valid");
        assert_eq!(c.listeners[0].address.to_string(), "0.0.0.0:8080");
        assert_eq!(c.upstreams[0].backends.len(), 2);
        assert_eq!(c.upstreams[0].passive.map(|p| p.max_fails), Some(3));
    }

    #[test]
    fn rejects_bad_nodes() {
        assert!(from_env("", None, None).is_err());
        assert!(from_env("web1", None, None).is_err());
        assert!(from_env("web1:80", Some("nonsense"), None).is_err());
    }
}
