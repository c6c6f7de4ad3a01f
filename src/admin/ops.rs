//! Runtime operations through the admin API: drain, disable, enable and
//! re-weight a backend, with who may do it, and the state file that keeps
//! these overrides across restarts and upgrades.
//!
//! ```text
//! POST /upstreams/NAME/backends/ADDRESS/drain | disable | enable
//! PUT  /upstreams/NAME/backends/ADDRESS/weight   {"weight": N}
//! ```

use crate::pool::{AdminState, Pool};
use crate::runtime::Runtime;
use crate::state::Shared;
use http::StatusCode;
use log::{info, warn};
use std::net::{IpAddr, SocketAddr};

/// What a write asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Set the admin state.
    State(AdminState),
    /// Set the weight (1 to 10000).
    Weight(u32),
}

/// A parsed write: upstream, backend, operation.
pub struct Write<'a> {
    upstream: &'a str,
    backend: SocketAddr,
    op: Op,
}

/// Parse `method path body` as a write; `None` when the path is not one.
/// `Err` carries the status and message for a malformed write.
pub fn parse<'a>(
    method: &http::Method,
    path: &'a str,
    body: &[u8],
) -> Option<Result<Write<'a>, (StatusCode, String)>> {
    let rest = path.strip_prefix("/upstreams/")?;
    let (upstream, rest) = rest.split_once("/backends/")?;
    let (backend, action) = rest.rsplit_once('/')?;
    let bad = |m: String| Some(Err((StatusCode::BAD_REQUEST, m)));
    let Ok(backend) = backend.parse::<SocketAddr>() else {
        return bad(format!("`{backend}` is not IP:port"));
    };
    let op = match (method.as_str(), action) {
        ("POST", "drain") => Op::State(AdminState::Draining),
        ("POST", "disable") => Op::State(AdminState::Disabled),
        ("POST", "enable") => Op::State(AdminState::Active),
        ("PUT", "weight") => {
            let w = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("weight")?.as_u64());
            match w {
                Some(w @ 1..=10_000) => Op::Weight(w as u32),
                _ => return bad("body must be {\"weight\": N} with N from 1 to 10000".into()),
            }
        }
        _ => return Some(Err((StatusCode::NOT_FOUND, "no such operation".into()))),
    };
    Some(Ok(Write {
        upstream,
        backend,
        op,
    }))
}

/// Whether `peer` may write: with a token, only a request carrying it
/// (401 without, 403 wrong); without one, only on a loopback admin address.
pub fn authorize(
    token: Option<&str>,
    authorization: Option<&[u8]>,
    admin_addr: Option<SocketAddr>,
) -> Result<(), (StatusCode, &'static str)> {
    match token {
        Some(t) => match authorization.and_then(|a| a.strip_prefix(b"Bearer ")) {
            None => Err((
                StatusCode::UNAUTHORIZED,
                "Authorization: Bearer TOKEN required",
            )),
            Some(given) if given == t.as_bytes() => Ok(()),
            Some(_) => Err((StatusCode::FORBIDDEN, "wrong token")),
        },
        None if admin_addr.is_some_and(|a| a.ip().is_loopback()) => Ok(()),
        None => Err((
            StatusCode::FORBIDDEN,
            "writes need admin.token when the admin address is not loopback",
        )),
    }
}

/// Apply `w` to the running config; the status to answer with.
pub fn apply(shared: &Shared, w: &Write<'_>, peer: Option<IpAddr>) -> (StatusCode, String) {
    let rt = shared.runtime.load();
    let Some(pool) = rt.pool(w.upstream) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no upstream `{}`", w.upstream),
        );
    };
    let Some(b) = pool.member(w.backend) else {
        return (
            StatusCode::NOT_FOUND,
            format!("upstream `{}` has no backend {}", w.upstream, w.backend),
        );
    };
    match w.op {
        Op::State(s) => b.admin.set_state(s),
        Op::Weight(n) => {
            b.admin.set_weight((n != b.role.weight()).then_some(n));
            pool.reweigh();
        }
    }
    let who = peer.map_or("-".to_string(), |p| p.to_string());
    info!(
        "admin: {who} set upstream {} backend {} to {:?}",
        w.upstream, w.backend, w.op
    );
    if let Some(path) = &rt.config.admin_state_file {
        if let Err(e) = save(path, &rt) {
            warn!("admin: cannot write state file {path}: {e}");
        }
    }
    (StatusCode::OK, "ok\n".into())
}

