//! `request_headers` and `response_headers`: remove, then set, then add,
//! values expanded with the request's [`Vars`]. Rules never touch the
//! headers bulb manages (hop-by-hop and framing: `-t` refuses them).

use super::Vars;
use crate::config::HeaderRules;
use http::header::{HeaderName, HeaderValue};
use pingora_error::Result;
use pingora_http::{RequestHeader, ResponseHeader};

/// A message head the rules edit.
pub trait Head {
    /// Drop every `name`.
    fn remove(&mut self, name: &HeaderName);
    /// Replace every `name` by one with `value`.
    fn set(&mut self, name: &HeaderName, value: HeaderValue) -> Result<()>;
    /// Add `name: value` beside any already there.
    fn add(&mut self, name: &HeaderName, value: HeaderValue) -> Result<()>;
}

macro_rules! head {
    ($t:ty) => {
        impl Head for $t {
            fn remove(&mut self, name: &HeaderName) {
                self.remove_header(name);
            }
            fn set(&mut self, name: &HeaderName, value: HeaderValue) -> Result<()> {
                self.insert_header(name.clone(), value)
            }
            fn add(&mut self, name: &HeaderName, value: HeaderValue) -> Result<()> {
                self.append_header(name.clone(), value).map(|_| ())
            }
        }
    };
}
head!(RequestHeader);
head!(ResponseHeader);

/// Apply `rules` to `head`. A value that expands to something a header
/// cannot hold is skipped.
pub fn apply(rules: &HeaderRules, head: &mut impl Head, vars: &Vars<'_>) -> Result<()> {
    for name in &rules.remove {
        head.remove(name);
    }
    for (name, value) in &rules.set {
        if let Some(v) = vars.expand(value) {
            head.set(name, v)?;
        }
    }
    for (name, value) in &rules.add {
        if let Some(v) = vars.expand(value) {
            head.add(name, v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Template;

    #[test]
    fn remove_then_set_then_add() {
        let n = |s: &str| HeaderName::from_bytes(s.as_bytes()).unwrap();
        let t = |s: &str| Template::parse(s).unwrap();
        let rules = HeaderRules {
            remove: vec![n("x-debug")],
            set: vec![(n("x-env"), t("prod")), (n("x-host"), t("$host"))],
            add: vec![(n("x-via"), t("bulb"))],
        };
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in [
            ("X-Debug", "1"),
            ("X-Env", "dev"),
            ("X-Env", "qa"),
            ("X-Via", "edge"),
        ] {
            req.append_header(k, v).unwrap();
        }
        let vars = Vars {
            client_ip: None,
            host: b"A.example:80",
            tls: false,
            request_uri: "/",
            request_id: b"id",
        };
        apply(&rules, &mut req, &vars).unwrap();
        let all = |k: &str| -> Vec<&str> {
            req.headers
                .get_all(k)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert!(all("x-debug").is_empty());
        assert_eq!(all("x-env"), ["prod"]);
        assert_eq!(all("x-host"), ["a.example"]);
        assert_eq!(all("x-via"), ["edge", "bulb"]);
    }
}
