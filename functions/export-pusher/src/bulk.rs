//! Bulk API 2.0 ingest jobs: create, upload CSV, `UploadComplete`, poll, and the successful,
//! failed and unprocessed results (matched back by external id, never by position).

use std::time::Duration;

use forcelink::salesforce::{SalesforceClient, SfError};
use http::Method;
use serde::Deserialize;

/// A job as Salesforce describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInfo {
    pub id: String,
    pub state: String,
    #[serde(default)]
    pub number_records_processed: u64,
    #[serde(default)]
    pub number_records_failed: u64,
    #[serde(default)]
    pub error_message: Option<String>,
}

impl JobInfo {
    /// Whether the job will not change any more.
    pub fn is_final(&self) -> bool {
        matches!(self.state.as_str(), "JobComplete" | "Failed" | "Aborted")
    }
}

/// A results file: its header and rows.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The column index of `name` (case-insensitive).
    pub fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h.eq_ignore_ascii_case(name))
    }
}

/// Which results to read.
#[derive(Debug, Clone, Copy)]
pub enum Results {
    Successful,
    Failed,
    Unprocessed,
}

/// Creates an upsert job.
pub async fn create(client: &SalesforceClient, object: &str, ext_field: &str) -> Result<JobInfo, SfError> {
    let body = serde_json::json!({"object": object, "externalIdFieldName": ext_field, "contentType": "CSV",
        "operation": "upsert", "lineEnding": "LF"});
    client.send_json(Method::POST, "jobs/ingest", &body).await
}

/// Uploads the job's CSV (one upload per job).
pub async fn upload(client: &SalesforceClient, job: &str, csv: bytes::Bytes) -> Result<(), SfError> {
    let resp = client.send_raw(Method::PUT, &format!("jobs/ingest/{job}/batches"), Some("text/csv"), "application/json", csv).await?;
    if resp.status.is_success() { Ok(()) } else { Err(SfError::from_response(resp.status.as_u16(), &resp.body)) }
}

/// Sets a job's state (`UploadComplete` or `Aborted`).
pub async fn set_state(client: &SalesforceClient, job: &str, state: &str) -> Result<JobInfo, SfError> {
    client.send_json(Method::PATCH, &format!("jobs/ingest/{job}"), &serde_json::json!({ "state": state })).await
}

/// Reads a job.
pub async fn get(client: &SalesforceClient, job: &str) -> Result<JobInfo, SfError> {
    client.get_json(&format!("jobs/ingest/{job}")).await
}

/// Polls until the job is final, waiting `first`, then 1.5× longer each time (at most 30 s).
pub async fn wait(client: &SalesforceClient, job: &str, first: Duration) -> Result<(JobInfo, u64), SfError> {
    let mut pause = first;
    let mut calls = 0;
    loop {
        tokio::time::sleep(pause).await;
        calls += 1;
        let info = retrying(|| get(client, job)).await?;
        if info.is_final() {
            return Ok((info, calls));
        }
        pause = pause.mul_f64(1.5).min(Duration::from_secs(30));
    }
}

/// Reads a results file.
pub async fn results(client: &SalesforceClient, job: &str, which: Results) -> Result<Table, SfError> {
    let part = match which {
        Results::Successful => "successfulResults/",
        Results::Failed => "failedResults/",
        Results::Unprocessed => "unprocessedrecords/",
    };
    let resp = client.send_raw(Method::GET, &format!("jobs/ingest/{job}/{part}"), None, "text/csv", bytes::Bytes::new()).await?;
    if !resp.status.is_success() {
        return Err(SfError::from_response(resp.status.as_u16(), &resp.body));
    }
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(resp.body.as_ref());
    let header = rdr.headers().map_err(|e| SfError::unreadable("the results CSV", e))?.iter().map(str::to_string).collect();
    let mut rows = Vec::new();
    for r in rdr.records() {
        let r = r.map_err(|e| SfError::unreadable("the results CSV", e))?;
        rows.push(r.iter().map(str::to_string).collect());
    }
    Ok(Table { header, rows })
}

/// Runs a call, retrying transient failures up to 6 times with a growing pause.
pub async fn retrying<T, F, Fut>(mut call: F) -> Result<T, SfError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SfError>>,
{
    let mut pause = Duration::from_millis(200);
    for _ in 0..6 {
        match call().await {
            Err(e) if e.is_transient() => {
                tracing::debug!(error = %e, "bulk call failed; retrying");
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2).min(Duration::from_secs(10));
            }
            other => return other,
        }
    }
    call().await
}

/// Builds the CSV of records given as (column, cell) lists; the header is every column in order
/// of first appearance, and a record without a column leaves its cell empty.
pub fn csv(records: &[Vec<(String, String)>]) -> Result<bytes::Bytes, csv::Error> {
    let mut header: Vec<String> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for r in records {
        for (k, _) in r {
            if !index.contains_key(k) {
                index.insert(k.clone(), header.len());
                header.push(k.clone());
            }
        }
    }
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    w.write_record(&header)?;
    let mut row = vec![String::new(); header.len()];
    for r in records {
        row.iter_mut().for_each(String::clear);
        for (k, v) in r {
            if let Some(&i) = index.get(k) {
                row[i].clone_from(v);
            }
        }
        w.write_record(&row)?;
    }
    let bytes = w.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(bytes::Bytes::from(bytes))
}
