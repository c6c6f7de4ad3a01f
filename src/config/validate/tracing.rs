//! `tracing`: where spans go and how many.

use super::*;

impl Validator {
    /// `tracing`: a plain-HTTP OTLP URL, a ratio in [0, 1].
    pub(super) fn tracing(&mut self, t: &TracingFile) -> Option<TracingSpec> {
        let ok = t
            .otlp
            .strip_prefix("http://")
            .is_some_and(|rest| !rest.is_empty() && t.otlp.parse::<http::Uri>().is_ok());
        if !ok {
            self.err(
                "tracing.otlp",
                format!(
                    "`{}` is not an OTLP/HTTP URL bulb can send to: give http://HOST:PORT/v1/traces (plain HTTP, to a local collector or agent)",
                    t.otlp
                ),
            );
        }
        let ratio = t.sample_ratio.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&ratio) {
            self.err("tracing.sample_ratio", "sample_ratio must be from 0 to 1");
        }
        let service_name = t.service_name.clone().unwrap_or_else(|| "bulb".to_string());
        if service_name.is_empty() {
            self.err("tracing.service_name", "service_name must not be empty");
        }
        ok.then(|| TracingSpec {
            otlp: t.otlp.clone(),
            service_name,
            sample_ratio: ratio.clamp(0.0, 1.0),
        })
    }
}
