// bulb patch (see PATCH.md, "Header-name case kept only where it is not the
// usual one"). Licensed as the rest of this crate (Apache-2.0).

//! The original case of a head's header names, kept only where it differs from
//! the usual spelling.
//!
//! Pingora kept the case of every header name in a second header map, in step
//! with the map of values: each header hashed and inserted twice, each name
//! sliced out of the read buffer, each clone copying both maps. Nearly every
//! name a client or server sends is spelled the usual way (`Host`,
//! `Content-Type`, `ETag`), so [`CaseNames`] keeps only the exceptions, each
//! with the name and which of that name's values it spells; every other header
//! is written in its [canonical] spelling. The bytes on the wire are the same.

use crate::case_header_name::CaseHeaderName;
use crate::HMap;
use bytes::{BufMut, Bytes};
use http::header::{HeaderName, HeaderValue};

/// Names spelled otherwise than Title-Case by convention (and by nginx, curl,
/// browsers), each with that spelling; keyed by the lowercase name. (One
/// candidate per length but 16, so that a name costs one comparison.)
fn conventional(lower: &str) -> Option<&'static str> {
    let spelled = match lower.len() {
        2 => "TE",
        3 => "DNT",
        4 => "ETag",
        9 => "X-Real-IP",
        11 => "Content-MD5",
        15 => "X-UA-Compatible",
        16 if lower.starts_with('w') => "WWW-Authenticate",
        16 => "X-XSS-Protection",
        17 => "Sec-WebSocket-Key",
        20 => "Sec-WebSocket-Accept",
        21 => "Sec-WebSocket-Version",
        22 => "Sec-WebSocket-Protocol",
        24 => "Sec-WebSocket-Extensions",
        _ => return None,
    };
    spelled.eq_ignore_ascii_case(lower).then_some(spelled)
}

/// Whether `spelled` is the canonical spelling of `name`: the conventional
/// one where there is one, else Title-Case (an upper-case letter at the start
/// and after each `-`, lower case elsewhere).
pub(crate) fn is_canonical(name: &HeaderName, spelled: &[u8]) -> bool {
    let lower = name.as_str();
    if let Some(s) = conventional(lower) {
        return s.as_bytes() == spelled;
    }
    let lower = lower.as_bytes();
    if lower.len() != spelled.len() {
        return false;
    }
    let mut upper = true;
    for (&l, &s) in lower.iter().zip(spelled) {
        let want = if upper { l.to_ascii_uppercase() } else { l };
        if s != want {
            return false;
        }
        upper = l == b'-';
    }
    true
}

/// Write the canonical spelling of `name` (see [`is_canonical`]).
pub(crate) fn put_canonical(name: &HeaderName, buf: &mut impl BufMut) {
    let lower = name.as_str();
    if let Some(s) = conventional(lower) {
        buf.put_slice(s.as_bytes());
        return;
    }
    let mut titled = [0u8; 64];
    let mut upper = true;
    for chunk in lower.as_bytes().chunks(titled.len()) {
        for (t, &l) in titled.iter_mut().zip(chunk) {
            *t = if upper { l.to_ascii_uppercase() } else { l };
            upper = l == b'-';
        }
        buf.put_slice(&titled[..chunk.len()]);
    }
}

/// The canonical spelling of `name` as a case name.
pub(crate) fn canonical(name: &HeaderName) -> CaseHeaderName {
    if let Some(s) = conventional(name.as_str()) {
        return CaseHeaderName::from_static(s);
    }
    let mut spelled = Vec::with_capacity(name.as_str().len());
    put_canonical(name, &mut spelled);
    CaseHeaderName::from_bytes(Bytes::from(spelled))
}

/// One header value whose name is not spelled canonically.
#[derive(Debug, Clone)]
struct Odd {
    name: HeaderName,
    /// Which of the name's values (0 = first) this spelling is for.
    nth: usize,
    case: CaseHeaderName,
}

/// The spelling of each header name of a head, as a list of the exceptions to
/// the canonical spelling. Kept in step with the head's map of values by the
/// head's insert, append and remove (the only ways its headers change).
#[derive(Debug, Clone, Default)]
pub(crate) struct CaseNames {
    odd: Vec<Odd>,
}

impl CaseNames {
    /// After `values` had a value appended under `name`, spelled `case`,
    /// which is not its canonical spelling.
    pub(crate) fn appended<T>(&mut self, values: &HMap<T>, name: HeaderName, case: CaseHeaderName) {
        let nth = values.get_all(&name).iter().count().saturating_sub(1);
        self.odd.push(Odd { name, nth, case });
    }

    /// Before `values` has all values under `name` replaced by one.
    pub(crate) fn replacing(&mut self, name: &HeaderName) {
        if !self.odd.is_empty() {
            self.odd.retain(|o| o.name != name);
        }
    }

    /// After `values` had all values under `name` replaced by one, spelled
    /// `case`, which is not its canonical spelling.
    pub(crate) fn inserted(&mut self, name: HeaderName, case: CaseHeaderName) {
        self.odd.push(Odd { name, nth: 0, case });
    }

