//! Building the AWS SDK configuration and the service clients the AWS backends share.
//!
//! On Lambda, [`aws_config`] with no endpoint reads the usual environment (region, credentials,
//! `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_<SERVICE>`). Against a local emulator
//! such as moto, [`emulator_config`] also sets static test credentials and a region. [`Aws`]
//! builds each service client with the [`CallMeter`]'s interceptor, so every call is counted.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

use super::meter::{self, CallMeter};

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

/// An SDK configuration and the meter its clients count into.
#[derive(Clone, Debug)]
pub struct Aws {
    pub config: SdkConfig,
    pub meter: CallMeter,
}

/// One metered client constructor per service.
macro_rules! metered_clients {
    ($($(#[$doc:meta])* $name:ident => $sdk:ident;)*) => {
        impl Aws {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> $sdk::Client {
                    $sdk::Client::from_conf($sdk::config::Builder::from(&self.config).interceptor(self.meter.interceptor()).build())
                }
            )*
        }
    };
}

metered_clients! {
    /// A DynamoDB client.
    dynamodb => aws_sdk_dynamodb;
    /// An SQS client.
    sqs => aws_sdk_sqs;
    /// A KMS client.
    kms => aws_sdk_kms;
    /// An SES v2 client.
    sesv2 => aws_sdk_sesv2;
    /// An SSM client.
    ssm => aws_sdk_ssm;
}

impl Aws {
    /// `config` counted into `meter`, with `added_latency` before every call when given
    /// (benchmarks; see [`meter::with_added_latency`]).
    pub fn new(config: SdkConfig, meter: CallMeter, added_latency: Option<Duration>) -> Self {
        let config = match added_latency {
            Some(latency) => meter::with_added_latency(&config, latency),
            None => config,
        };
        Self { config, meter }
    }

    /// The environment's configuration ([`aws_config`] with no endpoint override).
    pub async fn from_env(meter: CallMeter, added_latency: Option<Duration>) -> Self {
        Self::new(aws_config(None).await, meter, added_latency)
    }
}
