//! Mapping an event onto a Salesforce record: templates, constants, dates and parent lookups
//! by external id (relationship upsert syntax), and the same record as Bulk API CSV cells.

use forcelink::domain::export::{DateFormat, ExportMapping, FieldSource};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::event::Event;

/// Why an event cannot become a record (permanent: the event or the mapping must change).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TransformError {
    pub field: String,
    pub message: String,
}

/// The record for `event` under `mapping`: the external id plus every mapped field. A field
/// whose source is missing from the event is left out (Salesforce keeps its value).
pub fn record(mapping: &ExportMapping, event: &Event) -> Result<Map<String, Value>, TransformError> {
    let mut out = Map::new();
    out.insert(mapping.external_id_field.clone(), Value::String(event.id.clone()));
    for (field, source) in &mapping.fields {
        let err = |message: String| TransformError { field: field.clone(), message };
        match source {
            FieldSource::Constant { constant } => {
                out.insert(field.clone(), constant.clone());
            }
            FieldSource::Template(t) => {
                if let Some(v) = template(t, event) {
                    out.insert(field.clone(), v);
                }
            }
            FieldSource::Date { from, format } => match lookup(event, from) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => {
                    out.insert(field.clone(), Value::String(date(&s, *format).ok_or_else(|| err(format!("{from} {s:?} is not a date")))?));
                }
                Some(other) => return Err(err(format!("{from} is {other}, not a date"))),
            },
            FieldSource::Lookup { lookup: relationship, object, by, from } => match lookup(event, from) {
                None | Some(Value::Null) => {}
                Some(v) => {
                    let mut parent = Map::new();
                    parent.insert("attributes".into(), serde_json::json!({ "type": object }));
                    parent.insert(by.clone(), v);
                    out.insert(relationship.clone(), Value::Object(parent));
                }
            },
        }
    }
    match out.get(&mapping.external_id_field) {
        Some(Value::String(k)) if !k.is_empty() => Ok(out),
        _ => Err(TransformError { field: mapping.external_id_field.clone(), message: "the external id is empty".into() }),
    }
}

/// The record's external id value.
pub fn key(mapping: &ExportMapping, record: &Map<String, Value>) -> String {
    record.get(&mapping.external_id_field).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// A value of the event: a member of `fields` (dotted paths go into objects), else `id`,
/// `kind`, `site` or `occurred_at` of the event itself.
fn lookup(event: &Event, path: &str) -> Option<Value> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut cur = match event.fields.get(first) {
        Some(v) => v.clone(),
        None => match first {
            "id" => Value::String(event.id.clone()),
            "kind" => Value::String(event.kind.clone()),
            "site" => Value::String(event.site.clone()),
            "occurred_at" => Value::String(event.occurred_at.format(&Rfc3339).ok()?),
            _ => return None,
        },
    };
    for p in parts {
        cur = cur.get(p)?.clone();
    }
    Some(cur)
}

/// `{score}` alone keeps the value's JSON type (a number stays a number); a mixed template
/// (`{first} {last}`) is text, with missing values as empty text.
fn template(t: &str, event: &Event) -> Option<Value> {
    if let Some(inner) = t.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
        && !inner.contains(['{', '}'])
    {
        return lookup(event, inner.trim());
    }
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                match lookup(event, after[..close].trim()) {
                    Some(Value::String(s)) => out.push_str(&s),
                    Some(Value::Null) | None => {}
                    Some(v) => out.push_str(&v.to_string()),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    Some(Value::String(out))
}

/// Reformats an RFC 3339 datetime or a `YYYY-MM-DD` date for Salesforce.
fn date(text: &str, format: DateFormat) -> Option<String> {
    let ymd = format_description!("[year]-[month]-[day]");
    let at = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(t) => t.to_offset(UtcOffset::UTC),
        Err(_) => Date::parse(text.get(..10)?, ymd).ok()?.midnight().assume_utc(),
    };
    match format {
        DateFormat::Date => at.date().format(ymd).ok(),
        DateFormat::Datetime => at.replace_nanosecond(0).ok()?.format(&Rfc3339).ok(),
    }
}

/// The CSV header and cells of a record for a Bulk API 2.0 upload: relationship objects become
/// `Rel.Field` columns, `null` becomes `#N/A` (clears the field), absent fields stay empty.
pub fn columns(record: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(record.len());
    for (k, v) in record {
        match v {
            Value::Object(parent) => {
                for (pk, pv) in parent.iter().filter(|(pk, _)| pk.as_str() != "attributes") {
                    out.push((format!("{k}.{pk}"), cell(pv)));
                }
            }
            other => out.push((k.clone(), cell(other))),
        }
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "#N/A".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn mapping(fields: &[(&str, FieldSource)]) -> ExportMapping {
        ExportMapping {
            site: "acme".into(),
            kind: "result".into(),
            object: "Learning_Result__c".into(),
            external_id_field: "External_Id__c".into(),
            fields: fields.iter().cloned().map(|(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>(),
            connection: None,
        }
    }

    fn event(fields: Value) -> Event {
        let raw = serde_json::json!({"schema": crate::event::SCHEMA, "site": "acme", "kind": "result", "id": "res_1",
            "occurred_at": "2026-03-01T10:15:00+02:00", "fields": fields});
        crate::event::parse_event(raw).expect("valid")
    }

    #[test]
    fn every_transform() {
        let m = mapping(&[
            ("Score__c", FieldSource::Template("{score}".into())),
            ("Name", FieldSource::Template("{first} {last} ({kind})".into())),
            ("Course__c", FieldSource::Template("{course.name}".into())),
            ("Source__c", FieldSource::Constant { constant: "forcelink".into() }),
            ("Completed_On__c", FieldSource::Date { from: "completed_at".into(), format: DateFormat::Date }),
            ("Completed_At__c", FieldSource::Date { from: "occurred_at".into(), format: DateFormat::Datetime }),
            (
                "Contact__c",
                FieldSource::Lookup { lookup: "Contact__r".into(), object: "Contact".into(), by: "Email".into(), from: "email".into() },
            ),
            ("Missing__c", FieldSource::Template("{nope}".into())),
        ]);
        let e = event(serde_json::json!({"score": 4.5, "first": "Ana", "last": "Silva", "course": {"name": "Safety"},
            "completed_at": "2026-02-28T23:30:00-05:00", "email": "ana@example.com"}));
        let r = record(&m, &e).expect("record");
        assert_eq!(r["External_Id__c"], "res_1");
        assert_eq!(r["Score__c"], 4.5);
        assert_eq!(r["Name"], "Ana Silva (result)");
        assert_eq!(r["Course__c"], "Safety");
        assert_eq!(r["Source__c"], "forcelink");
        assert_eq!(r["Completed_On__c"], "2026-03-01");
        assert_eq!(r["Completed_At__c"], "2026-03-01T08:15:00Z");
        assert_eq!(r["Contact__r"], serde_json::json!({"attributes": {"type": "Contact"}, "Email": "ana@example.com"}));
        assert!(!r.contains_key("Missing__c") && !r.contains_key("Contact__c"));
        let cols = columns(&r);
        assert!(cols.contains(&("Contact__r.Email".into(), "ana@example.com".into())));
        assert!(cols.contains(&("Score__c".into(), "4.5".into())));
    }

    #[test]
    fn bad_date_is_permanent() {
        let m = mapping(&[("D__c", FieldSource::Date { from: "d".into(), format: DateFormat::Date })]);
        let err = record(&m, &event(serde_json::json!({"d": "soon"}))).unwrap_err();
        assert_eq!(err.field, "D__c");
    }
}
