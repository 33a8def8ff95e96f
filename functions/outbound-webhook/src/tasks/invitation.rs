//! `send_invitation`: an email from the workflow's template with a signed link, plus an SMS
//! where the workflow names a phone field and a sender.
//!
//! Exactly once, or reported. Steps:
//! 1. the run's state says this email's send may be under way (`sending`), written under the
//!    lease of the attempt that holds the run (usually with the previous task's own write);
//! 2. one send attempt through the `Mailer` (the SES client does not retry on its own);
//! 3. the outcome goes into the run's state with the run's final write.
//!
//! A definite failure (refused, throttled) was not sent: the run is retried and sends again.
//! An unknown outcome (a timeout, a lost connection, a server error) is recorded as `unknown`
//! and not sent again, unless the task says `on_unknown = "resend"`; so is a send an earlier
//! attempt announced but never recorded (it ended during the send: a crash, the Lambda
//! timeout). The link is deterministic per (notification, task), so a resend carries the same
//! link.

use std::time::Duration;

use forcelink::domain::keys;
use forcelink::domain::record::Record;
use forcelink::domain::report::{RunStatus, TaskOutcome};
use forcelink::domain::workflow::{OnUnknown, SmsSettings, Task};
use forcelink::links::{LinkClaims, link_url, mint_issued};
use forcelink::ports::{Email, MailError, StoreError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Ctx, TaskError, complete, succeeded};
use crate::lease::Held;
use forcelink::domain::piped::{field, pipe};
use forcelink::domain::workflow::LINK_PLACEHOLDER;

/// How long an invitation link stays valid.
pub const LINK_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);

/// The task's settings.
pub struct Spec<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub target: &'a str,
    pub sms: Option<&'a SmsSettings>,
    pub on_unknown: OnUnknown,
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

/// Runs the task.
pub async fn run(ctx: &Ctx<'_>, spec: Spec<'_>, held: &mut Held) -> Result<TaskOutcome, TaskError> {
    let task = Task::SendInvitation {
        to: spec.to.into(),
        subject: spec.subject.into(),
        body: spec.body.into(),
        target: spec.target.into(),
        sms: spec.sms.cloned(),
        on_unknown: spec.on_unknown,
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

    // 1–2: the email, once per lease.
    let interrupted = held.interrupted_send == Some(ctx.index);
    let unknown = if interrupted && spec.on_unknown == OnUnknown::Report {
        Some(format!("attempt {} ended during the send", held.state.attempts.saturating_sub(1)))
    } else {
        held.announce_send(store, ctx.index).await?;
        let (from, reply_to) = match &ctx.site.sender {
            Some(s) => (s.from.clone(), s.reply_to.clone()),
            None => (ctx.deps.settings.mail_from.clone(), None),
        };
        let email = Email { from, reply_to, to: vec![to.clone()], subject: subject.clone(), text, html: None };
        match ctx.deps.mailer.send(&email).await {
            Ok(id) => {
                held.state.sending = None;
                let output = format!("email to {to} accepted ({id})");
                return finish(ctx, &spec, succeeded(ctx, &task, output), &link, &subject, held).await;
            }
            Err(MailError::Unknown(m)) if spec.on_unknown == OnUnknown::Resend => {
                held.state.sending = None;
                return Err(TaskError::Unknown(format!("email to {to}: {m}; sent again on the next attempt (on_unknown = \"resend\")")));
            }
            Err(MailError::Unknown(m)) => Some(m),
            Err(e) => {
                // Not sent: the next attempt sends.
                held.state.sending = None;
                return Err(match e {
                    MailError::Invalid(m) => TaskError::Permanent(format!("the email cannot be sent: {m}")),
                    MailError::Throttled(m) => TaskError::Throttled(m),
                    MailError::Transport(m) | MailError::Unknown(m) => TaskError::Transient(format!("mail transport: {m}")),
                });
            }
        }
    };
    held.state.sending = None;
    let why = unknown.unwrap_or_default();
    let outcome = TaskOutcome {
        name: super::task_name(ctx.index, &task),
        status: RunStatus::Unknown,
        output: Some(format!("email to {to}: outcome unknown ({why}); not sent again (on_unknown = \"report\")")),
        error: None,
    };
    finish(ctx, &spec, outcome, &link, &subject, held).await
}

/// 3: the SMS, then the task's outcome into the run's state (written with the run's next write).
async fn finish(
    ctx: &Ctx<'_>,
    spec: &Spec<'_>,
    mut outcome: TaskOutcome,
    link: &str,
    subject: &str,
    held: &mut Held,
) -> Result<TaskOutcome, TaskError> {
    if let Some(sms) = spec.sms {
        let note = match field(&ctx.note.fields, &sms.phone_field).map(str::trim).filter(|p| !p.is_empty()) {
            None => format!("; no SMS: {} is empty", sms.phone_field),
            Some(phone) => {
                let message = SmsMessage {
                    site: ctx.note.site.clone(),
                    key: format!("{}#task{}", ctx.note.id, ctx.index),
                    to: phone.to_string(),
                    sender: sms.sender.clone(),
                    text: format!("{subject} {link}"),
                    created_at: ctx.deps.clock.now(),
                };
                match ctx.deps.store.put(message.to_item()?, forcelink::ports::Cond::NotExists).await {
                    Ok(_) | Err(StoreError::ConditionFailed { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                format!("; SMS to {phone} queued in the SMS outbox")
            }
        };
        if let Some(output) = outcome.output.as_mut() {
            output.push_str(&note);
        }
    }
    complete(ctx, held, &outcome);
    Ok(outcome)
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
