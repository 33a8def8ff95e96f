//! Compiles a parsed query against an org's schema (resolving relationship paths, checking
//! types) and evaluates it over the records: filter, order, offset, limit, render.

use super::parse::{Cond, Lit, Op, Query, SelectItem};
use crate::error::ApiError;
use crate::ids;
use crate::org::Org;
use crate::schema::{FieldType, ObjectDef};
use crate::store::Record;
use serde_json::Value;
use std::cmp::Ordering;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
struct Hop {
    ref_field: String,
    target: String,
}

/// A resolved field path.
#[derive(Debug, Clone)]
struct Resolved {
    label: String,
    hops: Vec<Hop>,
    field: String,
    ftype: FieldType,
}

#[derive(Debug, Clone)]
enum CLit {
    Null,
    Bool(bool),
    Num(f64),
    Text(String),
    Exact(String),
    Range(String, String),
}

#[derive(Debug, Clone)]
enum CCond {
    And(Box<CCond>, Box<CCond>),
    Or(Box<CCond>, Box<CCond>),
    Not(Box<CCond>),
    Cmp(Resolved, Op, CLit),
    In(Resolved, Vec<CLit>, bool),
}

#[derive(Debug, Clone)]
enum Entry {
    Field(String),
    Rel { name: String, ref_field: String, target: String, node: Node },
}

#[derive(Debug, Clone, Default)]
struct Node {
    entries: Vec<Entry>,
}

/// A query compiled against one org's schema.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Canonical object name.
    pub object: String,
    /// `SELECT COUNT()`.
    pub count_only: bool,
    select: Vec<Resolved>,
    tree: Node,
    filter: Option<CCond>,
    order: Vec<(Resolved, bool, bool)>,
    limit: Option<usize>,
    offset: Option<usize>,
}

fn invalid_field(obj: &str, name: &str) -> ApiError {
    ApiError::bad(
        "INVALID_FIELD",
        format!(
            "No such column '{name}' on entity '{obj}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
        ),
    )
}

fn resolve(org: &Org, root: &ObjectDef, path: &[String]) -> Result<Resolved, ApiError> {
    let mut obj = root;
    let mut hops = Vec::new();
    let mut label = Vec::new();
    // A leading object name is allowed: `User.Name` in FROM User.
    let path =
        if path.len() > 1 && path[0].eq_ignore_ascii_case(&root.name) && obj.relationship(&path[0]).is_none() { &path[1..] } else { path };
    let (last, rels) = path.split_last().ok_or_else(|| ApiError::bad("MALFORMED_QUERY", "empty field"))?;
    for rel in rels {
        let f = obj.relationship(rel).ok_or_else(|| {
            ApiError::bad(
                "INVALID_FIELD",
                format!("Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."),
            )
        })?;
        let target = f.reference_to.clone().unwrap_or_default();
        label.push(f.relationship_name.clone().unwrap_or_default());
        hops.push(Hop { ref_field: f.name.clone(), target: target.clone() });
        obj = org.object(&target).map_err(|_| invalid_field(&obj.name, rel))?;
    }
    let f = obj.field(last).ok_or_else(|| invalid_field(&obj.name, last))?;
    label.push(f.name.clone());
    Ok(Resolved { label: label.join("."), hops, field: f.name.clone(), ftype: f.ftype })
}

fn type_err(r: &Resolved, want: &str) -> ApiError {
    ApiError::bad(
        "INVALID_FIELD",
        format!("value of filter criterion for field '{}' must be of type {want} and should not be enclosed in quotes", r.field),
    )
}

fn relative_range(name: &str, n: i64, now: OffsetDateTime, date_only: bool) -> (String, String) {
    let today = now.date();
    let day = time::Duration::days(1);
    let (a, b) = match name {
        "YESTERDAY" => (today - day, today),
        "TOMORROW" => (today + day, today + day + day),
        "LAST_N_DAYS" => (today - time::Duration::days(n), today + day),
        "NEXT_N_DAYS" => (today + day, today + day + time::Duration::days(n)),
        "N_DAYS_AGO" => (today - time::Duration::days(n), today - time::Duration::days(n) + day),
        _ => (today, today + day),
    };
    if date_only {
        (a.to_string(), b.to_string())
    } else {
        (crate::clock::fmt_rest(a.midnight().assume_utc()), crate::clock::fmt_rest(b.midnight().assume_utc()))
    }
}

