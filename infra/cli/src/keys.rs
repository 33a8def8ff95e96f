//! `forcelink retire-key KID`: stop verifying an old HMAC signing key.

use std::process::ExitCode;
use std::sync::Arc;

use forcelink::Settings;
use forcelink::backends::dynamo::DynamoStore;
use forcelink::backends::kms::KmsKeyRing;
use forcelink::backends::local_keyring::LocalKeyRing;
use forcelink::deps::files;
use forcelink::settings::Backend;

/// Retires `kid` in the key file or the KMS-encrypted keyset. Running processes stop accepting
/// it on their next key reload (within five minutes, or at once when they meet an unknown key).
pub async fn retire_key(settings: Settings, kid: &str) -> anyhow::Result<ExitCode> {
    let retired = match &settings.backend {
        Backend::Embedded { data_dir } => LocalKeyRing::retire(&data_dir.join(files::KEYS), kid)?,
        Backend::Aws { table, kms_key_id, .. } => {
            let config = forcelink::backends::aws::aws_config(None).await;
            let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table.clone()));
            let ring = KmsKeyRing::load(aws_sdk_kms::Client::new(&config), kms_key_id.clone(), store).await?;
            ring.retire(kid).await?
        }
    };
    if retired {
        println!("retired signing key {kid}: links and URLs it signed stop working (running processes within 5 minutes)");
    } else {
        println!("signing key {kid} was already retired");
    }
    Ok(ExitCode::SUCCESS)
}
