//! Configuration in three stages: [`mod@file`] (what the YAML says), [`validate`]
//! (checking it, with positions from [`locate`]) and [`model`] (the result the
//! runtime is built from).

pub mod certs;
pub mod defaults;
pub mod file;
pub mod htpasswd;
pub mod locate;
pub mod model;
pub mod nodes;
pub mod validate;

pub use model::*;
pub use validate::{load_file, parse, valid_dns_name, ConfigError};
