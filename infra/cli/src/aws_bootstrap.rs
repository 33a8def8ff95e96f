//! `forcelink aws-bootstrap`: on an AWS emulator (moto) only, creates the table, the queues
//! and the KMS key as `template.yaml` lays them out, idempotently
//! ([`forcelink::backends::emulator`]), and prints the settings that point forcelink at them
//! as `export NAME=value` lines for `eval`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

/// The region and credentials of [`forcelink::backends::aws::emulator_config`], printed so
/// that every later process signs its requests the same way.
const EMULATOR_ENV: [(&str, &str); 3] = [("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")];

/// Options of `forcelink aws-bootstrap`.
#[derive(Args, Debug, Clone)]
pub struct BootstrapArgs {
    /// Stands for the stack name: the table is `PREFIX-table`, the queues `PREFIX-export-queue`
    /// and so on, the key alias `alias/PREFIX-tokens`.
    #[arg(long, default_value = "forcelink", env = "FORCELINK_BOOTSTRAP_PREFIX", value_parser = parse_prefix)]
    pub prefix: String,
}

fn parse_prefix(s: &str) -> Result<String, String> {
    let ok = (1..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(s.to_string()) } else { Err("1 to 40 lowercase letters, digits or `-`".into()) }
}

/// Creates what is missing and prints the settings; `local_dir` holds the mail outbox.
pub async fn run(args: BootstrapArgs, local_dir: &Path) -> anyhow::Result<ExitCode> {
    let Some(endpoint) = std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()) else {
        bail!("aws-bootstrap is for an AWS emulator only: set AWS_ENDPOINT_URL (e.g. http://127.0.0.1:5621 for moto)");
    };
    let config = forcelink::backends::aws::emulator_config(&endpoint).await;
    let settings = forcelink::backends::emulator::bootstrap(&config, &args.prefix).await?;
    let mut lines = vec![("AWS_ENDPOINT_URL".to_string(), endpoint)];
    lines.extend(EMULATOR_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    lines.extend(settings);
    let outbox = std::path::absolute(local_dir.join("outbox")).context("the outbox path")?;
    lines.push(("FORCELINK_MAILER".into(), format!("outbox:{}", outbox.display())));
    for (var, value) in lines {
        println!("export {var}={}", quote(&value));
    }
    Ok(ExitCode::SUCCESS)
}

/// A value for a POSIX shell, in single quotes when it needs any.
fn quote(value: &str) -> String {
    if value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b)) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_the_shell() {
        assert_eq!(quote("http://127.0.0.1:5621/123456789012/q"), "http://127.0.0.1:5621/123456789012/q");
        assert_eq!(quote("outbox:/tmp/my dir"), "'outbox:/tmp/my dir'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(parse_prefix("demo-42").is_ok());
        assert!(parse_prefix("").is_err());
        assert!(parse_prefix("Bad_Name").is_err());
    }

    /// The local feeders gather batches as the template's event sources do.
    #[test]
    fn event_sources_match_the_local_feeders() {
        let sources = forcelink::backends::emulator::template::Template::shipped().unwrap().sqs_event_sources().unwrap();
        let of = |queue: &str| sources.iter().find(|s| s.queue == queue).cloned().unwrap();
        let export = of("ExportQueue");
        let feed = export_pusher::local::Feed::default();
        assert_eq!(export.batch_size as usize, feed.batch_size);
        assert_eq!(u64::from(export.window_secs), feed.window.as_secs());
        let workflow = of("WorkflowQueue");
        assert_eq!(workflow.batch_size as usize, forcelink::ports::Receive::default().max);
    }
}