fn compile_lit(r: &Resolved, op: Op, lit: &Lit, now: OffsetDateTime) -> Result<CLit, ApiError> {
    if op == Op::Like && !r.ftype.is_text() && !matches!(r.ftype, FieldType::Id | FieldType::Reference) {
        return Err(ApiError::bad(
            "INVALID_QUERY_FILTER_OPERATOR",
            format!("invalid operator on {} field: {}", r.ftype.soap_type(), r.field),
        ));
    }
    Ok(match (r.ftype, lit) {
        (_, Lit::Null) => CLit::Null,
        (FieldType::Boolean, Lit::Bool(b)) => CLit::Bool(*b),
        (FieldType::Boolean, _) => return Err(type_err(r, "boolean")),
        (t, Lit::Num(n)) if t.is_number() => CLit::Num(*n),
        (t, _) if t.is_number() => return Err(type_err(r, "number")),
        (FieldType::Datetime, Lit::DateTime(t)) => CLit::Exact(crate::clock::fmt_rest(*t)),
        (FieldType::Datetime, Lit::Relative(n, k)) => {
            let (a, b) = relative_range(n, *k, now, false);
            CLit::Range(a, b)
        }
        (FieldType::Datetime, _) => return Err(type_err(r, "dateTime")),
        (FieldType::Date, Lit::Date(d)) => CLit::Exact(d.to_string()),
        (FieldType::Date, Lit::Relative(n, k)) => {
            let (a, b) = relative_range(n, *k, now, true);
            CLit::Range(a, b)
        }
        (FieldType::Date, _) => return Err(type_err(r, "date")),
        (FieldType::Id | FieldType::Reference, Lit::Str(s)) if op == Op::Like => CLit::Text(s.to_lowercase()),
        (FieldType::Id | FieldType::Reference, Lit::Str(s)) => {
            CLit::Exact(ids::normalize(s).ok_or_else(|| ApiError::bad("INVALID_QUERY_FILTER_OPERATOR", format!("invalid ID field: {s}")))?)
        }
        (_, Lit::Str(s)) => CLit::Text(s.to_lowercase()),
        _ => return Err(ApiError::bad("INVALID_QUERY_FILTER_OPERATOR", format!("invalid value for field {}", r.field))),
    })
}

fn compile_cond(org: &Org, obj: &ObjectDef, c: &Cond, now: OffsetDateTime) -> Result<CCond, ApiError> {
    Ok(match c {
        Cond::And(a, b) => CCond::And(Box::new(compile_cond(org, obj, a, now)?), Box::new(compile_cond(org, obj, b, now)?)),
        Cond::Or(a, b) => CCond::Or(Box::new(compile_cond(org, obj, a, now)?), Box::new(compile_cond(org, obj, b, now)?)),
        Cond::Not(a) => CCond::Not(Box::new(compile_cond(org, obj, a, now)?)),
        Cond::Cmp(p, op, lit) => {
            let r = resolve(org, obj, p)?;
            let l = compile_lit(&r, *op, lit, now)?;
            CCond::Cmp(r, *op, l)
        }
        Cond::In(p, lits, neg) => {
            let r = resolve(org, obj, p)?;
            let ls = lits.iter().map(|l| compile_lit(&r, Op::Eq, l, now)).collect::<Result<_, _>>()?;
            CCond::In(r, ls, *neg)
        }
    })
}

