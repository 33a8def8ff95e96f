//! The store keys of every record, in one place, so no two records can collide.
//!
//! Site configuration lives under `SITE#{site}`; the directory under `DIR#{site}`; run
//! reports under `RUN#{site}#{shard}`. The one secondary index (`gsi1`) serves lookups by a
//! global id: a workflow's endpoint id, a connection's org.

/// Partition of a site's configuration.
pub fn site_pk(site: &str) -> String {
    format!("SITE#{site}")
}
/// Sort key of the site record itself.
pub const SITE_SK: &str = "SITE";
/// Sort key prefix of a site's connections.
pub const CONNECTION_PREFIX: &str = "CONN#";
/// Sort key prefix of a site's workflows.
pub const WORKFLOW_PREFIX: &str = "WF#";
/// Sort key prefix of a site's export mappings.
pub const EXPORT_PREFIX: &str = "EXPORT#";
/// Sort key prefix of a site's sync jobs.
pub const SYNC_PREFIX: &str = "SYNC#";
/// Sort key of a site's connection.
pub fn connection_sk(name: &str) -> String {
    format!("{CONNECTION_PREFIX}{name}")
}
/// Sort key of a site's workflow.
pub fn workflow_sk(name: &str) -> String {
    format!("{WORKFLOW_PREFIX}{name}")
}
/// Sort key of a site's export mapping for one record kind.
pub fn export_sk(kind: &str) -> String {
    format!("{EXPORT_PREFIX}{kind}")
}
/// Sort key of a site's sync job.
pub fn sync_sk(name: &str) -> String {
    format!("{SYNC_PREFIX}{name}")
}

/// Partition of the list of every site (for `status` and schedules).
pub const SITES_PK: &str = "SITES";

/// Index key under which a workflow is found by its endpoint id.
pub fn workflow_index(workflow_id: &str) -> String {
    format!("WFID#{workflow_id}")
}
/// Index key under which a site's connections are found by org id (18 chars).
pub fn org_index(org_id: &str) -> String {
    format!("ORG#{org_id}")
}

/// Partition of a site's directory.
pub fn directory_pk(site: &str) -> String {
    format!("DIR#{site}")
}
/// Sort key prefix of directory users.
pub const USER_PREFIX: &str = "USER#";
/// Sort key prefix of directory contacts (then `{list}#{id}`).
pub const CONTACT_PREFIX: &str = "CONTACT#";
/// Sort key prefix of directory groups.
pub const GROUP_PREFIX: &str = "GROUP#";
/// Sort key of a directory user.
pub fn user_sk(id: &str) -> String {
    format!("{USER_PREFIX}{id}")
}
/// Sort key of a directory contact of a list.
pub fn contact_sk(list: &str, id: &str) -> String {
    format!("{CONTACT_PREFIX}{list}#{id}")
}
/// Sort key of a directory group.
pub fn group_sk(id: &str) -> String {
    format!("{GROUP_PREFIX}{id}")
}

/// Run reports of a site are spread over this many partitions, so a burst of runs (a
/// 100-notification message, a busy export) never writes to one partition alone.
pub const RUN_SHARDS: u32 = 8;
/// Partition of one shard of a site's run reports; sort keys start with the start time, so
/// each lists by date (`report::list` merges the shards, newest first).
pub fn runs_pk(site: &str, shard: u32) -> String {
    format!("RUN#{site}#{shard}")
}
/// The shard of a run's report: a stable hash of the run's id.
pub fn run_shard(run_id: &str) -> u32 {
    run_id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % RUN_SHARDS
}

/// Partition of one outbound notification (org 18-char id, notification 18-char id): its own
/// partition, so a burst from one org spreads over many. It holds the notification
/// ([`NOTIFICATION_SK`], the dedupe mark and the persisted payload) and its run's state
/// ([`RUN_STATE_SK`]: attempts, lease, finished tasks); one query reads both.
pub fn notification_pk(org_id: &str, notification: &str) -> String {
    format!("OBN#{org_id}#{notification}")
}
/// Sort key of a stored notification.
pub const NOTIFICATION_SK: &str = "NOTE";
/// Sort key of a notification's run state.
pub const RUN_STATE_SK: &str = "RUN";

/// Partition of the record changes a site's workflow has seen (sort key: record Id, then
/// `#` and the change's time), which the reconciliation poll compares with Salesforce's
/// `SystemModstamp`.
pub fn seen_change_pk(site: &str, workflow: &str) -> String {
    format!("OBSEEN#{site}#{workflow}")
}

