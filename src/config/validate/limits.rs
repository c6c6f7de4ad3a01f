//! Limits: client connection caps, timeouts, buffers and rate limits.

use super::*;

impl Validator {
    pub(super) fn rate(&mut self, r: &RateFile) -> Option<RateSpec> {
        let key = match r.key.as_deref() {
            None | Some("client_ip") => RateKey::ClientIp,
            Some(k) => match k
                .strip_prefix("header:")
                .and_then(|n| http::HeaderName::from_bytes(n.as_bytes()).ok())
            {
                Some(n) => RateKey::Header(n),
                None => {
                    self.err(
                        "limits.rate.key",
                        format!("invalid rate key `{k}`: use client_ip or header:NAME"),
                    );
                    return None;
                }
            },
        };
        if !(r.requests_per_second > 0.0 && r.requests_per_second <= 1e6) {
            self.err(
                "limits.rate.requests_per_second",
                "requests_per_second must be more than 0 (and at most 1000000)",
            );
            return None;
        }
        let burst = r
            .burst
            .unwrap_or(r.requests_per_second.ceil() as u32)
            .max(1);
        if burst > MAX_RATE_BURST {
            self.err(
                "limits.rate.burst",
                format!("burst must be 1 to {MAX_RATE_BURST}"),
            );
            return None;
        }
        let store = r.store.as_ref().and_then(|url| {
            let ok = url.starts_with("redis://") && redis::Client::open(url.as_str()).is_ok();
            if !ok {
                self.err(
                    "limits.rate.store",
                    format!("`{url}` is not a store bulb can use: give redis://HOST:PORT/DB"),
                );
            }
            ok.then(|| url.clone())
        });
        let store_timeout = self.duration(
            "limits.rate.store_timeout",
            &r.store_timeout,
            defaults::RATE_STORE_TIMEOUT,
        );
        if r.store_timeout.is_some() && store.is_none() && r.store.is_none() {
            self.err(
                "limits.rate.store_timeout",
                "store_timeout applies only with a `store`",
            );
        }
        Some(RateSpec {
            key,
            per_second: r.requests_per_second,
            burst,
            store,
            store_timeout,
        })
    }

    pub(super) fn limits(&mut self, l: &Option<LimitsFile>) -> LimitsSpec {
        let mut out = LimitsSpec::default();
        if let Some(l) = l {
            if let Some(n) = l.max_header_bytes {
                if n < 1024 {
                    self.err(
                        "limits.max_header_bytes",
                        "max_header_bytes must be at least 1024",
                    );
                }
                out.max_header_bytes = n.max(1024);
            }
            if let Some(n) = l.client_read_buffer_bytes {
                if n != 0 && !(1024..=1024 * 1024).contains(&n) {
                    self.err(
                        "limits.client_read_buffer_bytes",
                        "client_read_buffer_bytes must be 0 (unbuffered) or 1024 to 1048576",
                    );
                }
                out.client_read_buffer_bytes = if n == 0 {
                    0
                } else {
                    n.clamp(1024, 1024 * 1024)
                };
            }
            out.client_header_timeout = self.duration(
                "limits.client_header_timeout",
                &l.client_header_timeout,
                out.client_header_timeout,
            );
            if let Some(n) = l.max_client_connections {
                if n == 0 {
                    self.err(
                        "limits.max_client_connections",
                        "max_client_connections must be at least 1 (omit it for no limit)",
                    );
                }
                out.max_client_connections = Some(n.max(1));
            }
            out.client_keepalive_timeout = self.duration(
                "limits.client_keepalive_timeout",
                &l.client_keepalive_timeout,
                out.client_keepalive_timeout,
            );
            if let Some(n) = l.request_buffer_bytes {
                let max = MAX_REQUEST_BUFFER;
                if n > max {
                    self.err(
                        "limits.request_buffer_bytes",
                        format!("request_buffer_bytes must be 0 to {max} (Pingora's request retry buffer)"),
                    );
                }
                out.request_buffer_bytes = n.min(max);
            }
            out.rate = l.rate.as_ref().and_then(|r| self.rate(r));
            out.client_body_timeout = self.duration(
                "limits.client_body_timeout",
                &l.client_body_timeout,
                out.client_body_timeout,
            );
        }
        out
    }
}
