//! The deployment layout read from `template.yaml` (compiled in), so the emulator bootstrap
//! (`forcelink aws-bootstrap`, the test harness) creates exactly what the template deploys: the table's keys, indexes and TTL attribute,
//! each queue's timeouts and redrive policy, the KMS key, and which setting names which
//! resource (the functions' `Globals` environment).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde_yaml::Value;

/// The shipped SAM template.
const TEMPLATE: &str = include_str!("../../../../template.yaml");

/// A parsed template.
pub struct Template {
    root: Value,
}

/// A hash key and an optional range key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub hash: String,
    pub range: Option<String>,
}

/// The `AWS::DynamoDB::Table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLayout {
    pub logical_id: String,
    /// `(name, type)`: `S`, `N` or `B`.
    pub attributes: Vec<(String, String)>,
    pub key: KeyPair,
    /// Global secondary indexes, every one projecting all attributes.
    pub indexes: Vec<(String, KeyPair)>,
    pub ttl_attribute: Option<String>,
}

/// An `AWS::SQS::Queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLayout {
    pub logical_id: String,
    pub visibility_timeout: Option<u32>,
    pub retention_secs: Option<u32>,
    pub redrive: Option<Redrive>,
    /// `RedriveAllowPolicy`, as JSON.
    pub redrive_allow: Option<serde_json::Value>,
}

/// A queue's `RedrivePolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    /// The dead-letter queue's logical id.
    pub dead_letter: String,
    pub max_receive_count: u32,
}

/// The `AWS::KMS::Key` and its alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    pub logical_id: String,
    pub key_spec: String,
    pub key_usage: String,
    /// The alias, with `${AWS::StackName}` left in.
    pub alias: String,
}

