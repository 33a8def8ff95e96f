//! Backends for the ports: AWS services in production, embedded files on a laptop.

pub mod aws;
pub mod dynamo;
pub mod envelope;
pub mod kms;
pub mod local_keyring;
pub mod outbox;
pub mod ses;
pub mod smtp;
pub mod sqlite_queue;
pub mod sqlite_store;
pub mod sqs;
