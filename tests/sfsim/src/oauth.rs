//! OAuth 2.0: authorize (HTML login and consent page, or auto-approve with `login_hint`), token
//! (authorization code with PKCE S256, refresh with rotation and the concurrent-refresh loser,
//! username-password), revoke, introspect, userinfo and the identity URL.

use crate::error::OAuthError;
use crate::ids;
use crate::server::Req;
use crate::sim::{AuthCode, Core, RefreshToken, World};
use crate::xml::esc;
use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Instant;

fn html(status: StatusCode, body: String) -> Response<Body> {
    Response::builder().status(status).header("content-type", "text/html; charset=utf-8").body(Body::from(body)).unwrap_or_default()
}

fn redirect(to: &str) -> Response<Body> {
    Response::builder().status(StatusCode::FOUND).header("location", to).body(Body::empty()).unwrap_or_default()
}

fn json_ok(v: Value) -> Response<Body> {
    (StatusCode::OK, axum::Json(v)).into_response()
}

fn with_params(base: &str, params: &[(&str, &str)]) -> String {
    let q = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{q}")
}

/// Which orgs a login host admits: `login.` production orgs, `test.` sandboxes, a My Domain its org.
pub fn host_admits(vhost: Option<&str>, my_domain: &str, sandbox: bool) -> bool {
    match vhost {
        None => !sandbox,
        Some(h) if h.starts_with("login.") => !sandbox,
        Some(h) if h.starts_with("test.") => sandbox,
        Some(h) => {
            let name = h.split('.').next().unwrap_or("");
            name.eq_ignore_ascii_case(my_domain) && h.contains(".sandbox.") == sandbox
        }
    }
}

fn callback_ok(urls: &[String], uri: &str) -> bool {
    urls.iter().any(|u| match u.strip_suffix('*') {
        Some(prefix) => uri.starts_with(prefix),
        None => u == uri,
    })
}

/// Routes `/services/oauth2/*` and `/id/*`.
pub async fn handle(core: &Core, r: Req) -> Response<Body> {
    let path = r.path.clone();
    match (r.method.clone(), path.as_str()) {
        (Method::GET, "/services/oauth2/authorize") => authorize_get(core, &r),
        (Method::POST, "/services/oauth2/authorize") => authorize_post(core, &r),
        (Method::POST, "/services/oauth2/token") => match knobs::before_token(core, &r).await {
            Some(answer) => answer,
            None => token(core, &r).unwrap_or_else(IntoResponse::into_response),
        },
        (Method::POST | Method::GET, "/services/oauth2/revoke") => revoke(core, &r).unwrap_or_else(IntoResponse::into_response),
        (Method::POST, "/services/oauth2/introspect") => introspect(core, &r),
        (Method::GET | Method::POST, "/services/oauth2/userinfo") => identity(core, &r, true),
        (Method::GET, p) if p.starts_with("/id/") => identity(core, &r, false),
        _ => crate::error::ApiError::not_found().into_response(),
    }
}

struct AuthzParams {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    scope: String,
    challenge: Option<String>,
    method: Option<String>,
    response_type: String,
}

fn authz_params(p: &[(String, String)]) -> AuthzParams {
    let g = |k: &str| p.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    AuthzParams {
        client_id: g("client_id").unwrap_or_default(),
        redirect_uri: g("redirect_uri").unwrap_or_default(),
        state: g("state"),
        scope: g("scope").unwrap_or_else(|| "api refresh_token".into()),
        challenge: g("code_challenge"),
        method: g("code_challenge_method"),
        response_type: g("response_type").unwrap_or_default(),
    }
}

