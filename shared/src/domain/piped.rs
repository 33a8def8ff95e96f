//! Piped text (`{Field}` placeholders filled from a record's fields) and workflow conditions.

use std::collections::BTreeMap;

use super::workflow::{Condition, ConditionOp};

/// A field's value by API name: exact first, then ignoring case (API names are
/// case-insensitive in Salesforce). `None` for a nil or absent field.
pub fn field<'a>(fields: &'a BTreeMap<String, Option<String>>, name: &str) -> Option<&'a str> {
    match fields.get(name) {
        Some(v) => v.as_deref(),
        None => fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_deref()),
    }
}

/// A piece of a template: literal text or a `{Name}` placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits a template into text and placeholders. A `{` that does not open a valid
/// `{Name}` (letters, digits, `_`, `.`; at most 80) is text.
pub fn segments(template: &str) -> impl Iterator<Item = Segment<'_>> {
    let mut rest = template;
    let mut pending: Option<Segment<'_>> = None;
    std::iter::from_fn(move || {
        if let Some(p) = pending.take() {
            return Some(p);
        }
        if rest.is_empty() {
            return None;
        }
        let mut from = 0;
        while let Some(open) = rest[from..].find('{').map(|i| i + from) {
            let after = &rest[open + 1..];
            if let Some(close) = after.find('}')
                && is_name(&after[..close])
            {
                let text = &rest[..open];
                let name = &after[..close];
                rest = &after[close + 1..];
                if text.is_empty() {
                    return Some(Segment::Placeholder(name));
                }
                pending = Some(Segment::Placeholder(name));
                return Some(Segment::Text(text));
            }
            from = open + 1;
        }
        let text = rest;
        rest = "";
        Some(Segment::Text(text))
    })
}

/// The placeholder names of a template, in order.
pub fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    segments(template).filter_map(|s| match s {
        Segment::Placeholder(name) => Some(name),
        Segment::Text(_) => None,
    })
}

/// Fills `{Name}` placeholders: `extra` first (e.g. `link`), then the fields; a nil or absent
/// field gives empty text. A `{` without a closing `}` is kept as written.
pub fn pipe(template: &str, fields: &BTreeMap<String, Option<String>>, extra: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    for segment in segments(template) {
        match segment {
            Segment::Text(text) => out.push_str(text),
            Segment::Placeholder(name) => match extra.iter().find(|(k, _)| *k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(field(fields, name).unwrap_or("")),
            },
        }
    }
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 80 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// Whether every condition holds; on failure, the first that does not, in plain words.
pub fn check(conditions: &[Condition], fields: &BTreeMap<String, Option<String>>) -> Result<(), String> {
    for c in conditions {
        let value = field(fields, &c.field);
        let want = c.value.as_deref();
        let holds = match c.op {
            ConditionOp::Equals => value == want,
            ConditionOp::NotEquals => value != want,
            ConditionOp::Contains => matches!((value, want), (Some(v), Some(w)) if v.contains(w)),
            ConditionOp::IsNull => value.is_none_or(str::is_empty),
            ConditionOp::NotNull => value.is_some_and(|v| !v.is_empty()),
        };
        if !holds {
            let op = match c.op {
                ConditionOp::Equals => "equals",
                ConditionOp::NotEquals => "not_equals",
                ConditionOp::Contains => "contains",
                ConditionOp::IsNull => "is_null",
                ConditionOp::NotNull => "not_null",
            };
            let shown = |v: Option<&str>| v.map_or("null".to_string(), |v| format!("{v:?}"));
            return Err(format!("condition {} {op} {} does not hold (value {})", c.field, shown(want), shown(value)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> BTreeMap<String, Option<String>> {
        [("FirstName", Some("Ana")), ("Email", Some("ana@example.com")), ("Phone", None), ("Opt__c", Some("true"))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn pipes_fields_and_extras() {
        let f = fields();
        assert_eq!(pipe("Hi {FirstName}, {link} {Phone}|{firstname}", &f, &[("link", "L")]), "Hi Ana, L |Ana");
        assert_eq!(pipe("{ not a name } {x", &f, &[]), "{ not a name } {x");
        assert_eq!(pipe("{Missing}", &f, &[]), "");
        assert_eq!(pipe("a{b{Email}}c{", &f, &[]), "a{bana@example.com}c{");
        let names: Vec<_> = placeholders("{A}{ x }{B.c} {A}").collect();
        assert_eq!(names, ["A", "B.c", "A"]);
    }

    #[test]
    fn conditions() {
        let f = fields();
        let c = |field: &str, op, value: Option<&str>| Condition { field: field.into(), op, value: value.map(Into::into) };
        assert!(check(&[c("Opt__c", ConditionOp::Equals, Some("true"))], &f).is_ok());
        assert!(check(&[c("Opt__c", ConditionOp::Equals, Some("false"))], &f).is_err());
        assert!(check(&[c("Phone", ConditionOp::IsNull, None), c("Email", ConditionOp::Contains, Some("@"))], &f).is_ok());
        assert!(check(&[c("Phone", ConditionOp::Equals, None)], &f).is_ok());
        assert!(check(&[c("Phone", ConditionOp::NotNull, None)], &f).is_err());
    }
}
