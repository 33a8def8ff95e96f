//! Where a link takes its recipient. Pure: the site, the directory user and the target in,
//! the destination out.
//!
//! - Force SSO on: everyone goes through forcelink's Salesforce login,
//!   `{public}/sso/login?site=S&next=<target>`.
//! - A Salesforce user (tag `salesforce_user=true`): the site's Salesforce tab, Lightning
//!   (`…/lightning/n/Tab?c__target=<target>`) or Classic (`…/servlet.Integration?lid=…&ic=1&c__target=<target>`);
//!   the user's `ui` picks one, else Lightning when configured. With no tab configured, the platform.
//! - Anyone else: straight to the platform, `{platform_url}{target}`.
//! - A workflow contact ([`decide_contact`]): the platform, whatever Force SSO says (a contact
//!   has no Salesforce login); link-redirect adds the contact's signed reference.
//!
//! The target is checked by [`crate::target::validate`] and only ever joined onto the site's
//! configured URLs; the result is checked to stay on that origin.

use forcelink::domain::directory::SalesforceUi;
use forcelink::domain::{DirectoryUser, Site};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::target::{self, TargetError};

/// The query parameter that carries the target into a Salesforce tab (Lightning requires the
/// `c__` namespace prefix on URL parameters; Classic passes the same name through).
pub const TAB_TARGET_PARAM: &str = "c__target";

/// The kinds of destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteKind {
    /// The site's Lightning tab.
    Lightning,
    /// The site's Classic web tab.
    Classic,
    /// The platform directly.
    Platform,
    /// forcelink's Salesforce login (Force SSO).
    Sso,
}

impl RouteKind {
    /// A short human description.
    pub fn describe(self) -> &'static str {
        match self {
            RouteKind::Lightning => "the Salesforce tab (Lightning)",
            RouteKind::Classic => "the Salesforce tab (Classic)",
            RouteKind::Platform => "the platform",
            RouteKind::Sso => "the Salesforce login (Force SSO)",
        }
    }
}

/// A routing decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub kind: RouteKind,
    /// The absolute URL to redirect to.
    pub location: String,
}

/// Why no route could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The user belongs to another site than the link.
    #[error("the user belongs to another site")]
    WrongSite,
    /// A configured URL is unusable (the operator must fix the site).
    #[error("site URL {0} is not usable")]
    Misconfigured(&'static str),
}

/// Decides where `user`'s link to `target` on `site` goes. `public_url` is forcelink's own.
pub fn decide(site: &Site, user: &DirectoryUser, target: &str, public_url: &Url) -> Result<Route, RouteError> {
    if user.site != site.id {
        return Err(RouteError::WrongSite);
    }
    target::validate(target)?;
    if site.force_sso {
        let login = format!("{}/sso/login", public_url.as_str().trim_end_matches('/'));
        let mut url = Url::parse(&login).map_err(|_| RouteError::Misconfigured("public_url"))?;
        url.query_pairs_mut().append_pair("site", &site.id).append_pair("next", target);
        return Ok(Route { kind: RouteKind::Sso, location: url.into() });
    }
    if user.is_salesforce_user() {
        let lightning = site.tabs.lightning.as_deref().map(|t| (RouteKind::Lightning, t));
        let classic = site.tabs.classic.as_deref().map(|t| (RouteKind::Classic, t));
        let pick = match user.ui {
            Some(SalesforceUi::Classic) => classic.or(lightning),
            Some(SalesforceUi::Lightning) | None => lightning.or(classic),
        };
        if let Some((kind, template)) = pick {
            return tab(kind, template, target);
        }
        tracing::warn!(site = %site.id, "Salesforce user but no tab configured: routing to the platform");
    }
    platform(&site.platform_url, target)
}

/// Decides where a workflow contact's link to `target` on `site` goes: the platform.
pub fn decide_contact(site: &Site, target: &str) -> Result<Route, RouteError> {
    target::validate(target)?;
    platform(&site.platform_url, target)
}