fn add_to_tree(org: &Org, node: &mut Node, obj: &ObjectDef, path: &[String]) {
    let Some((first, rest)) = path.split_first() else { return };
    if rest.is_empty() {
        if let Some(f) = obj.field(first)
            && !node.entries.iter().any(|e| matches!(e, Entry::Field(n) if *n == f.name))
        {
            node.entries.push(Entry::Field(f.name.clone()));
        }
        return;
    }
    let Some(f) = obj.relationship(first) else { return };
    let rel = f.relationship_name.clone().unwrap_or_default();
    let target = f.reference_to.clone().unwrap_or_default();
    let Ok(tobj) = org.object(&target) else { return };
    let pos = node.entries.iter().position(|e| matches!(e, Entry::Rel { name, .. } if *name == rel));
    let idx = match pos {
        Some(i) => i,
        None => {
            node.entries.push(Entry::Rel { name: rel, ref_field: f.name.clone(), target: target.clone(), node: Node::default() });
            node.entries.len() - 1
        }
    };
    if let Entry::Rel { node: child, .. } = &mut node.entries[idx] {
        add_to_tree(org, child, tobj, rest);
    }
}

/// Compiles a query for an org; errors are Salesforce's (`INVALID_TYPE`, `INVALID_FIELD`, …).
pub fn compile(org: &Org, q: &Query, now: OffsetDateTime) -> Result<Compiled, ApiError> {
    let obj = org.object(&q.object).map_err(|_| {
        ApiError::bad(
            "INVALID_TYPE",
            format!("sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", q.object),
        )
    })?;
    let mut select = Vec::new();
    let mut tree = Node::default();
    let mut count_only = false;
    for item in &q.fields {
        match item {
            SelectItem::CountAll => count_only = true,
            SelectItem::Field(p) => {
                let r = resolve(org, obj, p)?;
                // canonical path for the tree: relationship names, then field
                let canon: Vec<String> = r.label.split('.').map(str::to_string).collect();
                add_to_tree(org, &mut tree, obj, &canon);
                select.push(r);
            }
        }
    }
    if count_only && !select.is_empty() {
        return Err(ApiError::bad("MALFORMED_QUERY", "COUNT() cannot be combined with other fields"));
    }
    let filter = q.filter.as_ref().map(|c| compile_cond(org, obj, c, now)).transpose()?;
    let order = q.order.iter().map(|o| Ok((resolve(org, obj, &o.path)?, o.desc, o.nulls_last))).collect::<Result<_, ApiError>>()?;
    Ok(Compiled { object: obj.name.clone(), count_only, select, tree, filter, order, limit: q.limit, offset: q.offset })
}

fn get<'a>(org: &'a Org, rec: &'a Record, r: &Resolved) -> Option<&'a Value> {
    let mut cur = rec;
    for h in &r.hops {
        let id = cur.fields.get(&h.ref_field)?.as_str()?;
        let (_, t) = org.table(&h.target).ok()?;
        cur = t.records.get(id)?;
    }
    cur.fields.get(&r.field).filter(|v| !v.is_null())
}

fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // iterative wildcard match with backtracking on '%'
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

fn cmp_lit(v: &Value, l: &CLit) -> Option<Ordering> {
    match (v, l) {
        (Value::Bool(a), CLit::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), CLit::Num(b)) => a.as_f64()?.partial_cmp(b),
        (Value::String(a), CLit::Text(b)) => Some(a.to_lowercase().cmp(b)),
        (Value::String(a), CLit::Exact(b)) => Some(a.as_str().cmp(b.as_str())),
        _ => None,
    }
}

fn test(v: Option<&Value>, op: Op, l: &CLit) -> bool {
    match (v, l) {
        (None, CLit::Null) => matches!(op, Op::Eq),
        (Some(_), CLit::Null) => matches!(op, Op::Ne),
        (None, _) => matches!(op, Op::Ne),
        (Some(v), CLit::Range(a, b)) => {
            let Some(s) = v.as_str() else { return false };
            let (s, a, b) = (s, a.as_str(), b.as_str());
            match op {
                Op::Eq => s >= a && s < b,
                Op::Ne => !(s >= a && s < b),
                Op::Lt => s < a,
                Op::Le => s < b,
                Op::Gt => s >= b,
                Op::Ge => s >= a,
                Op::Like => false,
            }
        }
        (Some(v), l) => {
            if op == Op::Like {
                let (Some(s), CLit::Text(p)) = (v.as_str(), l) else { return false };
                return like(p, &s.to_lowercase());
            }
            let Some(o) = cmp_lit(v, l) else { return op == Op::Ne };
            match op {
                Op::Eq => o == Ordering::Equal,
                Op::Ne => o != Ordering::Equal,
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                Op::Ge => o != Ordering::Less,
                Op::Like => false,
            }
        }
    }
}

