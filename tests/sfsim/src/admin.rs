//! The admin surface `/_sim/…`: JSON endpoints over the [`Core`] methods (create orgs, seed and
//! read data, faults, outbound rules and deliveries, counters, clock, settings).

use crate::error::SimError;
use crate::rest::json_resp;
use crate::server::Req;
use crate::sim::Core;
use axum::body::Body;
use axum::http::{Method, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn parse<T: DeserializeOwned>(r: &Req) -> Result<T, SimError> {
    let body: &[u8] = if r.body.is_empty() { b"{}" } else { &r.body };
    serde_json::from_slice(body).map_err(|e| SimError::Invalid(format!("bad JSON: {e}")))
}

fn ok<T: serde::Serialize>(v: T) -> Result<Value, SimError> {
    serde_json::to_value(v).map_err(|e| SimError::Invalid(e.to_string()))
}

#[derive(Deserialize)]
#[serde(default)]
struct ClockReq {
    advance_secs: f64,
    scale: Option<f64>,
}

impl Default for ClockReq {
    fn default() -> Self {
        Self { advance_secs: 0.0, scale: None }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SettingsReq {
    auto_approve: Option<bool>,
    page_size: Option<usize>,
}

#[derive(Deserialize)]
struct TokenReq {
    username: String,
}

/// Handles `/_sim/…`.
pub async fn handle(core: &Core, r: Req) -> Response<Body> {
    let path = r.path.trim_start_matches("/_sim").trim_start_matches('/').to_string();
    let segs: Vec<&str> = if path.is_empty() { Vec::new() } else { path.split('/').collect() };
    match route(core, &r, &segs) {
        Ok(v) => json_resp(200, &v),
        Err(e) => {
            let status = match e {
                SimError::UnknownOrg(_) | SimError::UnknownObject(_) => 404,
                SimError::Api(ref a) => a.status,
                _ => 400,
            };
            json_resp(status, &json!({"error": e.to_string()}))
        }
    }
}

fn route(core: &Core, r: &Req, segs: &[&str]) -> Result<Value, SimError> {
    let m = &r.method;
    match segs {
        [] | ["info"] => {
            let apps: Vec<Value> = core.lock().apps.values().map(|a| json!(a)).collect();
            Ok(json!({"urls": core.urls(), "orgs": core.orgs(), "apps": apps, "now": crate::clock::fmt_rest(core.clock.now())}))
        }
        ["orgs"] if *m == Method::GET => ok(core.orgs()),
        ["orgs"] if *m == Method::POST => ok(core.create_org(parse(r)?)?),
        ["apps"] if *m == Method::POST => {
            core.register_app(parse(r)?);
            Ok(json!({"ok": true}))
        }
        ["token"] if *m == Method::POST => {
            let t: TokenReq = parse(r)?;
            Ok(json!({"access_token": core.issue_token(&t.username)?, "instance_url": core.instance_url()}))
        }
        ["clock"] => {
            if *m == Method::POST {
                let c: ClockReq = parse(r)?;
                if let Some(s) = c.scale {
                    core.clock.set_scale(s);
                }
                if c.advance_secs > 0.0 && c.advance_secs.is_finite() {
                    core.advance_clock(std::time::Duration::from_secs_f64(c.advance_secs));
                }
            }
            Ok(json!({"now": crate::clock::fmt_rest(core.clock.now()), "scale": core.clock.scale()}))
        }
        ["settings"] if *m == Method::PUT || *m == Method::POST => {
            let s: SettingsReq = parse(r)?;
            if let Some(a) = s.auto_approve {
                core.set_auto_approve(a);
            }
            if let Some(p) = s.page_size {
                core.set_page_size(p);
            }
            let w = core.lock();
            Ok(json!({"auto_approve": w.auto_approve, "page_size": w.page_size}))
        }
        ["orgs", org, rest @ ..] => org_route(core, r, org, rest),
        _ => Err(SimError::Invalid(format!("no admin route {} /_sim/{}", m, segs.join("/")))),
    }
}

fn org_route(core: &Core, r: &Req, org: &str, segs: &[&str]) -> Result<Value, SimError> {
    let m = &r.method;
    match segs {
        [] => ok(core.org(org)?),
        ["users"] if *m == Method::POST => ok(core.add_users(org, parse(r)?)?),
        ["generate"] if *m == Method::POST => ok(core.generate_users(org, parse(r)?)?),
        ["objects"] if *m == Method::POST => {
            core.declare_object(org, parse(r)?)?;
            Ok(json!({"ok": true}))
        }
        ["fields", object] if *m == Method::POST => {
            core.declare_field(org, object, parse(r)?)?;
            Ok(json!({"ok": true}))
        }
        ["records", object] if *m == Method::GET => ok(core.records(org, object)?),
        ["records", object] if *m == Method::POST => ok(core.insert_records(org, object, parse(r)?)?),
        ["records", _object, id] if *m == Method::GET => ok(core.record(org, id)?),
        ["records", object, id] if *m == Method::PATCH => {
            core.update_record(org, object, id, parse(r)?)?;
            ok(core.record(org, id)?)
        }
        ["records", object, id] if *m == Method::DELETE => {
            core.delete_record(org, object, id)?;
            Ok(json!({"ok": true}))
        }
        ["calls"] => ok(core.calls(org)?),
        ["calls", "reset"] if *m == Method::POST => {
            core.reset_calls(org)?;
            Ok(json!({"ok": true}))
        }
        ["faults"] if *m == Method::GET => ok(core.faults(org)?),
        ["faults"] if *m == Method::PUT || *m == Method::POST => {
            core.set_faults(org, parse(r)?)?;
            ok(core.faults(org)?)
        }
        ["expire_sessions"] if *m == Method::POST => Ok(json!({"expired": core.expire_sessions(org)?})),
        ["revoke_refresh_tokens"] if *m == Method::POST => Ok(json!({"revoked": core.revoke_refresh_tokens(org)?})),
        ["apps", client_id, "install"] if *m == Method::POST => {
            core.install_app(org, client_id)?;
            Ok(json!({"ok": true}))
        }
        ["outbound", "rules"] if *m == Method::GET => ok(core.outbound_rules(org)?),
        ["outbound", "rules"] if *m == Method::POST => ok(core.add_outbound_rule(org, parse(r)?)?),
        ["outbound", "rules"] if *m == Method::DELETE => {
            core.clear_outbound_rules(org)?;
            Ok(json!({"ok": true}))
        }
        ["outbound", "settings"] if *m == Method::PUT || *m == Method::POST => {
            core.set_outbound_settings(org, parse(r)?)?;
            Ok(json!({"ok": true}))
        }
        ["outbound", "deliveries"] => ok(core.deliveries(org)?),
        ["outbound", "queue"] => ok(core.outbound_queue(org)?),
        ["outbound", "dropped"] => ok(core.outbound_dropped(org)?),
        _ => Err(SimError::Invalid(format!("no admin route {} for org {org}: {}", m, segs.join("/")))),
    }
}
