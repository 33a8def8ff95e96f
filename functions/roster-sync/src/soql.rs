//! SOQL pieces: literals, datetimes, and the keyset condition that makes incremental runs
//! lose nothing at timestamp ties.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// A position in a query ordered by `(date field, Id)`: the last record processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The date field's value as Salesforce returned it (`2026-01-01T00:00:00.000+0000`
    /// or a date `2026-01-01`).
    pub stamp: String,
    /// The record's 18-char Id.
    pub id: String,
}

/// Quotes a string literal.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Parses a Salesforce datetime (`…000+0000`, `…Z`, `…+01:00`).
pub fn parse_datetime(text: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory][offset_minute]");
    OffsetDateTime::parse(text, &fmt).ok()
}

/// The SOQL literal for a returned date or datetime value: dates as they are, datetimes in
/// UTC with milliseconds (`2026-01-01T00:00:00.000Z`, unquoted).
pub fn literal(stamp: &str) -> Option<String> {
    if stamp.len() == 10 && time::Date::parse(stamp, format_description!("[year]-[month]-[day]")).is_ok() {
        return Some(stamp.to_string());
    }
    let t = parse_datetime(stamp)?.to_offset(UtcOffset::UTC);
    let p = PrimitiveDateTime::new(t.date(), t.time());
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    p.format(&fmt).ok()
}

/// An Id lower than every record's, for a cursor at a point in time (an empty Id is a
/// malformed query): it starts at that time's first record.
pub const LOWEST_ID: &str = "000000000000000AAA";

/// `t` as a SOQL datetime literal (UTC, milliseconds).
pub fn stamp_of(t: &OffsetDateTime) -> String {
    literal(&t.format(&Rfc3339).unwrap_or_default()).unwrap_or_default()
}

/// The newest stamp an incremental read takes at `now`: `now − lag`, so a record whose
/// transaction commits late with an earlier stamp is still ahead of the watermark.
pub fn lag_point(now: OffsetDateTime, lag: std::time::Duration) -> OffsetDateTime {
    now - lag
}

/// `cursor`, or the start of `point` if the cursor is later: a full pass reads everything,
/// but its watermark stays behind the lag window.
pub fn no_later_than(cursor: Cursor, point: OffsetDateTime) -> Cursor {
    match parse_datetime(&cursor.stamp) {
        Some(t) if t > point => Cursor { stamp: stamp_of(&point), id: LOWEST_ID.into() },
        _ => cursor,
    }
}

/// `(F > w) OR (F = w AND Id > 'id')`: records after the cursor in `ORDER BY F, Id`.
pub fn after(field: &str, cursor: &Cursor) -> Option<String> {
    let w = literal(&cursor.stamp)?;
    Some(format!("({field} > {w} OR ({field} = {w} AND Id > {}))", quote(&cursor.id)))
}

/// A field's value at a path (`Email`, `Manager.Email`) as text; `None` for null or absent.
pub fn text_at(record: &Value, path: &str) -> Option<String> {
    let mut v = record;
    for part in path.split('.') {
        v = match v {
            Value::Object(map) => map.get(part).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(part)).map(|(_, v)| v))?,
            _ => return None,
        };
    }
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(literal("2026-01-01T10:00:00.123+0000").as_deref(), Some("2026-01-01T10:00:00.123Z"));
        assert_eq!(literal("2026-01-01T10:00:00.000+0100").as_deref(), Some("2026-01-01T09:00:00.000Z"));
        assert_eq!(literal("2026-01-01T10:00:00Z").as_deref(), Some("2026-01-01T10:00:00.000Z"));
        assert_eq!(literal("2026-01-01").as_deref(), Some("2026-01-01"));
        assert_eq!(literal("yesterday"), None);
        assert_eq!(quote("O'Brien\\"), "'O\\'Brien\\\\'");
        let c = Cursor { stamp: "2026-01-01T00:00:00.000+0000".into(), id: "005000000000001AAA".into() };
        assert_eq!(
            after("SystemModstamp", &c).unwrap(),
            "(SystemModstamp > 2026-01-01T00:00:00.000Z OR (SystemModstamp = 2026-01-01T00:00:00.000Z AND Id > '005000000000001AAA'))"
        );
    }

    #[test]
    fn paths() {
        let r = serde_json::json!({"Id": "1", "Manager": {"Email": "m@x"}, "Flag__c": true, "N": 3, "Nil": null});
        assert_eq!(text_at(&r, "Manager.Email").as_deref(), Some("m@x"));
        assert_eq!(text_at(&r, "flag__c").as_deref(), Some("true"));
        assert_eq!(text_at(&r, "N").as_deref(), Some("3"));
        assert_eq!(text_at(&r, "Nil"), None);
        assert_eq!(text_at(&r, "Manager.Nope"), None);
    }
}
