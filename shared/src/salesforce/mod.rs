//! Salesforce for every function: OAuth, tokens, and the REST client.
//!
//! - [`SalesforceClient`] — the REST API of one connection (`for_site(deps, site, None)` picks
//!   the site's default): cached access token, refresh on `401` and retry once, API usage from
//!   `Sforce-Limit-Info`, `query` streaming pages through `nextRecordsUrl`, `get_json`,
//!   `send_json`, `send`, `identity`.
//! - [`SfError`] — every failure, typed: `is_transient()` for retry decisions, `admin_hint()`
//!   for what an admin must fix.
//! - [`session`] — sealed tokens, the in-memory cache ([`Sessions`], in `Deps`), single-flight
//!   refresh across Lambdas with a store lease, `needs_reauth`.
//! - [`oauth`] — the `oauth2` crate over forcelink's HTTP client, the token `signature` check,
//!   the identity call, revoke.
//! - [`connections`] — rename, remove (revoking), default, invitations, connect URLs.
//! - [`health`] — named credential problems and each one's fix for the admin.
//! - [`warnings`] — [`check_credentials`]: warnings before a credential breaks, emailed to admins.
//! - [`sso`] — the platform's login token and the `next` check.

pub mod client;
pub mod connections;
pub mod error;
pub mod health;
pub mod hosts;
pub mod oauth;
pub mod secret;
pub mod session;
pub mod signed;
pub mod sso;
pub mod warnings;

pub use client::{QueryPage, SalesforceClient, SfResponse};
pub use error::{LimitKind, SfError};
pub use session::{Cached, Sessions};
pub use warnings::{Warning, WarningKind, check_credentials};
