//! `send_invitation`: an email from the workflow's template with a signed link, plus an SMS
//! where the workflow names a phone field and a sender.
//!
//! Exactly once, with one honest window. Steps, each recorded under the notification:
//! 1. a short lease (`…#lease`, written only if absent, expiring after [`LEASE`]) so two
//!    concurrent runs of the same notification never both send;
//! 2. the email through the `Mailer` port;
//! 3. the email mark (`…#email`), written only after the Mailer accepted the email;
//! 4. the SMS, written to the site's SMS outbox with a "must not exist" condition (there is no
//!    SMS provider: the outbox is where a provider integration would read from);
//! 5. the task's completion marker.
//!
//! A crash (or a store failure) between 2 and 3 is the only way an email goes out twice: the
//! retry after the lease expires cannot know the Mailer accepted it. Everything else is
//! idempotent. The link is deterministic per (notification, task), so a resend carries the
//! same link.

use std::time::Duration;

use forcelink::domain::keys;
use forcelink::domain::record::Record;
use forcelink::domain::report::TaskOutcome;
use forcelink::domain::workflow::{SmsSettings, Task};
use forcelink::links::{LinkClaims, link_url, mint_issued};
use forcelink::ports::{Cond, Email, Item, MailError, StoreError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Ctx, TaskError, succeeded};
use forcelink::domain::piped::{field, pipe};
use forcelink::domain::workflow::LINK_PLACEHOLDER;

/// How long one attempt holds the send lease.
pub const LEASE: Duration = Duration::from_secs(120);
/// How long an invitation link stays valid.
pub const LINK_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);

/// The task's settings.
pub struct Spec<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub target: &'a str,
    pub sms: Option<&'a SmsSettings>,
}

/// An SMS waiting in the site's outbox (`SMS#{site}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsMessage {
    pub site: String,
    /// `{notification id}#task{n}`: one SMS per task run, whatever the redeliveries.
    pub key: String,
    pub to: String,
    pub sender: String,
    pub text: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Record for SmsMessage {
    fn pk(&self) -> String {
        keys::sms_pk(&self.site)
    }
    fn sk(&self) -> String {
        self.key.clone()
    }
}

#[derive(Serialize, Deserialize)]
struct EmailMark {
    to: String,
    message_id: String,
}