fn tab(kind: RouteKind, template: &str, target: &str) -> Result<Route, RouteError> {
    let field = if kind == RouteKind::Lightning { "tabs.lightning" } else { "tabs.classic" };
    let mut url = Url::parse(template).map_err(|_| RouteError::Misconfigured(field))?;
    if url.scheme() != "https" || url.host_str().is_none() || url.fragment().is_some() {
        return Err(RouteError::Misconfigured(field));
    }
    url.query_pairs_mut().append_pair(TAB_TARGET_PARAM, target);
    Ok(Route { kind, location: url.into() })
}

fn platform(platform_url: &str, target: &str) -> Result<Route, RouteError> {
    let bad = || RouteError::Misconfigured("platform_url");
    let base = Url::parse(platform_url).map_err(|_| bad())?;
    if !matches!(base.scheme(), "https" | "http") || base.host_str().is_none() || base.query().is_some() || base.fragment().is_some() {
        return Err(bad());
    }
    let prefix = base.as_str().trim_end_matches('/');
    let url = Url::parse(&format!("{prefix}{target}")).map_err(|_| RouteError::Target(TargetError::Character))?;
    // Belt and braces: the joined URL stays on the platform's origin and under its path.
    let base_path = base.path().trim_end_matches('/');
    if url.origin() != base.origin() || !url.path().starts_with(base_path) || url.username() != "" || url.password().is_some() {
        return Err(RouteError::Target(TargetError::NotRelative));
    }
    Ok(Route { kind: RouteKind::Platform, location: url.into() })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use forcelink::domain::site::Tabs;

    use super::*;

    const LIGHTNING: &str = "https://acme.lightning.force.com/lightning/n/Learning";
    const CLASSIC: &str = "https://acme.my.salesforce.com/servlet/servlet.Integration?lid=01r5g000000AbCd&ic=1";

    fn site(lightning: bool, classic: bool, force_sso: bool) -> Site {
        Site {
            id: "acme".into(),
            name: "Acme".into(),
            platform_url: "https://acme.platform.example".into(),
            platform_sso_url: None,
            tabs: Tabs { lightning: lightning.then(|| LIGHTNING.into()), classic: classic.then(|| CLASSIC.into()) },
            force_sso,
            admin_email: None,
            sender: None,
            default_connection: None,
            sso_connection: None,
            sso_match_email: false,
            org_id: None,
        }
    }

    fn user(tag: Option<&str>, ui: Option<SalesforceUi>) -> DirectoryUser {
        DirectoryUser {
            site: "acme".into(),
            id: "u1".into(),
            email: "u1@acme.example".into(),
            first_name: String::new(),
            last_name: String::new(),
            salesforce_id: None,
            salesforce_org_id: None,
            active: true,
            tags: tag.map(|v| BTreeMap::from([("salesforce_user".to_string(), v.to_string())])).unwrap_or_default(),
            manager_id: None,
            ui,
        }
    }

    fn public() -> Url {
        "https://links.forcelink.example".parse().unwrap()
    }

    fn go(site: &Site, user: &DirectoryUser) -> Route {
        decide(site, user, "/surveys/onboarding?src=mail", &public()).unwrap()
    }

    #[test]
    fn salesforce_user_goes_to_lightning_by_default() {
        let r = go(&site(true, true, false), &user(Some("true"), None));
        assert_eq!(r.kind, RouteKind::Lightning);
        assert_eq!(r.location, format!("{LIGHTNING}?c__target=%2Fsurveys%2Fonboarding%3Fsrc%3Dmail"));
    }

    #[test]
    fn salesforce_user_with_only_classic_goes_to_classic() {
        let r = go(&site(false, true, false), &user(Some("true"), None));
        assert_eq!(r.kind, RouteKind::Classic);
        assert_eq!(r.location, format!("{CLASSIC}&c__target=%2Fsurveys%2Fonboarding%3Fsrc%3Dmail"));
    }

    #[test]
    fn per_user_override_picks_classic_or_lightning() {
        assert_eq!(go(&site(true, true, false), &user(Some("true"), Some(SalesforceUi::Classic))).kind, RouteKind::Classic);
        assert_eq!(go(&site(true, true, false), &user(Some("true"), Some(SalesforceUi::Lightning))).kind, RouteKind::Lightning);
        // An override to a tab the site lacks falls back to the other tab.
        assert_eq!(go(&site(true, false, false), &user(Some("true"), Some(SalesforceUi::Classic))).kind, RouteKind::Lightning);
        assert_eq!(go(&site(false, true, false), &user(Some("true"), Some(SalesforceUi::Lightning))).kind, RouteKind::Classic);
    }

    #[test]
    fn salesforce_user_without_tabs_goes_to_the_platform() {
        let r = go(&site(false, false, false), &user(Some("true"), None));
        assert_eq!((r.kind, r.location.as_str()), (RouteKind::Platform, "https://acme.platform.example/surveys/onboarding?src=mail"));
    }

    #[test]
    fn non_salesforce_users_go_to_the_platform() {
        for tag in [Some("false"), None, Some("TRUE"), Some("yes")] {
            let r = go(&site(true, true, false), &user(tag, Some(SalesforceUi::Classic)));
            assert_eq!(r.kind, RouteKind::Platform, "{tag:?}");
            assert_eq!(r.location, "https://acme.platform.example/surveys/onboarding?src=mail");
        }
    }

    #[test]
    fn force_sso_sends_everyone_through_the_login() {
        for u in [user(Some("true"), None), user(Some("false"), None), user(None, Some(SalesforceUi::Classic))] {
            let r = go(&site(true, true, true), &u);
            assert_eq!(r.kind, RouteKind::Sso);
            assert_eq!(r.location, "https://links.forcelink.example/sso/login?site=acme&next=%2Fsurveys%2Fonboarding%3Fsrc%3Dmail");
        }
    }

    #[test]
    fn contacts_go_to_the_platform_even_with_force_sso() {
        for s in [site(true, true, true), site(false, false, false)] {
            let r = decide_contact(&s, "/surveys/onboarding?src=mail").unwrap();
            assert_eq!((r.kind, r.location.as_str()), (RouteKind::Platform, "https://acme.platform.example/surveys/onboarding?src=mail"));
            assert!(matches!(decide_contact(&s, "//evil.com"), Err(RouteError::Target(_))));
        }
    }

    #[test]
    fn platform_url_with_a_base_path_keeps_it() {
        let mut s = site(false, false, false);
        s.platform_url = "https://platform.example/acme/".into();
        assert_eq!(go(&s, &user(None, None)).location, "https://platform.example/acme/surveys/onboarding?src=mail");
    }

    #[test]
    fn another_sites_user_is_refused() {
        let mut u = user(Some("true"), None);
        u.site = "globex".into();
        assert_eq!(decide(&site(true, true, false), &u, "/x", &public()), Err(RouteError::WrongSite));
    }

    #[test]
    fn unusable_site_urls_are_reported() {
        let mut s = site(false, false, false);
        s.platform_url = "javascript:alert(1)".into();
        assert_eq!(decide(&s, &user(None, None), "/x", &public()), Err(RouteError::Misconfigured("platform_url")));
        let mut s = site(true, false, false);
        s.tabs.lightning = Some("http://acme.lightning.force.com/lightning/n/Learning".into());
        assert_eq!(decide(&s, &user(Some("true"), None), "/x", &public()), Err(RouteError::Misconfigured("tabs.lightning")));
    }

    #[test]
    fn bad_targets_are_refused_on_every_route() {
        for s in [site(true, true, false), site(false, false, false), site(true, true, true)] {
            for u in [user(Some("true"), None), user(None, None)] {
                for t in ["//evil.com", "https://evil.com", "/a/../b", "/\\evil.com", "/%2F%2Fevil.com"] {
                    assert!(matches!(decide(&s, &u, t, &public()), Err(RouteError::Target(_))), "{t}");
                }
            }
        }
    }
}