fn eval(org: &Org, rec: &Record, c: &CCond) -> bool {
    match c {
        CCond::And(a, b) => eval(org, rec, a) && eval(org, rec, b),
        CCond::Or(a, b) => eval(org, rec, a) || eval(org, rec, b),
        CCond::Not(a) => !eval(org, rec, a),
        CCond::Cmp(r, op, l) => test(get(org, rec, r), *op, l),
        CCond::In(r, ls, neg) => {
            let v = get(org, rec, r);
            let hit = ls.iter().any(|l| test(v, Op::Eq, l));
            hit != *neg
        }
    }
}

fn cmp_exact(a: Option<&Value>, b: Option<&Value>, nulls_last: bool) -> Ordering {
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => cmp_values(a, b, nulls_last),
    }
}

fn cmp_values(a: Option<&Value>, b: Option<&Value>, nulls_last: bool) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => {
            if nulls_last {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(_), None) => {
            if nulls_last {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.to_lowercase().cmp(&y.to_lowercase()).then_with(|| x.cmp(y)),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

impl Compiled {
    /// Runs the query: matching records, ordered, after OFFSET and LIMIT.
    pub fn run<'a>(&self, org: &'a Org, include_deleted: bool) -> Vec<&'a Record> {
        let Ok((_, table)) = org.table(&self.object) else { return Vec::new() };
        let rows = table
            .records
            .values()
            .filter(|r| include_deleted || !r.deleted)
            .filter(|r| self.filter.as_ref().is_none_or(|c| eval(org, r, c)));
        let mut rows: Vec<&Record> = if self.order.is_empty() {
            let max = self.limit.map(|l| l + self.offset.unwrap_or(0)).unwrap_or(usize::MAX);
            rows.take(max).collect()
        } else {
            let mut keyed: Vec<(Vec<Option<&Value>>, &Record)> =
                rows.map(|r| (self.order.iter().map(|(p, _, _)| get(org, r, p)).collect(), r)).collect();
            keyed.sort_by(|(ka, _), (kb, _)| {
                for (i, (r, desc, nulls_last)) in self.order.iter().enumerate() {
                    // For DESC the comparison flips, and so does where nulls go. Ids sort by
                    // their exact value, as `Id > '…'` compares them (keyset paging relies on it).
                    let exact = matches!(r.ftype, FieldType::Id | FieldType::Reference);
                    let cmp = |a, b, n| if exact { cmp_exact(a, b, n) } else { cmp_values(a, b, n) };
                    let o = if *desc { cmp(kb[i], ka[i], !*nulls_last) } else { cmp(ka[i], kb[i], *nulls_last) };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            });
            keyed.into_iter().map(|(_, r)| r).collect()
        };
        if let Some(off) = self.offset {
            rows.drain(..off.min(rows.len()));
        }
        if let Some(l) = self.limit {
            rows.truncate(l);
        }
        rows
    }

    /// Renders one record as REST JSON (attributes first, then the select list in order).
    pub fn render(&self, org: &Org, rec: &Record, version: &str, out: &mut Vec<u8>) {
        render_node(org, &self.object, rec, &self.tree, version, out);
    }

    /// Column labels for CSV (`Id`, `Manager.Email`, …).
    pub fn labels(&self) -> Vec<String> {
        self.select.iter().map(|r| r.label.clone()).collect()
    }

    /// Flat values for CSV.
    pub fn flat<'a>(&self, org: &'a Org, rec: &'a Record) -> Vec<Option<&'a Value>> {
        self.select.iter().map(|r| get(org, rec, r)).collect()
    }
}

fn render_node(org: &Org, object: &str, rec: &Record, node: &Node, version: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"attributes\":{\"type\":\"");
    out.extend_from_slice(object.as_bytes());
    out.extend_from_slice(b"\",\"url\":\"/services/data/v");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"/sobjects/");
    out.extend_from_slice(object.as_bytes());
    out.push(b'/');
    out.extend_from_slice(rec.id.as_bytes());
    out.extend_from_slice(b"\"}");
    for e in &node.entries {
        out.push(b',');
        match e {
            Entry::Field(name) => {
                let _ = serde_json::to_writer(&mut *out, name);
                out.push(b':');
                let _ = serde_json::to_writer(&mut *out, rec.fields.get(name).unwrap_or(&Value::Null));
            }
            Entry::Rel { name, ref_field, target, node } => {
                let _ = serde_json::to_writer(&mut *out, name);
                out.push(b':');
                let child = rec
                    .fields
                    .get(ref_field)
                    .and_then(Value::as_str)
                    .and_then(|id| org.table(target).ok().and_then(|(_, t)| t.records.get(id)));
                match child {
                    Some(c) => render_node(org, target, c, node, version, out),
                    None => out.extend_from_slice(b"null"),
                }
            }
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like("a%", "abc"));
        assert!(like("%b%", "abc"));
        assert!(like("a_c", "abc"));
        assert!(!like("a_c", "abbc"));
        assert!(like("%", ""));
        assert!(!like("b%", "abc"));
    }
}

