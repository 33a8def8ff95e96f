//! Typed settings, read once from the environment at start.
//!
//! A missing or invalid variable stops the process with the variable's name and what it
//! expects. [`Settings::from_lookup`] takes any lookup so tests need not touch the environment;
//! [`Settings::embedded`] is the usual one for tests, benchmarks and demos.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// SQLite files under a data directory, a local key file, a file outbox or SMTP.
    Embedded { data_dir: PathBuf },
    /// DynamoDB, SQS, KMS and SES.
    Aws { table: String, queue_url: String, dlq_url: Option<String>, kms_key_id: String },
}

/// How email leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// One `.eml` file per message under this directory.
    Outbox(PathBuf),
    /// An SMTP relay, `smtp://host:port` (plain) or `smtps://host:port` (TLS).
    Smtp(Url),
    /// Amazon SES v2.
    Ses,
}

/// The Salesforce app forcelink authorizes as, and the API it speaks.
#[derive(Clone, PartialEq, Eq)]
pub struct SalesforceSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Where the client secret lives on AWS (`FORCELINK_SF_CLIENT_SECRET_REF`): an SSM
    /// SecureString parameter name, resolved once at start into `client_secret`.
    pub client_secret_ref: Option<String>,
    /// Production login host.
    pub login_url: Url,
    /// Sandbox login host.
    pub sandbox_url: Url,
    /// REST API version, e.g. `64.0`.
    pub api_version: String,
    /// Days an unused refresh token lives (`FORCELINK_SF_REFRESH_IDLE_DAYS`, default 30: the
    /// client app's refresh token policy); the scheduled credential check refreshes well before.
    pub refresh_idle_days: u32,
}

impl std::fmt::Debug for SalesforceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceSettings")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("client_secret_ref", &self.client_secret_ref)
            .field("login_url", &self.login_url.as_str())
            .field("sandbox_url", &self.sandbox_url.as_str())
            .field("api_version", &self.api_version)
            .field("refresh_idle_days", &self.refresh_idle_days)
            .finish()
    }
}

/// Every setting forcelink reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub backend: Backend,
    pub mail: MailTransport,
    /// Sender of forcelink's own mail (warnings, invitations) when a site sets none.
    pub mail_from: String,
    /// The public base URL of forcelink's HTTP routes (OAuth callback, links, endpoints).
    pub public_url: Url,
    /// A PEM file of extra root certificates the Salesforce HTTP client trusts.
    pub extra_ca_file: Option<PathBuf>,
    pub http_timeout: Duration,
    /// Incremental sync reads stop this far before now (`FORCELINK_SYNC_LAG_SECS`, default 300),
    /// so a record whose transaction commits late with an earlier `SystemModstamp` is read by
    /// a later run instead of falling behind the watermark.
    pub sync_lag: Duration,
    /// Receives after which the embedded queue dead-letters a message.
    pub queue_max_receives: u32,
    /// The workflow queue's SQS URL (AWS; `FORCELINK_WORKFLOW_QUEUE_URL`): outbound-webhook
    /// persists notifications, acknowledges, then runs their tasks from this queue.
    /// The embedded backend always has one (`workflow` in `queue.db`).
    pub workflow_queue_url: Option<String>,
    /// How long run reports are kept (`FORCELINK_RUN_RETENTION_DAYS`, default 90).
    pub run_retention: Duration,
    pub salesforce: SalesforceSettings,
    /// JSON log lines (Lambda) rather than text.
    pub json_logs: bool,
    /// A fixed latency added before every AWS call (`FORCELINK_AWS_ADDED_LATENCY_MS`), so a
    /// benchmark can count sequential round trips; refused on Lambda.
    pub aws_added_latency: Option<Duration>,
}

