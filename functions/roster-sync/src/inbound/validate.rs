//! Checking a generic job's SOQL before it runs: its shape (one object, plain fields; no
//! `GROUP BY`, aggregates, subqueries, `ORDER BY` or `LIMIT`, which the job sets itself), the
//! date field in the select list, and every field known to the object's describe.

use serde::Deserialize;

use crate::error::SyncError;

/// A generic job's query, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The select list, `Id` first if the query lacked it.
    pub fields: Vec<String>,
    pub object: String,
    /// The query's own `WHERE` condition.
    pub condition: Option<String>,
}

/// Uppercase with string literals blanked, so keywords inside quotes are not seen.
fn masked(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in query.chars() {
        if quoted {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '\'' {
                quoted = false;
                out.push('\'');
                continue;
            }
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            if c == '\'' {
                quoted = true;
            }
            if c.is_ascii() {
                out.push(c.to_ascii_uppercase());
            } else {
                out.extend(std::iter::repeat_n(' ', c.len_utf8()));
            }
        }
    }
    out
}

/// Byte offsets of whitespace-separated words of `text`.
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

/// Parses and checks a generic job's query.
pub fn parse(query: &str, date_field: &str) -> Result<Parsed, SyncError> {
    let bad = |m: String| Err(SyncError::Invalid(m));
    let m = masked(query);
    let ws = words(&m);
    let at = |kw: &str| ws.iter().position(|(_, w)| *w == kw);
    let pair = |a: &str, b: &str| ws.windows(2).any(|p| p[0].1 == a && p[1].1 == b);
    if pair("GROUP", "BY") || at("HAVING").is_some() {
        return bad("GROUP BY queries are not supported: an inbound job loads records, not aggregates; drop the GROUP BY".into());
    }
    if pair("ORDER", "BY") || at("LIMIT").is_some() || at("OFFSET").is_some() {
        return bad(format!("the job orders by {date_field}, Id and pages itself: drop ORDER BY, LIMIT and OFFSET (use record_limit)"));
    }
    if ws.first().map(|w| w.1) != Some("SELECT") {
        return bad("the query must start with SELECT".into());
    }
    let Some(from) = at("FROM") else { return bad("the query has no FROM".into()) };
    let select_text = &query[ws[0].0 + 6..ws[from].0];
    if select_text.contains('(') || m[..ws[from].0].contains("TYPEOF") {
        return bad("functions, aggregates, subqueries and TYPEOF are not supported in the select list: select plain fields".into());
    }
    let Some(&(obj_at, obj)) = ws.get(from + 1) else { return bad("FROM names no object".into()) };
    let object = query[obj_at..obj_at + obj.len()].trim_end_matches(',').to_string();
    if !object.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || object.is_empty() {
        return bad(format!("FROM {object:?}: expected one object's API name"));
    }
    let condition = match ws.get(from + 2) {
        None => None,
        Some((_, "WHERE")) => {
            let start = ws[from + 2].0 + 5;
            let end = ["FOR", "WITH", "USING"]
                .iter()
                .filter_map(|k| ws.iter().skip(from + 3).find(|w| w.1 == *k))
                .map(|w| w.0)
                .min()
                .unwrap_or(query.len());
            Some(query[start..end].trim().to_string()).filter(|c| !c.is_empty())
        }
        Some((_, other)) => return bad(format!("unexpected {other} after FROM {object}")),
    };
    let mut fields: Vec<String> = select_text.split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect();
    if fields.is_empty() {
        return bad("the query selects no fields".into());
    }
    if let Some(f) = fields.iter().find(|f| f.contains(char::is_whitespace)) {
        return bad(format!("{f:?}: aliases and expressions are not supported in the select list"));
    }
    if !fields.iter().any(|f| f.eq_ignore_ascii_case(date_field)) {
        return bad(format!("date_field {date_field:?} must be one of the fields the query selects"));
    }
    if !fields.iter().any(|f| f.eq_ignore_ascii_case("Id")) {
        fields.insert(0, "Id".into());
    }
    Ok(Parsed { fields, object, condition })
}

