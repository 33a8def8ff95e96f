//! What the directory holds and what changes: the index of roster-owned users and groups
//! (a content hash each, not the records), building a user from Salesforce, and the diff a
//! dry run prints.
//!
//! A user is written only when the hash of the fields the roster owns differs; fields it does
//! not own (the person's `ui`, tags others set) are kept as they are.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use forcelink::domain::directory::SalesforceUi;
use forcelink::domain::keys;
use forcelink::domain::record::decode;
use forcelink::domain::{DirectoryUser, Group};
use forcelink::ports::{Query, Store};
use serde::Serialize;

use super::fetch::SfUser;
use crate::error::SyncError;

/// Tag every roster user carries.
pub const SALESFORCE_USER: &str = "salesforce_user";
/// `true` for users the filter selects, `false` for managers looked up outside it.
pub const PARTICIPANT: &str = "participant";
/// The user's Salesforce role id (the role hierarchy uses it).
pub const ROLE_TAG: &str = "salesforce_role_id";
/// Group id prefixes of the roster's groups.
pub const FRONTLINE: &str = "frontline-";
pub const SENIOR: &str = "senior-";

/// The tags the roster owns: its own and the job's `tag_fields` names.
#[derive(Debug, Clone)]
pub struct Owned(HashSet<String>);

impl Owned {
    pub fn new(tag_fields: &BTreeMap<String, String>) -> Self {
        let mut set: HashSet<String> = [SALESFORCE_USER, PARTICIPANT, ROLE_TAG].iter().map(|s| s.to_string()).collect();
        set.extend(tag_fields.keys().cloned());
        Self(set)
    }

    pub fn contains(&self, tag: &str) -> bool {
        self.0.contains(tag)
    }
}

/// What the roster keeps of a directory user it owns.
#[derive(Debug, Clone)]
pub struct Existing {
    pub version: u64,
    pub hash: u64,
    pub active: bool,
    pub participant: bool,
    pub manager: Option<Box<str>>,
    pub role: Option<Box<str>>,
    pub name: Box<str>,
    /// Fields the roster does not own, when there are any.
    pub kept: Option<Box<Kept>>,
}

/// A user's fields the roster leaves alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    pub ui: Option<SalesforceUi>,
    pub tags: BTreeMap<String, String>,
}

/// The roster-owned part of a site's directory.
#[derive(Debug, Default)]
pub struct Index {
    /// By Salesforce id (which is also the directory id).
    pub users: HashMap<String, Existing>,
    /// Roster groups: id → (version, hash).
    pub groups: HashMap<String, (u64, u64)>,
}

impl Index {
    /// Active users the roster owns.
    pub fn active_count(&self) -> u64 {
        self.users.values().filter(|u| u.active).count() as u64
    }
}

