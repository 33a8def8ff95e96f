//! Connection verbs: `connect`, `invite`, `connection rename|remove|default`.

use std::process::ExitCode;

use clap::Subcommand;
use forcelink::salesforce::connections;
use forcelink::{Deps, Settings};

/// `forcelink connection …`.
#[derive(Subcommand, Debug, Clone)]
pub enum ConnectionCommand {
    /// Rename a connection (tokens are re-sealed; workflows, exports and sync jobs follow).
    Rename { site: String, from: String, to: String },
    /// Revoke a connection's tokens at Salesforce and delete it.
    Remove { site: String, name: String },
    /// Make a connection the site's default for export and sync.
    Default { site: String, name: String },
}

/// `forcelink connect SITE [--connection NAME]`: prints the URL that starts authorization.
pub async fn connect(settings: Settings, site: &str, connection: Option<&str>) -> anyhow::Result<ExitCode> {
    let deps = Deps::from_settings(settings).await?;
    let url = connections::connect_url(&deps, site, connection).await?;
    println!("Open this URL in a browser and log in to Salesforce as the integration user (valid {} h):", connections::CONNECT_HOURS);
    println!("{url}");
    Ok(ExitCode::SUCCESS)
}

/// `forcelink invite SITE [--email E] [--connection NAME]`: the connection's sync user by default.
pub async fn invite(settings: Settings, site: &str, email: Option<&str>, connection: Option<&str>) -> anyhow::Result<ExitCode> {
    if let Some(email) = email {
        anyhow::ensure!(email.contains('@'), "--email {email:?} is not an email address");
    }
    let deps = Deps::from_settings(settings).await?;
    let (to, link) = connections::invite(&deps, site, connection, email).await?;
    println!("invitation sent to {to} (valid {} days): {link}", connections::INVITE_DAYS);
    Ok(ExitCode::SUCCESS)
}

/// `forcelink connection …`.
pub async fn run(settings: Settings, command: ConnectionCommand) -> anyhow::Result<ExitCode> {
    let deps = Deps::from_settings(settings).await?;
    match command {
        ConnectionCommand::Rename { site, from, to } => {
            connections::rename(&deps, &site, &from, &to).await?;
            println!("connection {site}/{from} is now {site}/{to}");
            println!("note: rename it in the site's TOML too, or the next apply adds {from:?} back as pending");
        }
        ConnectionCommand::Remove { site, name } => {
            let revoked = connections::remove(&deps, &site, &name).await?;
            if revoked {
                println!("connection {site}/{name} removed; its tokens are revoked at Salesforce");
            } else {
                println!(
                    "connection {site}/{name} removed; Salesforce could not be reached to revoke its tokens: revoke the app's access in Salesforce Setup"
                );
            }
        }
        ConnectionCommand::Default { site, name } => {
            connections::set_default(&deps, &site, &name).await?;
            println!("{site}: default connection is now {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
