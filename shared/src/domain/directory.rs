//! The platform's directory: users, contacts and groups.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys;
use super::record::{self, Record, RecordError, Versioned};
use crate::ports::store::Store;

/// A person of the platform (a participant or a manager).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    pub site: String,
    /// The platform's id for the person.
    pub id: String,
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// 18-char Salesforce User id, for users that came from Salesforce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salesforce_id: Option<String>,
    /// 18-char id of the org `salesforce_id` belongs to (a sandbox copies its production's
    /// user ids, so only the pair names a person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salesforce_org_id: Option<String>,
    /// Deactivated users are kept, never deleted.
    pub active: bool,
    /// Tags, e.g. `salesforce_user=true`, and custom-field tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_id: Option<String>,
    /// Lightning or Classic for this person's links, overriding the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui: Option<SalesforceUi>,
}

/// The Salesforce user interface a link opens in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SalesforceUi {
    Lightning,
    Classic,
}

impl DirectoryUser {
    /// Loads a site's directory user by id.
    pub async fn load(store: &dyn Store, site: &str, id: &str) -> Result<Option<Versioned<DirectoryUser>>, RecordError> {
        record::load(store, &keys::directory_pk(site), &keys::user_sk(id)).await
    }

    /// Whether links for this person go through Salesforce (`salesforce_user=true`).
    pub fn is_salesforce_user(&self) -> bool {
        self.tags.get("salesforce_user").is_some_and(|v| v == "true")
    }
}

impl Record for DirectoryUser {
    fn pk(&self) -> String {
        keys::directory_pk(&self.site)
    }
    fn sk(&self) -> String {
        keys::user_sk(&self.id)
    }
}

/// A contact in a mailing list, created from Salesforce data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub site: String,
    pub list: String,
    /// Stable id within the list (the Salesforce record id when there is one).
    pub id: String,
    pub email: String,
    /// Mapped contact fields.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Salesforce fields as received, exact names kept; `None` for a nil field.
    #[serde(default)]
    pub embedded: BTreeMap<String, Option<String>>,
    /// The `SystemModstamp` of the data last written: older data never overwrites newer.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub source_modstamp: Option<OffsetDateTime>,
}

impl Contact {
    /// The contact `id` of `list` on `site`, if there is one.
    pub async fn load(store: &dyn Store, site: &str, list: &str, id: &str) -> Result<Option<Versioned<Contact>>, RecordError> {
        record::load(store, &keys::directory_pk(site), &keys::contact_sk(list, id)).await
    }

    /// The contact's first name, when a workflow maps one (`first_name`).
    pub fn first_name(&self) -> &str {
        self.fields.get("first_name").map_or("", String::as_str)
    }

    /// The contact's last name, when a workflow maps one (`last_name`).
    pub fn last_name(&self) -> &str {
        self.fields.get("last_name").map_or("", String::as_str)
    }
}

impl Record for Contact {
    fn pk(&self) -> String {
        keys::directory_pk(&self.site)
    }
    fn sk(&self) -> String {
        keys::contact_sk(&self.list, &self.id)
    }
}

/// A group built from the management hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub site: String,
    pub id: String,
    pub name: String,
    pub kind: GroupKind,
    /// The manager the group is built around (a directory user id).
    pub manager_id: String,
    /// Directory user ids.
    pub members: Vec<String>,
}

/// Kinds of hierarchy groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// A manager's direct reports.
    Frontline,
    /// A manager of managers and everyone below.
    Senior,
}

impl Record for Group {
    fn pk(&self) -> String {
        keys::directory_pk(&self.site)
    }
    fn sk(&self) -> String {
        keys::group_sk(&self.id)
    }
}