/// A setting that is missing or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{var} is not set: {expected}")]
    Missing { var: &'static str, expected: &'static str },
    #[error("{var}={value:?} is invalid: expected {expected}")]
    Invalid { var: &'static str, value: String, expected: &'static str },
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads settings through `get` (a variable's value, `None` when unset).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(&get);
        let aws = match env.get("FORCELINK_BACKEND").as_deref() {
            None | Some("embedded") => false,
            Some("aws") => true,
            Some(other) => return Err(invalid("FORCELINK_BACKEND", other, "`embedded` or `aws`")),
        };
        let backend = if aws {
            Backend::Aws {
                table: env.required("FORCELINK_TABLE", "the DynamoDB table name")?,
                queue_url: env.required("FORCELINK_QUEUE_URL", "the export queue's SQS URL")?,
                dlq_url: env.get("FORCELINK_DLQ_URL"),
                kms_key_id: env.required("FORCELINK_KMS_KEY_ID", "the KMS key id or ARN that wraps data keys")?,
            }
        } else {
            Backend::Embedded { data_dir: env.get("FORCELINK_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.into()).into() }
        };
        let mail = match env.get("FORCELINK_MAILER") {
            None if aws => MailTransport::Ses,
            None => match &backend {
                Backend::Embedded { data_dir } => MailTransport::Outbox(data_dir.join("outbox")),
                Backend::Aws { .. } => MailTransport::Ses,
            },
            Some(v) if v == "ses" => MailTransport::Ses,
            Some(v) if v.starts_with("smtp://") || v.starts_with("smtps://") => {
                MailTransport::Smtp(Url::parse(&v).map_err(|_| invalid("FORCELINK_MAILER", &v, MAILER_EXPECTED))?)
            }
            Some(v) => match v.strip_prefix("outbox:") {
                Some(dir) if !dir.is_empty() => MailTransport::Outbox(dir.into()),
                _ if v == "outbox" => match &backend {
                    Backend::Embedded { data_dir } => MailTransport::Outbox(data_dir.join("outbox")),
                    Backend::Aws { .. } => return Err(invalid("FORCELINK_MAILER", &v, "`outbox:DIR` on AWS")),
                },
                _ => return Err(invalid("FORCELINK_MAILER", &v, MAILER_EXPECTED)),
            },
        };
        Ok(Self {
            backend,
            mail,
            mail_from: env.get("FORCELINK_MAIL_FROM").unwrap_or_else(|| "forcelink <noreply@forcelink.localhost>".into()),
            public_url: env.url("FORCELINK_PUBLIC_URL", "http://127.0.0.1:8080")?,
            extra_ca_file: env.get("FORCELINK_EXTRA_CA_FILE").map(PathBuf::from),
            http_timeout: Duration::from_secs(env.number("FORCELINK_HTTP_TIMEOUT_SECS", 30, 1..=900)?),
            sync_lag: Duration::from_secs(env.number("FORCELINK_SYNC_LAG_SECS", 300, 0..=86_400)?),
            queue_max_receives: env.number("FORCELINK_QUEUE_MAX_RECEIVES", 5, 1..=1000)? as u32,
            workflow_queue_url: env.get("FORCELINK_WORKFLOW_QUEUE_URL"),
            run_retention: Duration::from_secs(env.number("FORCELINK_RUN_RETENTION_DAYS", 90, 1..=3650)? * 24 * 3600),
            salesforce: SalesforceSettings {
                client_id: env.get("FORCELINK_SF_CLIENT_ID"),
                client_secret: env.get("FORCELINK_SF_CLIENT_SECRET"),
                client_secret_ref: env.get("FORCELINK_SF_CLIENT_SECRET_REF"),
                login_url: env.url("FORCELINK_SF_LOGIN_URL", "https://login.salesforce.com")?,
                sandbox_url: env.url("FORCELINK_SF_SANDBOX_URL", "https://test.salesforce.com")?,
                api_version: env.api_version()?,
                refresh_idle_days: env.number("FORCELINK_SF_REFRESH_IDLE_DAYS", 30, 3..=3650)? as u32,
            },
            json_logs: match env.get("FORCELINK_LOG_FORMAT").as_deref() {
                None => std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() && aws,
                Some("json") => true,
                Some("text") => false,
                Some(other) => return Err(invalid("FORCELINK_LOG_FORMAT", other, "`json` or `text`")),
            },
            aws_added_latency: env.added_latency()?,
        })
    }

    /// The embedded stack in `data_dir`, optionally trusting `extra_ca_file` (e.g. the
    /// Salesforce simulator's CA) and served at `public_url`; every other setting is its
    /// default. Exactly what `FORCELINK_DATA_DIR`, `FORCELINK_EXTRA_CA_FILE` and
    /// `FORCELINK_PUBLIC_URL` alone would give. A path that is not UTF-8 is refused (the
    /// environment could not carry it either).
    pub fn embedded(data_dir: &Path, extra_ca_file: Option<&Path>, public_url: Option<&str>) -> Result<Self, SettingsError> {
        let data_dir = utf8_path("FORCELINK_DATA_DIR", data_dir)?;
        let extra_ca_file = extra_ca_file.map(|p| utf8_path("FORCELINK_EXTRA_CA_FILE", p)).transpose()?;
        Self::from_lookup(|var| match var {
            "FORCELINK_DATA_DIR" => Some(data_dir.to_string()),
            "FORCELINK_EXTRA_CA_FILE" => extra_ca_file.map(str::to_string),
            "FORCELINK_PUBLIC_URL" => public_url.map(str::to_string),
            _ => None,
        })
    }

    /// The embedded data directory, when on embedded backends.
    pub fn data_dir(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Embedded { data_dir } => Some(data_dir),
            Backend::Aws { .. } => None,
        }
    }
}