    /// After a name was removed from `values`.
    pub(crate) fn removed<T>(&mut self, values: &HMap<T>) {
        if !self.odd.is_empty() {
            self.odd.retain(|o| values.contains_key(&o.name));
        }
    }

    /// Forget every spelling (the head's values were cleared).
    pub(crate) fn clear(&mut self) {
        self.odd.clear();
    }

    /// How many exceptions there is room for.
    pub(crate) fn capacity(&self) -> usize {
        self.odd.capacity()
    }

    /// Make `self` a copy of `from`, keeping `self`'s room.
    pub(crate) fn copy_from(&mut self, from: &CaseNames) {
        self.odd.clone_from(&from.odd);
    }

    /// Each header of `values` in order, with its kept spelling if it has one
    /// (`None`: canonical).
    pub(crate) fn iter<'a>(
        &'a self,
        values: &'a HMap,
    ) -> impl Iterator<Item = (Option<&'a CaseHeaderName>, &'a HeaderName, &'a HeaderValue)> + 'a
    {
        let mut previous: *const HeaderName = std::ptr::null();
        let mut nth = 0;
        values.iter().map(move |(name, value)| {
            if self.odd.is_empty() {
                return (None, name, value);
            }
            // The map yields a name's values one after another, under one key.
            nth = if std::ptr::eq(previous, name) {
                nth + 1
            } else {
                0
            };
            previous = name;
            let kept = self.odd.iter().find(|o| o.nth == nth && o.name == name);
            (kept.map(|o| &o.case), name, value)
        })
    }

    /// Write `values` as HTTP/1 header lines, each name spelled as it was given.
    pub(crate) fn to_h1_wire(&self, values: &HMap, buf: &mut impl BufMut) {
        for (kept, name, value) in self.iter(values) {
            match kept {
                Some(case) => buf.put_slice(case.as_slice()),
                None => put_canonical(name, buf),
            }
            buf.put_slice(b": ");
            buf.put_slice(value.as_ref());
            buf.put_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_spellings() {
        for (name, spelled, yes) in [
            ("host", "Host", true),
            ("host", "host", false),
            ("host", "HOST", false),
            ("content-type", "Content-Type", true),
            ("content-type", "Content-type", false),
            ("etag", "ETag", true),
            ("etag", "Etag", false),
            ("x-real-ip", "X-Real-IP", true),
            ("x-forwarded-for", "X-Forwarded-For", true),
            ("a--b", "A--B", true),
            ("x-1a", "X-1a", true),
            ("foo", "Fooo", false),
            ("www-authenticate", "WWW-Authenticate", true),
            ("x-xss-protection", "X-XSS-Protection", true),
            ("x-xss-protection", "X-Xss-Protection", false),
            ("sec-websocket-key", "Sec-WebSocket-Key", true),
            ("x-request-id", "X-Request-Id", true),
            ("user-agent", "User-Agent", true),
        ] {
            let name = HeaderName::from_static(name);
            assert_eq!(is_canonical(&name, spelled.as_bytes()), yes, "{spelled}");
            if yes {
                assert_eq!(canonical(&name).as_slice(), spelled.as_bytes());
            }
        }
        let long = "x-".to_string() + &"a".repeat(70) + "-b";
        let name = HeaderName::from_bytes(long.as_bytes()).unwrap();
        let want = "X-A".to_string() + &"a".repeat(69) + "-B";
        assert_eq!(canonical(&name).as_slice(), want.as_bytes());
        assert!(is_canonical(&name, want.as_bytes()));
    }

    #[test]
    fn only_exceptions_are_kept_and_each_value_keeps_its_own() {
        let mut values = HMap::new();
        let mut case = CaseNames::default();
        for spelled in ["Host", "x-one", "X-One", "X-ONE", "ETag"] {
            let name = HeaderName::from_bytes(spelled.as_bytes()).unwrap();
            values.append(name.clone(), HeaderValue::from_static("v"));
            if !is_canonical(&name, spelled.as_bytes()) {
                case.appended(
                    &values,
                    name,
                    CaseHeaderName::from_slice(spelled.as_bytes()),
                );
            }
        }
        assert_eq!(case.odd.len(), 2);
        let mut wire = Vec::new();
        case.to_h1_wire(&values, &mut wire);
        assert_eq!(
            wire,
            b"Host: v\r\nx-one: v\r\nX-One: v\r\nX-ONE: v\r\nETag: v\r\n"
        );

        let one = HeaderName::from_static("x-one");
        case.replacing(&one);
        values.insert(one.clone(), HeaderValue::from_static("w"));
        assert!(case.odd.is_empty());
        values.remove("host");
        case.removed(&values);
        let mut wire = Vec::new();
        case.to_h1_wire(&values, &mut wire);
        assert_eq!(wire, b"ETag: v\r\nX-One: w\r\n");
    }
}
