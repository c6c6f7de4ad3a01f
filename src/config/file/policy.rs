//! The file's route policies, `sticky` and `tracing` sections, as read
//! (checked in `config::validate`).

use serde::Deserialize;
use std::collections::BTreeMap;

/// One upstream of a `split`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitFile {
    /// Name of the upstream.
    pub upstream: String,
    /// Its share (at least 1).
    pub weight: i64,
}

/// A route's `return`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnFile {
    /// Status answered.
    pub status: u16,
    /// `Location` (variables allowed), for redirects.
    pub location: Option<String>,
    /// Body answered (`text/plain`).
    pub body: Option<String>,
}

/// A route's `basic_auth`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthFile {
    /// Realm named in `WWW-Authenticate`.
    pub realm: Option<String>,
    /// htpasswd file (bcrypt entries).
    pub users_file: String,
}

/// `request_headers` / `response_headers`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HeaderRulesFile {
    /// Replace (or add) these headers.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Add these, keeping any already there.
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    /// Remove these.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `sticky:` settings of an upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickyFile {
    /// Cookie name (default `BULB`).
    pub cookie: Option<String>,
    /// Cookie lifetime (default: a session cookie).
    pub max_age: Option<String>,
    /// `Secure` attribute (default false).
    pub secure: Option<bool>,
    /// `HttpOnly` attribute (default true).
    pub http_only: Option<bool>,
}

/// `tracing:` — spans exported over OTLP/HTTP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingFile {
    /// The collector's OTLP/HTTP traces URL (`http://HOST:4318/v1/traces`).
    pub otlp: String,
    /// `service.name` of the spans (default `bulb`).
    pub service_name: Option<String>,
    /// Share of new traces sampled (0 to 1, default 1); a client's sampled
    /// `traceparent` is always kept.
    pub sample_ratio: Option<f64>,
}
