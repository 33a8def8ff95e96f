//! Warnings before a credential breaks, and the scheduled check that sends them.
//!
//! [`warnings_for`] reads one connection (no call, no write): the named problem Salesforce
//! refused it for ([`super::health`]), a refresh token idle close to its expiry, an expiry
//! date coming up (the connection's `warn_days`), an org id or instance that changed (a
//! sandbox refresh, an org migration), repeated `invalid_grant` answers. `forcelink status`
//! shows them. [`check_credentials`] runs on roster-sync's schedule ([`check_when_due`],
//! hourly): it keeps idle refresh tokens alive by refreshing them, then emails each site's
//! admin about new warnings (an expiry-date warning once per date, the others at most weekly).

use time::{Duration, OffsetDateTime};

use super::{health, session};
use crate::deps::Deps;
use crate::domain::connection::{Connection, ConnectionStatus, CredentialProblem};
use crate::domain::keys;
use crate::domain::record;
use crate::domain::site::Site;
use crate::ports::mailer::Email;
use crate::ports::store::{Cond, Item, Query, StoreError};

/// Days before the idle expiry from which the admin is warned (the keep-alive is failing).
pub const IDLE_WARN_BEFORE_DAYS: i64 = 5;
/// An org or instance change is reported for this long.
pub const CHANGE_WARN_DAYS: i64 = 7;
/// `invalid_grant` answers in a row that make a warning.
pub const INVALID_GRANT_WARN: u32 = 3;
/// The same warning is emailed again after this long (expiry-date warnings: never).
pub const REMIND_SECS: i64 = 7 * 86_400;
/// How often the scheduled check runs ([`check_when_due`]).
pub const CHECK_EVERY_SECS: i64 = 3_600;

/// When a refresh token idle for `idle_days` days needs a keep-alive refresh and a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdlePolicy {
    /// Salesforce expires refresh tokens unused this long (the app's policy; 30 by default).
    pub expiry_days: i64,
}

impl IdlePolicy {
    /// The policy of `FORCELINK_SF_REFRESH_IDLE_DAYS`.
    pub fn of(deps: &Deps) -> Self {
        Self { expiry_days: i64::from(deps.settings.salesforce.refresh_idle_days) }
    }

    /// From this many idle days the check refreshes (two thirds of the expiry: 20 of 30).
    pub fn keep_alive_days(self) -> i64 {
        (self.expiry_days * 2 / 3).max(1)
    }

    /// From this many idle days the admin is warned (25 of 30).
    pub fn warn_days(self) -> i64 {
        (self.expiry_days - IDLE_WARN_BEFORE_DAYS).max(self.keep_alive_days() + 1)
    }
}

/// What kind of trouble is coming: a named credential problem or a sign of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    AppNotInstalled,
    IpRestricted,
    UserInactive,
    TokenRevoked,
    ApiDisabled,
    AuthorizationRefused,
    IdleRefreshToken,
    ExpiresSoon,
    Expired,
    OrgChanged,
    InstanceMoved,
    RepeatedInvalidGrant,
}

impl WarningKind {
    fn key(self) -> &'static str {
        match self {
            Self::AppNotInstalled => "app_not_installed",
            Self::IpRestricted => "ip_restricted",
            Self::UserInactive => "user_inactive",
            Self::TokenRevoked => "token_revoked",
            Self::ApiDisabled => "api_disabled",
            Self::AuthorizationRefused => "authorization_refused",
            Self::IdleRefreshToken => "idle_refresh_token",
            Self::ExpiresSoon => "expires_soon",
            Self::Expired => "expired",
            Self::OrgChanged => "org_changed",
            Self::InstanceMoved => "instance_moved",
            Self::RepeatedInvalidGrant => "repeated_invalid_grant",
        }
    }

    fn of_problem(problem: CredentialProblem) -> Self {
        match problem {
            CredentialProblem::AppNotInstalled => Self::AppNotInstalled,
            CredentialProblem::IpRestricted => Self::IpRestricted,
            CredentialProblem::UserInactive => Self::UserInactive,
            CredentialProblem::TokenRevoked => Self::TokenRevoked,
            CredentialProblem::ApiDisabled => Self::ApiDisabled,
            CredentialProblem::Refused => Self::AuthorizationRefused,
        }
    }
}

/// One warning about one connection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    pub site: String,
    pub connection: String,
    pub kind: WarningKind,
    /// Plain words for the admin, with what to do.
    pub message: String,
}

