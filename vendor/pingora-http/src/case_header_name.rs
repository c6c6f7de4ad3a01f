// Copyright 2026 Cloudflare, Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
// http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

use crate::*;
use bytes::Bytes;
use http::header;

#[derive(Debug, Clone)]
pub struct CaseHeaderName(Bytes);

impl CaseHeaderName {
    pub fn new(name: String) -> Self {
        CaseHeaderName(name.into())
    }
}

impl CaseHeaderName {
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    pub fn from_slice(buf: &[u8]) -> Self {
        CaseHeaderName(Bytes::copy_from_slice(buf))
    }

    /// bulb patch (PATCH.md): a case name of static bytes.
    pub fn from_static(name: &'static str) -> Self {
        CaseHeaderName(Bytes::from_static(name.as_bytes()))
    }

    /// bulb patch (PATCH.md): a case name of the given bytes.
    pub fn from_bytes(name: Bytes) -> Self {
        CaseHeaderName(name)
    }
}

/// A trait that converts into case-sensitive header names.
pub trait IntoCaseHeaderName {
    fn into_case_header_name(self) -> CaseHeaderName;

    /// bulb patch (PATCH.md): the `HeaderName` itself when the caller already
    /// has it, so that inserting does not parse (and, for a name outside the
    /// standard table, allocate) it again. `None`: parse the case name.
    fn header_name(&self) -> Option<HeaderName> {
        None
    }

    /// bulb patch (PATCH.md): the bytes [`Self::into_case_header_name`] would
    /// hold, when they can be seen without making it, so that a name spelled
    /// the usual way is never made into a case name. `None`: make it.
    fn case_bytes(&self) -> Option<&[u8]> {
        None
    }
}

/// bulb patch (PATCH.md): a header name parsed out of a read buffer, made into
/// a case name (a slice of the buffer) only if its spelling is kept.
#[derive(Debug, Clone, Copy)]
pub struct ParsedName<'a> {
    /// The buffer the name was read into.
    pub buf: &'a Bytes,
    /// The name, a part of `buf`.
    pub name: &'a [u8],
}

impl IntoCaseHeaderName for ParsedName<'_> {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self.buf.slice_ref(self.name))
    }

    fn case_bytes(&self) -> Option<&[u8]> {
        Some(self.name)
    }
}

/// bulb patch (PATCH.md): a header name known when compiling, with the case
/// it is written in: inserting one allocates nothing for the name, even for
/// a name outside `http`'s standard table (`x-forwarded-for`).
///
/// `StaticHeader(&X_REQUEST_ID, "X-Request-Id")` where
/// `static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id")`;
/// the two must name the same header.
#[derive(Debug, Clone, Copy)]
pub struct StaticHeader(pub &'static HeaderName, pub &'static str);

impl IntoCaseHeaderName for StaticHeader {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(Bytes::from_static(self.1.as_bytes()))
    }

    fn header_name(&self) -> Option<HeaderName> {
        Some(self.0.clone())
    }

    fn case_bytes(&self) -> Option<&[u8]> {
        Some(self.1.as_bytes())
    }
}

impl IntoCaseHeaderName for CaseHeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        self
    }

    fn case_bytes(&self) -> Option<&[u8]> {
        Some(&self.0)
    }
}

impl IntoCaseHeaderName for String {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self.into())
    }

    fn case_bytes(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

impl IntoCaseHeaderName for &'static str {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self.into())
    }

    fn case_bytes(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

impl IntoCaseHeaderName for HeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(titled_header_name(&self))
    }

    fn header_name(&self) -> Option<HeaderName> {
        Some(self.clone())
    }

    fn case_bytes(&self) -> Option<&[u8]> {
        Some(
            titled_header_name_str(self)
                .unwrap_or(self.as_str())
                .as_bytes(),
        )
    }
}

impl IntoCaseHeaderName for &HeaderName {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(titled_header_name(self))
    }

    fn header_name(&self) -> Option<HeaderName> {
        (**self).header_name()
    }

    fn case_bytes(&self) -> Option<&[u8]> {
        (**self).case_bytes()
    }
}

impl IntoCaseHeaderName for Bytes {
    fn into_case_header_name(self) -> CaseHeaderName {
        CaseHeaderName(self)
    }

    fn case_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

fn titled_header_name(header_name: &HeaderName) -> Bytes {
    titled_header_name_str(header_name).map_or_else(
        || Bytes::copy_from_slice(header_name.as_str().as_bytes()),
        |s| Bytes::from_static(s.as_bytes()),
    )
}

pub(crate) fn titled_header_name_str(header_name: &HeaderName) -> Option<&'static str> {
    Some(match *header_name {
        header::ACCEPT_RANGES => "Accept-Ranges",
        header::AGE => "Age",
        header::CACHE_CONTROL => "Cache-Control",
        header::CONNECTION => "Connection",
        header::CONTENT_TYPE => "Content-Type",
        header::CONTENT_ENCODING => "Content-Encoding",
        header::CONTENT_LENGTH => "Content-Length",
        header::DATE => "Date",
        header::TRANSFER_ENCODING => "Transfer-Encoding",
        header::HOST => "Host",
        header::SERVER => "Server",
        header::SET_COOKIE => "Set-Cookie",
        // TODO: add more const header here to map to their titled case
        // TODO: automatically upper case the first letter?
        _ => {
            return None;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_case_header_name() {
        assert_eq!("FoO".into_case_header_name().as_slice(), b"FoO");
        assert_eq!("FoO".to_string().into_case_header_name().as_slice(), b"FoO");
        assert_eq!(header::SERVER.into_case_header_name().as_slice(), b"Server");
    }
}
