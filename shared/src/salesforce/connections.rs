//! Managing a site's connections (`forcelink connection …`, `invite`, `connect`): rename,
//! remove (revoking tokens at Salesforce), the site's default, invitations and connect URLs.

use serde::{Deserialize, Serialize};

use super::error::SfError;
use super::oauth;
use super::session::{self, CLIENT_SECRET, open_tokens, seal_tokens};
use super::signed::{self, Expiring, Purpose};
use crate::deps::Deps;
use crate::domain::connection::{ClientApp, Connection, ConnectionStatus, Invited};
use crate::domain::keys;
use crate::domain::record::{self, Record, Versioned};
use crate::domain::site::Site;
use crate::ports::keyring::Sealed;
use crate::ports::mailer::Email;
use crate::ports::store::{Cond, Query, WriteOp};

/// How long an invitation link works.
pub const INVITE_DAYS: i64 = 7;
/// How long a `forcelink connect` URL works.
pub const CONNECT_HOURS: i64 = 24;

/// What an invitation (or a connect ticket) says. Each works once: the callback that
/// authorizes the connection consumes its `nonce` (see [`ticket_used_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteClaims {
    pub site: String,
    pub connection: String,
    /// The invited person (also the login hint), the only identity that may authorize with
    /// an invitation; `None` on a connect ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Random, 128 bits: names the ticket for its single use.
    pub nonce: String,
    pub exp: i64,
}

impl InviteClaims {
    fn new(site: &str, connection: &str, email: Option<&str>, exp: i64) -> Self {
        let nonce = format!("{:032x}", rand::random::<u128>());
        Self { site: site.into(), connection: connection.into(), email: email.map(str::to_string), nonce, exp }
    }
}

