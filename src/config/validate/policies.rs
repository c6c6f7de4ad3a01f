//! Route policies: where a route sends its requests (`upstream`, `split`,
//! `return`), `basic_auth`, header rules, `compress`; and an upstream's
//! `sticky` cookie.

use super::*;
use http::header::{HeaderName, HeaderValue};
use std::sync::Arc;

/// Headers bulb manages itself: a rule may not touch them.
const MANAGED: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "proxy-authenticate",
    "transfer-encoding",
    "content-length",
];

impl Validator {
    /// Exactly one of `upstream`, `split` and `return`.
    pub(super) fn target(
        &mut self,
        i: usize,
        r: &RouteFile,
        names: &[String],
    ) -> Option<RouteTarget> {
        let p = format!("routes[{i}]");
        let given = [r.upstream.is_some(), r.split.is_some(), r.answer.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            self.err(
                &p,
                "a route needs exactly one of `upstream`, `split` and `return`",
            );
            return None;
        }
        let index = |v: &mut Validator, path: String, name: &str| {
            let found = names.iter().position(|n| n == name);
            if found.is_none() {
                v.err(
                    &path,
                    format!("route names upstream `{name}`, which is not defined"),
                );
            }
            found
        };
        if let Some(u) = &r.upstream {
            return index(self, format!("{p}.upstream"), u).map(RouteTarget::Upstream);
        }
        if let Some(split) = &r.split {
            if split.is_empty() {
                self.err(&format!("{p}.split"), "`split` needs at least one upstream");
            }
            let mut shares = Vec::new();
            for (j, s) in split.iter().enumerate() {
                let sp = format!("{p}.split[{j}]");
                let upstream = index(self, format!("{sp}.upstream"), &s.upstream);
                let weight = u32::try_from(s.weight).ok().filter(|w| *w >= 1);
                if weight.is_none() {
                    self.err(
                        &format!("{sp}.weight"),
                        format!("split weight must be a whole number ≥ 1, not {}", s.weight),
                    );
                }
                if let (Some(upstream), Some(weight)) = (upstream, weight) {
                    if shares.iter().any(|s: &Share| s.upstream == upstream) {
                        self.err(
                            &format!("{sp}.upstream"),
                            format!("upstream `{}` is in the split twice", s.upstream),
                        );
                    }
                    shares.push(Share { upstream, weight });
                }
            }
            return Some(RouteTarget::Split(Split {
                shares,
                picks: Default::default(),
            }));
        }
        let a = r.answer.as_ref()?;
        let ap = format!("{p}.return");
        if !(200..=599).contains(&a.status) {
            self.err(
                &format!("{ap}.status"),
                format!("return status {} is not between 200 and 599", a.status),
            );
        }
        let redirect = (300..400).contains(&a.status) && a.status != 304;
        let location = match &a.location {
            Some(l) => self.template(&format!("{ap}.location"), l),
            None if redirect => {
                self.err(&ap, format!("a {} answer needs a `location`", a.status));
                None
            }
            None => None,
        };
        Some(RouteTarget::Return(Answer {
            status: a.status,
            location,
            body: a.body.clone().unwrap_or_default().into(),
        }))
    }

    /// `basic_auth`: its users file read now (a missing or non-bcrypt file is
    /// an error here, not a 500 later).
    pub(super) fn basic_auth(&mut self, i: usize, r: &RouteFile) -> Option<Arc<BasicAuth>> {
        let b = r.basic_auth.as_ref()?;
        let p = format!("routes[{i}].basic_auth");
        let realm = b.realm.clone().unwrap_or_else(|| "bulb".to_string());
        if realm.contains(|c: char| c == '"' || c == '\\' || c.is_control()) {
            self.err(
                &format!("{p}.realm"),
                "realm may not hold `\"`, `\\` or control characters",
            );
        }
        match crate::config::htpasswd::read(&b.users_file) {
            Ok(users) => Some(Arc::new(BasicAuth {
                realm,
                users,
                verified: Default::default(),
            })),
            Err(e) => {
                self.err(&format!("{p}.users_file"), e);
                None
            }
        }
    }

