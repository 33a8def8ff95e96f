//! Shared helpers for the contract tests: where moto and the SMTP sink are, unique names.

// Each test binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

/// How to start the test services, printed when they are missing.
pub const HOW_TO_START: &str = "start moto and aiosmtpd first, e.g.:\n\
    python3 -m venv .venv && .venv/bin/pip install 'moto[server]' aiosmtpd\n\
    .venv/bin/moto_server -H 127.0.0.1 -p 5599 &\n\
    mkdir -p /tmp/forcelink-maildir/{tmp,new,cur} && .venv/bin/python -m aiosmtpd -n -l 127.0.0.1:2599 -c aiosmtpd.handlers.Mailbox /tmp/forcelink-maildir &\n\
    export FORCELINK_TEST_MOTO_URL=http://127.0.0.1:5599 FORCELINK_TEST_SMTP=127.0.0.1:2599 FORCELINK_TEST_SMTP_MAILDIR=/tmp/forcelink-maildir";

/// A required environment variable, or a failed test that says how to set it.
pub fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{name} is not set: {HOW_TO_START}"),
    }
}

/// moto's base URL (`FORCELINK_TEST_MOTO_URL`).
pub fn moto_url() -> String {
    env("FORCELINK_TEST_MOTO_URL")
}

/// The AWS SDK configuration for moto: static test credentials, us-east-1.
pub async fn moto_config() -> aws_config::SdkConfig {
    forcelink::backends::aws::emulator_config(&moto_url()).await
}

/// A name no other test uses (tables, queues, key ids).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Now, in epoch seconds, by the system clock (DynamoDB's TTL has no other).
pub fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A fresh KMS key and keyset table on moto.
pub async fn kms_setup() -> (aws_sdk_kms::Client, String, std::sync::Arc<dyn forcelink::ports::store::Store>) {
    let config = moto_config().await;
    let kms = aws_sdk_kms::Client::new(&config);
    let key = kms.create_key().description("forcelink test").send().await.expect("create a KMS key");
    let key_id = key.key_metadata().map(|m| m.key_id().to_string()).expect("key id");
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("forcelink-keys");
    forcelink::backends::dynamo::create_table(&dynamo, &table).await.expect("create the table");
    (kms, key_id, std::sync::Arc::new(forcelink::backends::dynamo::DynamoStore::new(dynamo, table)))
}