/// Validates authorize parameters: Err(page) for errors shown to the user, Err(redirect) for
/// errors sent back to the client.
fn check_authz(w: &World, a: &AuthzParams) -> Result<(), Box<Response<Body>>> {
    let Some(app) = w.apps.get(&a.client_id) else {
        return Err(Box::new(html(
            StatusCode::BAD_REQUEST,
            "<html><body><h1>error=invalid_client_id</h1><p>client identifier invalid</p></body></html>".into(),
        )));
    };
    if !callback_ok(&app.callback_urls, &a.redirect_uri) {
        return Err(Box::new(html(
            StatusCode::BAD_REQUEST,
            "<html><body><h1>error=redirect_uri_mismatch</h1><p>redirect_uri must match configuration</p></body></html>".into(),
        )));
    }
    let back = |e: &str, d: &str| {
        let mut p = vec![("error", e), ("error_description", d)];
        if let Some(s) = &a.state {
            p.push(("state", s));
        }
        redirect(&with_params(&a.redirect_uri, &p))
    };
    if a.response_type != "code" {
        return Err(Box::new(back("unsupported_response_type", "response type not supported")));
    }
    if app.pkce_required && a.challenge.is_none() {
        return Err(Box::new(back("invalid_request", "missing required code challenge")));
    }
    if a.challenge.is_some() && a.method.as_deref().unwrap_or("S256") != "S256" {
        return Err(Box::new(back("invalid_request", "invalid code challenge method")));
    }
    Ok(())
}

fn issue_code(core: &Core, w: &mut World, a: &AuthzParams, username: &str, vhost: Option<&str>) -> Response<Body> {
    let deny = |d: &str| {
        let mut p = vec![("error", "access_denied"), ("error_description", d)];
        if let Some(s) = &a.state {
            p.push(("state", s.as_str()));
        }
        redirect(&with_params(&a.redirect_uri, &p))
    };
    let Some((oi, uid)) = w.user_by_username(username) else { return deny("authentication failure") };
    let org = &w.orgs[oi];
    if !host_admits(vhost, &org.my_domain, org.sandbox) {
        return deny("authentication failure");
    }
    let active = org
        .table("User")
        .ok()
        .and_then(|(_, t)| t.get(&uid))
        .and_then(|r| r.fields.get("IsActive"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !active {
        return deny("inactive user");
    }
    if !org.installed_apps.contains(&a.client_id) {
        return deny("app must be installed into org");
    }
    w.orgs[oi].count("oauth_authorize", false);
    let code = format!("aPrx{}", w.random_token(80));
    w.codes.insert(
        code.clone(),
        AuthCode {
            org: oi,
            user: uid,
            client_id: a.client_id.clone(),
            redirect_uri: a.redirect_uri.clone(),
            challenge: a.challenge.clone(),
            scope: a.scope.clone(),
            expires: core.clock.now() + time::Duration::minutes(15),
        },
    );
    let mut p = vec![("code", code.as_str())];
    if let Some(s) = &a.state {
        p.push(("state", s.as_str()));
    }
    redirect(&with_params(&a.redirect_uri, &p))
}

fn authorize_get(core: &Core, r: &Req) -> Response<Body> {
    let params = r.params();
    let a = authz_params(&params);
    let mut w = core.lock();
    if let Err(resp) = check_authz(&w, &a) {
        return *resp;
    }
    let hint = params.iter().find(|(k, _)| k == "login_hint").map(|(_, v)| v.clone());
    if w.auto_approve
        && let Some(h) = &hint
    {
        return issue_code(core, &mut w, &a, h, r.vhost.as_deref());
    }
    // login + consent page
    let mut options = String::new();
    for o in w.orgs.iter().filter(|o| host_admits(r.vhost.as_deref(), &o.my_domain, o.sandbox)) {
        if let Ok((_, t)) = o.table("User") {
            for u in t.records.values() {
                let name = u.fields.get("Username").and_then(Value::as_str).unwrap_or("");
                let sel = if hint.as_deref() == Some(name) { " selected" } else { "" };
                options.push_str(&format!("<option value=\"{0}\"{sel}>{0} ({1})</option>", esc(name), esc(&o.name)));
            }
        }
    }
    let hidden: String = params.iter().map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(k), esc(v))).collect();
    let app = esc(&a.client_id);
    html(
        StatusCode::OK,
        format!(
            "<!DOCTYPE html><html><head><title>Login | Salesforce (sfsim)</title></head><body>\
<h1>Log in to Salesforce (simulated)</h1><form method=\"post\" action=\"authorize\">{hidden}\
<label>Username <select name=\"username\">{options}</select></label><br>\
<label>Password <input type=\"password\" name=\"password\" placeholder=\"any\"></label>\
<h2>Allow Access?</h2><p>The app <b>{app}</b> wants to access your data: {}</p>\
<button type=\"submit\" name=\"action\" value=\"approve\" id=\"approve\">Allow</button> \
<button type=\"submit\" name=\"action\" value=\"deny\" id=\"deny\">Deny</button></form></body></html>",
            esc(&a.scope)
        ),
    )
}

