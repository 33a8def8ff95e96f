//! The whole stack on AWS services (moto, `FORCELINK_TEST_MOTO_URL`): `forcelink aws-bootstrap`
//! lays out template.yaml's table, queues and key idempotently, and `forcelink dev` with
//! `FORCELINK_BACKEND=aws` takes a Salesforce outbound message, acknowledges it and runs its
//! workflow from the SQS workflow queue; a message the runner fails comes back after the
//! queue's visibility timeout and is dead-lettered after its maxReceiveCount. Each test has
//! its own name prefix.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use forcelink::backends::dynamo::DynamoStore;
use forcelink::backends::kms::KmsKeyRing;
use forcelink::domain::record::{self, Versioned};
use forcelink::domain::report::{RunReport, RunStatus};
use forcelink::domain::workflow::{endpoint_url, workflow_id};
use forcelink::domain::{Connection, ConnectionStatus, keys};
use forcelink::ports::{Cond, Store};
use forcelink::{Deps, Settings, config};
use forcelink_stack::dev::{self, DevServer, free_port};
use forcelink_stack::fixtures::ACME_CONTACTS as SITE;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_forcelink");

fn moto() -> String {
    forcelink_stack::Backend::moto_url()
}

fn unique_prefix(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("t-{tag}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Runs `forcelink aws-bootstrap` as a person would; returns its output and the variables.
fn bootstrap(prefix: &str, data: &Path) -> (String, BTreeMap<String, String>) {
    let out = dev::command(Path::new(BIN), [("AWS_ENDPOINT_URL", moto()), ("FORCELINK_DATA_DIR", data.display().to_string())])
        .args(["aws-bootstrap", "--prefix", prefix])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let vars = text
        .lines()
        .map(|l| l.strip_prefix("export ").and_then(|l| l.split_once('=')).unwrap_or_else(|| panic!("not an export line: {l}")))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    (text, vars)
}

async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&forcelink::backends::aws::emulator_config(&moto()).await)
}

async fn attributes(sqs: &aws_sdk_sqs::Client, url: &str) -> BTreeMap<String, String> {
    let out = sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::All).send().await.unwrap();
    out.attributes().unwrap().iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect()
}

/// `(maxReceiveCount, dead-letter queue ARN)` of a queue.
fn redrive(attrs: &BTreeMap<String, String>) -> (u64, String) {
    let policy: Value = serde_json::from_str(&attrs["RedrivePolicy"]).unwrap();
    let max = policy["maxReceiveCount"].as_u64().or_else(|| policy["maxReceiveCount"].as_str()?.parse().ok()).unwrap();
    (max, policy["deadLetterTargetArn"].as_str().unwrap().to_string())
}

