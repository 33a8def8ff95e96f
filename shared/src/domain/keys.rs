//! The store keys of every record, in one place, so no two records can collide.
//!
//! Site configuration lives under `SITE#{site}`; the directory under `DIR#{site}`; run
//! reports under `RUN#{site}`. The one secondary index (`gsi1`) serves lookups by a
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

/// Partition of a site's run reports; sort keys start with the start time, so they list by date.
pub fn runs_pk(site: &str) -> String {
    format!("RUN#{site}")
}
