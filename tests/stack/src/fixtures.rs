//! The site files the suites share. Each is a whole site; a suite appends its own tables
//! (`[[sites.sync]]`, `[[sites.exports]]`, another `[[sites.connections]]`) with `format!`.

/// `acme` with one `production` connection, nothing else.
pub const ACME: &str = include_str!("fixtures/acme.toml");

/// [`ACME`] with the `contacts` workflow: upsert the Contact's email and first name, send it an
/// invitation with a link.
pub const ACME_CONTACTS: &str = concat!(include_str!("fixtures/acme.toml"), include_str!("fixtures/contacts-workflow.toml"));

/// `acme` as "Acme Corp" with an admin (`lms-admin@acme.example`, who gets the site's mail),
/// platform SSO, and a `production` connection to a production org.
pub const ACME_CORP: &str = include_str!("fixtures/acme-corp.toml");