#[test]
fn bootstrap_refuses_without_an_emulator() {
    let out = dev::command(Path::new(BIN), [] as [(&str, &str); 0]).arg("aws-bootstrap").output().unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AWS_ENDPOINT_URL"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_is_idempotent_and_lays_out_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("layout");
    let (first, vars) = bootstrap(&prefix, dir.path());
    let (second, _) = bootstrap(&prefix, dir.path());
    assert_eq!(first, second, "a second run changes nothing");
    assert_eq!(vars["FORCELINK_TABLE"], format!("{prefix}-table"));
    assert_eq!(vars["FORCELINK_MAILER"], format!("outbox:{}", dir.path().join("outbox").display()));

    let config = forcelink::backends::aws::emulator_config(&moto()).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let table = dynamo.describe_table().table_name(&vars["FORCELINK_TABLE"]).send().await.unwrap();
    let table = table.table().unwrap();
    let schema = |keys: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<(String, String)> {
        keys.iter().map(|k| (k.attribute_name().to_string(), k.key_type().as_str().to_string())).collect()
    };
    let pair = |h: &str, r: &str| vec![(h.to_string(), "HASH".to_string()), (r.to_string(), "RANGE".to_string())];
    assert_eq!(schema(table.key_schema()), pair("pk", "sk"));
    let [gsi] = table.global_secondary_indexes() else { panic!("one index expected") };
    assert_eq!(gsi.index_name(), Some("gsi1"));
    assert_eq!(schema(gsi.key_schema()), pair("gsi1pk", "gsi1sk"));
    let ttl = dynamo.describe_time_to_live().table_name(&vars["FORCELINK_TABLE"]).send().await.unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!((ttl.attribute_name(), ttl.time_to_live_status().map(|s| s.as_str())), (Some("ttl"), Some("ENABLED")));

    let sqs = sqs().await;
    let dlq = attributes(&sqs, &vars["FORCELINK_DLQ_URL"]).await;
    for (var, visibility) in [("FORCELINK_QUEUE_URL", "360"), ("FORCELINK_WORKFLOW_QUEUE_URL", "180")] {
        let attrs = attributes(&sqs, &vars[var]).await;
        assert_eq!(attrs["VisibilityTimeout"], visibility, "{var}");
        assert_eq!(attrs["MessageRetentionPeriod"], "345600", "{var}");
        let (max, target) = redrive(&attrs);
        assert_eq!(max, 5, "{var}");
        let dead_letter =
            if var == "FORCELINK_QUEUE_URL" { dlq["QueueArn"].clone() } else { format!("{prefix}-workflow-dead-letter-queue") };
        assert!(target.ends_with(&dead_letter), "{var}: {target}");
    }
    assert_eq!(dlq["MessageRetentionPeriod"], "1209600");

    let kms = aws_sdk_kms::Client::new(&config);
    let key = kms.describe_key().key_id(format!("alias/{prefix}-tokens")).send().await.unwrap();
    let key = key.key_metadata().unwrap();
    assert_eq!(key.arn(), Some(vars["FORCELINK_KMS_KEY_ID"].as_str()));
    assert_eq!(key.key_spec().map(|s| s.as_str()), Some("SYMMETRIC_DEFAULT"));
}

/// `forcelink dev` on the bootstrapped AWS stack.
fn start_dev(vars: &BTreeMap<String, String>, data: &Path, port: u16) -> DevServer {
    let aws = [("FORCELINK_BACKEND", "aws".to_string()), ("FORCELINK_DATA_DIR", data.display().to_string())];
    let vars = vars.iter().map(|(k, v)| (k.as_str(), v.clone())).chain(aws);
    DevServer::start(Path::new(BIN), port, vars, &[])
}