/// Reads the roster-owned users and groups of a site.
pub async fn load_index(store: &dyn Store, site: &str, owned: &Owned) -> Result<Index, SyncError> {
    let pk = keys::directory_pk(site);
    let mut index = Index::default();
    let mut query = Query::prefix(&pk, keys::USER_PREFIX).limit(1000);
    loop {
        let page = store.query(&query).await?;
        for item in &page.items {
            let user: DirectoryUser = decode(item)?;
            if user.salesforce_id.as_deref() != Some(user.id.as_str()) {
                continue;
            }
            let existing = existing_of(&user, item.version, owned);
            index.users.insert(user.id, existing);
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    let mut query = Query::prefix(&pk, keys::GROUP_PREFIX).limit(1000);
    loop {
        let page = store.query(&query).await?;
        for item in &page.items {
            let group: Group = decode(item)?;
            if group.id.starts_with(FRONTLINE) || group.id.starts_with(SENIOR) {
                index.groups.insert(group.id.clone(), (item.version, group_hash(&group)));
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    Ok(index)
}

/// The index entry of a stored user.
pub fn existing_of(user: &DirectoryUser, version: u64, owned: &Owned) -> Existing {
    let foreign: BTreeMap<String, String> =
        user.tags.iter().filter(|(k, _)| !owned.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let kept = (user.ui.is_some() || !foreign.is_empty()).then(|| Box::new(Kept { ui: user.ui, tags: foreign }));
    Existing {
        version,
        hash: user_hash(user, owned),
        active: user.active,
        participant: user.tags.get(PARTICIPANT).is_none_or(|v| v == "true"),
        manager: user.manager_id.as_deref().map(Into::into),
        role: user.tags.get(ROLE_TAG).map(|r| r.as_str().into()),
        name: display(user).into(),
        kept,
    }
}

fn display(user: &DirectoryUser) -> String {
    let name = format!("{} {}", user.first_name, user.last_name);
    let name = name.trim();
    if name.is_empty() { user.email.clone() } else { name.to_string() }
}

/// Hash of the fields the roster owns.
pub fn user_hash(user: &DirectoryUser, owned: &Owned) -> u64 {
    let mut h = DefaultHasher::new();
    (&user.email, &user.first_name, &user.last_name, &user.salesforce_id, &user.salesforce_org_id, user.active, &user.manager_id)
        .hash(&mut h);
    for (k, v) in user.tags.iter().filter(|(k, _)| owned.contains(k)) {
        (k, v).hash(&mut h);
    }
    h.finish()
}

/// Hash of a group's content.
pub fn group_hash(group: &Group) -> u64 {
    let mut h = DefaultHasher::new();
    (&group.name, group.kind as u8, &group.manager_id, &group.members).hash(&mut h);
    h.finish()
}

/// The directory user for a Salesforce user of `org` (owned fields only; see [`with_kept`]).
pub fn build(site: &str, org: Option<&str>, u: &SfUser, participant: bool) -> DirectoryUser {
    let mut tags = BTreeMap::from([(SALESFORCE_USER.to_string(), "true".to_string()), (PARTICIPANT.to_string(), participant.to_string())]);
    if let Some(role) = &u.role {
        tags.insert(ROLE_TAG.into(), role.clone());
    }
    tags.extend(u.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    DirectoryUser {
        site: site.into(),
        id: u.id.clone(),
        email: u.email.clone(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        salesforce_id: Some(u.id.clone()),
        salesforce_org_id: org.map(str::to_string),
        active: u.active,
        tags,
        manager_id: u.manager.clone(),
        ui: None,
    }
}

/// Adds back the fields the roster does not own.
pub fn with_kept(mut user: DirectoryUser, kept: Option<&Kept>) -> DirectoryUser {
    if let Some(k) = kept {
        user.ui = k.ui;
        for (tag, v) in &k.tags {
            user.tags.entry(tag.clone()).or_insert_with(|| v.clone());
        }
    }
    user
}

/// Up to [`Samples::LIMIT`] examples of one kind of change, and how many there were.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Samples {
    pub count: u64,
    pub items: Vec<String>,
}

impl Samples {
    pub const LIMIT: usize = 1000;

    pub fn push(&mut self, item: impl FnOnce() -> String) {
        self.count += 1;
        if self.items.len() < Self::LIMIT {
            self.items.push(item());
        }
    }
}

/// What a run changes (or, dry, would change).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    pub added: Samples,
    pub updated: Samples,
    pub deactivated: Samples,
    pub groups_added: Samples,
    pub groups_changed: Samples,
    pub groups_removed: Samples,
}

impl Diff {
    /// The diff as text, one change a line, `limit` lines per kind at most.
    pub fn render(&self, limit: usize) -> String {
        let mut out = String::new();
        for (label, sign, s) in [
            ("added", '+', &self.added),
            ("updated", '~', &self.updated),
            ("deactivated", '-', &self.deactivated),
            ("groups added", '+', &self.groups_added),
            ("groups changed", '~', &self.groups_changed),
            ("groups removed", '-', &self.groups_removed),
        ] {
            out.push_str(&format!("{label}: {}\n", s.count));
            for item in s.items.iter().take(limit) {
                out.push_str(&format!("  {sign} {item}\n"));
            }
            if s.count as usize > limit.min(s.items.len()) {
                out.push_str(&format!("  … and {} more\n", s.count as usize - limit.min(s.items.len())));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sf() -> SfUser {
        SfUser {
            id: "005A".into(),
            username: "a@x".into(),
            email: "a@x".into(),
            first_name: "Ana".into(),
            last_name: "Silva".into(),
            active: true,
            manager: Some("005M".into()),
            role: None,
            stamp: "s".into(),
            tags: BTreeMap::from([("region".to_string(), "EMEA".to_string())]),
        }
    }

    #[test]
    fn hash_ignores_what_the_roster_does_not_own() {
        let owned = Owned::new(&BTreeMap::from([("region".to_string(), "Region__c".to_string())]));
        let built = build("acme", Some("00D000000000001AAA"), &sf(), true);
        let mut stored = built.clone();
        stored.ui = Some(SalesforceUi::Classic);
        stored.tags.insert("cohort".into(), "2026".into());
        let e = existing_of(&stored, 3, &owned);
        assert_eq!(e.hash, user_hash(&built, &owned));
        let kept = e.kept.as_deref().unwrap();
        assert_eq!(kept.tags.get("cohort").map(String::as_str), Some("2026"));
        let merged = with_kept(built.clone(), Some(kept));
        assert_eq!(merged, stored);
        let mut changed = sf();
        changed.tags.insert("region".into(), "APAC".into());
        assert_ne!(user_hash(&build("acme", Some("00D000000000001AAA"), &changed, true), &owned), e.hash);
        assert_ne!(user_hash(&build("acme", Some("00D000000000001AAA"), &sf(), false), &owned), e.hash, "participant is owned");
    }

    #[test]
    fn renders() {
        let mut d = Diff::default();
        for i in 0..3 {
            d.added.push(|| format!("user {i}"));
        }
        let text = d.render(2);
        assert!(text.contains("added: 3\n  + user 0\n  + user 1\n  … and 1 more\n"), "{text}");
    }
}
