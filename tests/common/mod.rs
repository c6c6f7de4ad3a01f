//! Test harness: real backend servers and real bulb processes on 127.0.0.1
//! with ephemeral ports, a raw HTTP/1.1 client, load generators and the
//! YAML builder every test file uses.
// Each test binary uses a different part of the harness.
#![allow(dead_code, unused_imports)]

pub mod acme;
pub mod backend;
pub mod browser;
pub mod canned;
pub mod certs;
pub mod client;
pub mod grpc;
pub mod load;
pub mod otlp;
pub mod process;
pub mod recorder;
pub mod tcp;
pub mod tls;
pub mod yaml;

pub use backend::*;
pub use client::*;
pub use load::*;
pub use process::*;
pub use yaml::*;
