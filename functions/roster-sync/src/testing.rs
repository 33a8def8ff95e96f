//! For tests, benchmarks and the demo: mark a connection connected with an access token
//! obtained outside OAuth (e.g. the simulator's `issue_token`), sealed with the oauth
//! module's own token storage.

use forcelink::Deps;
use forcelink::domain::ConnectionStatus;
use forcelink::salesforce::SfError;
use forcelink::salesforce::session::{self, TokenBundle};

/// Stores `access_token` (sealed) for `site`/`connection`, with its org and instance, and marks
/// the connection connected. The connection must exist (e.g. from `forcelink apply`).
pub async fn connect_with_token(
    deps: &Deps,
    site: &str,
    connection: &str,
    org_id: &str,
    instance_url: &str,
    access_token: &str,
) -> Result<(), SfError> {
    let bundle = TokenBundle { access_token: access_token.to_string(), refresh_token: None };
    let sealed = session::seal_tokens(deps.keys.as_ref(), site, connection, &bundle).await?;
    session::update_connection(deps, site, connection, |c| {
        c.status = ConnectionStatus::Connected;
        c.org_id = Some(org_id.to_string());
        c.instance_url = Some(instance_url.to_string());
        c.tokens_sealed = Some(sealed.clone());
    })
    .await?;
    deps.salesforce.forget(site, connection);
    Ok(())
}