/// The warnings of one connection at `now`.
pub fn warnings_for(conn: &Connection, now: OffsetDateTime, idle: IdlePolicy) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut warn = |kind, message: String| out.push(Warning { site: conn.site.clone(), connection: conn.name.clone(), kind, message });
    let reconnect = format!("run `forcelink connect {} --connection {}` or send a new invitation", conn.site, conn.name);
    let problem = conn.health.problem;
    if conn.status == ConnectionStatus::NeedsReauth {
        let p = problem.unwrap_or(CredentialProblem::Refused);
        warn(
            WarningKind::of_problem(p),
            format!("Salesforce refused the saved authorization; work for it is held. {}", health::fix(p, &conn.site, &conn.name)),
        );
    }
    if conn.status == ConnectionStatus::Connected {
        if let Some(p) = problem {
            warn(WarningKind::of_problem(p), health::fix(p, &conn.site, &conn.name));
        }
        if let Some(last) = conn.last_refreshed_at.or(conn.last_verified_at) {
            let days = (now - last).whole_days();
            if days >= idle.warn_days() {
                let left = (idle.expiry_days - days).max(0);
                warn(
                    WarningKind::IdleRefreshToken,
                    format!(
                        "The refresh token has been idle {days} days; Salesforce expires idle tokens after {} days ({left} left). If refreshing keeps failing, {reconnect}.",
                        idle.expiry_days
                    ),
                );
            }
        }
        if conn.health.invalid_grants >= INVALID_GRANT_WARN {
            warn(
                WarningKind::RepeatedInvalidGrant,
                format!(
                    "Salesforce answered invalid_grant {} times in a row to refreshes: another system may be using the same authorization; if it persists, {reconnect}.",
                    conn.health.invalid_grants
                ),
            );
        }
    }
    if let Some(on) = conn.expires_on {
        let days = (on - now.date()).whole_days();
        if days < 0 {
            warn(WarningKind::Expired, format!("The credential's expiry date {on} has passed: {reconnect}."));
        } else if days <= i64::from(conn.warn_days) {
            warn(WarningKind::ExpiresSoon, format!("The credential expires on {on}, in {days} days: {reconnect} before then."));
        }
    }
    if let Some(c) = &conn.health.org_changed
        && now - c.at <= Duration::days(CHANGE_WARN_DAYS)
    {
        warn(
            WarningKind::OrgChanged,
            format!(
                "The org id changed from {} to {} under the same login (a sandbox refresh gives the sandbox a new org id), and forcelink keeps refusing the new org until it is accepted. If the refresh was meant: update `expected_org_id` in the site file if it is set, run `forcelink connection remove {site} {name}` and `forcelink apply FILE`, then connect again; and redo what the refresh overwrote from production: install forcelink's app, its permission set, and the outbound messages' endpoint URLs (they now point at production's workflows).",
                c.from,
                c.to,
                site = conn.site,
                name = conn.name
            ),
        );
    }
    if let Some(c) = &conn.health.instance_changed
        && now - c.at <= Duration::days(CHANGE_WARN_DAYS)
    {
        warn(
            WarningKind::InstanceMoved,
            format!(
                "The org moved from {} to {} (a Salesforce instance migration); forcelink follows it. Update any allow-lists, firewall rules or tab URLs that name the old host.",
                c.from, c.to
            ),
        );
    }
    out
}

/// Runs [`check_credentials`] when its hourly turn has come (by the deps' clock), for the
/// schedule: `None` when it is not due or another invocation took the turn.
pub async fn check_when_due(deps: &Deps) -> Option<Vec<Warning>> {
    let store = deps.store.as_ref();
    let now = deps.clock.epoch_secs();
    let current = match store.get(keys::CREDENTIAL_CHECK_PK, keys::CREDENTIAL_CHECK_SK).await {
        Ok(item) => item,
        Err(e) => {
            tracing::error!(error = %e, "credential check: cannot read its turn");
            return None;
        }
    };
    let due = current.as_ref().and_then(|i| i.body.parse::<i64>().ok()).is_none_or(|next| next <= now);
    if !due {
        return None;
    }
    let cond = current.as_ref().map_or(Cond::NotExists, |i| Cond::Version(i.version));
    let turn = Item::new(keys::CREDENTIAL_CHECK_PK, keys::CREDENTIAL_CHECK_SK, (now + CHECK_EVERY_SECS).to_string());
    match store.put(turn, cond).await {
        Ok(_) => Some(check_credentials(deps).await),
        Err(StoreError::ConditionFailed { .. }) => None,
        Err(e) => {
            tracing::error!(error = %e, "credential check: cannot take its turn");
            None
        }
    }
}

