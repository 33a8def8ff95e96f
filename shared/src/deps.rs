//! `Deps`: the ports a handler works through, built once at start from [`Settings`].
//!
//! On AWS: DynamoDB, SQS, KMS and SES. Embedded (`forcelink dev`, tests): SQLite files, a
//! local key file and a file outbox or SMTP, all under the data directory.

use std::sync::Arc;

use crate::backends::aws::Aws;
#[cfg(feature = "embedded")]
use crate::backends::local_keyring::LocalKeyRing;
use crate::backends::meter::CallMeter;
#[cfg(feature = "embedded")]
use crate::backends::outbox::OutboxMailer;
#[cfg(feature = "embedded")]
use crate::backends::smtp::SmtpMailer;
#[cfg(feature = "embedded")]
use crate::backends::sqlite_queue::{QueueConfig, SqliteQueue};
#[cfg(feature = "embedded")]
use crate::backends::sqlite_store::SqliteStore;
use crate::backends::{dynamo::DynamoStore, kms::KmsKeyRing, ses::SesMailer, sqs::SqsQueue};
use crate::http_client::{self, HttpClientError};
use crate::ports::{Clock, KeyError, KeyRing, MailError, Mailer, Queue, QueueError, Store, StoreError, SystemClock};
use crate::settings::{Backend, MailTransport, Settings, SettingsError};

/// Everything a handler needs, shared by reference.
#[derive(Clone)]
pub struct Deps {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    /// The export queue.
    pub queue: Arc<dyn Queue>,
    /// The export queue's dead-letter queue, where one is reachable.
    pub dead_letters: Option<Arc<dyn Queue>>,
    /// The workflow queue: outbound notifications whose tasks are to run (always embedded;
    /// on AWS when `FORCELINK_WORKFLOW_QUEUE_URL` is set).
    pub workflow_queue: Option<Arc<dyn Queue>>,
    pub mailer: Arc<dyn Mailer>,
    pub keys: Arc<dyn KeyRing>,
    pub clock: Arc<dyn Clock>,
    /// The one outbound HTTP client (Salesforce).
    pub http: reqwest::Client,
    /// Salesforce access tokens cached in memory, per connection (see [`crate::salesforce`]).
    pub salesforce: crate::salesforce::Sessions,
    /// Every AWS API call made through these dependencies, by operation.
    pub aws_calls: CallMeter,
}

