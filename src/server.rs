//! Wiring: validated config → Pingora server with the proxy, admin and
//! control services.

use crate::access_log::AccessLog;
use crate::admin::Admin;
use crate::cli::Cli;
use crate::config::{Config, ListenerSpec};
use crate::control::{Control, Source};
use crate::discovery::DnsCache;
use crate::guard::Guarded;
use crate::handoff::Handoff;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::runtime::Runtime;
use crate::state::Shared;
use crate::tcp::TcpProxy;
use pingora_core::apps::http_app::HttpServer;
use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::ListenerConfig;
use pingora_core::protocols::l4::stream::{L4BufferSettings, DEFAULT_L4_WRITE_BUFFER_SIZE};
use pingora_core::server::configuration::Opt;
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use std::sync::Arc;
use std::time::Duration;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A TLS listener could not be set up.
    #[error("TLS listener {addr}: {source}")]
    Tls {
        /// Listener address.
        addr: String,
        /// Pingora's error.
        source: Box<pingora_error::Error>,
    },
    /// A TLS listener's certificate or key could not be loaded.
    #[error("TLS listener certificates: {0}")]
    Certificates(String),
}

/// Build and run the server for `config`; returns only on a startup error.
pub fn run(
    cli: &Cli,
    source: Source,
    mut config: Config,
    args: Vec<String>,
) -> Result<(), StartError> {
    // A copy for Pingora: the running config keeps its own, which a reload
    // compares with the new file's (`Config::fixed_at_start_changes`).
    let mut server_conf = match serde_yaml::to_value(&config.server)
        .and_then(serde_yaml::from_value)
    {
        Ok(copy) => copy,
        Err(e) => {
            log::warn!("cannot copy the server settings ({e}); a reload will hand over to a new process every time");
            std::mem::take(&mut config.server)
        }
    };
    // Nothing in bulb reads how long a stream's reads and writes waited:
    // Pingora would read the clock twice for each one that waits.
    pingora_core::protocols::l4::stream::set_pending_time_tracking(false);
    // Daemonizing moves to `/` unless `working_directory` says otherwise:
    // stay where bulb was started, so that relative paths (`-c bulb.yaml`,
    // certificates, logs) mean on reload and hand-over what they meant at
    // start.
    if cli.daemon && server_conf.working_directory.is_none() {
        server_conf.working_directory = std::env::current_dir().ok();
    }
    // bulb drains itself (see control::drain_then_exit): in-flight requests
    // get up to graceful_shutdown_timeout_seconds, an idle process exits at
    // once. Pingora must not drop the runtimes before that.
    let drain = server_conf.graceful_shutdown_timeout_seconds.unwrap_or(5);
    let grace = server_conf.grace_period_seconds.unwrap_or(1).max(drain);
    server_conf.grace_period_seconds = Some(grace);
    let handoff = Handoff {
        upgrade_sock: server_conf.upgrade_sock.clone(),
        args,
    };
    let opt = Opt {
        upgrade: cli.upgrade,
        daemon: cli.daemon,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf);
    server.bootstrap();

    let metrics = Metrics::default();
    let dns = Arc::new(DnsCache::default());
    let access_log = AccessLog::new(&config.access_log, config.access_log_format);
    let listeners = config.listeners.clone();
    let admin_addr = config.admin;
    let config_read_buffer = config.limits.client_read_buffer_bytes;
    let h2_idle_timeout = config.limits.client_keepalive_timeout;
    let tls = crate::tls::Listeners::load(&config).map_err(StartError::Certificates)?;
    let runtime = Runtime::build(config, None, &dns, &metrics);
    if let Some(path) = &runtime.config.admin_state_file {
        crate::admin::ops::load(path, &runtime);
    }
    let shared = Arc::new(Shared::new(runtime, metrics, access_log, dns, tls));

    let mut app = pingora_proxy::http_proxy(&server.configuration, Proxy::new(shared.clone()));
    let mut opts = HttpServerOptions::default();
    opts.keepalive_request_limit = None;
    // An idle HTTP/2 client connection closes like an idle HTTP/1 one.
    opts.h2_idle_timeout = Some(h2_idle_timeout);
    // Pingora reads the h2c preface only on connections the guard hands it
    // whole: those of listeners with `h2c: true` that sent it.
    opts.h2c = true;
    app.server_options = Some(opts);
    let mut proxy = Service::new("bulb proxy".to_string(), Guarded::new(app, shared.clone()));
    let buffers = L4BufferSettings::new(config_read_buffer, DEFAULT_L4_WRITE_BUFFER_SIZE);
    for l in listeners.iter().filter(|l| l.tcp.is_none()) {
        add_listener(&mut proxy, l, buffers, &shared.tls)?;
    }
    // TCP listeners: the relay reads the sockets itself, Pingora's stream
    // needs no buffers.
    let mut tcp = Service::new("bulb tcp".to_string(), TcpProxy::new(shared.clone()));
    for l in listeners.iter().filter(|l| l.tcp.is_some()) {
        let addr = l.address.to_string();
        tcp.add_listener(ListenerConfig::tcp(addr).l4_buffer(L4BufferSettings::unbuffered()));
    }
    // PROXY headers are read before anything else (TLS included), only on
    // services with a listener that accepts them.
    let accepts = |tcp_side: bool| {
        listeners
            .iter()
            .any(|l| l.accept_proxy && l.tcp.is_some() == tcp_side)
    };
    if accepts(false) {
        let cb = crate::admission::proxy_accept::AcceptProxy::new(shared.clone());
        proxy.endpoints().set_pre_tls_callback(cb);
    }
    if accepts(true) {
        let cb = crate::admission::proxy_accept::AcceptProxy::new(shared.clone());
        tcp.endpoints().set_pre_tls_callback(cb);
    }
    let control = background_service(
        "bulb control",
        Control::new(shared.clone(), source, handoff, Duration::from_secs(drain)),
    );
    let control_handle = server.add_service(control);
    let proxy_handle = server.add_service(proxy);
    proxy_handle.add_dependency(&control_handle);
    if listeners.iter().any(|l| l.tcp.is_some()) {
        let tcp_handle = server.add_service(tcp);
        tcp_handle.add_dependency(&control_handle);
    }
    if let Some(a) = admin_addr {
        let mut admin = Service::new(
            "bulb admin".to_string(),
            HttpServer::new_app(Admin::new(shared)),
        );
        admin.add_tcp(&a.to_string());
        server.add_service(admin);
    }
    server.run_forever();
}

fn add_listener<A>(
    svc: &mut Service<A>,
    l: &ListenerSpec,
    buffers: L4BufferSettings,
    certs: &crate::tls::Listeners,
) -> Result<(), StartError> {
    let addr = l.address.to_string();
    let mut endpoint = ListenerConfig::tcp(addr.clone()).l4_buffer(buffers);
    if let Some(resolver) = certs.resolver(l.address) {
        // The paths are unused: the resolver serves the certificates.
        let mut tls =
            TlsSettings::intermediate("", "").map_err(|source| StartError::Tls { addr, source })?;
        tls.enable_h2();
        if resolver.answers_tls_alpn() {
            let acme = crate::tls::ACME_TLS_ALPN.to_vec();
            tls.set_alpn_protocols(vec![b"h2".to_vec(), b"http/1.1".to_vec(), acme]);
        }
        tls.set_cert_resolver(resolver);
        endpoint = endpoint.tls(tls);
    }
    svc.add_listener(endpoint);
    Ok(())
}
