//! The "Pingora floor" for benchmarks: the smallest proxy on Pingora, like
//! Pingora's own `load_balancer` example (a `LoadBalancer<RoundRobin>`,
//! `select`, one `HttpPeer` per request), over plain HTTP backends, with the
//! system allocator. bulb is measured against it in `bench/run.sh`.
//!
//! `pingora_floor LISTEN BACKEND...`

use async_trait::async_trait;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_load_balancing::{selection::RoundRobin, LoadBalancer};
use pingora_proxy::{ProxyHttp, Session};
use std::sync::Arc;

struct Lb(Arc<LoadBalancer<RoundRobin>>);

#[async_trait]
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
    let mut server = Server::new(None).expect("server");
    server.bootstrap();
    let lb = LoadBalancer::try_from_iter(backends.iter().map(|s| s.as_str())).expect("backends");
    let mut svc = pingora_proxy::http_proxy_service(&server.configuration, Lb(Arc::new(lb)));
    svc.add_tcp(&listen);
    server.add_service(svc);
    server.run_forever();
}
