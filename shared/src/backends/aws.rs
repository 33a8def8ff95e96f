//! Building the AWS SDK configuration the AWS backends share.
//!
//! On Lambda, [`aws_config`] with no endpoint reads the usual environment (region, credentials,
//! `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_<SERVICE>`). Against a local emulator
//! such as moto, [`emulator_config`] also sets static test credentials and a region.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// The SDK configuration from the environment, with every service's endpoint overridden by
/// `endpoint_url` when given (otherwise `AWS_ENDPOINT_URL` and friends still apply).
pub async fn aws_config(endpoint_url: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The configuration for a local AWS emulator (moto) at `endpoint_url`: static credentials
/// `test`/`test` and region `us-east-1`, whatever the environment says.
pub async fn emulator_config(endpoint_url: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "forcelink-emulator"))
        .load()
        .await
}