/// The overrides in force, as the state file holds them:
/// `{"UPSTREAM": {"IP:port": {"admin_state": "draining", "weight": 3}}}`.
fn overrides(rt: &Runtime) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for p in &rt.pools {
        let mut m = serde_json::Map::new();
        for b in &p.members().all {
            let (state, weight) = (b.admin.state(), b.admin.weight());
            if state != AdminState::Active || weight.is_some() {
                m.insert(
                    b.addr_str.clone(),
                    serde_json::json!({"admin_state": state.name(), "weight": weight}),
                );
            }
        }
        if !m.is_empty() {
            out.insert(p.cfg.name.clone(), m.into());
        }
    }
    out.into()
}

/// Write the state file atomically (a temporary file, then rename).
fn save(path: &str, rt: &Runtime) -> std::io::Result<()> {
    let tmp = format!("{path}.tmp.{}", std::process::id());
    let mut text = serde_json::to_vec_pretty(&overrides(rt)).map_err(std::io::Error::other)?;
    text.push(b'\n');
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Apply the overrides of the state file at `path` to `rt` (at start). A
/// missing or unreadable file is logged and ignored.
pub fn load(path: &str, rt: &Runtime) {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            warn!("admin: cannot read state file {path} ({e}); starting without overrides");
            return;
        }
    };
    let Ok(serde_json::Value::Object(ups)) = serde_json::from_slice(&text) else {
        warn!("admin: state file {path} is not valid; starting without overrides");
        return;
    };
    for (name, backends) in ups {
        let (Some(pool), Some(backends)) = (rt.pool(&name), backends.as_object()) else {
            continue;
        };
        for (addr, o) in backends {
            apply_saved(pool, addr, o);
        }
    }
    info!("admin: overrides restored from {path}");
}

fn apply_saved(pool: &Pool, addr: &str, o: &serde_json::Value) {
    let Some(b) = addr.parse().ok().and_then(|a| pool.member(a)) else {
        return;
    };
    if let Some(s) = o["admin_state"].as_str().and_then(AdminState::parse) {
        b.admin.set_state(s);
    }
    if let Some(w) = o["weight"].as_u64().filter(|w| (1..=10_000).contains(w)) {
        b.admin.set_weight(Some(w as u32));
        pool.reweigh();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_parse_and_authorize() {
        let post = http::Method::POST;
        let put = http::Method::PUT;
        let w = parse(&post, "/upstreams/web/backends/127.0.0.1:80/drain", b"")
            .expect("a write")
            .expect("valid");
        assert_eq!((w.upstream, w.op), ("web", Op::State(AdminState::Draining)));
        let w = parse(
            &put,
            "/upstreams/web/backends/127.0.0.1:80/weight",
            br#"{"weight": 3}"#,
        )
        .expect("a write")
        .expect("valid");
        assert_eq!(w.op, Op::Weight(3));
        for body in [&b"{}"[..], b"{\"weight\": 0}", b"nope"] {
            let r =
                parse(&put, "/upstreams/web/backends/127.0.0.1:80/weight", body).expect("a write");
            assert!(matches!(r, Err((StatusCode::BAD_REQUEST, _))));
        }
        assert!(parse(&post, "/status", b"").is_none());
        let loopback = Some("127.0.0.1:9901".parse().unwrap());
        let public = Some("10.0.0.1:9901".parse().unwrap());
        assert!(authorize(None, None, loopback).is_ok());
        assert_eq!(
            authorize(None, None, public).map_err(|e| e.0),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            authorize(Some("s"), None, loopback).map_err(|e| e.0),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            authorize(Some("s"), Some(b"Bearer x"), loopback).map_err(|e| e.0),
            Err(StatusCode::FORBIDDEN)
        );
        assert!(authorize(Some("s"), Some(b"Bearer s"), public).is_ok());
    }
}
