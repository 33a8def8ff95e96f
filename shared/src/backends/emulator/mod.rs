//! On an AWS emulator (moto) only: creates the table, the queues and the KMS key as
//! `template.yaml` lays them out ([`template`]), idempotently, under a name prefix, and answers
//! the settings that point forcelink at them. `forcelink aws-bootstrap` and the test harness
//! (`forcelink-stack`) both use it, so there is one layout.

pub mod template;

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_sqs::types::QueueAttributeName;

use template::{KeyLayout, KeyPair, QueueLayout, Reference, TableLayout, Template};

/// Creates what is missing of the shipped template's table, queues and key under `prefix`
/// (which stands for the stack name) and answers the functions' settings that name them
/// (`FORCELINK_TABLE`, `FORCELINK_QUEUE_URL`, …) with their values.
pub async fn bootstrap(config: &SdkConfig, prefix: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let template = Template::shipped()?;
    let mut resolved = BTreeMap::new();
    let table = template.table()?;
    let name = physical_name(prefix, &table.logical_id);
    create_table(&aws_sdk_dynamodb::Client::new(config), &table, &name).await.with_context(|| format!("table {name}"))?;
    resolved.insert(Reference::Ref(table.logical_id), name);
    let sqs = aws_sdk_sqs::Client::new(config);
    for queue in template.queues()? {
        let name = physical_name(prefix, &queue.logical_id);
        let (url, arn) = create_queue(&sqs, &queue, &name, &resolved).await.with_context(|| format!("queue {name}"))?;
        resolved.insert(Reference::Ref(queue.logical_id.clone()), url);
        resolved.insert(Reference::Arn(queue.logical_id), arn);
    }
    let key = template.key()?;
    let arn = ensure_key(&aws_sdk_kms::Client::new(config), &key, prefix).await.context("KMS key")?;
    resolved.insert(Reference::Arn(key.logical_id), arn);
    template
        .settings()
        .into_iter()
        .map(|(var, reference)| {
            let value = resolved.get(&reference).with_context(|| format!("{var} names {reference:?}, which was not created"))?;
            Ok((var, value.clone()))
        })
        .collect()
}

/// `PREFIX-logical-id` in kebab case: `Table` → `forcelink-table`.
pub fn physical_name(prefix: &str, logical_id: &str) -> String {
    let mut name = prefix.to_string();
    for c in logical_id.chars() {
        if c.is_ascii_uppercase() {
            name.push('-');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

/// Creates the table unless it exists, waits for it, and turns TTL on unless it is on.
async fn create_table(client: &aws_sdk_dynamodb::Client, layout: &TableLayout, name: &str) -> anyhow::Result<()> {
    let attributes = layout
        .attributes
        .iter()
        .map(|(attr, kind)| {
            Ok(AttributeDefinition::builder().attribute_name(attr).attribute_type(ScalarAttributeType::from(kind.as_str())).build()?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let indexes = layout
        .indexes
        .iter()
        .map(|(index, keys)| {
            Ok(GlobalSecondaryIndex::builder()
                .index_name(index)
                .set_key_schema(Some(key_schema(keys)?))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(&layout.key)?))
        .set_global_secondary_indexes(Some(indexes).filter(|i| !i.is_empty()))
        .send()
        .await;
    match created {
        Err(e) if e.code() != Some("ResourceInUseException") => return Err(e.into()),
        _ => {}
    }
    wait_active(client, name).await?;
    let Some(ttl) = &layout.ttl_attribute else { return Ok(()) };
    let current = client.describe_time_to_live().table_name(name).send().await?;
    let on = current.time_to_live_description().and_then(|d| d.time_to_live_status()) == Some(&TimeToLiveStatus::Enabled);
    if !on {
        let spec = TimeToLiveSpecification::builder().attribute_name(ttl).enabled(true).build()?;
        client.update_time_to_live().table_name(name).time_to_live_specification(spec).send().await?;
    }
    Ok(())
}

fn key_schema(keys: &KeyPair) -> anyhow::Result<Vec<KeySchemaElement>> {
    let mut schema = vec![KeySchemaElement::builder().attribute_name(&keys.hash).key_type(KeyType::Hash).build()?];
    if let Some(range) = &keys.range {
        schema.push(KeySchemaElement::builder().attribute_name(range).key_type(KeyType::Range).build()?);
    }
    Ok(schema)
}

async fn wait_active(client: &aws_sdk_dynamodb::Client, name: &str) -> anyhow::Result<()> {
    for _ in 0..120 {
        let described = client.describe_table().table_name(name).send().await?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    bail!("the table did not become active within a minute")
}

/// Creates the queue (SQS answers the existing queue's URL when the attributes are the same);
/// returns its URL and ARN. `resolved` holds the dead-letter queues' ARNs.
async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    layout: &QueueLayout,
    name: &str,
    resolved: &BTreeMap<Reference, String>,
) -> anyhow::Result<(String, String)> {
    let mut attributes = BTreeMap::new();
    if let Some(v) = layout.visibility_timeout {
        attributes.insert(QueueAttributeName::VisibilityTimeout, v.to_string());
    }
    if let Some(v) = layout.retention_secs {
        attributes.insert(QueueAttributeName::MessageRetentionPeriod, v.to_string());
    }
    if let Some(r) = &layout.redrive {
        let target = resolved.get(&Reference::Arn(r.dead_letter.clone())).with_context(|| format!("{} comes later", r.dead_letter))?;
        let policy = serde_json::json!({ "deadLetterTargetArn": target, "maxReceiveCount": r.max_receive_count });
        attributes.insert(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    if let Some(allow) = &layout.redrive_allow {
        attributes.insert(QueueAttributeName::RedriveAllowPolicy, allow.to_string());
    }
    let created = sqs.create_queue().queue_name(name).set_attributes(Some(attributes.into_iter().collect())).send().await?;
    let url = created.queue_url().context("CreateQueue returned no URL")?.to_string();
    let attrs = sqs.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::QueueArn).send().await?;
    let arn = attrs.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).context("the queue has no ARN")?.clone();
    Ok((url, arn))
}

/// The key its alias names, or a new one under that alias; returns its ARN.
async fn ensure_key(kms: &aws_sdk_kms::Client, layout: &KeyLayout, stack: &str) -> anyhow::Result<String> {
    let alias = layout.alias.replace("${AWS::StackName}", stack);
    if alias.contains("${") {
        bail!("alias {alias}: only ${{AWS::StackName}} is substituted");
    }
    match kms.describe_key().key_id(&alias).send().await {
        Ok(found) => return found.key_metadata().map(|m| m.arn().unwrap_or(m.key_id()).to_string()).context("DescribeKey said nothing"),
        Err(e) if e.code() == Some("NotFoundException") => {}
        Err(e) => return Err(e.into()),
    }
    let created = kms
        .create_key()
        .description(format!("forcelink ({stack}) key-encryption key for Salesforce tokens and link keys"))
        .key_spec(KeySpec::from(layout.key_spec.as_str()))
        .key_usage(KeyUsageType::from(layout.key_usage.as_str()))
        .send()
        .await?;
    let meta = created.key_metadata().context("CreateKey said nothing")?;
    kms.create_alias().alias_name(&alias).target_key_id(meta.key_id()).send().await?;
    Ok(meta.arn().unwrap_or(meta.key_id()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_logical_ids() {
        assert_eq!(physical_name("forcelink", "Table"), "forcelink-table");
        assert_eq!(physical_name("t1", "ExportDeadLetterQueue"), "t1-export-dead-letter-queue");
    }
}
