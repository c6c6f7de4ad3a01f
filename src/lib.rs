//! bulb: an HTTP load balancer on Pingora.
//!
//! A request goes [`guard`] (the client connection) → [`proxy`] (one module
//! per phase) → [`runtime`] (routes) → [`pool`] (selection over backends kept
//! current by [`discovery`] and [`health`]) → [`peer`] (how the backend is
//! spoken to); a TCP connection goes [`tcp`] → [`pool`]. [`config`] turns the YAML file
//! into a validated model; [`state`] holds what all of them share and the
//! work a stop drains; [`control`] reloads on SIGHUP and drains on stop, and
//! [`handoff`] passes listening sockets to a successor when listeners change.
//! [`admin`], [`metrics`] and [`access_log`] tell what happens.

pub mod access_log;
pub mod acme;
pub mod admin;
pub mod admission;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod control;
pub mod diff;
pub mod discovery;
pub mod guard;
pub mod handoff;
pub mod health;
pub mod limit;
pub mod metrics;
pub mod peer;
pub mod policy;
pub mod pool;
pub mod proxy;
pub mod proxy_protocol;
pub mod random;
pub mod runtime;
pub mod server;
pub mod state;
pub mod tcp;
pub mod tls;
pub mod trace;
