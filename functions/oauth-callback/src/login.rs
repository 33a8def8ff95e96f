//! Finishing "Login with Salesforce": only the site's SSO org signs in (the pinned `org_id`, else
//! the org its SSO connection is authorized for: [`Site::sso_org`]), and
//! a person is the directory user with the same (org id, Salesforce user id). An email match
//! is possible only where the site opts in (`sso_match_email`) and the directory user has no
//! Salesforce id yet; the pair is then recorded on them. The platform receives the login
//! token by a self-submitting POST form ([`crate::pages::form_post`]), never in a URL.

use forcelink::Deps;
use forcelink::domain::directory::DirectoryUser;
use forcelink::domain::record::{self, Versioned};
use forcelink::domain::site::Site;
use forcelink::domain::{Connection, ids, keys};
use forcelink::ports::store::{Cond, Query};
use forcelink::salesforce::{session, sso};
use forcelink::web::Response;
use http::StatusCode;

use crate::callback::Authorized;
use crate::flow::{self, FlowState};
use crate::pages::{self, Problem};

/// Origins that frame Salesforce web tabs and Visualforce pages of any org.
const SALESFORCE_FRAMERS: &str = "https://*.lightning.force.com https://*.my.salesforce.com";

/// The `frame-ancestors` of SSO pages: the site's tab origins and the org's instance.
pub fn frame_ancestors(site: &Site, conn: &Connection) -> String {
    let mut origins: Vec<String> = [site.tabs.lightning.as_deref(), site.tabs.classic.as_deref(), conn.instance_url.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(|u| url::Url::parse(u).ok())
        .filter(|u| u.scheme() == "https")
        .map(|u| u.origin().ascii_serialization())
        .collect();
    origins.sort();
    origins.dedup();
    if origins.is_empty() { SALESFORCE_FRAMERS.to_string() } else { origins.join(" ") }
}

fn forbidden(title: &str, detail: &str) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, title, detail)
}

/// Hands the platform a login token for the person who signed in, or refuses.
pub async fn finish(deps: &Deps, flow: &FlowState, auth: Authorized) -> Result<Response, Problem> {
    let site = crate::load_site(deps, &flow.site).await?;
    let conn = session::load(deps, &site.id, &flow.connection).await.map_err(|e| Problem::internal(&e.to_string()))?.record;
    let trusted =
        site.sso_connection() == Some(flow.connection.as_str()) && site.sso_org(&conn).is_some_and(|o| ids::same_id(o, &auth.org_id));
    if !trusted {
        tracing::warn!(site = %site.id, org = %auth.org_id, "SSO from an org that is not the site's SSO org: refused");
        return Err(forbidden(
            "This Salesforce org cannot sign you in here",
            &format!(
                "You signed in to an org that {} does not use for sign-in. Sign in with your company's Salesforce account.",
                site.name
            ),
        ));
    }
    let person = find_person(deps, &site, &auth).await?;
    let platform = site.platform_sso_url.as_deref().and_then(|u| url::Url::parse(u).ok()).ok_or_else(|| {
        Problem::bad_request("Login with Salesforce is not set up", "This site has no platform sign-in address configured.")
    })?;
    let now = deps.clock.epoch_secs();
    let next = flow.next.clone().unwrap_or_else(|| "/".into());
    let claims = sso::LoginClaims {
        iss: deps.settings.public_url.as_str().trim_end_matches('/').to_string(),
        aud: forcelink::jws::origin(&platform),
        sub: person.id.clone(),
        site: site.id.clone(),
        org: auth.org_id.clone(),
        sf_user: auth.user_id.clone(),
        email: person.email.clone(),
        iat: now,
        exp: now + sso::LOGIN_TOKEN_SECS,
        jti: flow::new_state(),
        next: next.clone(),
    };
    let token = sso::mint_login(deps.keys.as_ref(), &claims);
    tracing::info!(site = %site.id, user = %person.id, "SSO login handed to the platform");
    let ancestors = flow.frame_ancestors.clone().unwrap_or_else(|| frame_ancestors(&site, &conn));
    Ok(pages::form_post(&platform, &[("token", &token), ("next", &next)], &ancestors))
}

/// The active directory user of this (org, Salesforce user), or by email where allowed.
async fn find_person(deps: &Deps, site: &Site, auth: &Authorized) -> Result<DirectoryUser, Problem> {
    let store = deps.store.as_ref();
    let users: Vec<Versioned<DirectoryUser>> =
        record::list_versioned(store, Query::prefix(keys::directory_pk(&site.id), keys::USER_PREFIX))
            .await
            .map_err(|e| Problem::internal(&e.to_string()))?;
    let same = |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| ids::same_id(a, b));
    let by_pair = users.iter().find(|u| same(&u.record.salesforce_id, &auth.user_id) && same(&u.record.salesforce_org_id, &auth.org_id));
    let found = match by_pair {
        Some(u) => Some(u.record.clone()),
        None if site.sso_match_email => match_by_email(deps, &users, auth).await?,
        None => None,
    };
    match found.filter(|u| u.active) {
        Some(person) => Ok(person),
        None => {
            tracing::warn!(site = %site.id, user = %auth.user_id, "SSO: no active directory user matches");
            Err(forbidden(
                "We could not find your account",
                &format!("Your Salesforce user is not set up on {}'s platform yet. Ask your administrator to add you.", site.name),
            ))
        }
    }
}

/// A directory user with no Salesforce id yet and the identity's email: the pair is recorded
/// on them (a conditional write, so two logins cannot claim one person).
async fn match_by_email(deps: &Deps, users: &[Versioned<DirectoryUser>], auth: &Authorized) -> Result<Option<DirectoryUser>, Problem> {
    let Some(email) = auth.identity.email.as_deref().filter(|e| !e.is_empty()) else { return Ok(None) };
    let Some(found) = users.iter().find(|u| u.record.salesforce_id.is_none() && u.record.email.eq_ignore_ascii_case(email)) else {
        return Ok(None);
    };
    let mut person = found.record.clone();
    person.salesforce_id = Some(auth.user_id.clone());
    person.salesforce_org_id = Some(auth.org_id.clone());
    match record::save(deps.store.as_ref(), &person, Cond::Version(found.version)).await {
        Ok(_) => Ok(Some(person)),
        Err(e) => {
            tracing::warn!(error = %e, "SSO email match not recorded");
            Ok(None)
        }
    }
}
