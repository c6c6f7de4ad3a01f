//! Route policies as validated: where a route sends its requests (an
//! upstream, a weighted split, or bulb's own answer) and the edits it makes
//! on the way. The request path applies them (`crate::policy`); nothing here
//! runs per request.

use http::header::HeaderName;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Where a route's requests go.
#[derive(Debug, Clone)]
pub enum RouteTarget {
    /// One upstream (index into `Config::upstreams`).
    Upstream(usize),
    /// Several, each taking a share of the requests.
    Split(Split),
    /// No upstream: bulb answers.
    Return(Answer),
}

/// A weighted `split` and where its sequence of picks stands.
#[derive(Debug, Clone)]
pub struct Split {
    /// The upstreams and their weights (not empty).
    pub shares: Vec<Share>,
    /// Requests split so far by this config's route.
    pub picks: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// One upstream of a `split` and its weight (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Index into `Config::upstreams`.
    pub upstream: usize,
    /// Relative share.
    pub weight: u32,
}

/// A route's `return`.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// `Location`, expanded per request.
    pub location: Option<Template>,
    /// The body (`text/plain`); empty for none.
    pub body: bytes::Bytes,
}

/// A variable usable in header values and `return.location`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// The client address (after `trusted_proxies`).
    ClientIp,
    /// The request's host, lowercased, without port.
    Host,
    /// `http` or `https`, as the client came.
    Scheme,
    /// Path and query as the client sent them (before `strip_prefix`).
    RequestUri,
    /// The request's `X-Request-Id`.
    RequestId,
}

impl Var {
    /// Every variable, with its name in the file.
    pub const ALL: [(&'static str, Var); 5] = [
        ("client_ip", Var::ClientIp),
        ("host", Var::Host),
        ("scheme", Var::Scheme),
        ("request_uri", Var::RequestUri),
        ("request_id", Var::RequestId),
    ];
}

/// A piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal bytes.
    Text(String),
    /// A variable's value.
    Var(Var),
}

/// A value with variables: `https://$host$request_uri`, `${host}.x`; `$$`
/// is a literal `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<Piece>);

impl Template {
    /// Parse `s`; `Err` names the first unknown variable.
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut out = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            text.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(r) = rest.strip_prefix('$') {
                text.push('$');
                rest = r;
                continue;
            }
            let (name, after) = match rest.strip_prefix('{') {
                Some(r) => match r.find('}') {
                    Some(end) => (&r[..end], &r[end + 1..]),
                    None => return Err(format!("`${{` without `}}` in `{s}`")),
                },
                None => {
                    let end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    (&rest[..end], &rest[end..])
                }
            };
            let Some((_, var)) = Var::ALL.iter().find(|(n, _)| *n == name) else {
                let known: Vec<String> = Var::ALL.iter().map(|(n, _)| format!("${n}")).collect();
                return Err(format!(
                    "unknown variable `${name}` (known: {}; `$$` is a literal `$`)",
                    known.join(", ")
                ));
            };
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text)));
            }
            out.push(Piece::Var(*var));
            rest = after;
        }
        text.push_str(rest);
        if !text.is_empty() {
            out.push(Piece::Text(text));
        }
        Ok(Template(out))
    }
}

/// `request_headers` or `response_headers`, applied remove → set → add.
#[derive(Debug, Clone, Default)]
pub struct HeaderRules {
    /// Removed.
    pub remove: Vec<HeaderName>,
    /// Replaced, or added when absent.
    pub set: Vec<(HeaderName, Template)>,
    /// Added beside any already there.
    pub add: Vec<(HeaderName, Template)>,
}

/// A response encoding `compress` may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Zstandard.
    Zstd,
    /// Brotli.
    Br,
    /// gzip.
    Gzip,
}

impl Encoding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Br => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// The encoding named `token`.
    pub fn from_token(token: &str) -> Option<Encoding> {
        [Encoding::Zstd, Encoding::Br, Encoding::Gzip]
            .into_iter()
            .find(|e| e.token() == token)
    }
}

/// What a route does to the request and response beyond routing; `None` on
/// a route without any, so such routes pay nothing.
#[derive(Debug, Default)]
pub struct Edits {
    /// `request_headers`.
    pub request: Option<HeaderRules>,
    /// `response_headers`.
    pub response: Option<HeaderRules>,
    /// `compress`: encodings, preferred first (empty: none).
    pub compress: Vec<Encoding>,
}

/// A route's `basic_auth`: the users of its htpasswd file, read with the
/// config (a reload reads it again).
#[derive(Debug)]
pub struct BasicAuth {
    /// Realm named in `WWW-Authenticate`.
    pub realm: String,
    /// User name → bcrypt hash.
    pub users: HashMap<String, String>,
    /// Digests of `user:password` pairs already verified (bcrypt is slow on
    /// purpose: a right password is checked once per config, not per request).
    pub verified: Mutex<std::collections::HashSet<[u8; 32]>>,
}

/// An upstream's `sticky` cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickySpec {
    /// Cookie name.
    pub cookie: String,
    /// `Max-Age`; `None` for a session cookie.
    pub max_age: Option<Duration>,
    /// `Secure`.
    pub secure: bool,
    /// `HttpOnly`.
    pub http_only: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = Template::parse("https://$host${request_uri}?a=$$1").expect("valid");
        assert_eq!(
            t.0,
            [
                Piece::Text("https://".into()),
                Piece::Var(Var::Host),
                Piece::Var(Var::RequestUri),
                Piece::Text("?a=$1".into()),
            ]
        );
        assert!(Template::parse("$hots").unwrap_err().contains("`$hots`"));
        assert!(Template::parse("${host").is_err());
        assert_eq!(Template::parse("plain").unwrap().0.len(), 1);
    }
}
