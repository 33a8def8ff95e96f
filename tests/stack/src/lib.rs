//! The end-to-end test harness: one [`Stack`] is the simulated Salesforce org (`sfsim`, in
//! process) and a forcelink stack ([`Deps`]) on either [`Backend`]: the embedded files in a
//! temporary directory, or DynamoDB, SQS and KMS on moto (`FORCELINK_TEST_MOTO_URL`) with a
//! table, queues and key of its own, laid out as `template.yaml` deploys them. The suites
//! write each test body once and run it on both with [`both_backends!`]. [`fixtures`] holds
//! the site files they share, [`dev`] runs the `forcelink dev` binary for the CLI's tests.

mod backend;
pub mod dev;
pub mod fixtures;
mod stack;
mod write_count;

pub use backend::Backend;
pub use stack::{CLIENT_ID, CLIENT_SECRET, Stack};
pub use write_count::WriteCount;

/// Runs each named `async fn(Backend)` as two tests, `NAME::embedded` and `NAME::moto`
/// (`cargo test ::moto` picks the moto ones), on a multi-threaded runtime.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name($crate::Backend::Embedded).await
            }

            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn moto() {
                super::$name($crate::Backend::Moto).await
            }
        }
    )+};
}
