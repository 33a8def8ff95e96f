//! sObject Collections on `composite/sobjects`: create (`POST`), update (`PATCH`), delete
//! (`DELETE ?ids=`), retrieve (`GET …/{Object}?ids=&fields=` and `POST …/{Object}` with a body)
//! and upsert by external id (`PATCH …/{Object}/{ExtField}`).
//!
//! Writes go through the org's two-phase store ([`Org::prepare_insert`], [`Org::prepare_update`],
//! [`Org::commit`]). With `allOrNone` every record is validated before anything is written, so
//! one failure leaves the org untouched and the other rows answer
//! `ALL_OR_NONE_OPERATION_ROLLED_BACK`; without it each record is validated and written in turn.
//! Results come back in input order: `{"id","success":true,"errors":[]}` or
//! `{"success":false,"errors":[{"statusCode","message","fields"}]}`.

use crate::error::ApiError;
use crate::faults;
use crate::ids;
use crate::org::{Org, WriteCtx};
use crate::rest::{json_bytes, json_resp, render_full};
use crate::server::Req;
use crate::sim::{Core, World};
use crate::store::{Prepared, value_text};
use axum::body::Body;
use axum::http::Response;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// Most records (or ids) in one create, update, upsert or delete.
pub const MAX_RECORDS: usize = 200;
/// Most ids in one retrieve.
pub const MAX_RETRIEVE_IDS: usize = 2000;
/// Most chunks (runs of one object type) in one create or update.
pub const MAX_CHUNKS: usize = 10;

type Row = Result<(String, Prepared), ApiError>;
/// The `records` of a request body, each a JSON object.
type Records<'a> = Vec<&'a Map<String, Value>>;

fn row_error(e: &ApiError) -> Value {
    json!({"statusCode": e.code, "message": e.message, "fields": e.fields})
}

fn failure(e: &ApiError) -> Value {
    json!({"success": false, "errors": [row_error(e)]})
}

fn rolled_back() -> ApiError {
    ApiError::bad(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using AllOrNone header",
    )
}

fn too_many(limit: usize) -> ApiError {
    ApiError::bad("EXCEEDED_ID_LIMIT", format!("record limit reached. cannot submit more than {limit} records into this call"))
}