#[cfg(test)]
mod org_tests {
    use crate::org::{Org, OrgSpec, WriteCtx};
    use crate::store::IdGen;
    use serde_json::{Value, json};

    fn org() -> Org {
        let ids = IdGen::new(1);
        let mut o = Org::new(ids.next("00D", "5g"), &OrgSpec::default());
        let now = crate::clock::parse_datetime("2026-01-02T00:00:00Z").expect("t");
        let ctx = WriteCtx { now, by: "", ids: &ids };
        let mut add = |obj: &str, v: Value| {
            let p = o.prepare_insert(obj, v.as_object().expect("obj")).expect("prepare");
            o.commit(obj, p, &ctx).expect("commit").0
        };
        let ceo = add("UserRole", json!({"Name": "CEO"}));
        let rep = add("UserRole", json!({"Name": "Rep", "ParentRoleId": ceo}));
        let boss =
            add("User", json!({"Username": "boss@x", "Email": "boss@x", "LastName": "Boss", "UserRoleId": ceo, "isQstreamUser__c": true}));
        add("User", json!({"Username": "a@x", "Email": "a@x", "LastName": "Able", "ManagerId": boss, "UserRoleId": rep, "Title": "Rep"}));
        add(
            "User",
            json!({"Username": "b@x", "Email": "b@x", "LastName": "baker", "ManagerId": boss, "IsActive": false, "isQstreamUser__c": true}),
        );
        o
    }

    fn run(o: &Org, q: &str) -> Vec<String> {
        let now = crate::clock::parse_datetime("2026-01-02T12:00:00Z").expect("t");
        let c = super::compile(o, &crate::soql::parse(q).expect("parse"), now).unwrap_or_else(|e| panic!("{q}: {e}"));
        c.run(o, false).iter().map(|r| r.fields["Username"].as_str().unwrap_or("").to_string()).collect()
    }