fn authorize_post(core: &Core, r: &Req) -> Response<Body> {
    let form = r.form();
    let a = authz_params(&form);
    let mut w = core.lock();
    if let Err(resp) = check_authz(&w, &a) {
        return *resp;
    }
    let g = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    if g("action").as_deref() != Some("approve") {
        let mut p = vec![("error", "access_denied"), ("error_description", "end-user denied authorization")];
        if let Some(s) = &a.state {
            p.push(("state", s.as_str()));
        }
        return redirect(&with_params(&a.redirect_uri, &p));
    }
    let username = g("username").unwrap_or_default();
    issue_code(core, &mut w, &a, &username, r.vhost.as_deref())
}

fn sign(secret: &str, msg: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(msg.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn id_token(secret: &str, iss: &str, sub: &str, aud: &str, now_s: i64) -> String {
    let h = URL_SAFE_NO_PAD.encode(json!({"alg":"HS256","typ":"JWT","kid":"sfsim"}).to_string());
    let c = URL_SAFE_NO_PAD.encode(json!({"iss": iss, "sub": sub, "aud": aud, "iat": now_s, "exp": now_s + 300}).to_string());
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(format!("{h}.{c}").as_bytes());
    format!("{h}.{c}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// The identity URL of a user.
pub fn id_url(core: &Core, org_id: &str, sandbox: bool, user: &str) -> String {
    let base = core.instance_url();
    let login = if sandbox { format!("{base}/test.salesforce.com") } else { base };
    format!("{login}/id/{org_id}/{user}")
}

#[allow(clippy::too_many_arguments)]
fn token_body(
    core: &Core,
    w: &mut World,
    oi: usize,
    user: &str,
    client_id: &str,
    scope: &str,
    refresh: Option<String>,
    family: Option<String>,
) -> Value {
    let now_ms = core.clock.now_ms();
    let access = w.issue_access(oi, user, Some(client_id.into()), family, scope, now_ms);
    let org = &w.orgs[oi];
    let id = id_url(core, &org.id, org.sandbox, user);
    let instance_url = match &org.moved_to {
        Some(host) => format!("{}/{host}", core.instance_url()),
        None => core.instance_url(),
    };
    let issued_at = now_ms.to_string();
    let secret = w.apps.get(client_id).map(|a| a.client_secret.clone()).unwrap_or_default();
    let mut v = json!({
        "access_token": access,
        "signature": sign(&secret, &format!("{id}{issued_at}")),
        "scope": scope,
        "instance_url": instance_url,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
    });
    if let Some(rt) = refresh {
        v["refresh_token"] = json!(rt);
    }
    if scope.split(' ').any(|s| s == "openid") {
        let iss = core.instance_url();
        v["id_token"] = json!(id_token(&secret, &iss, &id, client_id, now_ms / 1000));
    }
    v
}

fn check_client(w: &World, client_id: &str, secret: Option<&str>, required: bool) -> Result<(), OAuthError> {
    let app = w.apps.get(client_id).ok_or_else(|| OAuthError::new("invalid_client_id", "client identifier invalid"))?;
    match secret {
        Some(s) if s == app.client_secret => Ok(()),
        Some(_) => Err(OAuthError::new("invalid_client", "invalid client credentials")),
        None if required && app.require_secret => Err(OAuthError::new("invalid_client", "invalid client credentials")),
        None => Ok(()),
    }
}

fn token(core: &Core, r: &Req) -> Result<Response<Body>, OAuthError> {
    let form = r.form();
    let g = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let client_id = g("client_id").unwrap_or_default();
    let secret = g("client_secret");
    let mut w = core.lock();
    match g("grant_type").as_deref() {
        Some("authorization_code") => {
            check_client(&w, &client_id, secret.as_deref(), true)?;
            let code = g("code").unwrap_or_default();
            let c = w.codes.remove(&code).ok_or_else(|| OAuthError::new("invalid_grant", "invalid authorization code"))?;
            if c.client_id != client_id || c.expires < core.clock.now() {
                return Err(OAuthError::new("invalid_grant", "invalid authorization code"));
            }
            if g("redirect_uri").as_deref() != Some(c.redirect_uri.as_str()) {
                return Err(OAuthError::new("redirect_uri_mismatch", "redirect_uri must match configuration"));
            }
            if let Some(ch) = &c.challenge {
                let v = g("code_verifier").ok_or_else(|| OAuthError::new("invalid_grant", "invalid code verifier"))?;
                if URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) != *ch {
                    return Err(OAuthError::new("invalid_grant", "invalid code verifier"));
                }
            }
            w.orgs[c.org].count("oauth_token", false);
            let (refresh, family) = if c.scope.split(' ').any(|s| s == "refresh_token" || s == "offline_access") {
                let family = w.random_token(16);
                let rt = format!("5Aep861{}", w.random_token(80));
                w.refresh.insert(
                    rt.clone(),
                    RefreshToken {
                        org: c.org,
                        user: c.user.clone(),
                        client_id: client_id.clone(),
                        family: family.clone(),
                        scope: c.scope.clone(),
                        rotated: false,
                        revoked: false,
                        last_used: core.clock.now(),
                        last_refresh: None,
                    },
                );
                (Some(rt), Some(family))
            } else {
                (None, None)
            };
            let body = token_body(core, &mut w, c.org, &c.user, &client_id, &c.scope, refresh, family);
            Ok(json_ok(body))
        }
        Some("refresh_token") => {
            check_client(&w, &client_id, secret.as_deref(), false)?;
            let rt = g("refresh_token").unwrap_or_default();
            let t = w.refresh.get(&rt).cloned().ok_or_else(|| OAuthError::new("invalid_grant", "expired access/refresh token"))?;
            if t.client_id != client_id {
                return Err(OAuthError::new("invalid_grant", "expired access/refresh token"));
            }
            w.orgs[t.org].count("oauth_token", false);
            if t.revoked {
                return Err(OAuthError::new("invalid_grant", "expired access/refresh token"));
            }
            let window = std::time::Duration::from_millis(core.config.refresh_window_ms);
            let in_window = t.last_refresh.is_some_and(|at| at.elapsed() < window);
            if in_window {
                return Err(OAuthError::new("invalid_grant", "expired authorization code"));
            }
            if t.rotated {
                // reuse of a rotated token: revoke the family
                let fam = t.family.clone();
                for x in w.refresh.values_mut().filter(|x| x.family == fam) {
                    x.revoked = true;
                }
                w.tokens.retain(|_, a| a.family.as_deref() != Some(fam.as_str()));
                return Err(OAuthError::new("invalid_grant", "expired access/refresh token"));
            }
            let app = w.apps.get(&client_id).cloned().unwrap_or_default();
            let now = core.clock.now();
            if let Some(idle) = app.refresh_idle_expiry_secs
                && now - t.last_used > time::Duration::seconds(idle as i64)
            {
                return Err(OAuthError::new("invalid_grant", "expired access/refresh token"));
            }
            let active = w.orgs[t.org]
                .table("User")
                .ok()
                .and_then(|(_, tb)| tb.get(&t.user))
                .and_then(|u| u.fields.get("IsActive"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !active {
                return Err(OAuthError::new("invalid_grant", "inactive user"));
            }
            if !w.orgs[t.org].installed_apps.contains(&client_id) {
                return Err(OAuthError::new("invalid_grant", "app must be installed into org"));
            }
            if w.orgs[t.org].faults.ip_restricted {
                return Err(OAuthError::new("invalid_grant", "ip restricted"));
            }
            let new_rt = if app.rotate_refresh_tokens {
                let n = format!("5Aep861{}", w.random_token(80));
                w.refresh.insert(n.clone(), RefreshToken { rotated: false, last_used: now, last_refresh: None, ..t.clone() });
                Some(n)
            } else {
                None
            };
            if let Some(x) = w.refresh.get_mut(&rt) {
                x.last_used = now;
                x.last_refresh = Some(Instant::now());
                x.rotated = app.rotate_refresh_tokens;
            }
            let body = token_body(core, &mut w, t.org, &t.user, &client_id, &t.scope, new_rt, Some(t.family.clone()));
            Ok(json_ok(body))
        }
        Some("password") => {
            check_client(&w, &client_id, secret.as_deref(), true)?;
            let username = g("username").unwrap_or_default();
            let password = g("password").unwrap_or_default();
            let (oi, uid) = check_password(&w, &username, &password, r.vhost.as_deref())
                .ok_or_else(|| OAuthError::new("invalid_grant", "authentication failure"))?;
            if !w.orgs[oi].installed_apps.contains(&client_id) {
                return Err(OAuthError::new("invalid_grant", "app must be installed into org"));
            }
            w.orgs[oi].count("oauth_token", false);
            let body = token_body(core, &mut w, oi, &uid, &client_id, "api", None, None);
            Ok(json_ok(body))
        }
        _ => Err(OAuthError::new("unsupported_grant_type", "grant type not supported")),
    }
}

/// Checks a username and password (with or without the security token appended) against a host.
pub fn check_password(w: &World, username: &str, password: &str, vhost: Option<&str>) -> Option<(usize, String)> {
    let (oi, uid) = w.user_by_username(username)?;
    let org = &w.orgs[oi];
    if !host_admits(vhost, &org.my_domain, org.sandbox) {
        return None;
    }
    let c = org.creds.get(&uid)?;
    let ok = password == c.password || password == format!("{}{}", c.password, c.security_token);
    let active = org.table("User").ok()?.1.get(&uid)?.fields.get("IsActive")?.as_bool()?;
    (ok && active).then_some((oi, uid))
}

fn revoke(core: &Core, r: &Req) -> Result<Response<Body>, OAuthError> {
    let tok = r.form().into_iter().chain(r.params()).find(|(k, _)| k == "token").map(|(_, v)| v).unwrap_or_default();
    let mut w = core.lock();
    if let Some(rt) = w.refresh.get(&tok).cloned() {
        w.orgs[rt.org].count("oauth_revoke", false);
        for x in w.refresh.values_mut().filter(|x| x.family == rt.family) {
            x.revoked = true;
        }
        w.tokens.retain(|_, a| a.family.as_deref() != Some(rt.family.as_str()));
        return Ok(Response::new(Body::empty()));
    }
    if let Some(a) = w.tokens.remove(&tok) {
        w.orgs[a.org].count("oauth_revoke", false);
        return Ok(Response::new(Body::empty()));
    }
    Err(OAuthError::new("unsupported_token_type", "this token type is not supported"))
}

fn introspect(core: &Core, r: &Req) -> Response<Body> {
    let form = r.form();
    let tok = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v.clone()).unwrap_or_default();
    let w = core.lock();
    if let Some(a) = w.tokens.get(&tok) {
        let user = w.orgs[a.org].table("User").ok().and_then(|(_, t)| t.get(&a.user)).and_then(|u| u.fields.get("Username")).cloned();
        return json_ok(
            json!({"active": true, "scope": a.scope, "client_id": a.client_id, "username": user, "sub": id_url(core, &w.orgs[a.org].id, w.orgs[a.org].sandbox, &a.user), "token_type": "access_token", "iat": a.issued_ms / 1000}),
        );
    }
    if let Some(rt) = w.refresh.get(&tok).filter(|r| !r.revoked && !r.rotated) {
        return json_ok(json!({"active": true, "scope": rt.scope, "client_id": rt.client_id, "token_type": "refresh_token"}));
    }
    json_ok(json!({"active": false}))
}

fn identity(core: &Core, r: &Req, userinfo: bool) -> Response<Body> {
    let Some(tok) = r.bearer().or_else(|| r.param("oauth_token")) else {
        return html(StatusCode::FORBIDDEN, "Bad_OAuth_Token".into());
    };
    let mut w = core.lock();
    let Some(a) = w.tokens.get(&tok).cloned() else {
        return (StatusCode::FORBIDDEN, "Bad_OAuth_Token").into_response();
    };
    if !userinfo {
        let mut segs = r.path.trim_start_matches("/id/").split('/');
        let (o, u) = (segs.next().unwrap_or(""), segs.next().unwrap_or(""));
        let org_ok = ids::normalize(o).as_deref() == Some(w.orgs[a.org].id.as_str());
        let user_ok =
            ids::normalize(u).is_some_and(|u| w.orgs[a.org].table("User").ok().and_then(|(_, t)| t.get(&u).map(|_| ())).is_some());
        if !org_ok || !user_ok {
            return (StatusCode::FORBIDDEN, "Bad_Id").into_response();
        }
    }
    let uid = if userinfo {
        a.user.clone()
    } else {
        r.path.trim_start_matches("/id/").split('/').nth(1).and_then(ids::normalize).unwrap_or_default()
    };
    let org = &w.orgs[a.org];
    let Some(u) = org.table("User").ok().and_then(|(_, t)| t.get(&uid)).map(|u| u.fields.clone()) else {
        return (StatusCode::FORBIDDEN, "Bad_Id").into_response();
    };
    let s = |k: &str| u.get(k).cloned().unwrap_or(Value::Null);
    let base = core.instance_url();
    let id = id_url(core, &org.id, org.sandbox, &uid);
    let org15 = ids::to15(&org.id).to_string();
    let urls = json!({
        "enterprise": format!("{base}/services/Soap/c/{{version}}/{org15}"),
        "metadata": format!("{base}/services/Soap/m/{{version}}/{org15}"),
        "partner": format!("{base}/services/Soap/u/{{version}}/{org15}"),
        "rest": format!("{base}/services/data/v{{version}}/"),
        "sobjects": format!("{base}/services/data/v{{version}}/sobjects/"),
        "search": format!("{base}/services/data/v{{version}}/search/"),
        "query": format!("{base}/services/data/v{{version}}/query/"),
        "profile": format!("{base}/{uid}"),
        "custom_domain": format!("{base}/{}", crate::sim::my_domain_host(&org.my_domain, org.sandbox)),
    });
    let body = if userinfo {
        json!({
            "sub": id, "user_id": uid, "organization_id": org.id, "preferred_username": s("Username"),
            "nickname": s("Alias"), "name": s("Name"), "email": s("Email"), "email_verified": true,
            "given_name": s("FirstName"), "family_name": s("LastName"), "zoneinfo": s("TimeZoneSidKey"),
            "active": s("IsActive"), "user_type": "STANDARD", "language": "en_US", "locale": "en_US",
            "utcOffset": 0, "updated_at": s("LastModifiedDate"), "is_app_installed": true, "urls": urls,
        })
    } else {
        json!({
            "id": id, "asserted_user": a.user == uid, "user_id": uid, "organization_id": org.id,
            "username": s("Username"), "nick_name": s("Alias"), "display_name": s("Name"), "email": s("Email"),
            "email_verified": true, "first_name": s("FirstName"), "last_name": s("LastName"),
            "timezone": s("TimeZoneSidKey"), "active": s("IsActive"), "user_type": "STANDARD",
            "language": "en_US", "locale": "en_US", "utcOffset": 0, "last_modified_date": s("LastModifiedDate"),
            "is_app_installed": true, "urls": urls,
        })
    };
    w.orgs[a.org].count(if userinfo { "userinfo" } else { "identity" }, false);
    json_ok(body)
}

/// Test knobs for the token endpoint: hold a refresh request (to script an interleaving), answer
/// it with a chosen error or drop it, and mint a refresh token family without a browser.
pub mod knobs {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::{Arc, LazyLock, Mutex};
    use tokio::sync::watch;

    /// What a held refresh request does once released.
    #[derive(Debug, Clone)]
    pub enum Release {
        /// Processed as usual.
        Proceed,
        /// Answered `400 {"error": error, "error_description": description}`, nothing changed.
        Answer { error: &'static str, description: String },
        /// The connection is dropped, nothing processed (a request that never got through).
        Drop,
    }

    #[derive(Default)]
    struct Hold {
        taken: AtomicBool,
        others: AtomicUsize,
        arrived: watch::Sender<Option<String>>,
        release: watch::Sender<Option<Release>>,
    }

    /// Holds per simulator, keyed by its HTTPS URL.
    static HOLDS: LazyLock<Mutex<HashMap<String, Arc<Hold>>>> = LazyLock::new(Default::default);

    fn holds() -> std::sync::MutexGuard<'static, HashMap<String, Arc<Hold>>> {
        HOLDS.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A hold on the next `grant_type=refresh_token` request (see [`hold_next_refresh`]).
    pub struct RefreshHold {
        key: String,
        hold: Arc<Hold>,
    }

    /// Holds the next refresh request at the token endpoint until [`RefreshHold::release`]; other
    /// refresh requests pass (and are counted while it is held).
    pub fn hold_next_refresh(core: &Core) -> RefreshHold {
        let key = core.urls().https;
        let hold = Arc::new(Hold::default());
        holds().insert(key.clone(), hold.clone());
        RefreshHold { key, hold }
    }

    impl RefreshHold {
        /// Waits for the held request; returns the refresh token it carries.
        pub async fn arrived(&self) -> String {
            let mut rx = self.hold.arrived.subscribe();
            loop {
                if let Some(token) = rx.borrow_and_update().clone() {
                    return token;
                }
                if rx.changed().await.is_err() {
                    return String::new();
                }
            }
        }

        /// Refresh requests that arrived while the held one waited.
        pub fn others(&self) -> usize {
            self.hold.others.load(std::sync::atomic::Ordering::SeqCst)
        }

        /// Lets the held request go (or answers or drops it).
        pub fn release(&self, how: Release) {
            self.hold.release.send_replace(Some(how));
        }
    }

    impl Drop for RefreshHold {
        fn drop(&mut self) {
            self.hold.release.send_replace(Some(Release::Proceed));
            let mut map = holds();
            if map.get(&self.key).is_some_and(|h| Arc::ptr_eq(h, &self.hold)) {
                map.remove(&self.key);
            }
        }
    }

    /// Called before the token endpoint runs: `Some(answer)` for a held request that was
    /// answered or dropped, `None` to go on.
    pub(super) async fn before_token(core: &Core, r: &Req) -> Option<Response<Body>> {
        let form = r.form();
        let get = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        if get("grant_type").as_deref() != Some("refresh_token") {
            return None;
        }
        let hold = holds().get(&core.urls().https).cloned()?;
        if hold.taken.swap(true, std::sync::atomic::Ordering::SeqCst) {
            if hold.release.borrow().is_none() {
                hold.others.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            return None;
        }
        hold.arrived.send_replace(Some(get("refresh_token").unwrap_or_default()));
        let mut rx = hold.release.subscribe();
        let how = loop {
            if let Some(how) = rx.borrow_and_update().clone() {
                break how;
            }
            if rx.changed().await.is_err() {
                break Release::Proceed;
            }
        };
        match how {
            Release::Proceed => None,
            Release::Answer { error, description } => Some(OAuthError::new(error, description).into_response()),
            Release::Drop => {
                let mut resp = Response::new(Body::empty());
                resp.extensions_mut().insert(crate::server::DropConnection);
                Some(resp)
            }
        }
    }

    /// Authorizes `username` for `client_id` with scope `api refresh_token` and no browser: the
    /// token answer a code exchange would give (with a fresh refresh token family).
    pub fn issue_refresh_token(core: &Core, username: &str, client_id: &str) -> Result<Value, crate::SimError> {
        let mut w = core.lock();
        let (org, user) = w.user_by_username(username).ok_or_else(|| crate::SimError::Invalid(format!("unknown user {username}")))?;
        let scope = "api refresh_token";
        let family = w.random_token(16);
        let rt = format!("5Aep861{}", w.random_token(80));
        let now = core.clock.now();
        w.refresh.insert(
            rt.clone(),
            RefreshToken {
                org,
                user: user.clone(),
                client_id: client_id.into(),
                family: family.clone(),
                scope: scope.into(),
                rotated: false,
                revoked: false,
                last_used: now,
                last_refresh: None,
            },
        );
        Ok(token_body(core, &mut w, org, &user, client_id, scope, Some(rt), Some(family)))
    }
}
