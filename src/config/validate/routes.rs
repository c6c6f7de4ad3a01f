//! Routes: host and path matches, and the upstreams they name (their
//! policies in [`super::policies`]).

use super::*;

impl Validator {
    pub(super) fn routes(
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
            return vec![RouteSpec::to_upstream(upstream)];
        }
        let mut out = Vec::new();
        for (i, r) in rs.iter().enumerate() {
            let Some(target) = self.target(i, r, names) else {
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
            let access = self.access(i, r);
            let strip = match (r.strip_prefix, &r.path_prefix) {
                (Some(true), Some(p)) => p.len(),
                (Some(true), None) => {
                    self.err(
                        &format!("routes[{i}].strip_prefix"),
                        "strip_prefix needs the route's `path_prefix` (the part to strip)",
                    );
                    0
                }
                _ => 0,
            };
            let auth = self.basic_auth(i, r);
            let edits = self.edits(i, r);
            out.push(RouteSpec {
                host,
                path_prefix: r.path_prefix.clone(),
                target,
                access,
                auth,
                strip,
                edits,
            });
        }
        out
    }

    /// `allow` and `deny`: networks (`10.0.0.0/8`, `::1/128`, or a bare address).
    fn access(&mut self, i: usize, r: &RouteFile) -> Option<Access> {
        if r.allow.is_none() && r.deny.is_none() {
            return None;
        }
        let mut list = |key: &str, v: &Option<Vec<String>>| -> Vec<Cidr> {
            let mut out = Vec::new();
            for (j, c) in v.iter().flatten().enumerate() {
                match Cidr::parse(c) {
                    Some(n) => out.push(n),
                    None => self.err(
                        &format!("routes[{i}].{key}[{j}]"),
                        format!("`{c}` is not an IP network like 10.0.0.0/8 or ::1/128"),
                    ),
                }
            }
            out
        };
        let allow = list("allow", &r.allow);
        let deny = list("deny", &r.deny);
        Some(Access { allow, deny })
    }
}
