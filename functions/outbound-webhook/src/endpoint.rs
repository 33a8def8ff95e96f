//! `POST /outbound/{workflow_id}/{secret}`: verify, parse, check, persist, acknowledge.
//!
//! Order matters: the URL secret (HMAC, no store access), the body size (Content-Length
//! first), the workflow, the parse, the org and the sObject type are all checked before
//! anything is written. A rejected message leaves nothing behind. Tasks never run here: the
//! Ack goes out as soon as the notifications and their run request are durable.

use forcelink::Deps;
use forcelink::domain::record::{self, decode};
use forcelink::domain::workflow::verify_endpoint_secret;
use forcelink::domain::{Connection, ConnectionStatus, Site, Workflow, ids, keys};
use forcelink::ports::Query;
use forcelink::web::{Request, Response};
use http::{Method, header};

use crate::reply::{self, FaultCode};
use crate::soap;
use forcelink::intake::{self, Source, Target};

/// Largest outbound message accepted (1 MiB); larger ones get `413`.
pub const MAX_BODY: usize = 1024 * 1024;

/// Handles one delivery of an outbound message.
pub async fn receive(deps: &Deps, req: Request) -> Response {
    let Some((workflow_id, secret)) = parse_path(req.uri().path()) else {
        return reply::not_found();
    };
    if req.method() != Method::POST {
        return reply::method_not_allowed();
    }
    if !verify_endpoint_secret(deps.keys.as_ref(), workflow_id, secret) {
        tracing::warn!(workflow_id, "outbound message with a wrong endpoint secret");
        return reply::not_found();
    }
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) || req.body().len() > MAX_BODY {
        tracing::warn!(workflow_id, declared, "outbound message over 1 MiB refused");
        return reply::too_large(MAX_BODY);
    }
    let workflow = match find_workflow(deps, workflow_id).await {
        Ok(Some(w)) => w,
        Ok(None) => {
            tracing::warn!(workflow_id, "outbound message for an unknown workflow");
            return reply::not_found();
        }
        Err(e) => {
            tracing::error!(workflow_id, error = %e, "workflow lookup failed");
            return reply::fault(FaultCode::Server, "forcelink could not read its configuration; Salesforce will retry");
        }
    };
    let message = match soap::parse(req.body()) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(site = %workflow.site, workflow = %workflow.name, error = %e, "outbound message refused");
            return reply::fault(FaultCode::Client, &format!("the outbound message was refused: {e}"));
        }
    };
    let org = match check_org(deps, &workflow, &message.organization_id).await {
        Ok(org) => org,
        Err(resp) => return *resp,
    };
    if let Some(other) = message.notifications.iter().find(|n| !n.object.eq_ignore_ascii_case(&workflow.object)) {
        tracing::warn!(site = %workflow.site, workflow = %workflow.name, sent = %other.object, expected = %workflow.object, "sObject type mismatch");
        return reply::fault(
            FaultCode::Client,
            &format!(
                "This endpoint belongs to workflow \"{}\", which runs on {} records, but this outbound message sends {} records. \
                 Point the outbound message for {} at a workflow for that object, or change the workflow's object to {}.",
                workflow.name, workflow.object, other.object, other.object, other.object
            ),
        );
    }
    if let Some(bad) = message.notifications.iter().find(|n| ids::to_18(&n.id).is_none()) {
        return reply::fault(
            FaultCode::Client,
            &format!("notification id {:?} is not a Salesforce id", bad.id.chars().take(40).collect::<String>()),
        );
    }
    let target =
        Target { org: &org, site: &workflow.site, workflow: &workflow.name, workflow_id: &workflow.id, source: Source::OutboundMessage };
    match intake::intake(deps, &target, &message.notifications).await {
        Ok(intake) => {
            tracing::info!(
                site = %workflow.site,
                workflow = %workflow.name,
                notifications = message.notifications.len(),
                stored = intake.stored,
                duplicates = intake.duplicates,
                queued = intake.queued,
                "outbound message acknowledged"
            );
            reply::ack()
        }
        Err(e) => {
            tracing::error!(site = %workflow.site, workflow = %workflow.name, error = %e, "outbound message not persisted; no Ack");
            reply::fault(FaultCode::Server, "forcelink could not store the notifications; Salesforce will retry")
        }
    }
}

