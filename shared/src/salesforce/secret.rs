//! forcelink's own client secret on AWS: `FORCELINK_SF_CLIENT_SECRET_REF` names an SSM
//! SecureString parameter, read once at start. `FORCELINK_SF_CLIENT_SECRET` (dev) wins.

use crate::backends::aws::Aws;
use crate::backends::meter::CallMeter;
use crate::deps::DepsError;
use crate::settings::Settings;

/// Fills `settings.salesforce.client_secret` from its reference, when only the reference is set
/// (the SSM call counted into `meter`).
pub async fn resolve(mut settings: Settings, meter: &CallMeter) -> Result<Settings, DepsError> {
    let sf = &settings.salesforce;
    let Some(reference) = sf.client_secret_ref.clone().filter(|_| sf.client_secret.is_none()) else {
        return Ok(settings);
    };
    if reference.starts_with("arn:") && reference.contains(":secretsmanager:") {
        return Err(DepsError::ClientSecret(
            "a Secrets Manager ARN is not supported: store the secret as an SSM SecureString parameter and pass its name".into(),
        ));
    }
    let name = match reference.strip_prefix("arn:") {
        // arn:aws:ssm:REGION:ACCOUNT:parameter/NAME → /NAME
        Some(_) => reference.split_once(":parameter").map(|(_, n)| n.to_string()).unwrap_or(reference.clone()),
        None => reference.clone(),
    };
    let ssm = Aws::from_env(meter.clone(), settings.aws_added_latency).await.ssm();
    let out = ssm
        .get_parameter()
        .name(&name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| DepsError::Ssm { name: name.clone(), source: crate::ports::BackendError::new("SSM", e) })?;
    let value = out.parameter.and_then(|p| p.value).filter(|v| !v.is_empty());
    match value {
        Some(v) => {
            settings.salesforce.client_secret = Some(v);
            Ok(settings)
        }
        None => Err(DepsError::ClientSecret(format!("SSM parameter {name} is empty"))),
    }
}
