//! `upsert_contact`: creates or updates a directory contact in a list from mapped fields.
//!
//! The contact write and the task's outcome in the run's state are one store transaction, so
//! the task happens exactly once. The contact keeps the `SystemModstamp` of the data it holds: an older
//! notification (delivered late or out of order) never overwrites newer data.

use std::collections::BTreeMap;

use forcelink::domain::directory::Contact;
use forcelink::domain::ids;
use forcelink::domain::record::{self, Record};
use forcelink::ports::{Cond, StoreError, WriteOp};
use time::OffsetDateTime;

/// A notification's fields, exact names kept; `None` for a nil field.
type Fields = BTreeMap<String, Option<String>>;

use super::{Ctx, TaskError, complete, succeeded};
use crate::lease::{Held, lost};
use forcelink::domain::piped::{field, pipe};
use forcelink::domain::report::TaskOutcome;
use forcelink::domain::workflow::Task;

/// Runs the task.
pub async fn run(ctx: &Ctx<'_>, list: &str, mapping: &BTreeMap<String, String>, held: &mut Held) -> Result<TaskOutcome, TaskError> {
    let task = Task::UpsertContact { list: list.to_string(), fields: mapping.clone() };
    let fields = &ctx.note.fields;
    let email = piped_email(fields, mapping)?;
    let id = contact_id(fields, &email);
    let mapped: BTreeMap<String, String> =
        mapping.iter().filter(|(k, _)| k.as_str() != "email").map(|(k, t)| (k.clone(), pipe(t, fields, &[]))).collect();
    let incoming = ctx.note.modstamp();
    let mut contact = Contact {
        site: ctx.note.site.clone(),
        list: list.to_string(),
        id,
        email,
        fields: mapped,
        embedded: fields.clone(),
        source_modstamp: incoming,
    };
    for _ in 0..5 {
        let existing = record::load::<Contact>(ctx.deps.store.as_ref(), &contact.pk(), &contact.sk()).await?;
        let (cond, verb) = match &existing {
            None => (Cond::NotExists, "created"),
            Some(v) => (Cond::Version(v.version), "updated"),
        };
        let newer = existing.as_ref().and_then(|v| v.record.source_modstamp).filter(|kept| incoming.is_some_and(|new| new < *kept));
        let (ops, outcome) = match newer {
            Some(kept) => {
                let outcome = succeeded(
                    ctx,
                    &task,
                    format!("kept contact {} in list {list}: it holds newer data (SystemModstamp {kept} > {})", contact.id, fmt(incoming)),
                );
                (vec![WriteOp::Check { pk: contact.pk(), sk: contact.sk(), cond }], outcome)
            }
            None => {
                if let Some(v) = &existing {
                    // Keep mapped fields another workflow wrote that this one does not map.
                    for (k, val) in &v.record.fields {
                        contact.fields.entry(k.clone()).or_insert_with(|| val.clone());
                    }
                }
                let item = contact.to_item()?;
                let outcome = succeeded(ctx, &task, format!("{verb} contact {} ({}) in list {list}", contact.id, contact.email));
                (vec![WriteOp::Put { item, cond }], outcome)
            }
        };
        let before = held.state.clone();
        complete(ctx, held, &outcome);
        match held.transact(ctx.deps.store.as_ref(), ops).await {
            Ok(()) => return Ok(outcome),
            Err(StoreError::ConditionFailed { .. }) => {
                held.state = before;
                if !held.still_held(ctx.deps.store.as_ref()).await? {
                    return Err(lost());
                }
                // The contact changed under us (another notification for it): read again.
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(TaskError::Transient(format!("contact {} kept changing during the upsert", contact.id)))
}

/// The contact's address: the `email` mapping piped, if it is one.
fn piped_email(fields: &Fields, mapping: &BTreeMap<String, String>) -> Result<String, TaskError> {
    let email = mapping.get("email").map(|t| pipe(t, fields, &[])).unwrap_or_default().trim().to_string();
    if email.is_empty() || !email.contains('@') || email.len() > 320 {
        return Err(TaskError::Permanent(format!(
            "the contact's email is {email:?} after piping {:?}: map `email` to a field holding an address",
            mapping.get("email").map(String::as_str).unwrap_or("(not mapped)")
        )));
    }
    Ok(email)
}

/// The contact's id in its list: the record's Id (18 characters) when it has one, else the
/// address, lowercased.
fn contact_id(fields: &Fields, email: &str) -> String {
    field(fields, "Id").and_then(ids::to_18).unwrap_or_else(|| email.to_ascii_lowercase())
}

/// The id of the contact an `upsert_contact` with `mapping` writes for these fields: what an
/// invitation's link names as its recipient.
pub fn id_for(fields: &Fields, mapping: &BTreeMap<String, String>) -> Result<String, TaskError> {
    piped_email(fields, mapping).map(|email| contact_id(fields, &email))
}

fn fmt(t: Option<OffsetDateTime>) -> String {
    t.map_or("none".into(), |t| t.to_string())
}