/// Runs the task.
pub async fn run(ctx: &Ctx<'_>, spec: Spec<'_>) -> Result<TaskOutcome, TaskError> {
    let task = Task::SendInvitation {
        to: spec.to.into(),
        subject: spec.subject.into(),
        body: spec.body.into(),
        target: spec.target.into(),
        sms: spec.sms.cloned(),
    };
    let fields = &ctx.note.fields;
    let to = pipe(spec.to, fields, &[]).trim().to_string();
    if to.is_empty() || !to.contains('@') {
        return Err(TaskError::Permanent(format!("the recipient is {to:?} after piping {:?}: it must be an email address", spec.to)));
    }
    let link = link(ctx, spec.target)?;
    let extra = [(LINK_PLACEHOLDER, link.as_str())];
    let subject = pipe(spec.subject, fields, &extra);
    let text = pipe(spec.body, fields, &extra);
    let store = ctx.deps.store.as_ref();
    let pk = keys::notification_pk(&ctx.note.org);

    // 1–3: the email, unless an earlier attempt got it accepted.
    let message_id = match store.get(&pk, &ctx.sub_sk("email")).await? {
        Some(item) => serde_json::from_str::<EmailMark>(&item.body).map(|m| m.message_id).unwrap_or_default(),
        None => {
            let now = ctx.deps.clock.epoch_secs();
            let lease = Item::new(pk.clone(), ctx.sub_sk("lease"), "{}").with_expiry(now + LEASE.as_secs() as i64);
            match store.put(lease, Cond::NotExists).await {
                Ok(_) => {}
                Err(StoreError::ConditionFailed { .. }) => {
                    return Err(TaskError::Transient("another attempt is sending this invitation".into()));
                }
                Err(e) => return Err(e.into()),
            }
            let (from, reply_to) = match &ctx.site.sender {
                Some(s) => (s.from.clone(), s.reply_to.clone()),
                None => (ctx.deps.settings.mail_from.clone(), None),
            };
            let email = Email { from, reply_to, to: vec![to.clone()], subject, text, html: None };
            let id = match ctx.deps.mailer.send(&email).await {
                Ok(id) => id,
                Err(e) => {
                    // Not sent: free the lease so the retry need not wait for it.
                    let _ = store.delete(&pk, &ctx.sub_sk("lease"), Cond::Always).await;
                    return Err(match e {
                        MailError::Invalid(m) => TaskError::Permanent(format!("the email cannot be sent: {m}")),
                        MailError::Transport(m) => TaskError::Transient(format!("mail transport: {m}")),
                    });
                }
            };
            let mark = serde_json::to_string(&EmailMark { to: to.clone(), message_id: id.clone() }).unwrap_or_else(|_| "{}".into());
            let mut item = Item::new(pk.clone(), ctx.sub_sk("email"), mark);
            item.expires_at = ctx.note.expires_at();
            // The window: if this write fails, a retry after the lease expires sends again.
            store.put(item, Cond::Always).await?;
            id
        }
    };
    let mut output = format!("email to {to} accepted ({message_id})");

    // 4: the SMS.
    if let Some(sms) = spec.sms {
        match field(fields, &sms.phone_field).map(str::trim).filter(|p| !p.is_empty()) {
            None => output.push_str(&format!("; no SMS: {} is empty", sms.phone_field)),
            Some(phone) => {
                let message = SmsMessage {
                    site: ctx.note.site.clone(),
                    key: format!("{}#task{}", ctx.note.id, ctx.index),
                    to: phone.to_string(),
                    sender: sms.sender.clone(),
                    text: format!("{} {link}", pipe(spec.subject, fields, &extra)),
                    created_at: ctx.deps.clock.now(),
                };
                match store.put(message.to_item()?, Cond::NotExists).await {
                    Ok(_) | Err(StoreError::ConditionFailed { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                output.push_str(&format!("; SMS to {phone} queued in the SMS outbox"));
            }
        }
    }

    // 5: done.
    let outcome = succeeded(ctx, &task, output);
    match store.put(ctx.marker(&outcome)?, Cond::NotExists).await {
        Ok(_) => Ok(outcome),
        Err(StoreError::ConditionFailed { .. }) => Ok(ctx.completed().await?.unwrap_or(outcome)),
        Err(e) => Err(e.into()),
    }
}

/// The signed link for the workflow's contact (the one its last `upsert_contact` before this
/// task writes): deterministic per (notification, task), so a resend carries the same link;
/// its nonce is an HMAC of that pair, unique and unguessable.
fn link(ctx: &Ctx<'_>, target: &str) -> Result<String, TaskError> {
    use base64::Engine;
    let upsert = ctx.workflow.tasks[..ctx.index.min(ctx.workflow.tasks.len())].iter().rev().find_map(|t| match t {
        Task::UpsertContact { list, fields } => Some((list, fields)),
        Task::SendInvitation { .. } => None,
    });
    let Some((list, mapping)) = upsert else {
        return Err(TaskError::Permanent(format!(
            "workflow {} has no upsert_contact task before this invitation: the link is for that contact",
            ctx.workflow.name
        )));
    };
    let user = super::contact::id_for(&ctx.note.fields, mapping)?;
    let sig = ctx.deps.keys.sign(format!("invitation-nonce\n{}\n{}\n{}", ctx.note.org, ctx.note.id, ctx.index).as_bytes());
    let claims = LinkClaims {
        site: ctx.note.site.clone(),
        user,
        list: Some(list.clone()),
        target: target.to_string(),
        expires_at: ctx.note.received_at.unix_timestamp() + LINK_VALIDITY.as_secs() as i64,
        single_use: false,
        nonce: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sig.tag[..12]),
    };
    claims.check().map_err(|_| TaskError::Permanent(format!("cannot sign a link to target {target:?}: check the task's target")))?;
    Ok(link_url(&ctx.deps.settings.public_url, &mint_issued(ctx.deps.keys.as_ref(), &claims, ctx.note.received_at.unix_timestamp())))
}
