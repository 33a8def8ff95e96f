//! forcelink's core: the domain every function shares, the ports they work through and
//! their AWS and embedded backends, the Salesforce HTTP client, and the HTTP plumbing that
//! lets the same handler run on Lambda and in `forcelink dev`.

pub mod backends;
pub mod config;
pub mod contact_ref;
pub mod deps;
pub mod domain;
pub mod http_client;
pub mod intake;
pub mod jws;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod links;
pub mod metrics;
pub mod ports;
pub mod queue_feed;
pub mod salesforce;
pub mod settings;
pub mod target;
pub mod telemetry;
pub mod web;

pub use deps::Deps;
pub use settings::Settings;
