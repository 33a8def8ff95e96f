//! Redaction and substitution rules of a generic job, applied to every text value of a
//! record (or the listed fields) before it is mapped and stored.

use forcelink::domain::sync::{RedactKind, Redaction, Substitution};
use regex::{Captures, Regex};
use serde_json::Value;

use crate::error::SyncError;

enum Rule {
    Email,
    Card,
    Pattern { re: Regex, with: String, literal: bool },
}

/// The compiled rules of a job.
pub struct Rules {
    rules: Vec<(Rule, Vec<String>)>,
    email: Regex,
    card: Regex,
}

/// Compiles a job's rules (substitutions first, then redactions).
pub fn compile(redact: &[Redaction], substitute: &[Substitution]) -> Result<Rules, SyncError> {
    let re = |p: &str| Regex::new(p).map_err(|source| SyncError::Pattern { pattern: p.to_string(), source });
    let mut rules = Vec::new();
    for s in substitute {
        rules.push((Rule::Pattern { re: re(&s.pattern)?, with: s.replace.clone(), literal: false }, s.fields.clone()));
    }
    for r in redact {
        let rule = match r.kind {
            RedactKind::Email => Rule::Email,
            RedactKind::Card => Rule::Card,
            RedactKind::Pattern => {
                let p = r.pattern.as_deref().ok_or_else(|| SyncError::Invalid("a redaction of kind \"pattern\" needs a pattern".into()))?;
                Rule::Pattern { re: re(p)?, with: r.mask.clone().unwrap_or_else(|| "***".into()), literal: true }
            }
        };
        rules.push((rule, r.fields.clone()));
    }
    Ok(Rules {
        rules,
        email: re(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})")?,
        card: re(r"\b(?:\d[ -]?){12,18}\d\b")?,
    })
}

impl Rules {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Applies the rules to one text value of field `path`.
    pub fn text(&self, path: &str, text: &str) -> String {
        let mut out = text.to_string();
        for (rule, fields) in &self.rules {
            if !fields.is_empty() && !fields.iter().any(|f| f.eq_ignore_ascii_case(path)) {
                continue;
            }
            out = match rule {
                Rule::Email => self.email.replace_all(&out, |c: &Captures| format!("{}***@{}", &c[1], &c[2])).into_owned(),
                Rule::Card => self.card.replace_all(&out, |c: &Captures| mask_card(&c[0])).into_owned(),
                Rule::Pattern { re, with, literal: true } => re.replace_all(&out, regex::NoExpand(with)).into_owned(),
                Rule::Pattern { re, with, literal: false } => re.replace_all(&out, with.as_str()).into_owned(),
            };
        }
        out
    }

    /// Applies the rules to every text value of a record (nested relationship objects too).
    pub fn record(&self, record: &mut Value) {
        if !self.is_empty() {
            walk(self, "", record);
        }
    }
}

fn walk(rules: &Rules, prefix: &str, v: &mut Value) {
    let Value::Object(map) = v else { return };
    for (k, v) in map.iter_mut().filter(|(k, _)| *k != "attributes") {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            Value::String(s) => *s = rules.text(&path, s),
            Value::Object(_) => walk(rules, &path, v),
            _ => {}
        }
    }
}

/// Masks a card number that passes the Luhn check, keeping its last four digits.
fn mask_card(text: &str) -> String {
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if !luhn(&digits) {
        return text.to_string();
    }
    let keep = digits.len().saturating_sub(4);
    digits.iter().enumerate().map(|(i, d)| if i < keep { '*' } else { char::from_digit(*d, 10).unwrap_or('*') }).collect()
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 =
        digits.iter().rev().enumerate().map(|(i, &d)| if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }).sum();
    (13..=19).contains(&digits.len()) && sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_emails_cards_and_patterns() {
        let rules = compile(
            &[
                Redaction { kind: RedactKind::Email, pattern: None, mask: None, fields: vec![] },
                Redaction { kind: RedactKind::Card, pattern: None, mask: None, fields: vec![] },
                Redaction {
                    kind: RedactKind::Pattern,
                    pattern: Some(r"\d{3}-\d{2}-\d{4}".into()),
                    mask: Some("[ssn]".into()),
                    fields: vec!["Notes".into()],
                },
            ],
            &[Substitution { pattern: r"(?i)\bacme\b".into(), replace: "Customer".into(), fields: vec![] }],
        )
        .unwrap();
        let mut r = serde_json::json!({"attributes": {"type": "Case"}, "Description": "Mail ana.silva@example.com, card 4111 1111 1111 1111, order 1234567890123 at Acme",
            "Notes": "ssn 123-45-6789", "Other": "123-45-6789", "Account": {"Name": "ACME"}, "N": 5});
        rules.record(&mut r);
        assert_eq!(r["Description"], "Mail a***@example.com, card ************1111, order 1234567890123 at Customer");
        assert_eq!(r["Notes"], "ssn [ssn]");
        assert_eq!(r["Other"], "123-45-6789", "pattern limited to Notes");
        assert_eq!(r["Account"]["Name"], "Customer");
        assert!(compile(&[Redaction { kind: RedactKind::Pattern, pattern: Some("(".into()), mask: None, fields: vec![] }], &[]).is_err());
    }
}
