//! Which backends a [`crate::Stack`] runs on, and where moto is.

/// The backends a stack runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite store and queues, the local key file and the file outbox, in a temp directory.
    Embedded,
    /// DynamoDB, SQS and KMS on moto (`FORCELINK_TEST_MOTO_URL`); mail to the file outbox.
    Moto,
}

impl Backend {
    /// Both, embedded first.
    pub const ALL: [Backend; 2] = [Backend::Embedded, Backend::Moto];

    /// moto's base URL; panics with how to start it when `FORCELINK_TEST_MOTO_URL` is unset
    /// (`infra/test.sh` starts moto and sets it).
    pub fn moto_url() -> String {
        std::env::var("FORCELINK_TEST_MOTO_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
            panic!(
                "FORCELINK_TEST_MOTO_URL is not set: start moto \
                 (~/.cache/forcelink-venv/bin/python infra/testing/moto_serial_dynamodb.py 127.0.0.1 5621 &) \
                 and export FORCELINK_TEST_MOTO_URL=http://127.0.0.1:5621, or run bash infra/test.sh"
            )
        })
    }
}