/// A key of a JSON object, matched case-insensitively.
fn get_ci<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// `{allOrNone, records}` of a create, update or upsert body; records must be objects.
fn parse_body(body: &Value) -> Result<(bool, Records<'_>), ApiError> {
    let all_or_none = body.get("allOrNone").and_then(Value::as_bool).unwrap_or(false);
    let records = body.get("records").and_then(Value::as_array).ok_or_else(|| ApiError::bad("JSON_PARSER_ERROR", "records is required"))?;
    if records.len() > MAX_RECORDS {
        return Err(too_many(MAX_RECORDS));
    }
    let maps = records
        .iter()
        .map(|r| r.as_object().ok_or_else(|| ApiError::bad("JSON_PARSER_ERROR", "Each record must be a JSON object")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((all_or_none, maps))
}

/// `attributes.type` of a record.
fn record_type(m: &Map<String, Value>) -> Option<&str> {
    m.get("attributes").and_then(|a| a.get("type")).and_then(Value::as_str).filter(|t| !t.is_empty())
}

/// Refuses more than [`MAX_CHUNKS`] runs of one type ({a, a, c, a} is three chunks).
fn check_chunks(records: &[&Map<String, Value>]) -> Result<(), ApiError> {
    let mut chunks = 0;
    let mut last: Option<String> = None;
    for r in records {
        let t = record_type(r).map(str::to_ascii_lowercase);
        if chunks == 0 || t != last {
            chunks += 1;
            last = t;
        }
    }
    if chunks > MAX_CHUNKS {
        return Err(ApiError::bad(
            "INVALID_OPERATION",
            "Cannot have more than 10 chunks in a single operation. Please rearrange the data to reduce chunking.",
        ));
    }
    Ok(())
}

/// The canonical object name of a record's `attributes.type`.
fn resolve_type(org: &Org, m: &Map<String, Value>) -> Result<String, ApiError> {
    let ty = record_type(m).ok_or_else(|| ApiError::bad("INVALID_TYPE", "Must send a concrete entity type."))?;
    org.object(ty).map(|o| o.name.clone()).map_err(|_| ApiError::bad("INVALID_TYPE", format!("sObject type '{ty}' is not supported.")))
}

fn plan_create(org: &Org, m: &Map<String, Value>) -> Row {
    let obj = resolve_type(org, m)?;
    if get_ci(m, "Id").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call").with_fields(vec!["Id".into()]));
    }
    let p = org.prepare_insert(&obj, m)?;
    Ok((obj, p))
}

/// A live record id of `obj` from a request value, or the Salesforce error for it.
fn live_id(org: &Org, obj: &str, raw: &str) -> Result<String, ApiError> {
    let (o, t) = org.table(obj)?;
    let id = ids::normalize(raw).filter(|i| i.starts_with(&o.key_prefix)).ok_or_else(|| {
        ApiError::bad("MALFORMED_ID", format!("{} ID: id value of incorrect type: {raw}", o.name)).with_fields(vec!["Id".into()])
    })?;
    match t.records.get(&id) {
        Some(r) if r.deleted => Err(ApiError::bad("ENTITY_IS_DELETED", "entity is deleted")),
        Some(_) => Ok(id),
        None => Err(ApiError::bad("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")),
    }
}

fn plan_update(org: &Org, m: &Map<String, Value>) -> Row {
    let obj = resolve_type(org, m)?;
    let raw = get_ci(m, "Id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad("MISSING_ARGUMENT", "Id not specified in an update call"))?;
    let id = live_id(org, &obj, raw)?;
    let p = org.prepare_update(&obj, &id, m)?;
    Ok((obj, p))
}

/// Runs planned writes with the all-or-none rule and renders the results in order.
fn run_writes<'r>(
    core: &Core,
    c: &crate::rest::Call,
    all_or_none: bool,
    records: &[&'r Map<String, Value>],
    plan: impl Fn(&Org, &'r Map<String, Value>) -> Row,
    with_created: bool,
) -> Vec<u8> {
    let mut w = core.lock();
    let World { orgs, rng, .. } = &mut *w;
    let org = &mut orgs[c.org];
    let lock_rate = org.faults.lock_row_rate;
    let ctx = WriteCtx { now: core.clock.now(), by: &c.user, ids: &core.ids };
    let planned = |org: &Org, rng: &mut StdRng, m| -> Row {
        let row = plan(org, m)?;
        if faults::roll(rng, lock_rate) {
            return Err(faults::lock_row_error());
        }
        Ok(row)
    };
    let commit = |org: &mut Org, row: Row| -> Value {
        match row.and_then(|(obj, p)| org.commit(&obj, p, &ctx)) {
            Ok((id, created)) if with_created => json!({"id": id, "success": true, "errors": [], "created": created}),
            Ok((id, _)) => json!({"id": id, "success": true, "errors": []}),
            Err(e) => failure(&e),
        }
    };
    let out: Vec<Value> = if all_or_none {
        let rows: Vec<Row> = records.iter().map(|m| planned(org, rng, m)).collect();
        if rows.iter().any(Result::is_err) {
            rows.iter().map(|r| failure(r.as_ref().err().unwrap_or(&rolled_back()))).collect()
        } else {
            rows.into_iter().map(|r| commit(org, r)).collect()
        }
    } else {
        records
            .iter()
            .map(|m| {
                let row = planned(org, rng, m);
                commit(org, row)
            })
            .collect()
    };
    drop(w);
    core.outbound_wake.notify_one();
    serde_json::to_vec(&out).unwrap_or_default()
}

/// `POST composite/sobjects`: creates up to 200 records of up to 10 chunks of types.
pub fn create(core: &Core, c: &crate::rest::Call, body: &Value) -> Result<Response<Body>, ApiError> {
    let (all_or_none, records) = parse_body(body)?;
    check_chunks(&records)?;
    Ok(json_bytes(200, run_writes(core, c, all_or_none, &records, plan_create, false)))
}

/// `PATCH composite/sobjects`: updates up to 200 records; each needs `id` and `attributes.type`.
pub fn update(core: &Core, c: &crate::rest::Call, body: &Value) -> Result<Response<Body>, ApiError> {
    let (all_or_none, records) = parse_body(body)?;
    check_chunks(&records)?;
    Ok(json_bytes(200, run_writes(core, c, all_or_none, &records, plan_update, false)))
}

/// `PATCH composite/sobjects/{Object}/{ExtField}`: upserts up to 200 records of one type by an
/// external id (or `Id`). The same key twice fails both rows with `DUPLICATE_VALUE`; a key
/// matching several records gives `DUPLICATE_EXTERNAL_ID`.
pub fn upsert(core: &Core, c: &crate::rest::Call, obj: &str, field: &str, body: &Value) -> Result<Response<Body>, ApiError> {
    let (all_or_none, records) = parse_body(body)?;
    let (objname, fname) = {
        let w = core.lock();
        let (o, _) = w.orgs[c.org].table(obj)?;
        let f = o.field(field).filter(|f| f.external_id || f.name == "Id").ok_or_else(|| {
            ApiError::bad("INVALID_FIELD", format!("Field name provided, {field} is not an External ID or indexed field for {}", o.name))
        })?;
        (o.name.clone(), f.name.clone())
    };
    let key_of = |m: &Map<String, Value>| get_ci(m, &fname).and_then(value_text).filter(|s| !s.is_empty());
    let mut counts: HashMap<String, usize> = HashMap::new();
    for k in records.iter().filter_map(|m| key_of(m)) {
        *counts.entry(k.to_lowercase()).or_default() += 1;
    }
    let plan = |org: &Org, m: &Map<String, Value>| -> Row {
        if let Some(ty) = record_type(m)
            && !ty.eq_ignore_ascii_case(&objname)
        {
            return Err(ApiError::bad("INVALID_TYPE", format!("Records must all be of type {objname}: {ty}")));
        }
        let Some(key) = key_of(m) else {
            return Err(ApiError::bad("MISSING_ARGUMENT", format!("{fname} not specified")).with_fields(vec![fname.clone()]));
        };
        if counts.get(&key.to_lowercase()).copied().unwrap_or(0) > 1 {
            return Err(
                ApiError::bad("DUPLICATE_VALUE", format!("Duplicate external id specified: {key}")).with_fields(vec![fname.clone()])
            );
        }
        let (o, t) = org.table(&objname)?;
        let p = match t.find_ext(o, &fname, &key).as_slice() {
            [] if fname == "Id" => return Err(ApiError::bad("INVALID_ID_FIELD", format!("invalid record id: {key}"))),
            [] => org.prepare_insert(&objname, m)?,
            [one] => org.prepare_update(&objname, one, m)?,
            many => {
                return Err(ApiError::bad(
                    "DUPLICATE_EXTERNAL_ID",
                    format!("{fname}: more than one record found for external id field: {}", many.join(", ")),
                )
                .with_fields(vec![fname.clone()]));
            }
        };
        Ok((objname.clone(), p))
    };
    Ok(json_bytes(200, run_writes(core, c, all_or_none, &records, plan, true)))
}

/// Splits a comma-separated parameter into trimmed, non-empty parts.
fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect()
}

/// A record id to delete, checked: well formed, of a known, deletable object, live.
fn plan_delete(org: &Org, raw: &str, seen: &mut HashSet<String>) -> Result<(String, String), ApiError> {
    let id = ids::normalize(raw).ok_or_else(|| ApiError::bad("MALFORMED_ID", format!("malformed id {raw}")))?;
    let obj = org.object_for_id(&id).ok_or_else(|| ApiError::bad("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"))?;
    if obj.name == "User" {
        return Err(ApiError::bad("INVALID_CROSS_REFERENCE_KEY", "Users cannot be deleted; deactivate them instead"));
    }
    let name = obj.name.clone();
    let id = live_id(org, &name, &id)?;
    if !seen.insert(id.clone()) {
        return Err(ApiError::bad("ENTITY_IS_DELETED", "entity is deleted"));
    }
    Ok((name, id))
}

/// `DELETE composite/sobjects?ids=a,b&allOrNone=false`: deletes up to 200 records of any types.
pub fn delete(core: &Core, c: &crate::rest::Call, r: &Req) -> Result<Response<Body>, ApiError> {
    let raw = r.param("ids").ok_or_else(|| ApiError::bad("MISSING_ARGUMENT", "ids parameter is required"))?;
    let list = split_list(&raw);
    if list.is_empty() {
        return Err(ApiError::bad("MISSING_ARGUMENT", "ids parameter is required"));
    }
    if list.len() > MAX_RECORDS {
        return Err(too_many(MAX_RECORDS));
    }
    let all_or_none = r.param("allOrNone").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut w = core.lock();
    let World { orgs, rng, .. } = &mut *w;
    let org = &mut orgs[c.org];
    let lock_rate = org.faults.lock_row_rate;
    let ctx = WriteCtx { now: core.clock.now(), by: &c.user, ids: &core.ids };
    let mut seen = HashSet::new();
    let mut planned = |org: &Org, raw: &str| {
        let row = plan_delete(org, raw, &mut seen)?;
        if faults::roll(rng, lock_rate) {
            return Err(faults::lock_row_error());
        }
        Ok(row)
    };
    let commit =
        |org: &mut Org, row: Result<(String, String), ApiError>| match row.and_then(|(obj, id)| org.delete(&obj, &id, &ctx).map(|()| id)) {
            Ok(id) => json!({"id": id, "success": true, "errors": []}),
            Err(e) => failure(&e),
        };
    let out: Vec<Value> = if all_or_none {
        let rows: Vec<_> = list.iter().map(|raw| planned(org, raw)).collect();
        if rows.iter().any(Result::is_err) {
            rows.iter().map(|r| failure(r.as_ref().err().unwrap_or(&rolled_back()))).collect()
        } else {
            rows.into_iter().map(|r| commit(org, r)).collect()
        }
    } else {
        list.iter()
            .map(|raw| {
                let row = planned(org, raw);
                commit(org, row)
            })
            .collect()
    };
    Ok(json_resp(200, &Value::Array(out)))
}

/// `ids` and `fields` of a retrieve: query parameters (`GET`) or a JSON body (`POST`).
fn retrieve_args(r: &Req, from_body: bool) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let missing = |what: &str| ApiError::bad("MISSING_ARGUMENT", format!("{what} parameter is required"));
    let (ids, fields) = if from_body {
        let body: Value = serde_json::from_slice(&r.body)
            .map_err(|e| ApiError::bad("JSON_PARSER_ERROR", format!("The request body is not valid JSON: {e}")))?;
        let list = |k: &str| -> Option<Vec<String>> {
            match body.get(k)? {
                Value::Array(a) => Some(a.iter().filter_map(Value::as_str).flat_map(split_list).collect()),
                Value::String(s) => Some(split_list(s)),
                _ => None,
            }
        };
        (list("ids"), list("fields"))
    } else {
        (r.param("ids").map(|s| split_list(&s)), r.param("fields").map(|s| split_list(&s)))
    };
    let ids = ids.filter(|l| !l.is_empty()).ok_or_else(|| missing("ids"))?;
    let fields = fields.filter(|l| !l.is_empty()).ok_or_else(|| missing("fields"))?;
    Ok((ids, fields))
}

/// `GET composite/sobjects/{Object}?ids=&fields=` or `POST` with `{ids, fields}`: up to 2000
/// records of one type in the order asked, `null` for ids not found (or of another type).
pub fn retrieve(core: &Core, c: &crate::rest::Call, obj: &str, r: &Req, from_body: bool) -> Result<Response<Body>, ApiError> {
    let (list, fields) = retrieve_args(r, from_body)?;
    if list.len() > MAX_RETRIEVE_IDS {
        return Err(too_many(MAX_RETRIEVE_IDS));
    }
    let w = core.lock();
    let (o, t) = w.orgs[c.org].table(obj)?;
    if let Some(bad) = fields.iter().find(|n| o.field(n).is_none()) {
        return Err(ApiError::bad(
            "INVALID_FIELD",
            format!(
                "No such column '{bad}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.",
                o.name
            ),
        ));
    }
    let out: Vec<Value> = list
        .iter()
        .map(|raw| {
            ids::normalize(raw)
                .filter(|id| id.starts_with(&o.key_prefix))
                .and_then(|id| t.get(&id))
                .map_or(Value::Null, |rec| render_full(o, rec, &c.version, Some(&fields)))
        })
        .collect();
    Ok(json_resp(200, &Value::Array(out)))
}