/// Building the dependencies failed; the process should stop with this message.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    #[error("keys: {0}")]
    Keys(#[from] KeyError),
    #[error("mailer: {0}")]
    Mail(#[from] MailError),
    #[error(transparent)]
    Http(#[from] HttpClientError),
    /// The settings ask for a backend this build leaves out (the Lambda binaries have no
    /// embedded backends).
    #[error("{0} is not in this build: {1}")]
    NotBuiltIn(&'static str, &'static str),
    /// `FORCELINK_SF_CLIENT_SECRET_REF` names something forcelink cannot read a secret from.
    #[error("FORCELINK_SF_CLIENT_SECRET_REF: {0}")]
    ClientSecret(String),
    /// The SSM parameter `FORCELINK_SF_CLIENT_SECRET_REF` names could not be read.
    #[error("FORCELINK_SF_CLIENT_SECRET_REF: cannot read SSM parameter {name}")]
    Ssm {
        name: String,
        #[source]
        source: crate::ports::BackendError,
    },
}

/// File names under the embedded data directory.
pub mod files {
    /// The embedded store.
    pub const STORE: &str = "store.db";
    /// The embedded queues.
    pub const QUEUE: &str = "queue.db";
    /// The local key file (0600).
    pub const KEYS: &str = "keys.json";
    /// The export queue's name in the queue file.
    pub const EXPORT_QUEUE: &str = "export";
    /// Its dead-letter queue's name.
    pub const EXPORT_DLQ: &str = "export-dlq";
    /// The workflow queue's name in the queue file.
    pub const WORKFLOW_QUEUE: &str = "workflow";
    /// Its dead-letter queue's name.
    pub const WORKFLOW_DLQ: &str = "workflow-dlq";
}

impl Deps {
    /// Reads the environment and builds the dependencies.
    pub async fn from_env() -> Result<Self, DepsError> {
        Self::from_settings(Settings::from_env()?).await
    }

    /// Builds the dependencies for `settings`.
    pub async fn from_settings(settings: Settings) -> Result<Self, DepsError> {
        Self::from_settings_with(settings, None).await
    }

    /// As [`Self::from_settings`], with the AWS backends on `aws` instead of the SDK
    /// configuration the environment gives (e.g. [`aws::emulator_config`]: tests build
    /// several stacks in one process without touching its environment).
    pub async fn from_settings_with(settings: Settings, aws: Option<&aws_config::SdkConfig>) -> Result<Self, DepsError> {
        let aws_calls = CallMeter::default();
        let settings = crate::salesforce::secret::resolve(settings, &aws_calls).await?;
        let http = http_client::build(&settings)?;
        let deps = match &settings.backend {
            #[cfg(not(feature = "embedded"))]
            Backend::Embedded { .. } => {
                return Err(DepsError::NotBuiltIn(
                    "the embedded backend",
                    "set FORCELINK_BACKEND=aws (the Lambda functions run on AWS only)",
                ));
            }
            #[cfg(feature = "embedded")]
            Backend::Embedded { data_dir } => {
                let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data_dir.join(files::STORE))?);
                let config = QueueConfig {
                    max_receives: settings.queue_max_receives,
                    dead_letter: Some(files::EXPORT_DLQ.into()),
                    ..QueueConfig::default()
                };
                let queue = SqliteQueue::open(&data_dir.join(files::QUEUE), files::EXPORT_QUEUE, config)?;
                let dlq = queue.sibling(files::EXPORT_DLQ, QueueConfig::default());
                let workflow_config = QueueConfig {
                    max_receives: settings.queue_max_receives,
                    dead_letter: Some(files::WORKFLOW_DLQ.into()),
                    ..QueueConfig::default()
                };
                let workflow_queue = queue.sibling(files::WORKFLOW_QUEUE, workflow_config);
                Self {
                    store,
                    queue: Arc::new(queue),
                    dead_letters: Some(Arc::new(dlq)),
                    workflow_queue: Some(Arc::new(workflow_queue)),
                    mailer: mailer(&settings, None, &aws_calls).await?,
                    keys: Arc::new(LocalKeyRing::open(&data_dir.join(files::KEYS))?),
                    clock: Arc::new(SystemClock),
                    http,
                    salesforce: Default::default(),
                    aws_calls,
                    settings: Arc::new(settings),
                }
            }
            Backend::Aws { table, queue_url, dlq_url, kms_key_id } => {
                let aws = match aws {
                    Some(config) => Aws::new(config.clone(), aws_calls.clone(), settings.aws_added_latency),
                    None => Aws::from_env(aws_calls.clone(), settings.aws_added_latency).await,
                };
                let store: Arc<dyn Store> = Arc::new(DynamoStore::new(aws.dynamodb(), table.clone()));
                let sqs = aws.sqs();
                let keys = KmsKeyRing::load(aws.kms(), kms_key_id.clone(), store.clone()).await?;
                Self {
                    store,
                    queue: Arc::new(SqsQueue::new(sqs.clone(), queue_url.clone())),
                    dead_letters: dlq_url.as_ref().map(|url| Arc::new(SqsQueue::new(sqs.clone(), url.clone())) as Arc<dyn Queue>),
                    workflow_queue: settings
                        .workflow_queue_url
                        .as_ref()
                        .map(|url| Arc::new(SqsQueue::new(sqs, url.clone())) as Arc<dyn Queue>),
                    mailer: mailer(&settings, Some(&aws), &aws_calls).await?,
                    keys: Arc::new(keys),
                    clock: Arc::new(SystemClock),
                    http,
                    salesforce: Default::default(),
                    aws_calls,
                    settings: Arc::new(settings),
                }
            }
        };
        Ok(deps)
    }
}

async fn mailer(settings: &Settings, aws: Option<&Aws>, meter: &CallMeter) -> Result<Arc<dyn Mailer>, DepsError> {
    Ok(match &settings.mail {
        #[cfg(feature = "embedded")]
        MailTransport::Outbox(dir) => Arc::new(OutboxMailer::new(dir.clone())),
        #[cfg(feature = "embedded")]
        MailTransport::Smtp(url) => Arc::new(SmtpMailer::new(url)?),
        #[cfg(not(feature = "embedded"))]
        MailTransport::Outbox(_) | MailTransport::Smtp(_) => {
            return Err(DepsError::NotBuiltIn("the outbox and SMTP mailers", "set FORCELINK_MAILER=ses"));
        }
        MailTransport::Ses => {
            let client = match aws {
                Some(aws) => aws.sesv2(),
                None => Aws::from_env(meter.clone(), settings.aws_added_latency).await.sesv2(),
            };
            Arc::new(SesMailer::new(client))
        }
    })
}