/// `/outbound/{id}/{secret}` → (id, secret).
fn parse_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/outbound/")?;
    let (id, secret) = rest.split_once('/')?;
    let ok = |s: &str| !s.is_empty() && s.len() <= 200 && !s.contains('/');
    (ok(id) && ok(secret)).then_some((id, secret))
}

async fn find_workflow(deps: &Deps, workflow_id: &str) -> Result<Option<Workflow>, record::RecordError> {
    let page = deps.store.query(&Query::prefix(keys::workflow_index(workflow_id), "").on_gsi1().limit(1)).await?;
    page.items.first().map(decode::<Workflow>).transpose()
}

/// The org id (18 chars) of the workflow's connection, if the message's org is that org;
/// otherwise the fault to answer.
async fn check_org(deps: &Deps, workflow: &Workflow, sent: &str) -> Result<String, Box<Response>> {
    let server = |e: &dyn std::fmt::Display| {
        tracing::error!(site = %workflow.site, error = %e, "connection lookup failed");
        Box::new(reply::fault(FaultCode::Server, "forcelink could not read its configuration; Salesforce will retry"))
    };
    let name = match &workflow.connection {
        Some(n) => n.clone(),
        None => match Site::load(deps.store.as_ref(), &workflow.site).await {
            Ok(Some(site)) => match site.record.default_connection {
                Some(n) => n,
                None => {
                    return Err(Box::new(reply::fault(
                        FaultCode::Client,
                        &format!("workflow \"{}\" names no connection and site {} has no default connection", workflow.name, workflow.site),
                    )));
                }
            },
            Ok(None) => return Err(Box::new(reply::fault(FaultCode::Client, "the workflow's site no longer exists"))),
            Err(e) => return Err(server(&e)),
        },
    };
    let conn = match Connection::load(deps.store.as_ref(), &workflow.site, &name).await {
        Ok(Some(c)) => c.record,
        Ok(None) => {
            return Err(Box::new(reply::fault(FaultCode::Client, &format!("connection {name} of site {} does not exist", workflow.site))));
        }
        Err(e) => return Err(server(&e)),
    };
    let Some(org) = conn.org_id.clone().filter(|_| conn.status != ConnectionStatus::Revoked) else {
        tracing::warn!(site = %workflow.site, connection = %name, "outbound message for a connection that is not connected");
        return Err(Box::new(reply::fault(
            FaultCode::Client,
            &format!(
                "connection {name} of site {} is not connected yet: connect it (forcelink connect {}), then Salesforce's retries will be accepted",
                workflow.site, workflow.site
            ),
        )));
    };
    if !ids::same_id(sent, &org) {
        tracing::warn!(site = %workflow.site, connection = %name, sent_org = %sent, "outbound message from another org");
        return Err(Box::new(reply::fault(
            FaultCode::Client,
            &format!(
                "OrganizationId {sent} is not the org of connection {name} ({org}): this endpoint accepts messages from that org only"
            ),
        )));
    }
    Ok(ids::to_18(&org).unwrap_or(org))
}

#[cfg(test)]
mod tests {
    use super::parse_path;

    #[test]
    fn paths() {
        assert_eq!(parse_path("/outbound/wf_1/k1.abc"), Some(("wf_1", "k1.abc")));
        assert_eq!(parse_path("/outbound/wf_1"), None);
        assert_eq!(parse_path("/outbound/wf_1/a/b"), None);
        assert_eq!(parse_path("/outbound//a"), None);
    }
}