/// A function's SQS event source mapping (the CLI's tests check the local feeders against it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsEventSource {
    /// The queue's logical id.
    pub queue: String,
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds` (a parameter's default when it names one).
    pub window_secs: u32,
}

/// What a setting's value is in the template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reference {
    /// `!Ref X`: a table's name, a queue's URL.
    Ref(String),
    /// `!GetAtt X.Arn`.
    Arn(String),
}

impl Template {
    /// The template compiled into this binary.
    pub fn shipped() -> anyhow::Result<Self> {
        Self::parse(TEMPLATE)
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(Self { root: serde_yaml::from_str(text).context("template.yaml does not parse")? })
    }

    /// `(logical id, Properties)` of every resource of type `kind`, in template order.
    fn resources(&self, kind: &str) -> Vec<(String, &Value)> {
        let Some(resources) = self.root.get("Resources").and_then(Value::as_mapping) else { return Vec::new() };
        resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .filter_map(|(id, r)| Some((id.as_str()?.to_string(), r.get("Properties")?)))
            .collect()
    }

    /// The one table.
    pub fn table(&self) -> anyhow::Result<TableLayout> {
        let [(logical_id, p)] = self.resources("AWS::DynamoDB::Table").try_into().map_err(|_| anyhow::anyhow!("expected one table"))?;
        let attributes = list(p, "AttributeDefinitions")
            .iter()
            .map(|a| Ok((text(a, "AttributeName")?, text(a, "AttributeType")?)))
            .collect::<anyhow::Result<_>>()?;
        let mut indexes = Vec::new();
        for index in list(p, "GlobalSecondaryIndexes") {
            let projection = index.get("Projection").and_then(|p| p.get("ProjectionType")).and_then(Value::as_str);
            if projection != Some("ALL") {
                bail!("index projection {projection:?}: only ALL is supported");
            }
            indexes.push((text(index, "IndexName")?, key_pair(index)?));
        }
        let ttl = p.get("TimeToLiveSpecification").filter(|t| t.get("Enabled").and_then(Value::as_bool) == Some(true));
        Ok(TableLayout {
            key: key_pair(p)?,
            attributes,
            indexes,
            ttl_attribute: ttl.map(|t| text(t, "AttributeName")).transpose()?,
            logical_id,
        })
    }

    /// Every queue, dead-letter queues before the queues that name them.
    pub fn queues(&self) -> anyhow::Result<Vec<QueueLayout>> {
        let mut queues = self
            .resources("AWS::SQS::Queue")
            .into_iter()
            .map(|(logical_id, p)| {
                let redrive = p
                    .get("RedrivePolicy")
                    .map(|r| {
                        let target = r.get("deadLetterTargetArn").context("RedrivePolicy without deadLetterTargetArn")?;
                        let Some(Reference::Arn(dead_letter)) = reference(target) else {
                            bail!("deadLetterTargetArn is not a !GetAtt X.Arn")
                        };
                        Ok(Redrive { dead_letter, max_receive_count: self.number(r, "maxReceiveCount")?.context("no maxReceiveCount")? })
                    })
                    .transpose()?;
                let redrive_allow = p.get("RedriveAllowPolicy").map(serde_json::to_value).transpose()?;
                Ok(QueueLayout {
                    visibility_timeout: self.number(p, "VisibilityTimeout")?,
                    retention_secs: self.number(p, "MessageRetentionPeriod")?,
                    redrive,
                    redrive_allow,
                    logical_id,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        queues.sort_by_key(|q| q.redrive.is_some());
        Ok(queues)
    }

    /// The one KMS key and its alias.
    pub fn key(&self) -> anyhow::Result<KeyLayout> {
        let [(logical_id, p)] = self.resources("AWS::KMS::Key").try_into().map_err(|_| anyhow::anyhow!("expected one KMS key"))?;
        let alias = self
            .resources("AWS::KMS::Alias")
            .into_iter()
            .find(|(_, a)| a.get("TargetKeyId").and_then(reference) == Some(Reference::Ref(logical_id.clone())))
            .context("the KMS key has no alias")?
            .1
            .get("AliasName")
            .and_then(|n| tagged(n, "Sub").or(Some(n)))
            .and_then(Value::as_str)
            .context("the alias has no name")?
            .to_string();
        Ok(KeyLayout { key_spec: text(p, "KeySpec")?, key_usage: text(p, "KeyUsage")?, alias, logical_id })
    }

    /// Every function's SQS event source mapping.
    pub fn sqs_event_sources(&self) -> anyhow::Result<Vec<SqsEventSource>> {
        let mut out = Vec::new();
        for (_, function) in self.resources("AWS::Serverless::Function") {
            let Some(events) = function.get("Events").and_then(Value::as_mapping) else { continue };
            for event in events.values().filter(|e| e.get("Type").and_then(Value::as_str) == Some("SQS")) {
                let p = event.get("Properties").context("an SQS event without Properties")?;
                let Some(Reference::Arn(queue)) = p.get("Queue").and_then(reference) else {
                    bail!("an SQS event's Queue is not !GetAtt X.Arn")
                };
                out.push(SqsEventSource {
                    queue,
                    batch_size: self.number(p, "BatchSize")?.unwrap_or(10),
                    window_secs: self.number(p, "MaximumBatchingWindowInSeconds")?.unwrap_or(0),
                });
            }
        }
        Ok(out)
    }

    /// The functions' settings that name a resource (`FORCELINK_TABLE: !Ref Table`, …), not a
    /// parameter.
    pub fn settings(&self) -> BTreeMap<String, Reference> {
        let resources = self.root.get("Resources");
        let is_resource = |r: &Reference| {
            let (Reference::Ref(id) | Reference::Arn(id)) = r;
            resources.and_then(|all| all.get(id.as_str())).is_some()
        };
        let vars = ["Globals", "Function", "Environment", "Variables"].iter().try_fold(&self.root, |v, k| v.get(k));
        vars.and_then(Value::as_mapping)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_string(), reference(v).filter(is_resource)?))).collect())
            .unwrap_or_default()
    }

    /// A whole number at `field`: literal, or `!Ref` to a parameter's default.
    fn number(&self, v: &Value, field: &str) -> anyhow::Result<Option<u32>> {
        let Some(value) = v.get(field) else { return Ok(None) };
        let value = match reference(value) {
            Some(Reference::Ref(param)) => self
                .root
                .get("Parameters")
                .and_then(|p| p.get(param.as_str()))
                .and_then(|p| p.get("Default"))
                .with_context(|| format!("{field}: parameter {param} has no default"))?,
            _ => value,
        };
        let n = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        n.and_then(|n| u32::try_from(n).ok()).map(Some).with_context(|| format!("{field} is not a whole number"))
    }
}

/// The value under a CloudFormation short-form tag (`!Ref`, `!GetAtt`, `!Sub`), if `v` has it.
fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag.to_string().trim_start_matches('!') == tag => Some(&t.value),
        _ => None,
    }
}

/// `!Ref X` or `!GetAtt X.Arn`.
fn reference(v: &Value) -> Option<Reference> {
    if let Some(id) = tagged(v, "Ref").and_then(Value::as_str) {
        return Some(Reference::Ref(id.to_string()));
    }
    let att = tagged(v, "GetAtt").and_then(Value::as_str)?;
    att.strip_suffix(".Arn").map(|id| Reference::Arn(id.to_string()))
}

fn list<'a>(v: &'a Value, field: &str) -> &'a [Value] {
    v.get(field).and_then(Value::as_sequence).map(Vec::as_slice).unwrap_or_default()
}

fn text(v: &Value, field: &str) -> anyhow::Result<String> {
    v.get(field).and_then(Value::as_str).map(str::to_string).with_context(|| format!("{field} is missing or not text"))
}

fn key_pair(v: &Value) -> anyhow::Result<KeyPair> {
    let mut hash = None;
    let mut range = None;
    for k in list(v, "KeySchema") {
        let slot = match text(k, "KeyType")?.as_str() {
            "HASH" => &mut hash,
            "RANGE" => &mut range,
            other => bail!("key type {other}"),
        };
        *slot = Some(text(k, "AttributeName")?);
    }
    Ok(KeyPair { hash: hash.context("a key schema without a HASH key")?, range })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Template {
        Template::shipped().expect("template.yaml parses")
    }

    #[test]
    fn the_table_is_the_dynamo_backends_layout() {
        let t = shipped().table().unwrap();
        let pair = |h: &str, r: &str| KeyPair { hash: h.into(), range: Some(r.into()) };
        assert_eq!(t.key, pair("pk", "sk"));
        assert_eq!(t.indexes, vec![(crate::backends::dynamo::GSI1.to_string(), pair("gsi1pk", "gsi1sk"))]);
        assert_eq!(t.ttl_attribute.as_deref(), Some("ttl"));
        assert!(t.attributes.iter().all(|(_, kind)| kind == "S"), "{:?}", t.attributes);
    }

    #[test]
    fn queues_come_dead_letters_first_with_their_redrive() {
        let queues = shipped().queues().unwrap();
        let ids: Vec<&str> = queues.iter().map(|q| q.logical_id.as_str()).collect();
        assert_eq!(ids, ["ExportDeadLetterQueue", "WorkflowDeadLetterQueue", "ExportQueue", "WorkflowQueue"]);
        let export = &queues[2];
        assert_eq!(export.visibility_timeout, Some(360));
        assert_eq!(export.retention_secs, Some(345_600));
        assert_eq!(export.redrive, Some(Redrive { dead_letter: "ExportDeadLetterQueue".into(), max_receive_count: 5 }));
        assert_eq!(queues[3].visibility_timeout, Some(180));
        assert_eq!(queues[0].redrive_allow, Some(serde_json::json!({ "redrivePermission": "allowAll" })));
    }

    #[test]
    fn settings_name_their_resources() {
        let s = shipped().settings();
        assert_eq!(s.get("FORCELINK_TABLE"), Some(&Reference::Ref("Table".into())));
        assert_eq!(s.get("FORCELINK_WORKFLOW_QUEUE_URL"), Some(&Reference::Ref("WorkflowQueue".into())));
        assert_eq!(s.get("FORCELINK_KMS_KEY_ID"), Some(&Reference::Arn("TokenKey".into())));
        assert!(!s.contains_key("FORCELINK_BACKEND"), "a plain value is no reference");
        assert!(!s.contains_key("FORCELINK_MAIL_FROM"), "a parameter is no resource");
        assert_eq!(s.len(), 5, "{s:?}");
        let key = shipped().key().unwrap();
        assert_eq!((key.key_spec.as_str(), key.alias.as_str()), ("SYMMETRIC_DEFAULT", "alias/${AWS::StackName}-tokens"));
    }

    #[test]
    fn parameters_give_their_default() {
        let t = Template::parse("Parameters: { W: { Default: 7 } }\nX: { A: !Ref W, B: '12', C: nope }").unwrap();
        let x = t.root.get("X").unwrap();
        assert_eq!(t.number(x, "A").unwrap(), Some(7));
        assert_eq!(t.number(x, "B").unwrap(), Some(12));
        assert!(t.number(x, "C").is_err());
        assert_eq!(t.number(x, "D").unwrap(), None);
    }
}
