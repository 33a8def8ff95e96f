//! Backends for the ports: AWS services in production, embedded files on a laptop.

//! The embedded ones need the core's `embedded` feature (on by default; the Lambda binaries
//! leave it off).

pub mod aws;
pub mod dynamo;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod envelope;
pub mod kms;
#[cfg(feature = "embedded")]
pub mod local_keyring;
pub mod meter;
#[cfg(feature = "embedded")]
pub mod outbox;
pub mod ses;
#[cfg(feature = "embedded")]
pub mod smtp;
#[cfg(feature = "embedded")]
pub mod sqlite_queue;
#[cfg(feature = "embedded")]
pub mod sqlite_store;
pub mod sqs;
