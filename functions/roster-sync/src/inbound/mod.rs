//! Generic inbound jobs: any SOQL query → documents under the site.
//!
//! The query is checked ([`validate`]: shape, date field, fields known to the object's
//! describe), then read after the watermark in `(date field, Id)` order with the job's filter
//! and record limit; each record is redacted ([`redact`]), mapped ([`map`]) and stored by the
//! job's duplicate rule. Unchanged documents are not written again.

pub mod map;
pub mod redact;
pub mod validate;

use forcelink::domain::counts::{Counter, Counts};
use forcelink::domain::record::{Record, decode};
use forcelink::domain::sync::SyncKind;
use forcelink::domain::{Document, keys};
use forcelink::ports::Cond;
use forcelink::salesforce::QueryPage;
use time::format_description::well_known::Rfc3339;

use crate::checkpoint::Checkpoint;
use crate::error::SyncError;
use crate::roster::apply::Writer;
use crate::runner::{Ctx, Pass, ProgressEvent};
use crate::soql::{self, Cursor};
use crate::state::JobState;

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A REST path on the job's API version (or the connection's default).
fn path(version: Option<&str>, rest: &str) -> String {
    match version {
        Some(v) => format!("/services/data/v{}/{rest}", v.trim_start_matches('v')),
        None => rest.to_string(),
    }
}

/// Runs a generic job.
pub async fn run(ctx: &mut Ctx<'_>, state: &JobState, resume: Option<(Checkpoint, Vec<String>)>) -> Result<Pass, SyncError> {
    let SyncKind::Soql { query, date_field, api_version, mapping, record_limit, duplicates, filter, redact, substitute } = &ctx.job.kind
    else {
        return Err(SyncError::Invalid("not a SOQL job".into()));
    };
    let version = api_version.as_deref();
    if let Some(v) = version
        && !v.trim_start_matches('v').split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(SyncError::Invalid(format!("api_version {v:?}: expected a version like 64.0")));
    }
    let parsed = validate::parse(query, date_field)?;
    let rules = redact::compile(redact, substitute)?;
    ctx.progress(ProgressEvent::Phase(format!("checking {} fields", parsed.object)));
    let describe = ctx.sf.get_json::<validate::Describe>(&path(version, &format!("sobjects/{}/describe", parsed.object))).await;
    ctx.called();
    let date_type = validate::check_fields(&describe?, &parsed.object, &parsed.fields, date_field)?;

    let (mut cursor, invocations, mut counts, mut errors) = match resume {
        Some((c, _)) => (c.cursor, c.invocations + 1, c.counts, c.errors),
        None => (if ctx.opts.full { None } else { state.watermark.clone() }, 1, Counts::default(), Vec::new()),
    };
    let mut conds: Vec<String> = parsed.condition.iter().chain(filter.iter()).map(|c| format!("({c})")).collect();
    conds.push(format!("{date_field} != null"));
    if let Some(c) = &cursor {
        conds.push(soql::after(date_field, c).ok_or_else(|| SyncError::Invalid(format!("bad watermark {:?}", c.stamp)))?);
    }
    // A datetime field stops at the lag point (see `soql::lag_point`); a date has no time to lag.
    if date_type == "datetime" {
        conds.push(format!("{date_field} <= {}", soql::stamp_of(&soql::lag_point(ctx.now, ctx.deps.settings.sync_lag))));
    }
    let mut soql =
        format!("SELECT {} FROM {} WHERE {} ORDER BY {date_field}, Id", parsed.fields.join(", "), parsed.object, conds.join(" AND "));
    if let Some(n) = record_limit {
        let left = u64::from(*n).saturating_sub(counts.count(Counter::Fetched));
        soql.push_str(&format!(" LIMIT {}", left.max(1)));
    }
    let mapper = map::Mapper {
        site: &ctx.job.site,
        job: &ctx.job.name,
        object: &parsed.object,
        date_field,
        mapping,
        load_date: ctx.now.format(&Rfc3339).unwrap_or_default(),
    };
    let store = ctx.deps.store.as_ref();
    let pk = keys::document_pk(&ctx.job.site);
    let mut w = Writer::new(store, ctx.opts.dry_run);
    let mut next = Some(path(version, &format!("query?q={}", encode(&soql))));
    let mut done = 0u64;
    ctx.progress(ProgressEvent::Phase(format!("loading {}", parsed.object)));
    while let Some(p) = next.take() {
        let page = ctx.sf.get_json::<QueryPage>(&p).await;
        ctx.called();
        let page = page?;
        if done == 0 {
            ctx.progress(ProgressEvent::Total(page.total_size));
        }
        let following = page.next_page()?;
        for mut rec in page.records {
            let (Some(stamp), Some(id)) = (soql::text_at(&rec, date_field), soql::text_at(&rec, "Id")) else {
                errors.push("a record without Id or date field".into());
                continue;
            };
            cursor = Some(Cursor { stamp, id });
            rules.record(&mut rec);
            let doc = match mapper.document(&rec) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let stored = store.get(&pk, &doc.sk()).await?;
            let old: Option<Document> = stored.as_ref().map(decode).transpose()?;
            let counter = match (&stored, map::resolve(old.as_ref(), doc, *duplicates)) {
                (_, None) => Counter::Unchanged,
                (None, Some(d)) => {
                    w.put(&d, Cond::NotExists)?;
                    Counter::Added
                }
                (Some(item), Some(d)) => {
                    w.put(&d, Cond::Version(item.version))?;
                    Counter::Updated
                }
            };
            counts.add(counter, 1);
            counts.add(Counter::Fetched, 1);
            done += 1;
        }
        w.flush().await?;
        ctx.progress(ProgressEvent::Done(done));
        next = following;
        if next.is_none() {
            break;
        }
        if next.is_some() && ctx.page_done() {
            counts.add(Counter::DocumentWrites, w.writes);
            errors.extend(w.conflicts);
            let mut saved = counts.clone();
            saved.add(Counter::ApiCalls, ctx.calls);
            let ckpt = ctx.checkpoint(false, cursor.clone(), saved, errors.clone(), Vec::new(), invocations);
            crate::checkpoint::save(store, ckpt, &[]).await?;
            return Ok(Pass { counts, errors, interrupted: true, cursor, ..Pass::default() });
        }
    }
    counts.add(Counter::DocumentWrites, w.writes);
    errors.extend(w.conflicts);
    Ok(Pass { counts, errors, cursor, ..Pass::default() })
}