/// The embedded data directory when `FORCELINK_DATA_DIR` is unset; on AWS, where the CLI keeps
/// its local files (the simulator's CA).
pub const DEFAULT_DATA_DIR: &str = ".forcelink";

const MAILER_EXPECTED: &str = "`outbox`, `outbox:DIR`, `smtp://host:port`, `smtps://host:port` or `ses`";

fn invalid(var: &'static str, value: &str, expected: &'static str) -> SettingsError {
    SettingsError::Invalid { var, value: value.into(), expected }
}

fn utf8_path<'a>(var: &'static str, path: &'a Path) -> Result<&'a str, SettingsError> {
    path.to_str().ok_or_else(|| invalid(var, &path.to_string_lossy(), "a UTF-8 path"))
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str, expected: &'static str) -> Result<String, SettingsError> {
        self.get(var).ok_or(SettingsError::Missing { var, expected })
    }

    fn url(&self, var: &'static str, default: &str) -> Result<Url, SettingsError> {
        let value = self.get(var).unwrap_or_else(|| default.into());
        match Url::parse(&value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
            _ => Err(invalid(var, &value, "an absolute http(s) URL")),
        }
    }

    fn number(&self, var: &'static str, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, SettingsError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().ok().filter(|n| range.contains(n)).ok_or_else(|| invalid(var, &v, "a whole number in range")),
        }
    }

    fn added_latency(&self) -> Result<Option<Duration>, SettingsError> {
        const VAR: &str = "FORCELINK_AWS_ADDED_LATENCY_MS";
        match self.get(VAR) {
            Some(v) if self.get("AWS_LAMBDA_FUNCTION_NAME").is_some() => Err(invalid(VAR, &v, "unset on Lambda (benchmarks only)")),
            Some(_) => Ok(Some(Duration::from_millis(self.number(VAR, 0, 1..=10_000)?))),
            None => Ok(None),
        }
    }

    fn api_version(&self) -> Result<String, SettingsError> {
        let value = self.get("FORCELINK_SF_API_VERSION").unwrap_or_else(|| "64.0".into());
        let ok = value.split_once('.').is_some_and(|(major, minor)| major.parse::<u32>().is_ok_and(|m| m >= 55) && minor == "0");
        if ok { Ok(value) } else { Err(invalid("FORCELINK_SF_API_VERSION", &value, "a Salesforce API version 55.0 or later, like 64.0")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: std::collections::HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_to_embedded_with_an_outbox() {
        let s = from(&[]).unwrap();
        assert_eq!(s.backend, Backend::Embedded { data_dir: ".forcelink".into() });
        assert_eq!(s.mail, MailTransport::Outbox(".forcelink/outbox".into()));
        assert_eq!(s.salesforce.api_version, "64.0");
        assert_eq!(s.public_url.as_str(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn aws_names_the_missing_variable() {
        let err = from(&[("FORCELINK_BACKEND", "aws"), ("FORCELINK_TABLE", "t")]).unwrap_err();
        assert_eq!(err, SettingsError::Missing { var: "FORCELINK_QUEUE_URL", expected: "the export queue's SQS URL" });
        assert!(err.to_string().starts_with("FORCELINK_QUEUE_URL is not set"));
    }

    #[test]
    fn aws_defaults_to_ses() {
        let s =
            from(&[("FORCELINK_BACKEND", "aws"), ("FORCELINK_TABLE", "t"), ("FORCELINK_QUEUE_URL", "q"), ("FORCELINK_KMS_KEY_ID", "k")])
                .unwrap();
        assert_eq!(s.mail, MailTransport::Ses);
    }

    #[test]
    fn invalid_values_name_variable_and_expectation() {
        for (var, value) in [
            ("FORCELINK_BACKEND", "postgres"),
            ("FORCELINK_PUBLIC_URL", "not a url"),
            ("FORCELINK_HTTP_TIMEOUT_SECS", "0"),
            ("FORCELINK_SF_API_VERSION", "48.0"),
            ("FORCELINK_MAILER", "pigeon"),
        ] {
            let err = from(&[(var, value)]).unwrap_err();
            assert!(matches!(&err, SettingsError::Invalid { var: v, .. } if *v == var), "{err}");
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn embedded_equals_its_variables() {
        let (dir, ca) = (Path::new("/tmp/fl"), Path::new("/tmp/ca.pem"));
        let s = Settings::embedded(dir, Some(ca), Some("http://127.0.0.1:9")).unwrap();
        let vars =
            [("FORCELINK_DATA_DIR", "/tmp/fl"), ("FORCELINK_EXTRA_CA_FILE", "/tmp/ca.pem"), ("FORCELINK_PUBLIC_URL", "http://127.0.0.1:9")];
        assert_eq!(s, from(&vars).unwrap());
        assert_eq!(s.mail, MailTransport::Outbox(dir.join("outbox")));
        assert_eq!(Settings::embedded(dir, None, None).unwrap(), from(&vars[..1]).unwrap());
        let err = Settings::embedded(dir, None, Some("not a url")).unwrap_err();
        assert!(matches!(err, SettingsError::Invalid { var: "FORCELINK_PUBLIC_URL", .. }), "{err}");
    }

    #[test]
    fn added_latency_is_for_benchmarks_only() {
        assert_eq!(from(&[]).unwrap().aws_added_latency, None);
        let s = from(&[("FORCELINK_AWS_ADDED_LATENCY_MS", "20")]).unwrap();
        assert_eq!(s.aws_added_latency, Some(Duration::from_millis(20)));
        for bad in ["0", "x", "10001"] {
            assert!(from(&[("FORCELINK_AWS_ADDED_LATENCY_MS", bad)]).is_err(), "{bad}");
        }
        let err = from(&[("FORCELINK_AWS_ADDED_LATENCY_MS", "20"), ("AWS_LAMBDA_FUNCTION_NAME", "link-redirect")]).unwrap_err();
        assert!(err.to_string().contains("unset on Lambda"), "{err}");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let s = from(&[("FORCELINK_SF_CLIENT_SECRET", "s3cr3t")]).unwrap();
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }
}
