//! Active health checks of an upstream: kind, interval, thresholds.

use super::*;

impl Validator {
    pub(super) fn health(&mut self, p: &str, h: &HealthCheckFile) -> HealthCheckSpec {
        if h.service.is_some() && h.kind != "grpc" {
            self.err(
                &format!("{p}.service"),
                "`service` applies only to kind: grpc",
            );
        }
        let kind = match h.kind.as_str() {
            "tcp" | "grpc" => {
                let keys = [
                    ("path", h.path.is_some()),
                    ("host", h.host.is_some()),
                    ("expect_status", h.expect_status.is_some()),
                ];
                self.only_for(p, &keys, "kind: http");
                if h.kind == "grpc" {
                    ProbeKind::Grpc {
                        service: h.service.clone().unwrap_or_default(),
                    }
                } else {
                    ProbeKind::Tcp
                }
            }
            "http" => {
                let path = h.path.clone().unwrap_or_else(|| "/".into());
                if !path.starts_with('/') {
                    self.err(&format!("{p}.path"), "path must start with `/`");
                }
                let expect_status = h.expect_status.clone().unwrap_or_else(|| vec![200]);
                if expect_status.is_empty()
                    || expect_status.iter().any(|s| !(100..=599).contains(s))
                {
                    self.err(
                        &format!("{p}.expect_status"),
                        "expect_status must list HTTP statuses (100-599)",
                    );
                }
                ProbeKind::Http {
                    path,
                    host: h.host.clone().unwrap_or_else(|| "localhost".into()),
                    expect_status,
                }
            }
            other => {
                self.err(
                    &format!("{p}.kind"),
                    format!("unknown health check kind `{other}`: use tcp, http or grpc"),
                );
                ProbeKind::Tcp
            }
        };
        let mut count = |k: &str, v: Option<u32>, d: u32| {
            let n = v.unwrap_or(d);
            if n == 0 {
                self.err(&format!("{p}.{k}"), format!("{k} must be at least 1"));
            }
            n.max(1)
        };
        let healthy_after = count("healthy_after", h.healthy_after, defaults::HEALTHY_AFTER);
        let unhealthy_after = count(
            "unhealthy_after",
            h.unhealthy_after,
            defaults::UNHEALTHY_AFTER,
        );
        HealthCheckSpec {
            kind,
            interval: self.duration(
                &format!("{p}.interval"),
                &h.interval,
                defaults::HEALTH_INTERVAL,
            ),
            timeout: self.duration(
                &format!("{p}.timeout"),
                &h.timeout,
                defaults::HEALTH_TIMEOUT,
            ),
            healthy_after,
            unhealthy_after,
        }
    }
}
