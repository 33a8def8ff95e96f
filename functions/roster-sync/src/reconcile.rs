//! Reconciliation jobs: the record changes whose outbound messages Salesforce dropped.
//!
//! Salesforce retries an outbound message for 24 h, then drops it. A reconcile job reads its
//! workflow's object in `(SystemModstamp, Id)` order, only up to [`HORIZON`] ago, so no
//! message for a change it reads can still arrive. A record whose latest change no
//! notification delivered (the workflow's [`SeenChange`](forcelink::intake::SeenChange) is
//! older, or absent) is taken in as a notification built from the record, exactly as if its
//! message had come; the workflow runner does the rest, once. The notification id is derived
//! from the record and its `SystemModstamp`, so a rerun takes nothing in twice.
//!
//! The first run starts at the horizon: a job catches losses from when it was set up, not
//! through the org's history. It never reaches back more than [`MAX_LOOKBACK`] (the life of
//! the seen marks); a longer gap is reported in the run's notes.

use std::time::Duration;

use forcelink::domain::connection::Connection;
use forcelink::domain::counts::{Counter, Counts};
use forcelink::domain::record;
use forcelink::domain::sync::SyncKind;
use forcelink::domain::workflow::Workflow;
use forcelink::domain::{ids, keys};
use forcelink::intake::{self, Notification, Source, Target};
use forcelink::salesforce::QueryPage;
use serde_json::Value;
use time::OffsetDateTime;

use crate::checkpoint::Checkpoint;
use crate::error::SyncError;
use crate::inbound::validate;
use crate::runner::{Ctx, Pass, ProgressEvent};
use crate::soql::{self, Cursor};
use crate::state::JobState;

/// How old a change must be before it is reconciled: Salesforce's 24 h of retries, plus an
/// hour for its last attempt and clock skew.
pub const HORIZON: Duration = Duration::from_secs(25 * 3600);
/// How far back a job reaches at most (the seen marks live 7 days).
pub const MAX_LOOKBACK: Duration = Duration::from_secs(6 * 24 * 3600);
/// The sort field.
const STAMP: &str = "SystemModstamp";
/// Runs a reconcile job.
pub async fn run(ctx: &mut Ctx<'_>, state: &JobState, resume: Option<(Checkpoint, Vec<String>)>) -> Result<Pass, SyncError> {
    let SyncKind::Reconcile { workflow, filter, fields: extra } = &ctx.job.kind else {
        return Err(SyncError::Invalid("not a reconcile job".into()));
    };
    let store = ctx.deps.store.as_ref();
    let site = ctx.job.site.clone();
    let wf = record::load::<Workflow>(store, &keys::site_pk(&site), &keys::workflow_sk(workflow))
        .await?
        .map(|v| v.record)
        .ok_or_else(|| SyncError::Invalid(format!("workflow {workflow:?} of site {site:?} no longer exists")))?;
    let org = org_of(ctx).await?;
    let mut select = wf.fields();
    for f in extra {
        if !select.iter().any(|s| s.eq_ignore_ascii_case(f)) {
            select.push(f.clone());
        }
    }
    ctx.progress(ProgressEvent::Phase(format!("checking {} fields", wf.object)));
    let describe = ctx.sf.get_json::<validate::Describe>(&format!("sobjects/{}/describe", wf.object)).await;
    ctx.called();
    let describe = describe?;
    validate::check_fields(&describe, &wf.object, &select, STAMP)?;
    let datetimes: Vec<&str> =
        describe.fields.iter().filter(|f| f.ftype == "datetime").map(|f| f.name.as_str()).filter(|n| has(&select, n)).collect();

    let horizon = ctx.now - HORIZON;
    let floor = ctx.now - MAX_LOOKBACK;
    let (cursor, invocations, mut counts, errors) = match resume {
        Some((c, _)) => (c.cursor, c.invocations + 1, c.counts, c.errors),
        None => (state.watermark.clone(), 1, Counts::default(), Vec::new()),
    };
    let mut notes = Vec::new();
    let start = soql::stamp_of(&horizon);
    let mut cursor = match cursor {
        // The first run: from now on.
        None => {
            notes.push(format!("first run: changes after {start} will be reconciled once they are {} h old", HORIZON.as_secs() / 3600));
            return Ok(Pass {
                counts,
                errors,
                notes,
                cursor: Some(Cursor { stamp: start, id: soql::LOWEST_ID.into() }),
                ..Pass::default()
            });
        }
        Some(c) => c,
    };
    if soql::parse_datetime(&cursor.stamp).is_some_and(|t| t < floor) {
        let from = soql::stamp_of(&floor);
        notes.push(format!(
            "changes from {} to {from} were not reconciled: the job had not run for over {} days",
            cursor.stamp,
            MAX_LOOKBACK.as_secs() / 86_400
        ));
        cursor = Cursor { stamp: from, id: soql::LOWEST_ID.into() };
    }

    let mut conds: Vec<String> = filter.iter().map(|c| format!("({c})")).collect();
    conds.push(soql::after(STAMP, &cursor).ok_or_else(|| SyncError::Invalid(format!("bad watermark {:?}", cursor.stamp)))?);
    conds.push(format!("{STAMP} <= {}", soql::literal(&start).unwrap_or_default()));
    let query = format!("SELECT {} FROM {} WHERE {} ORDER BY {STAMP}, Id", select.join(", "), wf.object, conds.join(" AND "));
    let target = Target { org: &org, site: &site, workflow: &wf.name, workflow_id: &wf.id, source: Source::Reconciled };
    let mut next = Some(format!("query?q={}", url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()));
    let mut done = 0u64;
    let mut reported = false;
    ctx.progress(ProgressEvent::Phase(format!("reading {} changes", wf.object)));
    while let Some(p) = next.take() {
        let page = ctx.sf.get_json::<QueryPage>(&p).await;
        ctx.called();
        let page = page?;
        if !reported {
            ctx.progress(ProgressEvent::Total(page.total_size));
            reported = true;
        }
        let mut missed = Vec::new();
        for rec in &page.records {
            let (Some(stamp), Some(id)) = (soql::text_at(rec, STAMP), soql::text_at(rec, "Id").and_then(|i| ids::to_18(&i))) else {
                return Err(SyncError::Invalid(format!("a {} record came without Id or {STAMP}", wf.object)));
            };
            let changed = soql::parse_datetime(&stamp).ok_or_else(|| SyncError::Invalid(format!("{STAMP} {stamp:?} does not parse")))?;
            cursor = Cursor { stamp, id: id.clone() };
            counts.add(Counter::Fetched, 1);
            done += 1;
            if intake::seen_upto(store, &site, &wf.name, &id).await?.is_some_and(|seen| seen >= changed) {
                counts.add(Counter::Delivered, 1);
                continue;
            }
            counts.add(Counter::Missed, 1);
            if missed.len() < 20 && notes.len() < 20 {
                notes.push(format!("{} {id} changed at {} and no outbound message for it arrived", wf.object, cursor.stamp));
            }
            missed.push(notification(&wf.object, &select, &datetimes, rec, &id, changed));
        }
        if !ctx.opts.dry_run {
            for chunk in missed.chunks(intake::MAX_PER_MESSAGE) {
                let taken = intake::intake(ctx.deps, &target, chunk).await?;
                counts.add(Counter::Queued, taken.stored as u64);
                counts.add(Counter::AlreadyQueued, taken.duplicates as u64);
            }
        }
        ctx.progress(ProgressEvent::Done(done));
        next = page.next_page()?;
        if next.is_none() {
            break;
        }
        if next.is_some() && ctx.page_done() {
            let mut saved = counts.clone();
            saved.add(Counter::ApiCalls, ctx.calls);
            let ckpt = ctx.checkpoint(false, Some(cursor.clone()), saved, errors.clone(), Vec::new(), invocations);
            crate::checkpoint::save(store, ckpt, &[]).await?;
            return Ok(Pass { counts, errors, notes, interrupted: true, cursor: Some(cursor), ..Pass::default() });
        }
    }
    Ok(Pass { counts, errors, notes, cursor: Some(cursor), ..Pass::default() })
}