/// An object's describe, the parts the check needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Describe {
    pub fields: Vec<FieldInfo>,
}

/// One field of a describe.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldInfo {
    pub name: String,
    #[serde(rename = "type", default)]
    pub ftype: String,
    #[serde(rename = "relationshipName", default)]
    pub relationship_name: Option<String>,
}

/// Fields of the select list the object does not have (relationship paths are checked by
/// their first step). Returns the date field's type (`datetime` or `date`).
pub fn check_fields(describe: &Describe, object: &str, fields: &[String], date_field: &str) -> Result<String, SyncError> {
    let has_field = |n: &str| describe.fields.iter().find(|f| f.name.eq_ignore_ascii_case(n));
    let has_rel = |n: &str| describe.fields.iter().any(|f| f.relationship_name.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(n)));
    let unknown: Vec<&str> = fields
        .iter()
        .filter(|f| match f.split_once('.') {
            Some((rel, _)) => !has_rel(rel),
            None => has_field(f).is_none(),
        })
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(SyncError::Invalid(format!(
            "unknown fields on {object}: {} (check the API names, and that the connected user can see them)",
            unknown.join(", ")
        )));
    }
    match has_field(date_field).map(|f| f.ftype.as_str()) {
        Some(t @ ("datetime" | "date")) => Ok(t.to_string()),
        Some(t) => Err(SyncError::Invalid(format!("date_field {date_field} is a {t} field: it must be a date or datetime"))),
        None => Err(SyncError::Invalid(format!("date_field {date_field} must be a field of {object}, not a relationship path"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let p = parse("SELECT Subject, CreatedDate, Account.Name FROM Case WHERE Status = 'New' AND Subject != 'group by'", "CreatedDate")
            .unwrap();
        assert_eq!(p.fields, ["Id", "Subject", "CreatedDate", "Account.Name"]);
        assert_eq!(p.object, "Case");
        assert_eq!(p.condition.as_deref(), Some("Status = 'New' AND Subject != 'group by'"));
        let p = parse("select id, lastmodifieddate from Learning_Result__c", "LastModifiedDate").unwrap();
        assert_eq!(p.condition, None);
        assert_eq!(p.fields[0], "id");
        for (q, want) in [
            ("SELECT Id, CreatedDate FROM Case GROUP BY Id", "GROUP BY"),
            ("SELECT COUNT(Id), CreatedDate FROM Case", "aggregates"),
            ("SELECT Id, CreatedDate FROM Case ORDER BY Id", "drop ORDER BY"),
            ("SELECT Id, CreatedDate FROM Case LIMIT 5", "record_limit"),
            ("SELECT Id FROM Case", "date_field"),
            ("SELECT Id, CreatedDate, (SELECT Id FROM Comments) FROM Case", "subqueries"),
            ("Id, CreatedDate FROM Case", "SELECT"),
        ] {
            let e = parse(q, "CreatedDate").unwrap_err().to_string();
            assert!(e.contains(want), "{q}: {e}");
        }
    }

    #[test]
    fn describe() {
        let d: Describe = serde_json::from_value(serde_json::json!({"fields": [
            {"name": "Id", "type": "id"}, {"name": "CreatedDate", "type": "datetime"}, {"name": "AccountId", "type": "reference", "relationshipName": "Account"},
            {"name": "Subject", "type": "string"}]}))
        .unwrap();
        let fields = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(check_fields(&d, "Case", &fields(&["Id", "createddate", "Account.Name"]), "CreatedDate").unwrap(), "datetime");
        let e = check_fields(&d, "Case", &fields(&["Id", "Nope__c", "Owner.Name"]), "CreatedDate").unwrap_err().to_string();
        assert!(e.contains("unknown fields on Case: Nope__c, Owner.Name"), "{e}");
        assert!(check_fields(&d, "Case", &fields(&["Subject"]), "Subject").is_err());
    }
}
