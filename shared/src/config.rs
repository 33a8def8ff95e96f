//! Site configuration as TOML (`forcelink apply FILE`): parsing with file and line in every
//! error, validation of everything before anything is written, and one atomic apply.
//!
//! The format is documented in README ("Configuration") and shown in `infra/examples/`.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::domain::connection::{ClientApp, Connection, Environment, MAX_CONNECTIONS};
use crate::domain::export::{ExportMapping, FieldSource};
use crate::domain::keys;
use crate::domain::record::{self, Record, RecordError};
use crate::domain::site::{Sender, Site, Tabs, valid_site_id};
use crate::domain::sync::{SyncJob, SyncKind};
use crate::domain::workflow::{Condition, Task, Workflow, workflow_id};
use crate::ports::keyring::KeyRing;
use crate::ports::store::{Cond, Query, Store, StoreError, WriteOp};

/// A configuration file's error, pointing at the place to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Applying a valid configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the configuration changed {0} records; one apply writes at most 100: split the file by site")]
    TooLarge(usize),
    #[error("the store changed while applying (another apply or an OAuth callback); nothing was written: run apply again")]
    Conflict,
    #[error("cannot seal the client secret: {0}")]
    Seal(#[from] crate::ports::keyring::KeyError),
    #[error(transparent)]
    Record(#[from] RecordError),
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ConditionFailed { .. } => ApplyError::Conflict,
            other => ApplyError::Record(other.into()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    sites: Vec<Spanned<SiteConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteConfig {
    id: Spanned<String>,
    name: String,
    platform_url: Spanned<String>,
    #[serde(default)]
    platform_sso_url: Option<Spanned<String>>,
    #[serde(default)]
    tabs: Tabs,
    #[serde(default)]
    force_sso: bool,
    #[serde(default)]
    admin_email: Option<String>,
    #[serde(default)]
    sender: Option<Sender>,
    #[serde(default)]
    default_connection: Option<Spanned<String>>,
    #[serde(default)]
    sso_connection: Option<Spanned<String>>,
    #[serde(default)]
    sso_match_email: bool,
    #[serde(default)]
    org_id: Option<Spanned<String>>,
    #[serde(default)]
    connections: Vec<Spanned<ConnectionConfig>>,
    #[serde(default)]
    workflows: Vec<Spanned<WorkflowConfig>>,
    #[serde(default)]
    exports: Vec<Spanned<ExportConfig>>,
    #[serde(default)]
    sync: Vec<Spanned<SyncConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionConfig {
    name: String,
    #[serde(default = "production")]
    environment: String,
    #[serde(default)]
    sync_user: Option<String>,
    /// The only org (15 or 18 chars) that may authorize the connection.
    #[serde(default)]
    expected_org_id: Option<String>,
    #[serde(default)]
    expires_on: Option<toml::value::Datetime>,
    #[serde(default)]
    warn_days: Option<u8>,
    #[serde(default)]
    client_id: Option<String>,
    /// Name of the environment variable holding the client secret (never the secret itself).
    #[serde(default)]
    client_secret_env: Option<String>,
}

fn production() -> String {
    "production".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowConfig {
    name: String,
    object: String,
    #[serde(default)]
    conditions: Vec<Condition>,
    tasks: Vec<Task>,
    #[serde(default)]
    connection: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportConfig {
    kind: String,
    object: String,
    external_id_field: String,
    fields: BTreeMap<String, FieldSource>,
    #[serde(default)]
    connection: Option<String>,
}

/// A sync job entry: `type = "roster"`, `"soql"` or `"reconcile"`, with the job's fields beside it.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SyncConfig {
    Roster(RosterConfig),
    Soql(SoqlConfig),
    Reconcile(ReconcileConfig),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileConfig {
    name: String,
    #[serde(default)]
    every_minutes: Option<u32>,
    #[serde(default)]
    connection: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    workflow: String,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    notify: crate::domain::sync::Notify,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterConfig {
    name: String,
    #[serde(default)]
    every_minutes: Option<u32>,
    #[serde(default)]
    connection: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "crate::domain::sync::default_filter")]
    filter: String,
    #[serde(default)]
    tag_fields: BTreeMap<String, String>,
    #[serde(default)]
    hierarchy: crate::domain::sync::Hierarchy,
    #[serde(default = "crate::domain::sync::default_breaker")]
    max_deactivate_share: f64,
    #[serde(default = "crate::domain::sync::default_full_every_hours")]
    full_every_hours: u32,
    #[serde(default)]
    notify: crate::domain::sync::Notify,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SoqlConfig {
    name: String,
    #[serde(default)]
    every_minutes: Option<u32>,
    #[serde(default)]
    connection: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    query: String,
    date_field: String,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    mapping: BTreeMap<String, String>,
    #[serde(default)]
    record_limit: Option<u32>,
    #[serde(default)]
    duplicates: crate::domain::sync::Duplicates,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    redact: Vec<crate::domain::sync::Redaction>,
    #[serde(default)]
    substitute: Vec<crate::domain::sync::Substitution>,
    #[serde(default)]
    notify: crate::domain::sync::Notify,
}

/// A connection as configured; tokens and status are the store's, never the file's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedConnection {
    pub site: String,
    pub name: String,
    pub environment: Environment,
    pub sync_user: Option<String>,
    /// 18 chars.
    pub expected_org_id: Option<String>,
    pub expires_on: Option<time::Date>,
    pub warn_days: u8,
    /// Client id and the secret's value, read from the named environment variable.
    pub client: Option<(String, String)>,
}

/// One site's validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteSpec {
    pub site: Site,
    pub connections: Vec<WantedConnection>,
    pub workflows: Vec<Workflow>,
    pub exports: Vec<ExportMapping>,
    pub sync: Vec<SyncJob>,
}

/// Parses and validates a configuration file's text. `env` reads the variables a
/// configuration names (client secrets).
pub fn parse(file: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<SiteSpec>, ConfigError> {
    let at = |span: Range<usize>, message: String| locate(file, text, span, message);
    let parsed: File = toml::from_str(text).map_err(|e| at(e.span().unwrap_or(0..0), e.message().to_string()))?;
    if parsed.sites.is_empty() {
        return Err(at(0..0, "no [[sites]] table: nothing to apply".into()));
    }
    let mut seen_sites = HashSet::new();
    let mut specs = Vec::with_capacity(parsed.sites.len());
    for site_cfg in parsed.sites {
        let site_span = site_cfg.span();
        let cfg = site_cfg.into_inner();
        let id = cfg.id.get_ref().clone();
        if !valid_site_id(&id) {
            return Err(at(cfg.id.span(), format!("site id {id:?} must be 1–40 lowercase letters, digits or '-'")));
        }
        if !seen_sites.insert(id.clone()) {
            return Err(at(cfg.id.span(), format!("site {id:?} appears twice")));
        }
        check_url(&at, &cfg.platform_url, "platform_url")?;
        if let Some(sso) = &cfg.platform_sso_url {
            check_url(&at, sso, "platform_sso_url")?;
            check_https_or_loopback(sso.get_ref()).map_err(|m| at(sso.span(), format!("platform_sso_url: {m}")))?;
        }
        check_tabs(&cfg.tabs).map_err(|m| at(site_span.clone(), m))?;

        let mut connections = Vec::new();
        let mut names = HashSet::new();
        for c in &cfg.connections {
            let span = c.span();
            let c = c.get_ref();
            if !names.insert(c.name.clone()) {
                return Err(at(span, format!("connection {:?} appears twice", c.name)));
            }
            let environment = Environment::parse(&c.environment).ok_or_else(|| {
                at(span.clone(), format!("environment {:?}: expected `production`, `sandbox` or an https:// My Domain URL", c.environment))
            })?;
            let expected_org_id = match &c.expected_org_id {
                None => None,
                Some(o) => Some(org_id(o).ok_or_else(|| at(span.clone(), format!("expected_org_id {o:?}: {ORG_ID_SHAPE}")))?),
            };
            let warn_days = c.warn_days.unwrap_or(14);
            if !(1..=100).contains(&warn_days) {
                return Err(at(span, format!("warn_days {warn_days}: expected 1 to 100")));
            }
            let expires_on = match &c.expires_on {
                None => None,
                Some(dt) => Some(
                    dt.date
                        .and_then(|d| time::Date::from_calendar_date(i32::from(d.year), time::Month::try_from(d.month).ok()?, d.day).ok())
                        .ok_or_else(|| at(span.clone(), "expires_on: expected a date like 2027-06-30".into()))?,
                ),
            };
            let client = match (&c.client_id, &c.client_secret_env) {
                (None, None) => None,
                (Some(id), Some(var)) => {
                    let secret = env(var).ok_or_else(|| at(span.clone(), format!("client_secret_env names {var}, which is not set")))?;
                    Some((id.clone(), secret))
                }
                _ => return Err(at(span, "client_id and client_secret_env go together".into())),
            };
            connections.push(WantedConnection {
                site: id.clone(),
                name: c.name.clone(),
                environment,
                sync_user: c.sync_user.clone(),
                expected_org_id,
                expires_on,
                warn_days,
                client,
            });
        }
        if connections.len() > MAX_CONNECTIONS {
            return Err(at(site_span, format!("{} connections: a site has at most {MAX_CONNECTIONS}", connections.len())));
        }
        let default_connection = match &cfg.default_connection {
            Some(d) if !names.contains(d.get_ref()) => {
                return Err(at(d.span(), format!("default_connection {:?} is not one of the site's connections", d.get_ref())));
            }
            Some(d) => Some(d.get_ref().clone()),
            None => connections.first().map(|c| c.name.clone()),
        };
        let sso_connection = match &cfg.sso_connection {
            Some(d) if !names.contains(d.get_ref()) => {
                return Err(at(d.span(), format!("sso_connection {:?} is not one of the site's connections", d.get_ref())));
            }
            other => other.as_ref().map(|d| d.get_ref().clone()),
        };
        let pinned_org = match &cfg.org_id {
            None => None,
            Some(o) => Some(org_id(o.get_ref()).ok_or_else(|| at(o.span(), format!("org_id {:?}: {ORG_ID_SHAPE}", o.get_ref())))?),
        };
        let known_connection = |name: &Option<String>, span: Range<usize>| match name {
            Some(n) if !names.contains(n) => Err(at(span, format!("connection {n:?} is not one of the site's connections"))),
            _ => Ok(()),
        };

        let mut workflows = Vec::new();
        let mut wf_names = HashSet::new();
        for w in cfg.workflows {
            let span = w.span();
            let w = w.into_inner();
            if !wf_names.insert(w.name.clone()) {
                return Err(at(span, format!("workflow {:?} appears twice", w.name)));
            }
            known_connection(&w.connection, span.clone())?;
            if w.tasks.is_empty() {
                return Err(at(span, format!("workflow {:?} has no tasks", w.name)));
            }
            if !is_api_name(&w.object) {
                return Err(at(span, format!("object {:?} is not a Salesforce API name", w.object)));
            }
            let mut contact = false;
            for task in &w.tasks {
                match task {
                    Task::UpsertContact { fields, .. } if !fields.contains_key("email") => {
                        return Err(at(span.clone(), "upsert_contact needs an `email` field mapping".into()));
                    }
                    Task::UpsertContact { .. } => contact = true,
                    Task::SendInvitation { .. } if !contact => {
                        return Err(at(
                            span.clone(),
                            "send_invitation needs an upsert_contact task before it: the invitation's link is for that contact, \
                             who can then follow it and ask for a fresh one"
                                .into(),
                        ));
                    }
                    Task::SendInvitation { .. } => {}
                }
            }
            workflows.push(Workflow {
                id: workflow_id(&id, &w.name),
                site: id.clone(),
                name: w.name,
                object: w.object,
                conditions: w.conditions,
                tasks: w.tasks,
                connection: w.connection,
                enabled: w.enabled,
            });
        }

        let mut exports = Vec::new();
        let mut kinds = HashSet::new();
        for e in cfg.exports {
            let span = e.span();
            let e = e.into_inner();
            if !kinds.insert(e.kind.clone()) {
                return Err(at(span, format!("export kind {:?} appears twice", e.kind)));
            }
            known_connection(&e.connection, span.clone())?;
            if !is_api_name(&e.object) || !is_api_name(&e.external_id_field) {
                return Err(at(span, "object and external_id_field must be Salesforce API names".into()));
            }
            if e.fields.is_empty() {
                return Err(at(span, format!("export {:?} maps no fields", e.kind)));
            }
            exports.push(ExportMapping {
                site: id.clone(),
                kind: e.kind,
                object: e.object,
                external_id_field: e.external_id_field,
                fields: e.fields,
                connection: e.connection,
            });
        }

        let mut sync = Vec::new();
        let mut jobs = HashSet::new();
        for entry in cfg.sync {
            let span = entry.span();
            let job = match entry.into_inner() {
                SyncConfig::Roster(r) => SyncJob {
                    site: id.clone(),
                    name: r.name,
                    every_minutes: r.every_minutes,
                    connection: r.connection,
                    enabled: r.enabled,
                    notify: r.notify,
                    kind: SyncKind::Roster {
                        filter: r.filter,
                        tag_fields: r.tag_fields,
                        hierarchy: r.hierarchy,
                        max_deactivate_share: r.max_deactivate_share,
                        full_every_hours: r.full_every_hours,
                    },
                },
                SyncConfig::Soql(q) => SyncJob {
                    site: id.clone(),
                    name: q.name,
                    every_minutes: q.every_minutes,
                    connection: q.connection,
                    enabled: q.enabled,
                    notify: q.notify,
                    kind: SyncKind::Soql {
                        query: q.query,
                        date_field: q.date_field,
                        api_version: q.api_version,
                        mapping: q.mapping,
                        record_limit: q.record_limit,
                        duplicates: q.duplicates,
                        filter: q.filter,
                        redact: q.redact,
                        substitute: q.substitute,
                    },
                },
                SyncConfig::Reconcile(r) => {
                    let Some(workflow) = workflows.iter().find(|w| w.name == r.workflow) else {
                        return Err(at(span, format!("workflow {:?} is not defined in this site", r.workflow)));
                    };
                    SyncJob {
                        site: id.clone(),
                        name: r.name,
                        every_minutes: r.every_minutes,
                        connection: r.connection.or_else(|| workflow.connection.clone()),
                        enabled: r.enabled,
                        notify: r.notify,
                        kind: SyncKind::Reconcile { workflow: r.workflow, filter: r.filter, fields: r.fields },
                    }
                }
            };
            if !jobs.insert(job.name.clone()) {
                return Err(at(span, format!("sync job {:?} appears twice", job.name)));
            }
            known_connection(&job.connection, span.clone())?;
            if job.every_minutes.is_some_and(|m| m < 5) {
                return Err(at(span, "every_minutes: at least 5".into()));
            }
            check_sync(&job.kind).map_err(|m| at(span.clone(), m))?;
            sync.push(job);
        }

        specs.push(SiteSpec {
            site: Site {
                id: id.clone(),
                name: cfg.name,
                platform_url: cfg.platform_url.into_inner(),
                platform_sso_url: cfg.platform_sso_url.map(Spanned::into_inner),
                tabs: cfg.tabs,
                force_sso: cfg.force_sso,
                admin_email: cfg.admin_email,
                sender: cfg.sender,
                default_connection,
                sso_connection,
                sso_match_email: cfg.sso_match_email,
                org_id: pinned_org,
            },
            connections,
            workflows,
            exports,
            sync,
        });
    }
    Ok(specs)
}

fn locate(file: &str, text: &str, span: Range<usize>, message: String) -> ConfigError {
    let start = span.start.min(text.len());
    let before = &text[..text.floor_char_boundary(start)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    ConfigError { file: file.into(), line, column, message }
}

fn check_url(at: &impl Fn(Range<usize>, String) -> ConfigError, value: &Spanned<String>, field: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value.get_ref()) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => Ok(()),
        _ => Err(at(value.span(), format!("{field} {:?}: expected an absolute https:// URL", value.get_ref()))),
    }
}

/// Login tokens travel to this address: `https`, or plain `http` on a loopback host (dev).
fn check_https_or_loopback(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| e.to_string())?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "https" || loopback { Ok(()) } else { Err("must be https:// (plain http only on localhost)".into()) }
}

fn check_tabs(tabs: &Tabs) -> Result<(), String> {
    if let Some(l) = &tabs.lightning {
        let ok = url::Url::parse(l).is_ok_and(|u| u.scheme() == "https" && u.path().starts_with("/lightning/n/"));
        if !ok {
            return Err(format!("tabs.lightning {l:?}: expected https://…/lightning/n/Tab_Name"));
        }
    }
    if let Some(c) = &tabs.classic {
        let ok = url::Url::parse(c).is_ok_and(|u| {
            u.scheme() == "https"
                && u.path() == "/servlet/servlet.Integration"
                && u.query_pairs().any(|(k, v)| k == "lid" && v.starts_with("01r"))
        });
        if !ok {
            return Err(format!("tabs.classic {c:?}: expected https://…/servlet/servlet.Integration?lid=01r…&ic=1"));
        }
    }
    Ok(())
}

fn check_sync(kind: &SyncKind) -> Result<(), String> {
    match kind {
        SyncKind::Roster { filter, max_deactivate_share, .. } => {
            if filter.trim().is_empty() {
                return Err("roster filter is empty: use `IsActive = true` to mirror every user".into());
            }
            if !(0.0..=1.0).contains(max_deactivate_share) {
                return Err("max_deactivate_share: expected 0 to 1".into());
            }
        }
        SyncKind::Reconcile { fields, filter, .. } => {
            if let Some(bad) = fields.iter().find(|f| !f.split('.').all(is_api_name)) {
                return Err(format!("fields: {bad:?} is not a field API name"));
            }
            if filter.as_deref().is_some_and(|f| f.trim().is_empty()) {
                return Err("filter is empty: leave it out to reconcile every record of the object".into());
            }
        }
        SyncKind::Soql { query, date_field, .. } => {
            let upper = query.to_ascii_uppercase();
            if upper.split_whitespace().collect::<Vec<_>>().windows(2).any(|w| w == ["GROUP", "BY"]) {
                return Err("GROUP BY queries are not supported: an inbound job loads records, not aggregates".into());
            }
            let select = upper.split(" FROM ").next().unwrap_or_default();
            if !select.split([',', ' ']).any(|f| f.eq_ignore_ascii_case(date_field)) {
                return Err(format!("date_field {date_field:?} must be one of the fields the query selects"));
            }
        }
    }
    Ok(())
}

/// Whether `name` looks like a Salesforce API name (`Contact`, `Learning_Result__c`).
fn is_api_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 80
}

/// What one apply did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplySummary {
    /// Records created or changed.
    pub written: usize,
    /// Workflows, mappings and jobs no longer in the file, deleted.
    pub deleted: usize,
    /// Connections in the store but not in the file (left alone: removing revokes tokens).
    pub orphan_connections: Vec<String>,
}

/// Writes validated site specs in one transaction: all of it or nothing.
pub async fn apply(store: &dyn Store, keys: &dyn KeyRing, specs: &[SiteSpec]) -> Result<ApplySummary, ApplyError> {
    let mut ops = Vec::new();
    let mut summary = ApplySummary::default();
    for spec in specs {
        let pk = keys::site_pk(&spec.site.id);
        let existing_site = store.get(&pk, keys::SITE_SK).await?;
        ops.push(WriteOp::Put { item: spec.site.to_item()?, cond: version_cond(existing_site.as_ref().map(|i| i.version)) });

        let stored: Vec<Connection> = record::list(store, Query::prefix(&pk, keys::CONNECTION_PREFIX)).await?;
        for wanted in &spec.connections {
            let current = store.get(&pk, &keys::connection_sk(&wanted.name)).await?;
            let (mut conn, cond) = match &current {
                Some(item) => (record::decode::<Connection>(item)?, Cond::Version(item.version)),
                None => (Connection::pending(&wanted.site, &wanted.name, wanted.environment.clone()), Cond::NotExists),
            };
            conn.environment = wanted.environment.clone();
            conn.sync_user_email = wanted.sync_user.clone();
            conn.expected_org_id = wanted.expected_org_id.clone();
            conn.expires_on = wanted.expires_on;
            conn.warn_days = wanted.warn_days;
            conn.client = match &wanted.client {
                None => None,
                Some((client_id, secret)) => {
                    let aad = client_secret_aad(&wanted.site, &wanted.name);
                    Some(ClientApp {
                        client_id: client_id.clone(),
                        client_secret_sealed: keys.seal(secret.as_bytes(), aad.as_bytes()).await?.encode(),
                    })
                }
            };
            ops.push(WriteOp::Put { item: conn.to_item()?, cond });
        }
        summary
            .orphan_connections
            .extend(stored.iter().filter(|c| !spec.connections.iter().any(|w| w.name == c.name)).map(|c| format!("{}/{}", c.site, c.name)));

        let mut wanted_sks = HashSet::new();
        for item in spec
            .workflows
            .iter()
            .map(Record::to_item)
            .chain(spec.exports.iter().map(Record::to_item))
            .chain(spec.sync.iter().map(Record::to_item))
        {
            let item = item?;
            wanted_sks.insert(item.sk.clone());
            let current = store.get(&item.pk, &item.sk).await?;
            if current.as_ref().is_some_and(|c| c.body == item.body && c.gsi1 == item.gsi1) {
                continue;
            }
            let cond = version_cond(current.map(|c| c.version));
            ops.push(WriteOp::Put { item, cond });
        }
        for prefix in [keys::WORKFLOW_PREFIX, keys::EXPORT_PREFIX, keys::SYNC_PREFIX] {
            let page_items = record::all_items(store, Query::prefix(&pk, prefix)).await?;
            for old in page_items.into_iter().filter(|i| !wanted_sks.contains(&i.sk)) {
                summary.deleted += 1;
                if let Some(job) = old.sk.strip_prefix(keys::SYNC_PREFIX) {
                    // A deleted job's watermark and interrupted run go with it: re-added, it starts fresh.
                    let state = keys::sync_state_pk(&spec.site.id);
                    for sk in [keys::sync_job_sk(job), keys::checkpoint_sk(job)] {
                        ops.push(WriteOp::Delete { pk: state.clone(), sk, cond: Cond::Always });
                    }
                }
                ops.push(WriteOp::Delete { pk: old.pk, sk: old.sk, cond: Cond::Version(old.version) });
            }
        }
    }
    summary.written = ops.iter().filter(|op| matches!(op, WriteOp::Put { .. })).count();
    if ops.len() > crate::ports::store::MAX_TRANSACTION_OPS {
        return Err(ApplyError::TooLarge(ops.len()));
    }
    store.transact(ops).await?;
    Ok(summary)
}

/// Parses `text` (named `file` in errors) and applies it: [`parse`] without environment
/// variables (a `client_secret_env` is refused), then [`apply`]. Nothing is written when the
/// text does not parse.
pub async fn apply_text(store: &dyn Store, keys: &dyn KeyRing, file: &str, text: &str) -> Result<ApplySummary, ApplyError> {
    let specs = parse(file, text, &|_| None)?;
    apply(store, keys, &specs).await
}

/// The associated data a connection's client secret is sealed with.
pub fn client_secret_aad(site: &str, connection: &str) -> String {
    format!("client-secret:{site}/{connection}")
}

/// What an org id must look like, for error messages.
const ORG_ID_SHAPE: &str = "expected a 15- or 18-char org id (00D…)";

/// An org id in its 18-char form, if `text` is one.
fn org_id(text: &str) -> Option<String> {
    crate::domain::ids::to_18(text).filter(|id| id.starts_with("00D"))
}

fn version_cond(version: Option<u64>) -> Cond {
    version.map_or(Cond::NotExists, Cond::Version)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[sites]]
id = "acme"
name = "Acme"
platform_url = "https://acme.example"

[[sites.connections]]
name = "production"

[[sites.workflows]]
name = "w"
object = "Contact"
tasks = [{ type = "upsert_contact", list = "l", fields = { email = "{Email}" } }]

[[sites.sync]]
name = "roster"
type = "roster"
"#;

    fn parse_text(text: &str) -> Result<Vec<SiteSpec>, ConfigError> {
        parse("site.toml", text, &|_| None)
    }

    #[test]
    fn parses_a_site_with_defaults() {
        let specs = parse_text(GOOD).unwrap();
        let spec = &specs[0];
        assert_eq!(spec.site.default_connection.as_deref(), Some("production"));
        assert_eq!(spec.connections[0].environment, Environment::Production);
        assert_eq!(spec.workflows[0].id, workflow_id("acme", "w"));
        assert!(matches!(&spec.sync[0].kind, SyncKind::Roster { filter, .. } if filter == "isQstreamUser__c = true"));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let bad = GOOD.replace("name = \"roster\"\ntype = \"roster\"", "name = \"roster\"\ntype = \"roster\"\nfilterr = \"x\"");
        let err = parse_text(&bad).unwrap_err();
        assert_eq!(err.file, "site.toml");
        assert!(err.message.contains("filterr"), "{err}");
        assert_eq!(err.line, 15, "the [[sites.sync]] table: {err}");

        let bad = GOOD.replace("name = \"production\"", "name = \"production\"\nenvironment = \"staging\"");
        let err = parse_text(&bad).unwrap_err();
        assert_eq!(err.line, 7, "the [[sites.connections]] table: {err}");
        assert!(err.message.contains("staging"));

        let err = parse_text(&GOOD.replace("https://acme.example", "acme.example")).unwrap_err();
        assert_eq!((err.line, err.message.contains("platform_url")), (5, true), "{err}");

        let err = parse_text("[[sites]]\nid = 3\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn semantic_mistakes_are_refused() {
        for (from, to, says) in [
            ("name = \"w\"", "name = \"w\"\nconnection = \"nope\"", "not one of the site's connections"),
            ("fields = { email = \"{Email}\" }", "fields = { name = \"{Name}\" }", "email"),
            (
                "type = \"roster\"",
                "type = \"soql\"\nquery = \"SELECT Id, CreatedDate FROM Case GROUP BY Id\"\ndate_field = \"CreatedDate\"",
                "GROUP BY",
            ),
            ("type = \"roster\"", "type = \"soql\"\nquery = \"SELECT Id FROM Case\"\ndate_field = \"CreatedDate\"", "date_field"),
            ("id = \"acme\"", "id = \"Acme Corp\"", "site id"),
            (
                "id = \"acme\"",
                "id = \"acme\"\norg_id = \"0055g000000AbCd\"",
                "org_id \"0055g000000AbCd\": expected a 15- or 18-char org id",
            ),
            ("type = \"roster\"", "type = \"reconcile\"\nworkflow = \"nope\"", "workflow \"nope\" is not defined"),
            ("type = \"roster\"", "type = \"reconcile\"\nworkflow = \"w\"\nfields = [\"Bad Name\"]", "not a field API name"),
            ("type = \"roster\"", "type = \"reconcile\"\nworkflow = \"w\"\nfilter = \" \"", "filter is empty"),
            (
                "tasks = [{ type = \"upsert_contact\"",
                "tasks = [{ type = \"send_invitation\", to = \"{Email}\", subject = \"s\", body = \"{link}\", target = \"/s\" }, { type = \"upsert_contact\"",
                "needs an upsert_contact task before it",
            ),
        ] {
            let err = parse_text(&GOOD.replacen(from, to, 1)).unwrap_err();
            assert!(err.message.contains(says), "{from} → {err}");
        }
    }

    #[test]
    fn more_than_five_connections_are_refused() {
        let extra: String = (0..5).map(|i| format!("\n[[sites.connections]]\nname = \"c{i}\"\n")).collect();
        let text = GOOD.replace("[[sites.workflows]]", &format!("{extra}\n[[sites.workflows]]"));
        assert!(parse_text(&text).unwrap_err().message.contains("at most 5"));
    }

    #[test]
    fn client_secret_comes_from_the_named_variable() {
        let text =
            GOOD.replace("name = \"production\"", "name = \"production\"\nclient_id = \"3MVG9\"\nclient_secret_env = \"ACME_SECRET\"");
        assert!(parse_text(&text).unwrap_err().message.contains("ACME_SECRET"));
        let specs = parse("f", &text, &|v| (v == "ACME_SECRET").then(|| "s3cr3t".to_string())).unwrap();
        assert_eq!(specs[0].connections[0].client, Some(("3MVG9".into(), "s3cr3t".into())));
    }

    #[tokio::test]
    async fn apply_text_parses_then_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::backends::sqlite_store::SqliteStore::open(&dir.path().join("store.db")).unwrap();
        let keys = crate::backends::local_keyring::LocalKeyRing::open(&dir.path().join("keys.json")).unwrap();
        let site = keys::site_pk("acme");

        let bad = GOOD.replace("platform_url = \"https://acme.example\"", "platform_url = \"acme.example\"");
        let err = apply_text(&store, &keys, "site.toml", &bad).await.unwrap_err();
        assert!(matches!(&err, ApplyError::Config(e) if e.file == "site.toml" && e.line == 5), "{err}");
        assert!(store.get(&site, keys::SITE_SK).await.unwrap().is_none(), "a text that does not parse writes nothing");

        let summary = apply_text(&store, &keys, "site.toml", GOOD).await.unwrap();
        assert_eq!(summary.written, 4, "site, connection, workflow, sync job");
        let stored = record::load::<Site>(&store, &site, keys::SITE_SK).await.unwrap().unwrap();
        assert_eq!(stored.record.name, "Acme");
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../../infra/examples/acme.toml");
        let specs = parse("acme.toml", text, &|_| None).unwrap();
        assert_eq!(specs[0].workflows.len(), 1);
        let reconcile = specs[0].sync.iter().find(|j| matches!(j.kind, SyncKind::Reconcile { .. })).unwrap();
        assert_eq!(reconcile.connection.as_deref(), Some("production"), "the workflow's connection");
    }
}