    /// Header rules and `compress`; `None` when the route has neither.
    pub(super) fn edits(&mut self, i: usize, r: &RouteFile) -> Option<Arc<Edits>> {
        let p = format!("routes[{i}]");
        let request = r
            .request_headers
            .as_ref()
            .map(|h| self.header_rules(&format!("{p}.request_headers"), h));
        let response = r
            .response_headers
            .as_ref()
            .map(|h| self.header_rules(&format!("{p}.response_headers"), h));
        let mut compress = Vec::new();
        if let Some(list) = &r.compress {
            if list.is_empty() {
                self.err(
                    &format!("{p}.compress"),
                    "`compress` lists no encoding (omit it for none)",
                );
            }
            for (j, t) in list.iter().enumerate() {
                match Encoding::from_token(t) {
                    Some(e) if compress.contains(&e) => self.err(
                        &format!("{p}.compress[{j}]"),
                        format!("`{t}` is listed twice"),
                    ),
                    Some(e) => compress.push(e),
                    None => self.err(
                        &format!("{p}.compress[{j}]"),
                        format!("unknown encoding `{t}`: use zstd, br or gzip"),
                    ),
                }
            }
        }
        (request.is_some() || response.is_some() || !compress.is_empty()).then(|| {
            Arc::new(Edits {
                request,
                response,
                compress,
            })
        })
    }

    fn header_rules(&mut self, p: &str, h: &HeaderRulesFile) -> HeaderRules {
        let mut rules = HeaderRules::default();
        for (j, n) in h.remove.iter().enumerate() {
            if let Some(name) = self.header_name(&format!("{p}.remove[{j}]"), n) {
                rules.remove.push(name);
            }
        }
        for (key, map, out) in [
            ("set", &h.set, &mut rules.set),
            ("add", &h.add, &mut rules.add),
        ] {
            for (n, v) in map {
                let path = format!("{p}.{key}.{n}");
                let name = self.header_name(&path, n);
                let value = self.template(&path, v);
                if let (Some(name), Some(value)) = (name, value) {
                    out.push((name, value));
                }
            }
        }
        rules
    }

    fn header_name(&mut self, path: &str, n: &str) -> Option<HeaderName> {
        let Ok(name) = HeaderName::from_bytes(n.as_bytes()) else {
            self.err(path, format!("`{n}` is not a header name"));
            return None;
        };
        if MANAGED.contains(&name.as_str()) {
            self.err(
                path,
                format!("`{n}` describes the connection or its framing: bulb manages it"),
            );
            return None;
        }
        Some(name)
    }

    /// A value with variables; its literal parts must be valid header text.
    fn template(&mut self, path: &str, v: &str) -> Option<Template> {
        let t = match Template::parse(v) {
            Ok(t) => t,
            Err(e) => {
                self.err(path, e);
                return None;
            }
        };
        let bad = t.0.iter().any(|piece| match piece {
            Piece::Text(s) => HeaderValue::from_str(s).is_err(),
            Piece::Var(_) => false,
        });
        if bad {
            self.err(
                path,
                format!("`{v}` holds characters a header value cannot"),
            );
            return None;
        }
        Some(t)
    }

    /// An upstream's `sticky` cookie (not with `consistent_hash`, which
    /// already keeps a key on one backend).
    pub(super) fn sticky(
        &mut self,
        p: &str,
        u: &UpstreamFile,
        algorithm: Algorithm,
    ) -> Option<StickySpec> {
        let s = u.sticky.as_ref()?;
        let p = format!("{p}.sticky");
        if algorithm == Algorithm::ConsistentHash {
            self.err(
                &p,
                "`sticky` does not go with consistent_hash (the hash already keeps a key on one backend)",
            );
        }
        let cookie = s.cookie.clone().unwrap_or_else(|| "BULB".to_string());
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if cookie.is_empty() || !cookie.chars().all(token) {
            self.err(
                &format!("{p}.cookie"),
                format!("`{cookie}` is not a cookie name"),
            );
        }
        let max_age = s
            .max_age
            .as_ref()
            .map(|m| self.duration(&format!("{p}.max_age"), &Some(m.clone()), Duration::ZERO));
        Some(StickySpec {
            cookie,
            max_age,
            secure: s.secure.unwrap_or(false),
            http_only: s.http_only.unwrap_or(true),
        })
    }
}