/// The test's own view of the stack: the bootstrapped table and key (the outbox and the rest
/// of the settings do not matter to it).
async fn test_deps(vars: &BTreeMap<String, String>, data: &Path, port: u16) -> Deps {
    let mut deps = Deps::from_settings(Settings::embedded(data, None, Some(&format!("http://127.0.0.1:{port}"))).unwrap()).await.unwrap();
    let config = forcelink::backends::aws::emulator_config(&moto()).await;
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), vars["FORCELINK_TABLE"].clone()));
    let kms = aws_sdk_kms::Client::new(&config);
    deps.keys = Arc::new(KmsKeyRing::load(kms, vars["FORCELINK_KMS_KEY_ID"].clone(), store.clone()).await.unwrap());
    deps.store = store;
    deps
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_on_aws_runs_an_outbound_messages_workflow_from_sqs() {
    let dir = tempfile::tempdir().unwrap();
    let (_, vars) = bootstrap(&unique_prefix("flow"), dir.path());
    let port = free_port();
    let sim = sfsim::Sim::start(sfsim::SimConfig::default()).await.unwrap();
    let org = sim.org("acme").unwrap().id;
    let deps = test_deps(&vars, dir.path(), port).await;
    config::apply_text(deps.store.as_ref(), deps.keys.as_ref(), "site.toml", SITE).await.unwrap();
    let sk = format!("{}production", keys::CONNECTION_PREFIX);
    let Versioned { record: mut conn, .. } =
        record::load::<Connection>(deps.store.as_ref(), &keys::site_pk("acme"), &sk).await.unwrap().unwrap();
    conn.org_id = Some(org.clone());
    conn.status = ConnectionStatus::Connected;
    record::save(deps.store.as_ref(), &conn, Cond::Always).await.unwrap();
    let url = endpoint_url(&deps.settings.public_url, deps.keys.as_ref(), &workflow_id("acme", "contacts"));

    let _dev = start_dev(&vars, dir.path(), port);
    let fields = ["Email", "FirstName", "SystemModstamp"].map(String::from).to_vec();
    let rule = sfsim::RuleSpec { name: "to forcelink".into(), object: "Contact".into(), fields, endpoint_url: url, ..Default::default() };
    sim.add_outbound_rule(&org, rule).unwrap();
    let Value::Object(person) = json!({ "FirstName": "Ana", "LastName": "Silva", "Email": "ana@example.com" }) else { unreachable!() };
    sim.insert_records(&org, "Contact", vec![person]).unwrap();

    let started = Instant::now();
    let report = loop {
        let reports: Vec<RunReport> = forcelink::domain::report::list(deps.store.as_ref(), "acme").await.unwrap();
        if let Some(r) = reports.into_iter().find(|r| r.status != RunStatus::Running) {
            break r;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no finished run within 60 s: {:?}", sim.deliveries(&org).unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert!(sim.deliveries(&org).unwrap().iter().any(|d| d.acked), "Salesforce got its Ack");
    let outbox = vars["FORCELINK_MAILER"].strip_prefix("outbox:").unwrap();
    let mails: Vec<String> = std::fs::read_dir(outbox).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    assert_eq!(mails.len(), 1, "one invitation in FORCELINK_MAILER's outbox");
    assert!(mails[0].contains("ana@example.com") && mails[0].contains("/l/"));
    let depth = attributes(&sqs().await, &vars["FORCELINK_WORKFLOW_QUEUE_URL"]).await;
    assert_eq!((depth["ApproximateNumberOfMessages"].as_str(), depth["ApproximateNumberOfMessagesNotVisible"].as_str()), ("0", "0"));
}

/// The template's 180 s visibility and 5 receives would take 15 minutes: the test shortens
/// them on its own queue to 1 s and 3. The embedded runner's 5 s retry would take over 10 s.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_workflow_message_comes_back_after_the_visibility_timeout_then_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let (_, vars) = bootstrap(&unique_prefix("redrive"), dir.path());
    let sqs = sqs().await;
    let queue = &vars["FORCELINK_WORKFLOW_QUEUE_URL"];
    let (_, dlq_arn) = redrive(&attributes(&sqs, queue).await);
    let policy = json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3 }).to_string();
    sqs.set_queue_attributes()
        .queue_url(queue)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .send()
        .await
        .unwrap();
    let dlq_name = dlq_arn.rsplit(':').next().unwrap();
    let dlq = sqs.get_queue_url().queue_name(dlq_name).send().await.unwrap().queue_url().unwrap().to_string();

    let _dev = start_dev(&vars, dir.path(), free_port());
    sqs.send_message().queue_url(queue).message_body("not a run request").send().await.unwrap();
    let sent = Instant::now();
    let dead = loop {
        let got = sqs.receive_message().queue_url(&dlq).wait_time_seconds(1).send().await.unwrap();
        if let Some(m) = got.messages().first() {
            break m.clone();
        }
        assert!(sent.elapsed() < Duration::from_secs(30), "nothing reached the dead-letter queue within 30 s");
    };
    let took = sent.elapsed();
    assert_eq!(dead.body(), Some("not a run request"), "dead-lettered intact");
    assert!(took >= Duration::from_millis(1500), "3 receives 1 s apart took only {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}: the runner held the message longer than the queue's visibility timeout");
    let left = attributes(&sqs, queue).await;
    assert_eq!((left["ApproximateNumberOfMessages"].as_str(), left["ApproximateNumberOfMessagesNotVisible"].as_str()), ("0", "0"));
}
