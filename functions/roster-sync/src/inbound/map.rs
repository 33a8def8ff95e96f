//! Mapping a record to a [`Document`]: the defaults (`natural_id`, `document_date`,
//! `feedback_provider=Salesforce`, `source_value`, `feedback_type`, `job_name`, `load_date`)
//! and the job's own `{Field}` templates, which may also override a default.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use forcelink::domain::Document;
use forcelink::domain::sync::Duplicates;
use serde_json::Value;

use crate::soql::text_at;

/// The default document fields a mapping may override.
pub const DEFAULTS: [&str; 7] =
    ["natural_id", "document_date", "feedback_provider", "source_value", "feedback_type", "job_name", "load_date"];

/// What a job maps with.
pub struct Mapper<'a> {
    pub site: &'a str,
    pub job: &'a str,
    pub object: &'a str,
    pub date_field: &'a str,
    pub mapping: &'a BTreeMap<String, String>,
    /// RFC 3339 time of the load.
    pub load_date: String,
}

/// Renders `{Field}` placeholders (relationship paths allowed; a null is empty).
pub fn render(template: &str, record: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                let name = &rest[open + 1..open + close];
                out.push_str(&text_at(record, name.trim()).unwrap_or_default());
                rest = &rest[open + close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl Mapper<'_> {
    /// The document for a (redacted) record.
    pub fn document(&self, record: &Value) -> Result<Document, String> {
        let mut source = record.clone();
        if let Value::Object(m) = &mut source {
            m.remove("attributes");
        }
        let mut doc = Document {
            site: self.site.into(),
            job: self.job.into(),
            natural_id: text_at(record, "Id").ok_or("a record without Id")?,
            document_date: text_at(record, self.date_field).unwrap_or_default(),
            feedback_provider: "Salesforce".into(),
            source_value: source.to_string(),
            feedback_type: self.object.into(),
            job_name: self.job.into(),
            load_date: self.load_date.clone(),
            fields: BTreeMap::new(),
        };
        for (name, template) in self.mapping {
            let v = render(template, record);
            match name.as_str() {
                "natural_id" if !v.is_empty() => doc.natural_id = v,
                "natural_id" => return Err(format!("natural_id mapped from {template:?} is empty for record {}", doc.natural_id)),
                "document_date" => doc.document_date = v,
                "feedback_provider" => doc.feedback_provider = v,
                "source_value" => doc.source_value = v,
                "feedback_type" => doc.feedback_type = v,
                "job_name" => doc.job_name = v,
                "load_date" => doc.load_date = v,
                _ => {
                    doc.fields.insert(name.clone(), v);
                }
            }
        }
        Ok(doc)
    }
}

/// Hash of a document's content, `load_date` aside.
pub fn content_hash(d: &Document) -> u64 {
    let mut h = DefaultHasher::new();
    (&d.natural_id, &d.document_date, &d.feedback_provider, &d.source_value, &d.feedback_type, &d.job_name, &d.fields).hash(&mut h);
    h.finish()
}

/// What to write for `new` given the stored `old`, by the job's duplicate rule; `None` to
/// leave the stored one.
pub fn resolve(old: Option<&Document>, new: Document, rule: Duplicates) -> Option<Document> {
    let Some(old) = old else { return Some(new) };
    let next = match rule {
        Duplicates::Skip => return None,
        Duplicates::Replace => new,
        Duplicates::Update => {
            let mut merged = new;
            for (k, v) in &old.fields {
                merged.fields.entry(k.clone()).or_insert_with(|| v.clone());
            }
            merged
        }
    };
    (content_hash(&next) != content_hash(old)).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper(mapping: &BTreeMap<String, String>) -> Mapper<'_> {
        Mapper { site: "acme", job: "cases", object: "Case", date_field: "CreatedDate", mapping, load_date: "2026-01-01T00:00:00Z".into() }
    }

    #[test]
    fn defaults_and_custom_mappings() {
        let mapping = BTreeMap::from([
            ("feedback_type".to_string(), "Case/{Type}".to_string()),
            ("account".to_string(), "{Account.Name}".to_string()),
        ]);
        let rec = serde_json::json!({"attributes": {"type": "Case"}, "Id": "500A", "CreatedDate": "2026-01-02T00:00:00.000+0000", "Type": "Problem", "Account": {"Name": "Acme"}});
        let d = mapper(&mapping).document(&rec).unwrap();
        assert_eq!(d.natural_id, "500A");
        assert_eq!(d.document_date, "2026-01-02T00:00:00.000+0000");
        assert_eq!(d.feedback_provider, "Salesforce");
        assert_eq!(d.feedback_type, "Case/Problem");
        assert_eq!(d.job_name, "cases");
        assert_eq!(d.fields["account"], "Acme");
        assert!(!d.source_value.contains("attributes") && d.source_value.contains("Problem"));
        assert_eq!(render("{Nope} and {Type", &rec), " and {Type");
    }

    #[test]
    fn duplicates() {
        let mapping = BTreeMap::new();
        let m = mapper(&mapping);
        let rec = serde_json::json!({"Id": "500A", "CreatedDate": "d1"});
        let mut old = m.document(&rec).unwrap();
        old.fields.insert("note".into(), "kept".into());
        let same = m.document(&rec).unwrap();
        assert!(resolve(Some(&old), same.clone(), Duplicates::Skip).is_none());
        assert!(resolve(Some(&old), same.clone(), Duplicates::Update).is_none(), "merged equals stored");
        assert!(resolve(Some(&old), same.clone(), Duplicates::Replace).is_some_and(|d| d.fields.is_empty()));
        let changed = m.document(&serde_json::json!({"Id": "500A", "CreatedDate": "d2"})).unwrap();
        assert!(resolve(Some(&old), changed, Duplicates::Update).is_some_and(|d| d.fields["note"] == "kept" && d.document_date == "d2"));
        assert!(resolve(None, same, Duplicates::Skip).is_some());
    }
}