    #[test]
    fn filters_order_and_relationships() {
        let o = org();
        assert_eq!(run(&o, "SELECT Username FROM User ORDER BY LastName"), ["a@x", "b@x", "boss@x"]);
        assert_eq!(run(&o, "SELECT Username FROM User ORDER BY LastName DESC LIMIT 2"), ["boss@x", "b@x"]);
        assert_eq!(run(&o, "SELECT Username FROM User WHERE Manager.Username = 'BOSS@x'"), ["a@x", "b@x"]);
        assert_eq!(run(&o, "SELECT Username FROM User WHERE UserRole.ParentRole.Name = 'CEO'"), ["a@x"]);
        assert_eq!(run(&o, "SELECT Username FROM User WHERE NOT (IsActive = true) OR Title = 'Rep'"), ["a@x", "b@x"]);
        assert_eq!(run(&o, "SELECT Username FROM User WHERE isQstreamUser__c = true AND IsActive = true"), ["boss@x"]);
        assert_eq!(run(&o, "SELECT Username FROM User WHERE Title = null ORDER BY Title NULLS LAST, Username"), ["b@x", "boss@x"]);
        assert_eq!(run(&o, "SELECT Username FROM User WHERE Username IN ('a@x', 'b@x') AND Username NOT IN ('b@x')"), ["a@x"]);
        assert_eq!(run(&o, "SELECT Username FROM User WHERE LastName LIKE 'b%' ORDER BY Username"), ["b@x", "boss@x"]);
        assert_eq!(
            run(&o, "SELECT Username FROM User WHERE SystemModstamp > 2026-01-02T00:30:00+01:00 ORDER BY Username"),
            ["a@x", "b@x", "boss@x"]
        );
        assert!(run(&o, "SELECT Username FROM User WHERE CreatedDate > 2026-01-02T00:00:00.000Z").is_empty());
        assert_eq!(run(&o, "SELECT Username FROM User WHERE CreatedDate = TODAY AND CreatedDate = LAST_N_DAYS:3").len(), 3);
        assert_eq!(run(&o, "SELECT Username FROM User ORDER BY Username OFFSET 2"), ["boss@x"]);
    }

    #[test]
    fn renders_nested_relationships() {
        let o = org();
        let now = crate::clock::parse_datetime("2026-01-02T12:00:00Z").expect("t");
        let q = crate::soql::parse("SELECT Id, Manager.Email, UserRole.ParentRoleId, Manager.LastName FROM User WHERE Username = 'a@x'")
            .expect("parse");
        let c = super::compile(&o, &q, now).expect("compile");
        let rows = c.run(&o, false);
        let mut out = Vec::new();
        c.render(&o, rows[0], "64.0", &mut out);
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["attributes"]["type"], "User");
        assert_eq!(v["Manager"]["Email"], "boss@x");
        assert_eq!(v["Manager"]["LastName"], "Boss");
        assert_eq!(v["Manager"]["attributes"]["type"], "User");
        assert!(v["UserRole"]["ParentRoleId"].as_str().is_some_and(|s| s.starts_with("00E")));
        assert_eq!(c.labels(), ["Id", "Manager.Email", "UserRole.ParentRoleId", "Manager.LastName"]);
        let q = crate::soql::parse("SELECT Id, Manager.Email FROM User WHERE Username = 'boss@x'").expect("parse");
        let c = super::compile(&o, &q, now).expect("compile");
        let mut out = Vec::new();
        c.render(&o, c.run(&o, false)[0], "64.0", &mut out);
        assert!(String::from_utf8_lossy(&out).ends_with(",\"Manager\":null}"));
    }

    #[test]
    fn schema_errors() {
        let o = org();
        let now = crate::clock::parse_datetime("2026-01-02T12:00:00Z").expect("t");
        for (q, code) in [
            ("SELECT Nope FROM User", "INVALID_FIELD"),
            ("SELECT Nope.Email FROM User", "INVALID_FIELD"),
            ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
            ("SELECT Id FROM User WHERE IsActive = 'true'", "INVALID_FIELD"),
            ("SELECT Id FROM User WHERE Id = 'bogus'", "INVALID_QUERY_FILTER_OPERATOR"),
            ("SELECT Id FROM User WHERE IsActive LIKE 'x'", "INVALID_QUERY_FILTER_OPERATOR"),
        ] {
            let e = super::compile(&o, &crate::soql::parse(q).expect("parse"), now).expect_err(q);
            assert_eq!(e.code, code, "{q}");
        }
    }
}