/// Partition of a site's SMS outbox (there is no SMS provider: messages wait here).
pub fn sms_pk(site: &str) -> String {
    format!("SMS#{site}")
}

/// Partition of one link's state (used, revoked), by the link's nonce; it expires with the link.
pub fn link_pk(nonce: &str) -> String {
    format!("LINK#{nonce}")
}
/// Sort key of a link's state.
pub const LINK_STATE_SK: &str = "STATE";
/// Partition of a site's link clicks; sort keys start with the click time, so they list by date.
pub fn clicks_pk(site: &str) -> String {
    format!("CLICK#{site}")
}
/// Index key under which one link's clicks are found, by the link's nonce.
pub fn link_clicks_index(nonce: &str) -> String {
    format!("LINKCLICK#{nonce}")
}

/// Partition of one OAuth flow's state (by its random `state` value); it expires in 10 minutes.
pub fn oauth_state_pk(state: &str) -> String {
    format!("OAUTH#{state}")
}
/// Sort key of a live OAuth state.
pub const OAUTH_STATE_SK: &str = "STATE";
/// Sort key of the mark a used OAuth state leaves (tells a replay from an unknown state).
pub const OAUTH_USED_SK: &str = "USED";
/// Partition of the mark a consumed connect ticket or invitation leaves (by its nonce); it
/// lives as long as the ticket would.
pub fn ticket_used_pk(nonce: &str) -> String {
    format!("TICKET#{nonce}")
}
/// Sort key of a consumed ticket's mark.
pub const TICKET_USED_SK: &str = "USED";
/// Partition of the refresh lease of one connection: single-flight refresh across Lambdas.
pub fn refresh_lease_pk(site: &str, connection: &str) -> String {
    format!("LEASE#{site}/{connection}")
}
/// Sort key of a refresh lease.
pub const REFRESH_LEASE_SK: &str = "REFRESH";

/// Partition of a site's export ledger: one item per platform record (`EV#{kind}#{id}`, the
/// latest event and what was exported of it), the historical checkpoint and the org pause.
pub fn export_ledger_pk(site: &str) -> String {
    format!("EXPLEDGER#{site}")
}
/// Index key of a site's export events held (no live connection, paused org).
pub fn export_held_index(site: &str) -> String {
    format!("EXPHELD#{site}")
}
/// Index key of a site's export events that failed for good (replayable).
pub fn export_failed_index(site: &str) -> String {
    format!("EXPFAIL#{site}")
}
/// Partition of one org's export budget state (the pause after `REQUEST_LIMIT_EXCEEDED`).
pub fn org_budget_pk(org_id: &str) -> String {
    format!("ORGBUDGET#{org_id}")
}

/// The scheduled credential check's turn (`forcelink::salesforce::warnings::check_when_due`).
pub const CREDENTIAL_CHECK_PK: &str = "CREDCHECK";
/// Sort key of [`CREDENTIAL_CHECK_PK`]'s one item: when the check is due next.
pub const CREDENTIAL_CHECK_SK: &str = "NEXT";

/// Partition of a site's sync job state: `JOB#{job}` (schedule, watermark, last full pass),
/// `LEASE#{job}` (the run lease, with a TTL), `CKPT#{job}` (an interrupted run's checkpoint)
/// and `CKPT#{job}#{n}` (its chunks of ids).
pub fn sync_state_pk(site: &str) -> String {
    format!("SYNCSTATE#{site}")
}
/// Sort key of a sync job's state.
pub fn sync_job_sk(job: &str) -> String {
    format!("JOB#{job}")
}
/// Sort key of a sync job's run lease.
pub fn sync_lease_sk(job: &str) -> String {
    format!("LEASE#{job}")
}
/// Sort key of an interrupted sync run's checkpoint.
pub fn checkpoint_sk(job: &str) -> String {
    format!("CKPT#{job}")
}
/// Sort key of chunk `n` of a checkpoint's ids.
pub fn checkpoint_chunk_sk(job: &str, n: u32) -> String {
    format!("CKPT#{job}#{n:05}")
}
/// Partition of a site's documents loaded by generic inbound jobs; sort key `{job}#{natural_id}`.
pub fn document_pk(site: &str) -> String {
    format!("DOC#{site}")
}
