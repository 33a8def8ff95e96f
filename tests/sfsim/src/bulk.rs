//! Bulk API 2.0: ingest jobs (create, upload CSV, close or abort, state machine with a processing
//! delay on the sim clock, result CSVs) and query jobs (results paged by locator).

use crate::clock::fmt_rest;
use crate::error::ApiError;
use crate::ids::{self, prefix};
use crate::org::{Org, WriteCtx};
use crate::rest::{Call, json_resp};
use crate::server::Req;
use crate::sim::Core;
use crate::soql;
use crate::store::value_text;
use axum::body::Body;
use axum::http::{Method, Response};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// A Bulk API 2.0 job.
#[derive(Debug, Clone)]
pub struct Job {
    /// `750…` id.
    pub id: String,
    /// Org index.
    pub org: usize,
    /// Query job (else ingest).
    pub is_query: bool,
    /// Object.
    pub object: String,
    /// insert, update, upsert, delete, hardDelete, query, queryAll.
    pub operation: String,
    /// External id field for upsert.
    pub external_id: Option<String>,
    /// Open, UploadComplete, InProgress, JobComplete, Failed, Aborted.
    pub state: String,
    /// Creator.
    pub created_by: String,
    /// Created (sim time).
    pub created: OffsetDateTime,
    /// Last state change.
    pub modstamp: OffsetDateTime,
    /// When UploadComplete was set.
    pub closed_at: Option<OffsetDateTime>,
    /// Uploaded CSV.
    pub data: Vec<u8>,
    /// Column delimiter name.
    pub delimiter: String,
    /// Line ending name.
    pub line_ending: String,
    /// API version.
    pub version: String,
    /// Query text.
    pub query: Option<String>,
    /// Result CSVs.
    pub successful: String,
    /// Failed rows CSV.
    pub failed: String,
    /// Unprocessed rows CSV.
    pub unprocessed: String,
    /// Query results: header then rows.
    pub rows: Vec<Vec<String>>,
    /// Processed count.
    pub processed: u64,
    /// Failed count.
    pub failed_n: u64,
    /// Error message of a failed job.
    pub error: Option<String>,
}

fn delim(name: &str) -> u8 {
    match name {
        "TAB" => b'\t',
        "PIPE" => b'|',
        "SEMICOLON" => b';',
        "CARET" => b'^',
        "BACKQUOTE" => b'`',
        _ => b',',
    }
}

fn job_json(j: &Job) -> Value {
    let mut v = json!({
        "id": j.id, "operation": j.operation, "object": j.object, "createdById": j.created_by,
        "createdDate": fmt_rest(j.created), "systemModstamp": fmt_rest(j.modstamp), "state": j.state,
        "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": j.version.parse::<f64>().unwrap_or(64.0),
        "lineEnding": j.line_ending, "columnDelimiter": j.delimiter,
        "jobType": if j.is_query { "V2Query" } else { "V2Ingest" },
        "numberRecordsProcessed": j.processed, "retries": 0, "totalProcessingTime": 0,
    });
    if j.is_query {
        v["query"] = json!(j.query);
    } else {
        v["externalIdFieldName"] = json!(j.external_id);
        v["contentUrl"] = json!(format!("services/data/v{}/jobs/ingest/{}/batches", j.version, j.id));
        v["numberRecordsFailed"] = json!(j.failed_n);
        v["apiActiveProcessingTime"] = json!(0);
        v["apexProcessingTime"] = json!(0);
    }
    if let Some(e) = &j.error {
        v["errorMessage"] = json!(e);
    }
    v
}

fn csv_resp(body: String, extra: &[(&str, String)]) -> Response<Body> {
    let mut b = Response::builder().status(200).header("content-type", "text/csv");
    for (k, v) in extra {
        b = b.header(*k, v.as_str());
    }
    b.body(Body::from(body)).unwrap_or_default()
}

/// Moves a job along its state machine according to the sim clock, processing it when due.
fn advance(core: &Core, org: &mut Org, j: &mut Job) {
    let Some(closed) = j.closed_at else { return };
    let now = core.clock.now();
    let delay = time::Duration::milliseconds(core.config.bulk_delay_ms as i64);
    if j.state == "UploadComplete" && now >= closed + delay / 2 {
        j.state = "InProgress".into();
        j.modstamp = now;
    }
    if j.state == "InProgress" && now >= closed + delay {
        if j.is_query {
            run_query(core, org, j);
        } else {
            run_ingest(core, org, j);
        }
        j.modstamp = now;
    }
}

