//! The "Pingora floor" for benchmarks: the smallest proxy on Pingora, like
//! Pingora's own `load_balancer` example (a `LoadBalancer<RoundRobin>`,
//! `select`, one `HttpPeer` per request), over plain HTTP backends, with the
//! system allocator. bulb is measured against it in `bench/run.sh`.
//!
//! `pingora_floor LISTEN BACKEND...`
//!
//! `FLOOR_THREADS=N` runs N worker threads (default 1); with
//! `FLOOR_REUSEPORT=1` each thread gets a listening socket of its own on
//! LISTEN (`SO_REUSEPORT`; the kernel spreads connections), instead of one
//! socket shared by all: `bench/threads.sh` compares the two.

use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_load_balancing::{selection::RoundRobin, LoadBalancer};
use pingora_proxy::{ProxyHttp, Session};
use std::sync::Arc;

struct Lb(Arc<LoadBalancer<RoundRobin>>);

impl ProxyHttp for Lb {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        let up = self.0.select(b"", 256).ok_or_else(|| {
            pingora_core::Error::explain(pingora_core::ErrorType::HTTPStatus(503), "no backend")
        })?;
        Ok(Box::new(HttpPeer::new(up, false, String::new())))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:6188".into());
    let backends: Vec<String> = args.collect();
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let threads = env("FLOOR_THREADS").unwrap_or(1).max(1);
    let reuseport = env("FLOOR_REUSEPORT").unwrap_or(0) == 1;
    let conf = pingora_core::server::configuration::ServerConf {
        threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let lb = LoadBalancer::try_from_iter(backends.iter().map(|s| s.as_str())).expect("backends");
    let mut svc = pingora_proxy::http_proxy_service(&server.configuration, Lb(Arc::new(lb)));
    if reuseport {
        let mut opts = pingora_core::listeners::TcpSocketOptions::default();
        opts.so_reuseport = Some(true);
        // Pingora keys listening sockets by address text: one spelling per
        // socket (leading zeros in the port) binds one socket each.
        let (host, port) = listen.rsplit_once(':').expect("LISTEN is HOST:PORT");
        for i in 0..threads {
            svc.add_tcp_with_settings(&format!("{host}:{}{port}", "0".repeat(i)), opts.clone());
        }
    } else {
        svc.add_tcp(&listen);
    }
    server.add_service(svc);
    server.run_forever();
}
