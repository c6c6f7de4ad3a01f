//! `bulb -t -c NEW --diff OLD`: what a reload from OLD to NEW changes —
//! listeners (which need a socket hand-over), upstreams, backends, weights —
//! and, for each `consistent_hash` upstream, the share of keys that move to
//! another backend (from a sample of keys run through both Ketama rings).

use crate::config::{Algorithm, BackendSpec, Config, UpstreamSpec};
use crate::pool::selection::Selector;
use crate::pool::{BackendState, Start, Target};
use serde_json::{json, Value};
use std::sync::Arc;

/// Keys sampled to estimate how many move.
pub const SAMPLE_KEYS: usize = 100_000;

/// The changes from `old` to `new`, as JSON (see the README for the shape).
pub fn diff(old: &Config, new: &Config) -> Value {
    let show = |l: &crate::config::ListenerSpec| {
        let proto = if l.tcp.is_some() { "tcp" } else { "http" };
        format!("{} ({proto})", l.address)
    };
    let added: Vec<String> = new
        .listeners
        .iter()
        .filter(|n| !old.listeners.iter().any(|o| o.socket() == n.socket()))
        .map(show)
        .collect();
    let removed: Vec<String> = old
        .listeners
        .iter()
        .filter(|o| !new.listeners.iter().any(|n| n.socket() == o.socket()))
        .map(show)
        .collect();
    let hand_over_for = old.fixed_at_start_changes(new);
    let hand_over = !hand_over_for.is_empty();
    let names = |c: &Config| {
        c.upstreams
            .iter()
            .map(|u| u.name.clone())
            .collect::<Vec<_>>()
    };
    let (old_names, new_names) = (names(old), names(new));
    let mut changed = serde_json::Map::new();
    for n in &new.upstreams {
        if let Some(o) = old.upstreams.iter().find(|o| o.name == n.name) {
            if let Some(c) = upstream(o, n) {
                changed.insert(n.name.clone(), c);
            }
        }
    }
    json!({
        "listeners": {"added": added, "removed": removed, "hand_over": hand_over, "hand_over_for": hand_over_for},
        "certificates": certificates(old, new),
        "upstreams": {
            "added": new_names.iter().filter(|n| !old_names.contains(n)).collect::<Vec<_>>(),
            "removed": old_names.iter().filter(|n| !new_names.contains(n)).collect::<Vec<_>>(),
            "changed": changed,
        }
    })
}

/// Certificate files of TLS listeners present in both that are new, renewed
/// (same path, other contents) or gone: a reload loads them in place.
fn certificates(old: &Config, new: &Config) -> Vec<Value> {
    let mut out = Vec::new();
    for n in &new.listeners {
        let Some(o) = old.listeners.iter().find(|o| o.socket() == n.socket()) else {
            continue;
        };
        let (Some(ot), Some(nt)) = (&o.tls, &n.tls) else {
            continue;
        };
        let listener = n.address.to_string();
        for c in &nt.certs {
            let change = match ot.certs.iter().find(|x| x.cert == c.cert) {
                None => "added",
                Some(x) if x.contents != c.contents || x.key != c.key => "renewed",
                Some(_) => continue,
            };
            out.push(json!({"listener": listener, "cert": c.cert, "change": change}));
        }
        for c in ot
            .certs
            .iter()
            .filter(|x| !nt.certs.iter().any(|c| c.cert == x.cert))
        {
            out.push(json!({"listener": listener, "cert": c.cert, "change": "removed"}));
        }
    }
    out
}

fn addr(b: &BackendSpec) -> String {
    format!("{}:{}", b.host, b.port)
}