fn run_query(core: &Core, org: &Org, j: &mut Job) {
    let res = soql::parse(j.query.as_deref().unwrap_or("")).and_then(|q| soql::compile(org, &q, core.clock.now()));
    match res {
        Err(e) => {
            j.state = "Failed".into();
            j.error = Some(format!("{}: {}", e.code, e.message));
        }
        Ok(c) => {
            let mut rows = vec![c.labels()];
            for rec in c.run(org, j.operation == "queryAll") {
                rows.push(c.flat(org, rec).into_iter().map(|v| v.and_then(value_text).unwrap_or_default()).collect());
            }
            j.processed = rows.len() as u64 - 1;
            j.rows = rows;
            j.state = "JobComplete".into();
        }
    }
}

fn write_csv(header: &[String], rows: &[Vec<String>], d: u8) -> String {
    let mut w = csv::WriterBuilder::new().delimiter(d).from_writer(Vec::new());
    let _ = w.write_record(header);
    for r in rows {
        let _ = w.write_record(r);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn run_ingest(core: &Core, org: &mut Org, j: &mut Job) {
    let d = delim(&j.delimiter);
    let mut rdr = csv::ReaderBuilder::new().delimiter(d).from_reader(j.data.as_slice());
    let header: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(e) => {
            j.state = "Failed".into();
            j.error = Some(format!("InvalidBatch : {e}"));
            return;
        }
    };
    let Ok(obj) = org.object(&j.object).cloned() else {
        j.state = "Failed".into();
        j.error = Some(format!("InvalidJob : sObject type '{}' is not supported", j.object));
        return;
    };
    if let Some(bad) = header.iter().find(|h| obj.field(h).is_none()) {
        j.state = "Failed".into();
        j.error = Some(format!("InvalidBatch : Field name not found : {bad}"));
        return;
    }
    let ext = j.external_id.clone().unwrap_or_else(|| "Id".into());
    let mut ok_rows = Vec::new();
    let mut bad_rows = Vec::new();
    let by = j.created_by.clone();
    let ctx = WriteCtx { now: core.clock.now(), by: &by, ids: &core.ids };
    for rec in rdr.records() {
        let Ok(rec) = rec else { continue };
        let vals: Vec<String> = rec.iter().map(str::to_string).collect();
        let mut m = Map::new();
        for (h, v) in header.iter().zip(&vals) {
            if !v.is_empty() {
                m.insert(h.clone(), Value::String(v.clone()));
            }
        }
        let get = |k: &str| header.iter().position(|h| h.eq_ignore_ascii_case(k)).and_then(|i| vals.get(i)).cloned().unwrap_or_default();
        let result: Result<(String, bool), ApiError> = (|| match j.operation.as_str() {
            "insert" => {
                let p = org.prepare_insert(&obj.name, &m)?;
                org.commit(&obj.name, p, &ctx)
            }
            "update" => {
                let p = org.prepare_update(&obj.name, &get("Id"), &m)?;
                org.commit(&obj.name, p, &ctx)
            }
            "delete" | "hardDelete" => {
                let id = ids::normalize(&get("Id")).ok_or_else(|| ApiError::bad("MALFORMED_ID", "malformed id"))?;
                org.delete(&obj.name, &id, &ctx)?;
                Ok((id, false))
            }
            _ => {
                let key = get(&ext);
                if key.is_empty() {
                    return Err(ApiError::bad("MISSING_ARGUMENT", format!("{ext} not specified")));
                }
                let (o, t) = org.table(&obj.name)?;
                let found = t.find_ext(o, &ext, &key);
                let p = match found.as_slice() {
                    [] => org.prepare_insert(&obj.name, &m)?,
                    [one] => org.prepare_update(&obj.name, one, &m)?,
                    many => {
                        return Err(ApiError::bad(
                            "DUPLICATE_EXTERNAL_ID",
                            format!("{ext}: more than one record found for external id field: [{}]", many.join(", ")),
                        ));
                    }
                };
                org.commit(&obj.name, p, &ctx)
            }
        })();
        match result {
            Ok((id, created)) => {
                let mut row = vec![id, created.to_string()];
                row.extend(vals);
                ok_rows.push(row);
            }
            Err(e) => {
                let mut row = vec![String::new(), format!("{}:{}", e.code, e.message)];
                row.extend(vals);
                bad_rows.push(row);
            }
        }
    }
    let mut h_ok = vec!["sf__Id".to_string(), "sf__Created".into()];
    h_ok.extend(header.iter().cloned());
    let mut h_bad = vec!["sf__Id".to_string(), "sf__Error".into()];
    h_bad.extend(header.iter().cloned());
    j.processed = (ok_rows.len() + bad_rows.len()) as u64;
    j.failed_n = bad_rows.len() as u64;
    j.successful = write_csv(&h_ok, &ok_rows, d);
    j.failed = write_csv(&h_bad, &bad_rows, d);
    j.unprocessed = write_csv(&header, &[], d);
    j.state = "JobComplete".into();
}

fn not_found() -> ApiError {
    ApiError::new(404, "NOT_FOUND", "The requested resource does not exist")
}

/// Routes `jobs/…` (segments after `jobs`).
pub fn handle(core: &Core, c: &Call, r: &Req, segs: &[&str]) -> Result<Response<Body>, ApiError> {
    let m = &r.method;
    match segs {
        ["ingest"] | ["query"] if *m == Method::POST => create(core, c, r, segs[0] == "query"),
        ["ingest"] | ["query"] if *m == Method::GET => {
            let w = core.lock();
            let is_q = segs[0] == "query";
            let recs: Vec<Value> = w.jobs.values().filter(|j| j.org == c.org && j.is_query == is_q).map(job_json).collect();
            Ok(json_resp(200, &json!({"done": true, "records": recs, "nextRecordsUrl": null})))
        }
        [kind, id, rest @ ..] => {
            let is_q = *kind == "query";
            let mut w = core.lock();
            let mut job = w.jobs.get(*id).filter(|j| j.org == c.org && j.is_query == is_q).cloned().ok_or_else(not_found)?;
            advance(core, &mut w.orgs[c.org], &mut job);
            let resp = job_op(core, &mut job, r, m, rest);
            if rest.is_empty() && *m == Method::DELETE && resp.is_ok() {
                w.jobs.remove(*id);
            } else {
                w.jobs.insert(job.id.clone(), job);
            }
            drop(w);
            core.outbound_wake.notify_one();
            resp
        }
        _ => Err(not_found()),
    }
}

fn job_op(core: &Core, j: &mut Job, r: &Req, m: &Method, rest: &[&str]) -> Result<Response<Body>, ApiError> {
    match rest {
        [] if *m == Method::GET => Ok(json_resp(200, &job_json(j))),
        [] if *m == Method::DELETE => Ok(Response::builder().status(204).body(Body::empty()).unwrap_or_default()),
        [] if *m == Method::PATCH => {
            let v: Value = serde_json::from_slice(&r.body).map_err(|e| ApiError::bad("JSON_PARSER_ERROR", e.to_string()))?;
            let to = v.get("state").and_then(Value::as_str).unwrap_or("");
            let now = core.clock.now();
            match (j.state.as_str(), to) {
                ("Open", "UploadComplete") if !j.is_query => {
                    j.state = "UploadComplete".into();
                    j.closed_at = Some(now);
                }
                ("Open" | "UploadComplete" | "InProgress", "Aborted") => {
                    j.state = "Aborted".into();
                    if !j.is_query {
                        let d = delim(&j.delimiter);
                        let mut rdr = csv::ReaderBuilder::new().delimiter(d).has_headers(false).from_reader(j.data.as_slice());
                        let rows: Vec<Vec<String>> = rdr.records().flatten().map(|r| r.iter().map(str::to_string).collect()).collect();
                        if let Some((h, rest)) = rows.split_first() {
                            j.unprocessed = write_csv(h, rest, d);
                        }
                    }
                }
                (from, to) => {
                    return Err(ApiError::bad("INVALIDJOBSTATE", format!("Invalid job state transition from {from} to {to}")));
                }
            }
            j.modstamp = now;
            Ok(json_resp(200, &job_json(j)))
        }
        ["batches"] if *m == Method::PUT => {
            if j.state != "Open" {
                return Err(ApiError::new(409, "INVALIDJOBSTATE", format!("Job {} is not in state Open", j.id)));
            }
            if j.data.is_empty() {
                j.data = r.body.to_vec();
            } else {
                // further uploads: drop the header line
                let body = r.body.as_ref();
                let skip = body.iter().position(|&b| b == b'\n').map(|p| p + 1).unwrap_or(body.len());
                if !j.data.ends_with(b"\n") {
                    j.data.push(b'\n');
                }
                j.data.extend_from_slice(&body[skip..]);
            }
            Ok(Response::builder().status(201).body(Body::empty()).unwrap_or_default())
        }
        [which @ ("successfulResults" | "failedResults" | "unprocessedrecords")] if *m == Method::GET => {
            if *which != "unprocessedrecords" && j.state != "JobComplete" {
                return Err(ApiError::bad("INVALIDJOBSTATE", "Job is not complete"));
            }
            Ok(csv_resp(
                match *which {
                    "successfulResults" => j.successful.clone(),
                    "failedResults" => j.failed.clone(),
                    _ => j.unprocessed.clone(),
                },
                &[],
            ))
        }
        ["results"] if *m == Method::GET && j.is_query => {
            if j.state != "JobComplete" {
                return Err(ApiError::bad("INVALIDJOBSTATE", "Job is not complete"));
            }
            let off = match r.param("locator").filter(|l| !l.is_empty() && l != "null") {
                Some(l) => ids::unbase62(&l).ok_or_else(|| ApiError::bad("INVALID_LOCATOR", "invalid locator"))? as usize,
                None => 0,
            };
            let max = r.param("maxRecords").and_then(|m| m.parse::<usize>().ok()).unwrap_or(50_000).max(1);
            let data = &j.rows[1.min(j.rows.len())..];
            let end = (off + max).min(data.len());
            let page = data.get(off..end).unwrap_or(&[]);
            let header = j.rows.first().cloned().unwrap_or_default();
            let locator = if end < data.len() { ids::base62(end as u64) } else { "null".into() };
            Ok(csv_resp(
                write_csv(&header, page, delim(&j.delimiter)),
                &[("sforce-locator", locator), ("sforce-numberofrecords", page.len().to_string())],
            ))
        }
        _ => Err(not_found()),
    }
}

fn create(core: &Core, c: &Call, r: &Req, is_query: bool) -> Result<Response<Body>, ApiError> {
    let v: Value = serde_json::from_slice(&r.body).map_err(|e| ApiError::bad("JSON_PARSER_ERROR", e.to_string()))?;
    let g = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let operation = g("operation").unwrap_or_else(|| if is_query { "query".into() } else { String::new() });
    let now = core.clock.now();
    let mut w = core.lock();
    let org = &w.orgs[c.org];
    let (object, query) = if is_query {
        if !matches!(operation.as_str(), "query" | "queryAll") {
            return Err(ApiError::bad("INVALIDJOB", format!("Invalid operation: {operation}")));
        }
        let q = g("query").ok_or_else(|| ApiError::bad("INVALIDJOB", "query is required"))?;
        let compiled = soql::compile(org, &soql::parse(&q)?, now)?;
        (compiled.object, Some(q))
    } else {
        if !matches!(operation.as_str(), "insert" | "update" | "upsert" | "delete" | "hardDelete") {
            return Err(ApiError::bad("INVALIDJOB", format!("Invalid operation: {operation}")));
        }
        let o = g("object").ok_or_else(|| ApiError::bad("INVALIDJOB", "object is required"))?;
        let obj = org.object(&o).map_err(|_| ApiError::bad("INVALIDJOB", format!("sObject type '{o}' is not supported")))?;
        if operation == "upsert" {
            let ext = g("externalIdFieldName").ok_or_else(|| ApiError::bad("INVALIDJOB", "External ID was blank for upsert"))?;
            if obj.field(&ext).is_none_or(|f| !f.external_id && f.name != "Id") {
                return Err(ApiError::bad(
                    "INVALIDJOB",
                    format!("Field name provided, {ext} is not an External ID or indexed field for {}", obj.name),
                ));
            }
        }
        (obj.name.clone(), None)
    };
    let id = core.ids.next(prefix::BULK_JOB, org.pod);
    let job = Job {
        id: id.clone(),
        org: c.org,
        is_query,
        object,
        operation,
        external_id: g("externalIdFieldName"),
        state: if is_query { "UploadComplete".into() } else { "Open".into() },
        created_by: c.user.clone(),
        created: now,
        modstamp: now,
        closed_at: is_query.then_some(now),
        data: Vec::new(),
        delimiter: g("columnDelimiter").unwrap_or_else(|| "COMMA".into()),
        line_ending: g("lineEnding").unwrap_or_else(|| "LF".into()),
        version: c.version.clone(),
        query,
        successful: String::new(),
        failed: String::new(),
        unprocessed: String::new(),
        rows: Vec::new(),
        processed: 0,
        failed_n: 0,
        error: None,
    };
    let body = job_json(&job);
    w.jobs.insert(id, job);
    Ok(json_resp(200, &body))
}
