//! Warnings before a credential breaks, and the scheduled check that sends them.
//!
//! [`warnings_for`] reads one connection: `needs_reauth`, a refresh token idle close to
//! Salesforce's 30-day expiry, an expiry date coming up (the connection's `warn_days`), an
//! org id or instance that changed (a sandbox refresh), repeated `invalid_grant` answers.
//! [`check_credentials`] runs over every site: it first keeps idle refresh tokens alive by
//! refreshing them, then emails each site's admin about new warnings (each kind at most once
//! a week) and returns every warning (for `forcelink status`).

use time::{Duration, OffsetDateTime};

use super::session;
use crate::deps::Deps;
use crate::domain::connection::{Connection, ConnectionStatus};
use crate::domain::keys;
use crate::domain::record;
use crate::domain::site::Site;
use crate::ports::mailer::Email;
use crate::ports::store::Query;

/// Salesforce's idle refresh-token expiry for vendor apps.
pub const IDLE_EXPIRY_DAYS: i64 = 30;
/// From this many idle days, the scheduled check refreshes to keep the token alive.
pub const KEEP_ALIVE_DAYS: i64 = 20;
/// From this many idle days (keep-alive failing), the admin is warned.
pub const IDLE_WARN_DAYS: i64 = 25;
/// An org or instance change is reported for this long.
pub const CHANGE_WARN_DAYS: i64 = 7;
/// `invalid_grant` answers in a row that make a warning.
pub const INVALID_GRANT_WARN: u32 = 3;
/// The same warning is emailed again after this long.
pub const REMIND_SECS: i64 = 7 * 86_400;

/// What kind of trouble is coming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    NeedsReauth,
    IdleRefreshToken,
    ExpiresSoon,
    Expired,
    OrgChanged,
    InstanceChanged,
    RepeatedInvalidGrant,
}

impl WarningKind {
    fn key(self) -> &'static str {
        match self {
            Self::NeedsReauth => "needs_reauth",
            Self::IdleRefreshToken => "idle_refresh_token",
            Self::ExpiresSoon => "expires_soon",
            Self::Expired => "expired",
            Self::OrgChanged => "org_changed",
            Self::InstanceChanged => "instance_changed",
            Self::RepeatedInvalidGrant => "repeated_invalid_grant",
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
pub fn warnings_for(conn: &Connection, now: OffsetDateTime) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut warn = |kind, message: String| out.push(Warning { site: conn.site.clone(), connection: conn.name.clone(), kind, message });
    let reconnect = format!("run `forcelink connect {} --connection {}` or send a new invitation", conn.site, conn.name);
    if conn.status == ConnectionStatus::NeedsReauth {
        warn(WarningKind::NeedsReauth, format!("Salesforce refused the saved authorization; work for it is held: {reconnect}."));
    }
    if conn.status == ConnectionStatus::Connected {
        if let Some(last) = conn.last_refreshed_at.or(conn.last_verified_at) {
            let idle = (now - last).whole_days();
            if idle >= IDLE_WARN_DAYS {
                let left = (IDLE_EXPIRY_DAYS - idle).max(0);
                warn(
                    WarningKind::IdleRefreshToken,
                    format!(
                        "The refresh token has been idle {idle} days; Salesforce expires idle tokens after {IDLE_EXPIRY_DAYS} days ({left} left). If refreshing keeps failing, {reconnect}."
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
                "The org id changed from {} to {} (a sandbox refresh?): check the connection still points at the right org.",
                c.from, c.to
            ),
        );
    }
    if let Some(c) = &conn.health.instance_changed
        && now - c.at <= Duration::days(CHANGE_WARN_DAYS)
    {
        warn(
            WarningKind::InstanceChanged,
            format!(
                "The org moved from {} to {}; forcelink follows it. Update any allow-lists or tab URLs that name the old host.",
                c.from, c.to
            ),
        );
    }
    out
}

/// Every site's connections: keep idle tokens alive, email new warnings to each site's admin,
/// and return all warnings. Failures are logged, never fatal: the check runs on a schedule.
pub async fn check_credentials(deps: &Deps) -> Vec<Warning> {
    let store = deps.store.as_ref();
    let sites: Vec<Site> = match record::list(store, Query::prefix(keys::SITES_PK, "").on_gsi1()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "credential check: cannot list sites");
            return Vec::new();
        }
    };
    let mut all = Vec::new();
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
            let idle = conn.last_refreshed_at.or(conn.last_verified_at).map(|t| (now - t).whole_days());
            if conn.status == ConnectionStatus::Connected && idle.is_some_and(|d| d >= KEEP_ALIVE_DAYS) {
                match deps.salesforce.refresh(deps, &site.id, &conn.name, None).await {
                    Ok(_) => tracing::info!(site = %site.id, connection = %conn.name, "idle refresh token kept alive"),
                    Err(e) => tracing::warn!(site = %site.id, connection = %conn.name, error = %e, "keep-alive refresh failed"),
                }
                if let Ok(v) = session::load(deps, &site.id, &conn.name).await {
                    conn = v.record;
                }
            }
            let warnings = warnings_for(&conn, now);
            let due: Vec<&Warning> = warnings
                .iter()
                .filter(|w| conn.health.warned.get(w.kind.key()).is_none_or(|at| now.unix_timestamp() - at >= REMIND_SECS))
                .collect();
            if !due.is_empty()
                && let Some(admin) = &site.admin_email
            {
                let email = warning_email(deps, &site, admin, &conn, &due);
                match deps.mailer.send(&email).await {
                    Ok(_) => {
                        let kinds: Vec<&'static str> = due.iter().map(|w| w.kind.key()).collect();
                        let stamp = now.unix_timestamp();
                        let r = session::update_connection(deps, &site.id, &conn.name, |c| {
                            for k in &kinds {
                                c.health.warned.insert((*k).to_string(), stamp);
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
    all
}

fn warning_email(deps: &Deps, site: &Site, admin: &str, conn: &Connection, due: &[&Warning]) -> Email {
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
        let mut c = Connection::pending("acme", "prod", Environment::Production);
        c.status = ConnectionStatus::Connected;
        c.last_refreshed_at = Some(now - Duration::days(3));
        assert!(warnings_for(&c, now).is_empty());

        c.last_refreshed_at = Some(now - Duration::days(27));
        c.expires_on = Some(now.date() + Duration::days(5));
        c.warn_days = 10;
        c.health.invalid_grants = 3;
        c.health.org_changed = Some(Change { from: "a".into(), to: "b".into(), at: now - Duration::days(1) });
        c.health.instance_changed = Some(Change { from: "x".into(), to: "y".into(), at: now - Duration::days(30) });
        let kinds: Vec<WarningKind> = warnings_for(&c, now).into_iter().map(|w| w.kind).collect();
        assert_eq!(
            kinds,
            [WarningKind::IdleRefreshToken, WarningKind::RepeatedInvalidGrant, WarningKind::ExpiresSoon, WarningKind::OrgChanged]
        );

        c.status = ConnectionStatus::NeedsReauth;
        c.expires_on = Some(now.date() - Duration::days(1));
        let kinds: Vec<WarningKind> = warnings_for(&c, now).into_iter().map(|w| w.kind).collect();
        assert_eq!(kinds, [WarningKind::NeedsReauth, WarningKind::Expired, WarningKind::OrgChanged]);
    }
}