/// Every site's connections: keep idle tokens alive, email new warnings to each site's admin,
/// and return all warnings. Failures are logged, never fatal: the check runs on a schedule.
pub async fn check_credentials(deps: &Deps) -> Vec<Warning> {
    let store = deps.store.as_ref();
    let idle = IdlePolicy::of(deps);
    let sites: Vec<Site> = match record::list(store, Query::prefix(keys::SITES_PK, "").on_gsi1()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "credential check: cannot list sites");
            return Vec::new();
        }
    };
    let mut all = Vec::new();
    let mut refused = 0u32;
    for site in sites {
        let conns: Vec<Connection> = match record::list(store, Query::prefix(keys::site_pk(&site.id), keys::CONNECTION_PREFIX)).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(site = %site.id, error = %e, "credential check: cannot list connections");
                continue;
            }
        };
        for mut conn in conns {
            let now = deps.clock.now();
            let idle_days = conn.last_refreshed_at.or(conn.last_verified_at).map(|t| (now - t).whole_days());
            if conn.status == ConnectionStatus::Connected && idle_days.is_some_and(|d| d >= idle.keep_alive_days()) {
                match deps.salesforce.refresh(deps, &site.id, &conn.name, None).await {
                    Ok(_) => tracing::info!(site = %site.id, connection = %conn.name, "idle refresh token kept alive"),
                    Err(e) => tracing::warn!(site = %site.id, connection = %conn.name, error = %e, "keep-alive refresh failed"),
                }
                if let Ok(v) = session::load(deps, &site.id, &conn.name).await {
                    conn = v.record;
                }
            }
            if conn.status == ConnectionStatus::NeedsReauth || conn.health.problem.is_some() {
                refused += 1;
            }
            let warnings = warnings_for(&conn, now, idle);
            let due: Vec<(&Warning, String)> = warnings
                .iter()
                .map(|w| (w, sent_key(w, &conn)))
                .filter(|(w, key)| match conn.health.warned.get(key) {
                    None => true,
                    Some(at) => !once_only(w.kind) && now.unix_timestamp() - at >= REMIND_SECS,
                })
                .collect();
            if !due.is_empty()
                && let Some(admin) = &site.admin_email
            {
                let email = warning_email(deps, &site, admin, &conn, due.iter().map(|(w, _)| *w));
                match deps.mailer.send(&email).await {
                    Ok(_) => {
                        let stamp = now.unix_timestamp();
                        let r = session::update_connection(deps, &site.id, &conn.name, |c| {
                            for (_, key) in &due {
                                c.health.warned.insert(key.clone(), stamp);
                            }
                        })
                        .await;
                        if let Err(e) = r {
                            tracing::warn!(site = %site.id, connection = %conn.name, error = %e, "warning sent but not recorded");
                        }
                    }
                    Err(e) => tracing::error!(site = %site.id, connection = %conn.name, error = %e, "warning email failed"),
                }
            }
            all.extend(warnings);
        }
    }
    crate::metrics::emit(deps.clock.epoch_secs() * 1000, &[], &[("CredentialFailures", f64::from(refused))]);
    all
}

/// Expiry-date warnings are sent once per date; the others are reminded weekly.
fn once_only(kind: WarningKind) -> bool {
    matches!(kind, WarningKind::ExpiresSoon | WarningKind::Expired)
}

/// The key a sent warning is recorded under in `health.warned` (with the date for expiry warnings).
fn sent_key(w: &Warning, conn: &Connection) -> String {
    match (once_only(w.kind), conn.expires_on) {
        (true, Some(on)) => format!("{}:{on}", w.kind.key()),
        _ => w.kind.key().to_string(),
    }
}

fn warning_email<'a>(deps: &Deps, site: &Site, admin: &str, conn: &Connection, due: impl Iterator<Item = &'a Warning>) -> Email {
    let mut text = format!("Hello,\n\nforcelink noticed something about the Salesforce connection \"{}\" of {}:\n\n", conn.name, site.name);
    for w in due {
        text.push_str(&format!("- {}\n", w.message));
    }
    text.push_str("\nforcelink status shows the current state of every connection.\n");
    Email {
        from: site.sender.as_ref().map_or_else(|| deps.settings.mail_from.clone(), |s| s.from.clone()),
        reply_to: site.sender.as_ref().and_then(|s| s.reply_to.clone()),
        to: vec![admin.to_string()],
        subject: format!("Salesforce connection \"{}\" of {} needs attention", conn.name, site.name),
        text,
        html: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::connection::{Change, Environment};
    use time::macros::datetime;

    #[test]
    fn each_kind_of_trouble_warns() {
        let now = datetime!(2026-05-01 12:00 UTC);
        let idle = IdlePolicy { expiry_days: 30 };
        let mut c = Connection::pending("acme", "prod", Environment::Production);
        c.status = ConnectionStatus::Connected;
        c.last_refreshed_at = Some(now - Duration::days(3));
        assert!(warnings_for(&c, now, idle).is_empty());

        c.last_refreshed_at = Some(now - Duration::days(27));
        c.expires_on = Some(now.date() + Duration::days(5));
        c.warn_days = 10;
        c.health.invalid_grants = 3;
        c.health.org_changed = Some(Change { from: "a".into(), to: "b".into(), at: now - Duration::days(1) });
        c.health.instance_changed = Some(Change { from: "x".into(), to: "y".into(), at: now - Duration::days(30) });
        let kinds: Vec<WarningKind> = warnings_for(&c, now, idle).into_iter().map(|w| w.kind).collect();
        assert_eq!(
            kinds,
            [WarningKind::IdleRefreshToken, WarningKind::RepeatedInvalidGrant, WarningKind::ExpiresSoon, WarningKind::OrgChanged]
        );

        c.status = ConnectionStatus::NeedsReauth;
        c.health.problem = Some(CredentialProblem::IpRestricted);
        c.expires_on = Some(now.date() - Duration::days(1));
        let kinds: Vec<WarningKind> = warnings_for(&c, now, idle).into_iter().map(|w| w.kind).collect();
        assert_eq!(kinds, [WarningKind::IpRestricted, WarningKind::Expired, WarningKind::OrgChanged]);
    }
}