fn upstream(o: &UpstreamSpec, n: &UpstreamSpec) -> Option<Value> {
    let has = |list: &[BackendSpec], b: &BackendSpec| list.iter().any(|x| addr(x) == addr(b));
    let added: Vec<String> = n
        .backends
        .iter()
        .filter(|b| !has(&o.backends, b))
        .map(addr)
        .collect();
    let removed: Vec<String> = o
        .backends
        .iter()
        .filter(|b| !has(&n.backends, b))
        .map(addr)
        .collect();
    let reweighted: Vec<Value> = n
        .backends
        .iter()
        .filter_map(|b| {
            let before = o.backends.iter().find(|x| addr(x) == addr(b))?;
            (before.weight != b.weight)
                .then(|| json!({"address": addr(b), "from": before.weight, "to": b.weight}))
        })
        .collect();
    let algorithm = (o.algorithm != n.algorithm)
        .then(|| json!({"from": o.algorithm.name(), "to": n.algorithm.name()}));
    let moved = (n.algorithm == Algorithm::ConsistentHash
        && o.algorithm == Algorithm::ConsistentHash)
        .then(|| keys_moved(o, n))
        .flatten();
    if added.is_empty() && removed.is_empty() && reweighted.is_empty() && algorithm.is_none() {
        return None;
    }
    let mut v = json!({
        "backends_added": added,
        "backends_removed": removed,
        "reweighted": reweighted,
    });
    if let Some(a) = algorithm {
        v["algorithm"] = a;
    }
    if let Some(m) = moved {
        v["keys_moved_percent"] = json!((m * 1000.0).round() / 10.0);
        v["keys_moved_method"] = json!(format!(
            "sample of {SAMPLE_KEYS} keys through both Ketama rings"
        ));
    }
    Some(v)
}

/// The share of sampled keys whose backend differs between the two rings;
/// `None` when a backend is a hostname (its addresses are not known here).
fn keys_moved(o: &UpstreamSpec, n: &UpstreamSpec) -> Option<f64> {
    let ring = |u: &UpstreamSpec| -> Option<Selector> {
        let states: Option<Vec<Arc<BackendState>>> = u
            .backends
            .iter()
            .filter(|b| !b.backup)
            .map(|b| {
                let t = Target {
                    weight: b.weight,
                    ..Target::new(b.ip?)
                };
                Some(Arc::new(BackendState::new(t, Start::Usable)))
            })
            .collect();
        Some(Selector::build(Algorithm::ConsistentHash, &states?))
    };
    let (a, b) = (ring(o)?, ring(n)?);
    let limit = 1;
    let moved = (0..SAMPLE_KEYS)
        .filter(|i| {
            let key = format!("key-{i}");
            let pa = a.pick(key.as_bytes(), limit, |_| true).map(|s| s.addr);
            let pb = b.pick(key.as_bytes(), limit, |_| true).map(|s| s.addr);
            pa != pb
        })
        .count();
    Some(moved as f64 / SAMPLE_KEYS as f64)
}

/// The diff as text for a person.
pub fn text(d: &Value) -> String {
    let mut s = String::new();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let l = &d["listeners"];
    for a in list(&l["added"]) {
        s += &format!("listener + {a}\n");
    }
    for r in list(&l["removed"]) {
        s += &format!("listener - {r}\n");
    }
    if l["hand_over"] == true {
        s += &format!(
            "{} change: the reload hands the sockets over to a new bulb process\n",
            list(&l["hand_over_for"]).join(", ")
        );
    }
    for c in d["certificates"].as_array().into_iter().flatten() {
        s += &format!(
            "certificate {} {} on {}\n",
            c["change"].as_str().unwrap_or(""),
            c["cert"].as_str().unwrap_or(""),
            c["listener"].as_str().unwrap_or("")
        );
    }
    let u = &d["upstreams"];
    for a in list(&u["added"]) {
        s += &format!("upstream + {a}\n");
    }
    for r in list(&u["removed"]) {
        s += &format!("upstream - {r}\n");
    }
    if let Some(changed) = u["changed"].as_object() {
        for (name, c) in changed {
            s += &format!("upstream ~ {name}\n");
            for a in list(&c["backends_added"]) {
                s += &format!("  backend + {a}\n");
            }
            for r in list(&c["backends_removed"]) {
                s += &format!("  backend - {r}\n");
            }
            for w in c["reweighted"].as_array().into_iter().flatten() {
                s += &format!(
                    "  backend ~ {} weight {} -> {}\n",
                    w["address"].as_str().unwrap_or("?"),
                    w["from"],
                    w["to"]
                );
            }
            if let Some(a) = c.get("algorithm") {
                s += &format!("  algorithm {} -> {}\n", a["from"], a["to"]);
            }
            if let Some(p) = c.get("keys_moved_percent") {
                s += &format!(
                    "  consistent_hash: {p} % of keys move ({})\n",
                    c["keys_moved_method"].as_str().unwrap_or("")
                );
            }
        }
    }
    if s.is_empty() {
        s += "no listener, upstream or backend changes\n";
    }
    s
}
