//! CloudWatch metrics as Embedded Metric Format (EMF) lines on stdout: CloudWatch Logs turns
//! them into metrics of the `forcelink` namespace, with no API call. Written on Lambda only
//! (`AWS_LAMBDA_FUNCTION_NAME` set), so the CLI's and `forcelink dev`'s output stays clean.
//!
//! - `Runs` (dimensions `Kind`, `Status`): one per finished run (sync runs today).
//! - `CredentialFailures`: connections whose credential Salesforce refuses, at each scheduled check.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use crate::domain::report::{RunKind, RunStatus};

/// The namespace every forcelink metric is in (the template's alarms name it).
pub const NAMESPACE: &str = "forcelink";

static ON_LAMBDA: LazyLock<bool> = LazyLock::new(|| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some());

/// One EMF document at `at_ms` (epoch milliseconds): `metrics` (name, count) under `dimensions`.
pub fn document(at_ms: i64, dimensions: &[(&str, &str)], metrics: &[(&str, f64)]) -> Value {
    let mut doc = Map::new();
    let names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let defs: Vec<Value> = metrics.iter().map(|(name, _)| json!({ "Name": name, "Unit": "Count" })).collect();
    doc.insert(
        "_aws".into(),
        json!({ "Timestamp": at_ms, "CloudWatchMetrics": [{ "Namespace": NAMESPACE, "Dimensions": [names], "Metrics": defs }] }),
    );
    for (k, v) in dimensions {
        doc.insert((*k).into(), json!(v));
    }
    for (name, value) in metrics {
        doc.insert((*name).into(), json!(value));
    }
    Value::Object(doc)
}

/// Writes a document (on Lambda only).
pub fn emit(at_ms: i64, dimensions: &[(&str, &str)], metrics: &[(&str, f64)]) {
    if *ON_LAMBDA {
        println!("{}", document(at_ms, dimensions, metrics));
    }
}

/// The `Runs` metric's dimensions for a run of `kind` that ended `status`.
pub fn run_dimensions(kind: RunKind, status: RunStatus) -> [(&'static str, &'static str); 2] {
    let kind = match kind {
        RunKind::Workflow => "workflow",
        RunKind::Export => "export",
        RunKind::Historical => "historical",
        RunKind::Sync => "sync",
    };
    let status = match status {
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Partial => "partial",
        RunStatus::Failed => "failed",
        RunStatus::Skipped => "skipped",
        RunStatus::Unknown => "unknown",
    };
    [("Kind", kind), ("Status", status)]
}

/// Counts one run of `kind` that ended `status`.
pub fn run_finished(at_ms: i64, kind: RunKind, status: RunStatus) {
    emit(at_ms, &run_dimensions(kind, status), &[("Runs", 1.0)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_document_names_its_metrics_and_dimensions() {
        let doc = document(1_700_000_000_000, &run_dimensions(RunKind::Sync, RunStatus::Failed), &[("Runs", 1.0)]);
        let meta = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(meta["Namespace"], "forcelink");
        assert_eq!(meta["Dimensions"], json!([["Kind", "Status"]]));
        assert_eq!(meta["Metrics"], json!([{ "Name": "Runs", "Unit": "Count" }]));
        assert_eq!((&doc["Kind"], &doc["Status"], &doc["Runs"]), (&json!("sync"), &json!("failed"), &json!(1.0)));
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let plain = document(5, &[], &[("CredentialFailures", 2.0)]);
        assert_eq!(plain["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
        assert_eq!(plain["CredentialFailures"], json!(2.0));
    }
}
