//! Named credential problems: which one Salesforce's refusal means, the fix in plain words for
//! the customer's admin, and recording it on the connection.

use super::error::SfError;
use super::session;
use crate::deps::Deps;
use crate::domain::connection::CredentialProblem;

/// The problem an `invalid_grant` answer (its `error_description`) or an authorize error
/// code names.
pub fn classify(description: &str) -> CredentialProblem {
    let d = description.to_ascii_lowercase();
    if d.contains("oauth_ec_app_not_found") || d.contains("app must be installed") {
        CredentialProblem::AppNotInstalled
    } else if d.contains("ip restricted") {
        CredentialProblem::IpRestricted
    } else if d.contains("inactive user") || d.contains("frozen") {
        CredentialProblem::UserInactive
    } else if d.contains("expired access/refresh token") || d.contains("revoked") {
        CredentialProblem::TokenRevoked
    } else if d.contains("api_disabled") || d.contains("api is not enabled") {
        CredentialProblem::ApiDisabled
    } else {
        CredentialProblem::Refused
    }
}

/// What the customer's Salesforce admin should do about `problem` on `site`/`connection`.
pub fn fix(problem: CredentialProblem, site: &str, connection: &str) -> String {
    let reconnect = format!("then authorize again (`forcelink connect {site} --connection {connection}`, or a new invitation)");
    match problem {
        CredentialProblem::AppNotInstalled => format!(
            "The forcelink app is not installed in the Salesforce org: in Setup, install it (External Client App Manager or Connected Apps, \"Install\") and allow the sync user through its policies; {reconnect}."
        ),
        CredentialProblem::IpRestricted => format!(
            "Salesforce refused forcelink's network address: in Setup, add forcelink's outgoing IP addresses to the trusted IP ranges of the sync user's profile, or relax the app's IP restrictions; {reconnect} if it does not recover."
        ),
        CredentialProblem::UserInactive => format!(
            "The Salesforce user who authorized forcelink is deactivated or frozen: reactivate or unfreeze them in Setup → Users, or have another active user with API access authorize; {reconnect}."
        ),
        CredentialProblem::TokenRevoked => format!(
            "The authorization was revoked (by an admin in Setup → Connected Apps OAuth Usage, by the user, or by a reused token under rotation) or expired unused: {reconnect}."
        ),
        CredentialProblem::ApiDisabled => "API access is not enabled for the sync user or the org's edition: give the user the \"API Enabled\" permission (profile or permission set); Professional edition needs the API add-on.".to_string(),
        CredentialProblem::Refused => format!("Salesforce refused the saved authorization without naming why: {reconnect}."),
    }
}

/// Records `problem` on the connection (unless it is already recorded).
pub async fn note(deps: &Deps, site: &str, connection: &str, problem: CredentialProblem) -> Result<(), SfError> {
    let loaded = session::load(deps, site, connection).await?;
    if loaded.record.health.problem == Some(problem) {
        return Ok(());
    }
    tracing::warn!(site, connection, ?problem, "credential problem recorded");
    session::update_connection(deps, site, connection, |c| c.health.problem = Some(problem)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_salesforce_refusals() {
        let cases = [
            ("app must be installed into org", CredentialProblem::AppNotInstalled),
            ("OAUTH_EC_APP_NOT_FOUND", CredentialProblem::AppNotInstalled),
            ("IP restricted", CredentialProblem::IpRestricted),
            ("inactive user", CredentialProblem::UserInactive),
            ("expired access/refresh token", CredentialProblem::TokenRevoked),
            ("authentication failure", CredentialProblem::Refused),
        ];
        for (said, want) in cases {
            assert_eq!(classify(said), want, "{said}");
        }
    }
}
