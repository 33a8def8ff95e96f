//! The platform's export events (`forcelink.event/v1`) and the message bodies that carry them.
//!
//! A message body is one event, a JSON array of events (a bundle, up to SQS's 256 KiB), a
//! dead-letter envelope (so a redriven dead letter is understood), or a control message.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The schema tag every event carries.
pub const SCHEMA: &str = "forcelink.event/v1";
/// The schema tag of a dead-letter envelope: `{"schema":…,"error":{…},"event":{…}}`.
pub const DEAD_LETTER_SCHEMA: &str = "forcelink.deadletter/v1";

/// One platform record change, validated. `raw` is the event exactly as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub site: String,
    pub kind: String,
    pub id: String,
    pub occurred_at: OffsetDateTime,
    pub fields: Map<String, Value>,
    pub raw: Value,
}

/// What a message body holds.
#[derive(Debug)]
pub enum Body {
    /// Events in order, each parsed or refused with its raw value and why.
    Events(Vec<Result<Event, Invalid>>),
    /// Release the held events of a site.
    Flush { site: String },
}

/// An event that does not meet the schema, kept intact with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub raw: Value,
    pub reason: String,
}

/// A body that is not JSON at all, or not an event, array or known envelope.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("message body is not an export event: not JSON")]
    NotJson(#[from] serde_json::Error),
    #[error("message body is not an export event: {0}")]
    Shape(&'static str),
}

/// Parses a message body.
pub fn parse_body(text: &str) -> Result<Body, BodyError> {
    let value: Value = serde_json::from_str(text)?;
    match value {
        Value::Array(items) => Ok(Body::Events(items.into_iter().map(parse_event).collect())),
        Value::Object(ref m) => match m.get("schema").and_then(Value::as_str) {
            Some(forcelink::domain::export::CONTROL_SCHEMA) => {
                let action = m.get("action").and_then(Value::as_str);
                let site = m.get("site").and_then(Value::as_str);
                match (action, site) {
                    (Some("flush"), Some(site)) => Ok(Body::Flush { site: site.to_string() }),
                    _ => Err(BodyError::Shape("control message: expected action \"flush\" and a site")),
                }
            }
            Some(DEAD_LETTER_SCHEMA) => match m.get("event") {
                Some(event) => Ok(Body::Events(vec![parse_event(event.clone())])),
                None => Err(BodyError::Shape("dead-letter envelope without its event")),
            },
            _ => Ok(Body::Events(vec![parse_event(value)])),
        },
        _ => Err(BodyError::Shape("expected an event object or an array of events")),
    }
}

/// Validates one event against `forcelink.event/v1`.
pub fn parse_event(raw: Value) -> Result<Event, Invalid> {
    match check(&raw) {
        Ok((site, kind, id, occurred_at, fields)) => Ok(Event { site, kind, id, occurred_at, fields, raw }),
        Err(reason) => Err(Invalid { raw, reason }),
    }
}

type Parts = (String, String, String, OffsetDateTime, Map<String, Value>);

fn check(raw: &Value) -> Result<Parts, String> {
    let m = raw.as_object().ok_or("an event is a JSON object")?;
    if let Some(unknown) = m.keys().find(|k| !["schema", "site", "kind", "id", "occurred_at", "fields"].contains(&k.as_str())) {
        return Err(format!("unknown member {unknown:?}"));
    }
    let text = |name: &str| m.get(name).and_then(Value::as_str).ok_or_else(|| format!("{name} is required (a string)"));
    let schema = text("schema")?;
    if schema != SCHEMA {
        return Err(format!("schema {schema:?}: expected {SCHEMA:?}"));
    }
    let site = text("site")?;
    if !forcelink::domain::site::valid_site_id(site) {
        return Err(format!("site {site:?}: lowercase letters, digits and '-'"));
    }
    let kind = text("kind")?;
    if kind.is_empty() || kind.len() > 64 || !kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(format!("kind {kind:?}: lowercase letters, digits and '_' (at most 64)"));
    }
    let id = text("id")?;
    if id.is_empty() || id.len() > 255 || id.contains('#') || id.chars().any(char::is_control) {
        return Err("id: 1 to 255 characters, no '#' or control characters".into());
    }
    let at = text("occurred_at")?;
    let occurred_at = OffsetDateTime::parse(at, &Rfc3339).map_err(|_| format!("occurred_at {at:?}: expected RFC 3339"))?;
    let fields = match m.get("fields") {
        None => Map::new(),
        Some(Value::Object(f)) => f.clone(),
        Some(_) => return Err("fields must be an object".into()),
    };
    Ok((site.to_string(), kind.to_string(), id.to_string(), occurred_at, fields))
}

/// The dead-letter envelope for a refused event or record: the event intact, with the error.
pub fn dead_letter(event: &Value, code: &str, message: &str) -> String {
    serde_json::json!({ "schema": DEAD_LETTER_SCHEMA, "error": { "code": code, "message": message }, "event": event }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str) -> Value {
        serde_json::json!({"schema": SCHEMA, "site": "acme", "kind": "result", "id": id,
            "occurred_at": "2026-03-01T10:15:00Z", "fields": {"score": 3}})
    }

    #[test]
    fn one_event_array_and_envelopes() {
        let Ok(Body::Events(one)) = parse_body(&ev("a").to_string()) else { panic!("one") };
        assert_eq!(one.len(), 1);
        assert!(one[0].as_ref().is_ok_and(|e| e.id == "a" && e.fields["score"] == 3));
        let arr = Value::Array(vec![ev("a"), serde_json::json!({"schema": SCHEMA})]).to_string();
        let Ok(Body::Events(two)) = parse_body(&arr) else { panic!("array") };
        assert!(two[0].is_ok() && two[1].is_err());
        let dl = dead_letter(&ev("z"), "X", "y");
        let Ok(Body::Events(back)) = parse_body(&dl) else { panic!("dead letter") };
        assert!(back[0].as_ref().is_ok_and(|e| e.id == "z"));
        let flush = forcelink::domain::export::flush_message("acme");
        assert!(matches!(parse_body(&flush), Ok(Body::Flush { site }) if site == "acme"));
        let not_json = parse_body("nope").unwrap_err();
        assert!(std::error::Error::source(&not_json).is_some(), "the parse error is kept");
        assert!(parse_body("3").is_err());
    }

    #[test]
    fn refuses_bad_events() {
        let mut bad = ev("a");
        bad["occurred_at"] = "yesterday".into();
        assert!(parse_event(bad).unwrap_err().reason.contains("occurred_at"));
        let mut bad = ev("a");
        bad["site"] = "ACME".into();
        assert!(parse_event(bad).is_err());
        let mut bad = ev("a");
        bad["extra"] = 1.into();
        assert!(parse_event(bad).unwrap_err().reason.contains("extra"));
        let mut bad = ev("a#b");
        bad["schema"] = SCHEMA.into();
        assert!(parse_event(bad).is_err());
    }
}