impl Expiring for InviteClaims {
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

async fn load_site(deps: &Deps, site: &str) -> Result<Versioned<Site>, SfError> {
    Site::load(deps.store.as_ref(), site)
        .await?
        .ok_or_else(|| SfError::NotConnected(format!("no site {site:?}: apply a configuration first")))
}

/// The connection to act on: the named one or the site's default.
pub async fn pick(deps: &Deps, site: &str, connection: Option<&str>) -> Result<Connection, SfError> {
    let name = match connection {
        Some(n) => n.to_string(),
        None => load_site(deps, site)
            .await?
            .record
            .default_connection
            .ok_or_else(|| SfError::NotConnected(format!("site {site:?} has no connections")))?,
    };
    Ok(session::load(deps, site, &name).await?.record)
}

/// The URL `forcelink connect` prints: `/oauth/start` with a signed ticket (valid 24 h).
pub async fn connect_url(deps: &Deps, site: &str, connection: Option<&str>) -> Result<String, SfError> {
    let conn = pick(deps, site, connection).await?;
    let claims = InviteClaims::new(site, &conn.name, None, deps.clock.epoch_secs() + CONNECT_HOURS * 3600);
    let ticket = signed::mint(deps.keys.as_ref(), Purpose::Connect, &claims);
    let base = deps.settings.public_url.as_str().trim_end_matches('/');
    let query = serde_urlencoded::to_string([
        ("site", site),
        ("connection", conn.name.as_str()),
        ("env", &conn.environment.to_string()),
        ("ticket", &ticket),
    ])
    .unwrap_or_default();
    Ok(format!("{base}/oauth/start?{query}"))
}

/// Emails an invitation to authorize a connection to `email`, else to the connection's sync
/// user (`sync_user` in the site file); records who was invited and when. Returns the address
/// and the link.
pub async fn invite(deps: &Deps, site: &str, connection: Option<&str>, email: Option<&str>) -> Result<(String, String), SfError> {
    let site_rec = load_site(deps, site).await?.record;
    let conn = pick(deps, site, connection).await?;
    let Some(email) = email.or(conn.sync_user_email.as_deref()).map(str::to_string) else {
        return Err(SfError::NotConnected(format!(
            "connection {site}/{} has no sync_user in the site file: set one, or give the address to invite",
            conn.name
        )));
    };
    let email = email.as_str();
    let invited = Invited { email: email.to_string(), at: deps.clock.now() };
    session::update_connection(deps, site, &conn.name, |c| {
        c.sync_user_email = Some(email.to_string());
        c.invited = Some(invited.clone());
    })
    .await?;
    let claims = InviteClaims::new(site, &conn.name, Some(email), deps.clock.epoch_secs() + INVITE_DAYS * 86_400);
    let token = signed::mint(deps.keys.as_ref(), Purpose::Invite, &claims);
    let link = format!("{}/oauth/invite/{token}", deps.settings.public_url.as_str().trim_end_matches('/'));
    let text = format!(
        "Hello,\n\n{} asks you to connect its Salesforce org ({} · {}) to the platform.\n\n\
         Open this link, log in to Salesforce as the integration (sync) user and allow access:\n\n{link}\n\n\
         The link works for {INVITE_DAYS} days. If you did not expect this email, you can ignore it.\n",
        site_rec.name, conn.name, conn.environment
    );
    let mail = Email {
        from: site_rec.sender.as_ref().map_or_else(|| deps.settings.mail_from.clone(), |s| s.from.clone()),
        reply_to: site_rec.sender.as_ref().and_then(|s| s.reply_to.clone()),
        to: vec![email.to_string()],
        subject: format!("Connect Salesforce to {}", site_rec.name),
        text,
        html: None,
    };
    deps.mailer.send(&mail).await.map_err(SfError::Mail)?;
    tracing::info!(site, connection = %conn.name, "invitation sent");
    Ok((email.to_string(), link))
}

/// Invites each pending connection's configured sync user not yet invited at that address
/// (what `forcelink apply` does after writing). Answers `(site/connection, email)` per invitation.
pub async fn invite_sync_users(deps: &Deps, site: &str) -> Result<Vec<(String, String)>, SfError> {
    let pk = keys::site_pk(site);
    let conns: Vec<Connection> = record::list(deps.store.as_ref(), Query::prefix(&pk, keys::CONNECTION_PREFIX)).await?;
    let mut sent = Vec::new();
    for conn in conns.iter().filter(|c| c.status == ConnectionStatus::Pending) {
        let Some(user) = &conn.sync_user_email else { continue };
        if conn.invited.as_ref().is_some_and(|i| i.email.eq_ignore_ascii_case(user)) {
            continue;
        }
        let (to, _) = invite(deps, site, Some(&conn.name), Some(user)).await?;
        sent.push((format!("{site}/{}", conn.name), to));
    }
    Ok(sent)
}

/// Makes `connection` the site's default.
pub async fn set_default(deps: &Deps, site: &str, connection: &str) -> Result<(), SfError> {
    session::load(deps, site, connection).await?;
    let Versioned { mut record, version } = load_site(deps, site).await?;
    record.default_connection = Some(connection.to_string());
    record::save(deps.store.as_ref(), &record, Cond::Version(version)).await?;
    Ok(())
}

/// Renames a connection: re-seals its tokens and client secret under the new name and moves
/// the site default and every workflow, export mapping and sync job that named it, in one
/// transaction.
pub async fn rename(deps: &Deps, site: &str, from: &str, to: &str) -> Result<(), SfError> {
    if to.is_empty() || to.len() > 40 || !to.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(SfError::Invalid(format!("connection name {to:?}: use 1–40 letters, digits, '-' or '_'")));
    }
    let Versioned { record: old, version } = session::load(deps, site, from).await?;
    let mut new = old.clone();
    new.name = to.to_string();
    if old.tokens_sealed.is_some() {
        let bundle = open_tokens(deps.keys.as_ref(), &old).await?;
        new.tokens_sealed = Some(seal_tokens(deps.keys.as_ref(), site, to, &bundle).await?);
    }
    if let Some(client) = &old.client {
        let sealed = Sealed::decode(&client.client_secret_sealed).map_err(|e| SfError::keys(CLIENT_SECRET, e))?;
        let plain = deps
            .keys
            .open(&sealed, crate::config::client_secret_aad(site, from).as_bytes())
            .await
            .map_err(|e| SfError::keys(CLIENT_SECRET, e))?;
        let resealed = deps.keys.seal(&plain, crate::config::client_secret_aad(site, to).as_bytes()).await;
        new.client = Some(ClientApp {
            client_id: client.client_id.clone(),
            client_secret_sealed: resealed.map_err(|e| SfError::keys(CLIENT_SECRET, e))?.encode(),
        });
    }
    let pk = keys::site_pk(site);
    let mut ops = vec![
        WriteOp::Delete { pk: pk.clone(), sk: old.sk(), cond: Cond::Version(version) },
        WriteOp::Put { item: new.to_item()?, cond: Cond::NotExists },
    ];
    let Versioned { record: mut site_rec, version: site_version } = load_site(deps, site).await?;
    if site_rec.default_connection.as_deref() == Some(from) {
        site_rec.default_connection = Some(to.to_string());
        ops.push(WriteOp::Put { item: site_rec.to_item()?, cond: Cond::Version(site_version) });
    }
    for prefix in [keys::WORKFLOW_PREFIX, keys::EXPORT_PREFIX, keys::SYNC_PREFIX] {
        let items = record::all_items(deps.store.as_ref(), Query::prefix(&pk, prefix)).await?;
        for mut item in items {
            let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&item.body) else { continue };
            if value.get("connection").and_then(|v| v.as_str()) == Some(from) {
                value["connection"] = serde_json::Value::String(to.to_string());
                item.body = value.to_string();
                let cond = Cond::Version(item.version);
                ops.push(WriteOp::Put { item, cond });
            }
        }
    }
    deps.store.transact(ops).await?;
    deps.salesforce.forget(site, from);
    Ok(())
}

