//! Emails to the site's admin: a run failed or succeeded, or the connection's credentials
//! stopped working. A missing admin address or a failed send is logged, never fatal.

use forcelink::Deps;
use forcelink::domain::report::RunReport;
use forcelink::domain::site::Site;
use forcelink::domain::sync::SyncJob;
use forcelink::ports::Email;

async fn send(deps: &Deps, job: &SyncJob, subject: String, text: String) {
    let site = match Site::load(deps.store.as_ref(), &job.site).await {
        Ok(Some(s)) => s.record,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(site = %job.site, error = %e, "sync notification: cannot read the site");
            return;
        }
    };
    let Some(to) = site.admin_email.clone() else {
        tracing::info!(site = %job.site, job = %job.name, "sync notification skipped: the site has no admin_email");
        return;
    };
    let (from, reply_to) = match &site.sender {
        Some(s) => (s.from.clone(), s.reply_to.clone()),
        None => (deps.settings.mail_from.clone(), None),
    };
    let email = Email { from, reply_to, to: vec![to], subject, text, html: None };
    if let Err(e) = deps.mailer.send(&email).await {
        tracing::warn!(site = %job.site, job = %job.name, error = %e, "sync notification not sent");
    }
}

fn counts(report: &RunReport) -> String {
    report.counts.iter().map(|(k, v)| format!("  {k}: {v}\n")).collect()
}

/// A run ended (success or failure).
pub async fn run_finished(deps: &Deps, job: &SyncJob, report: &RunReport) {
    let status = format!("{:?}", report.status).to_lowercase();
    let subject = format!("forcelink sync {}/{}: {status}", job.site, job.name);
    let mut text = format!("The sync job {} of site {} finished: {status}.\nRun {}\n\n{}", job.name, job.site, report.id, counts(report));
    if let Some(e) = &report.error {
        text.push_str(&format!("\nError: {e}\n"));
    }
    for t in report.tasks.iter().filter(|t| t.error.is_some()).take(20) {
        text.push_str(&format!("- {}\n", t.error.as_deref().unwrap_or_default()));
    }
    send(deps, job, subject, text).await;
}

/// The connection's credentials stopped working.
pub async fn credentials_expired(deps: &Deps, job: &SyncJob, report: &RunReport) {
    let connection = job.connection.as_deref().unwrap_or("the default connection");
    let subject = format!("forcelink: reconnect Salesforce for {} (sync {} stopped)", job.site, job.name);
    let text = format!(
        "The sync job {} of site {} could not run: Salesforce no longer accepts the saved authorization of {connection}.\n\n{}\n\nReconnect with `forcelink connect {}` (or send a new invitation); the job resumes at its next run.\n",
        job.name,
        job.site,
        report.error.as_deref().unwrap_or_default(),
        job.site
    );
    send(deps, job, subject, text).await;
}
