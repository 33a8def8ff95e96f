//! The roster's SOQL: which User fields to read, the paged query in `(SystemModstamp, Id)`
//! order after a cursor, the manager lookup by ids, and parsing a User record.

use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;

use crate::error::SyncError;
use crate::soql::{self, Cursor};

/// User fields every roster reads.
pub const BASE_FIELDS: [&str; 9] =
    ["Id", "Username", "Email", "FirstName", "LastName", "IsActive", "ManagerId", "UserRoleId", "SystemModstamp"];

/// Ids per manager lookup query (`WHERE Id IN (…)`).
pub const LOOKUP_IDS: usize = 200;

/// A Salesforce User as the roster needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub active: bool,
    pub manager: Option<String>,
    pub role: Option<String>,
    pub stamp: String,
    /// Tag name → value, from the job's `tag_fields`.
    pub tags: BTreeMap<String, String>,
}

impl SfUser {
    /// "First Last", or the username.
    pub fn display_name(&self) -> String {
        let name = format!("{} {}", self.first_name, self.last_name);
        let name = name.trim();
        if name.is_empty() { self.username.clone() } else { name.to_string() }
    }
}

/// The select list: the base fields plus the tag fields (relationship paths allowed), once each.
pub fn fields(tag_fields: &BTreeMap<String, String>) -> Vec<String> {
    let mut out: Vec<String> = BASE_FIELDS.iter().map(|f| f.to_string()).collect();
    for f in tag_fields.values() {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(f)) {
            out.push(f.clone());
        }
    }
    out
}

/// Checks a tag field's name: an API name or a relationship path of API names.
pub fn check_field(path: &str) -> Result<(), SyncError> {
    let ok = !path.is_empty()
        && path
            .split('.')
            .all(|p| p.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if ok { Ok(()) } else { Err(SyncError::Invalid(format!("tag field {path:?} is not a Salesforce field name"))) }
}

/// The page query: users matching `filter` after `cursor`, in `(SystemModstamp, Id)` order.
pub fn page_query(fields: &[String], filter: &str, cursor: Option<&Cursor>, upto: Option<OffsetDateTime>) -> Result<String, SyncError> {
    let mut conds = vec![format!("({filter})")];
    if let Some(c) = cursor {
        conds.push(soql::after("SystemModstamp", c).ok_or_else(|| SyncError::Invalid(format!("bad watermark {:?}", c.stamp)))?);
    }
    if let Some(t) = upto {
        conds.push(format!("SystemModstamp <= {}", soql::stamp_of(&t)));
    }
    Ok(format!("SELECT {} FROM User WHERE {} ORDER BY SystemModstamp, Id", fields.join(", "), conds.join(" AND ")))
}

/// The lookup of users by id (at most [`LOOKUP_IDS`]).
pub fn lookup_query(fields: &[String], ids: &[String]) -> String {
    let list: Vec<String> = ids.iter().map(|i| soql::quote(i)).collect();
    format!("SELECT {} FROM User WHERE Id IN ({})", fields.join(", "), list.join(", "))
}

/// Parses a User record of the query.
pub fn parse(record: &Value, tag_fields: &BTreeMap<String, String>) -> Result<SfUser, String> {
    let text = |f: &str| soql::text_at(record, f);
    let id = text("Id").ok_or("a User record without Id")?;
    let username = text("Username").unwrap_or_default();
    let tags = tag_fields.iter().filter_map(|(tag, field)| text(field).map(|v| (tag.clone(), v))).collect();
    Ok(SfUser {
        email: text("Email").unwrap_or_else(|| username.clone()),
        username,
        first_name: text("FirstName").unwrap_or_default(),
        last_name: text("LastName").unwrap_or_default(),
        active: record.get("IsActive").and_then(Value::as_bool).unwrap_or(false),
        manager: text("ManagerId"),
        role: text("UserRoleId"),
        stamp: text("SystemModstamp").ok_or_else(|| format!("User {id} without SystemModstamp"))?,
        tags,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let tags = BTreeMap::from([("region".to_string(), "Region__c".to_string()), ("dup".to_string(), "email".to_string())]);
        let f = fields(&tags);
        assert_eq!(f.len(), 10);
        let q = page_query(&f, "isQstreamUser__c = true", None, None).unwrap();
        assert!(q.ends_with("FROM User WHERE (isQstreamUser__c = true) ORDER BY SystemModstamp, Id"), "{q}");
        let c = Cursor { stamp: "2026-01-01T00:00:00.000+0000".into(), id: "005A".into() };
        let q = page_query(&f, "IsActive = true", Some(&c), None).unwrap();
        assert!(q.contains("AND (SystemModstamp > 2026-01-01T00:00:00.000Z OR"), "{q}");
        assert!(lookup_query(&f, &["a".into(), "b".into()]).ends_with("WHERE Id IN ('a', 'b')"));
        assert!(check_field("Manager.Region__c").is_ok());
        assert!(check_field("x; DROP").is_err());
    }

    #[test]
    fn parses() {
        let tags = BTreeMap::from([("region".to_string(), "Region__c".to_string())]);
        let r = serde_json::json!({"attributes": {}, "Id": "005X", "Username": "u@x", "Email": null, "FirstName": "Ana",
            "LastName": "Silva", "IsActive": true, "ManagerId": null, "UserRoleId": "00EX", "SystemModstamp": "2026-01-01T00:00:00.000+0000", "Region__c": "EMEA"});
        let u = parse(&r, &tags).unwrap();
        assert_eq!(u.email, "u@x");
        assert_eq!(u.display_name(), "Ana Silva");
        assert_eq!(u.tags["region"], "EMEA");
        assert!(u.active && u.manager.is_none());
        assert!(parse(&serde_json::json!({"Username": "x"}), &tags).is_err());
    }
}
