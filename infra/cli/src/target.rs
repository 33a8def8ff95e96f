//! Where the CLI's verbs act: the embedded store under a data directory (default), or AWS
//! with `--table`/`--queue-url`/`--kms-key-id` (or the `FORCELINK_*` variables the functions use).

use std::path::PathBuf;

use clap::Args;
use forcelink::Settings;

/// Global options choosing the backend.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Embedded data directory.
    #[arg(long, global = true, env = "FORCELINK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// DynamoDB table: act on AWS instead of the embedded store.
    #[arg(long, global = true)]
    pub table: Option<String>,
    /// The export queue's SQS URL (with --table).
    #[arg(long, global = true)]
    pub queue_url: Option<String>,
    /// The KMS key that wraps data keys (with --table).
    #[arg(long, global = true)]
    pub kms_key_id: Option<String>,
}

impl Target {
    /// Where local files live on either backend: the data directory (default `.forcelink`).
    pub fn local_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| forcelink::settings::DEFAULT_DATA_DIR.into())
    }

    /// Settings from the environment, with these options on top.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let overrides: Vec<(&str, String)> = [
            self.data_dir.as_ref().map(|d| ("FORCELINK_DATA_DIR", d.display().to_string())),
            self.table.as_ref().map(|_| ("FORCELINK_BACKEND", "aws".to_string())),
            self.table.clone().map(|t| ("FORCELINK_TABLE", t)),
            self.queue_url.clone().map(|q| ("FORCELINK_QUEUE_URL", q)),
            self.kms_key_id.clone().map(|k| ("FORCELINK_KMS_KEY_ID", k)),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(Settings::from_lookup(|name| {
            overrides
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
        })?)
    }
}