/// The org of the job's connection (the notifications' partition).
async fn org_of(ctx: &Ctx<'_>) -> Result<String, SyncError> {
    let conn = Connection::load(ctx.deps.store.as_ref(), &ctx.job.site, ctx.sf.connection()).await?.map(|v| v.record);
    conn.and_then(|c| c.org_id)
        .ok_or_else(|| SyncError::Invalid(format!("connection {:?} is not connected to an org yet", ctx.sf.connection())))
}

fn has(names: &[String], name: &str) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// A datetime as Salesforce's REST API writes it, for cursors.
/// The notification an outbound message would have carried for `rec`: the selected fields by
/// the names the workflow uses, datetimes in the message's `…000Z` form.
fn notification(object: &str, select: &[String], datetimes: &[&str], rec: &Value, id: &str, changed: OffsetDateTime) -> Notification {
    let fields = select
        .iter()
        .map(|name| {
            let value = soql::text_at(rec, name);
            let value = match value {
                Some(v) if datetimes.iter().any(|d| d.eq_ignore_ascii_case(name)) => soql::literal(&v).or(Some(v)),
                other => other,
            };
            (name.clone(), value)
        })
        .collect();
    let millis = changed.unix_timestamp_nanos() / 1_000_000;
    Notification { id: format!("rc-{id}-{millis}"), object: object.to_string(), fields }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_notification_a_message_would_have_carried() {
        let rec = serde_json::json!({"attributes": {"type": "Contact"}, "Id": "003000000000001AAA", "Email": "a@x.io",
            "SystemModstamp": "2026-03-01T10:15:00.000+0000", "Phone": null});
        let select = ["Id", "SystemModstamp", "Email", "Phone"].map(String::from);
        let changed = soql::parse_datetime("2026-03-01T10:15:00.000+0000").unwrap();
        let n = notification("Contact", &select, &["SystemModstamp"], &rec, "003000000000001AAA", changed);
        assert_eq!(n.id, "rc-003000000000001AAA-1772360100000");
        assert!(ids::to_18(&n.id).is_none(), "never mistaken for a Salesforce id");
        assert_eq!(n.fields["SystemModstamp"].as_deref(), Some("2026-03-01T10:15:00.000Z"));
        assert_eq!(intake::modstamp(&n.fields), Some(changed));
        assert_eq!(n.fields["Phone"], None);
        assert_eq!(n.fields["Email"].as_deref(), Some("a@x.io"));
    }
}
