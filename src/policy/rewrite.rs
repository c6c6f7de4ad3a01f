//! `strip_prefix`: the route's `path_prefix` taken off the path that goes
//! upstream (`/api/x?q` → `/x?q`, `/api` alone → `/`); the query stays.

use pingora_error::{ErrorType, OrErr, Result};
use pingora_http::RequestHeader;

/// `target` (path and query) without its first `n` bytes, starting with `/`.
pub fn stripped(target: &str, n: usize) -> String {
    let rest = target.get(n..).unwrap_or("");
    if rest.starts_with('/') {
        rest.to_string()
    } else {
        format!("/{rest}")
    }
}

/// Strip `n` bytes of the path of the request going upstream.
pub fn strip_prefix(req: &mut RequestHeader, n: usize) -> Result<()> {
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = stripped(target, n)
        .parse::<http::Uri>()
        .or_err(ErrorType::InvalidHTTPHeader, "stripped request target")?;
    req.set_uri(uri);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::stripped;

    #[test]
    fn the_prefix_goes_and_the_query_stays() {
        assert_eq!(stripped("/api/x?q=1", 4), "/x?q=1");
        assert_eq!(stripped("/api", 4), "/");
        assert_eq!(stripped("/api?q", 4), "/?q");
        assert_eq!(stripped("/api/", 4), "/");
        assert_eq!(stripped("/apiary", 4), "/ary");
    }
}
