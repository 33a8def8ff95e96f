//! Upserts through sObject Collections (`PATCH composite/sobjects/{Object}/{ExtField}`), at
//! most 200 records a call, retrying transient failures (whole calls and single rows) a few
//! times within the invocation with a growing pause, and mapping each row's result back.

use forcelink::salesforce::error::ApiErrorItem;
use forcelink::salesforce::{LimitKind, SalesforceClient, SfError};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ledger::EventError;
use crate::tuning::Tuning;

/// Salesforce's limit per collections call.
pub const MAX_RECORDS: usize = 200;

/// The end of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    Upserted {
        id: String,
        created: bool,
    },
    /// Refused for good (validation, missing field, bad value).
    Permanent(EventError),
    /// Still failing after every attempt: hand back to SQS.
    Transient(EventError),
    /// Not tried: the org's work stopped (see [`Stop`]).
    Stopped,
}

/// Why the org's work stopped before every record was tried.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// `REQUEST_LIMIT_EXCEEDED` (TotalRequests): pause the org.
    DailyLimit(String),
    /// No live connection any more (needs re-authorization, revoked).
    NotConnected(String),
}

/// What one upsert run did.
#[derive(Debug, Default)]
pub struct Upserted {
    pub outcomes: Vec<RowOutcome>,
    pub stop: Option<Stop>,
    pub calls: u64,
}

#[derive(Deserialize)]
struct RowResult {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    success: bool,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    errors: Vec<RowError>,
}

#[derive(Deserialize)]
struct RowError {
    #[serde(default, rename = "statusCode")]
    status_code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    fields: Vec<String>,
}

/// Upserts `records` (keys already unique) of one object by `ext_field`.
pub async fn upsert(client: &SalesforceClient, object: &str, ext_field: &str, records: &[Map<String, Value>], tuning: &Tuning) -> Upserted {
    let mut out = Upserted { outcomes: vec![RowOutcome::Stopped; records.len()], ..Upserted::default() };
    let mut pending: Vec<usize> = (0..records.len()).collect();
    let path = format!("composite/sobjects/{object}/{ext_field}");
    for attempt in 0..tuning.attempts {
        if attempt > 0 {
            let pause = tuning.attempt_pause.saturating_mul(1 << (attempt - 1).min(8));
            let jitter = rand::random::<f64>() * 0.3 + 0.85;
            tokio::time::sleep(pause.mul_f64(jitter)).await;
        }
        let mut retry = Vec::new();
        for chunk in pending.chunks(MAX_RECORDS) {
            let body = serde_json::json!({
                "allOrNone": false,
                "records": chunk.iter().map(|&i| with_type(object, &records[i])).collect::<Vec<_>>(),
            });
            out.calls += 1;
            match client.send_json::<_, Vec<RowResult>>(http::Method::PATCH, &path, &body).await {
                Ok(results) if results.len() == chunk.len() => {
                    for (&i, r) in chunk.iter().zip(results) {
                        out.outcomes[i] = row_outcome(r);
                        if matches!(out.outcomes[i], RowOutcome::Transient(_)) {
                            retry.push(i);
                        }
                    }
                }
                Ok(results) => {
                    let e = error("UNEXPECTED_ANSWER", format!("{} results for {} records", results.len(), chunk.len()));
                    for &i in chunk {
                        out.outcomes[i] = RowOutcome::Transient(e.clone());
                        retry.push(i);
                    }
                }
                Err(e) => match classify(&e) {
                    Class::Transient(err) => {
                        for &i in chunk {
                            out.outcomes[i] = RowOutcome::Transient(err.clone());
                            retry.push(i);
                        }
                    }
                    Class::Permanent(err) => {
                        for &i in chunk {
                            out.outcomes[i] = RowOutcome::Permanent(err.clone());
                        }
                    }
                    Class::Stop(stop) => {
                        for o in out.outcomes.iter_mut().filter(|o| !matches!(o, RowOutcome::Upserted { .. } | RowOutcome::Permanent(_))) {
                            *o = RowOutcome::Stopped;
                        }
                        out.stop = Some(stop);
                        return out;
                    }
                },
            }
        }
        if retry.is_empty() {
            break;
        }
        tracing::debug!(object, retry = retry.len(), attempt, "transient failures; retrying");
        pending = retry;
    }
    out
}

fn with_type(object: &str, record: &Map<String, Value>) -> Value {
    let mut m = Map::with_capacity(record.len() + 1);
    m.insert("attributes".into(), serde_json::json!({ "type": object }));
    m.extend(record.iter().map(|(k, v)| (k.clone(), v.clone())));
    Value::Object(m)
}

fn row_outcome(r: RowResult) -> RowOutcome {
    if r.success {
        return RowOutcome::Upserted { id: r.id.unwrap_or_default(), created: r.created };
    }
    let first = r.errors.into_iter().find(|e| e.status_code != "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    let Some(e) = first else { return RowOutcome::Transient(error("UNKNOWN", "failed without an error".into())) };
    let item = ApiErrorItem { message: e.message.clone(), error_code: e.status_code.clone(), fields: e.fields.clone() };
    let err = EventError { code: e.status_code, message: e.message, fields: e.fields };
    if SfError::from_item(400, item).is_transient() { RowOutcome::Transient(err) } else { RowOutcome::Permanent(err) }
}

/// How a failed call is handled.
pub enum Class {
    Transient(EventError),
    Permanent(EventError),
    Stop(Stop),
}

/// Classifies a whole-call failure.
pub fn classify(e: &SfError) -> Class {
    match e {
        SfError::RequestLimitExceeded { kind: LimitKind::Daily, message } => Class::Stop(Stop::DailyLimit(message.clone())),
        SfError::NeedsReauth(m) | SfError::NotConnected(m) => Class::Stop(Stop::NotConnected(m.clone())),
        SfError::RequestLimitExceeded { message, .. } => Class::Transient(error("REQUEST_LIMIT_EXCEEDED", message.clone())),
        SfError::Other { code, message, .. } => Class::Permanent(error(code, message.clone())),
        e if e.is_transient() || e.is_internal() || matches!(e, SfError::InvalidSession(_)) => {
            Class::Transient(error("TRANSIENT", e.to_string()))
        }
        e => {
            let mut err = error(code_of(e), e.to_string());
            if let Some(hint) = e.admin_hint() {
                err.message = format!("{} — {hint}", err.message);
            }
            if let SfError::InvalidField { fields, .. } = e {
                err.fields = fields.clone();
            }
            Class::Permanent(err)
        }
    }
}

fn code_of(e: &SfError) -> &'static str {
    match e {
        SfError::InvalidField { .. } => "INVALID_FIELD",
        SfError::InsufficientAccess(_) => "INSUFFICIENT_ACCESS",
        SfError::ApiDisabled(_) => "API_DISABLED",
        SfError::MalformedQuery(_) => "MALFORMED_QUERY",
        _ => "ERROR",
    }
}

/// An [`EventError`] from a code and message.
pub fn error(code: &str, message: String) -> EventError {
    EventError { code: code.into(), message, fields: Vec::new() }
}