/// Removes a connection: revokes its refresh token at Salesforce (the whole token family),
/// deletes it, and moves the site default to another connection if it was the default.
/// Returns whether Salesforce confirmed the revocation.
pub async fn remove(deps: &Deps, site: &str, connection: &str) -> Result<bool, SfError> {
    let Versioned { record: conn, version } = session::load(deps, site, connection).await?;
    let mut revoked = conn.tokens_sealed.is_none();
    if conn.tokens_sealed.is_some() {
        let bundle = open_tokens(deps.keys.as_ref(), &conn).await?;
        let base = oauth::login_base(&deps.settings, &conn.environment);
        let token = bundle.refresh_token.as_deref().unwrap_or(&bundle.access_token);
        match oauth::revoke(&deps.http, &base, token).await {
            Ok(()) => revoked = true,
            Err(e) => tracing::warn!(site, connection, error = %e, "token revocation failed; removing anyway"),
        }
    }
    let pk = keys::site_pk(site);
    let mut ops = vec![WriteOp::Delete { pk: pk.clone(), sk: conn.sk(), cond: Cond::Version(version) }];
    let Versioned { record: mut site_rec, version: site_version } = load_site(deps, site).await?;
    if site_rec.default_connection.as_deref() == Some(connection) {
        let others: Vec<Connection> = record::list(deps.store.as_ref(), Query::prefix(&pk, keys::CONNECTION_PREFIX)).await?;
        site_rec.default_connection = others.into_iter().map(|c| c.name).find(|n| n != connection);
        ops.push(WriteOp::Put { item: site_rec.to_item()?, cond: Cond::Version(site_version) });
    }
    deps.store.transact(ops).await?;
    deps.salesforce.forget(site, connection);
    tracing::info!(site, connection, revoked, "connection removed");
    Ok(revoked)
}
