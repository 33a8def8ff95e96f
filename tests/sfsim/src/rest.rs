//! REST API `/services/data/vXX.X/…`: versions, limits, query and queryAll with cursors,
//! describe, sObject CRUD and upsert, replication (sObject Collections live in `collections`), and the shared
//! pipeline (auth, faults, counters, `Sforce-Limit-Info`) that Bulk API 2.0 also runs through.

use crate::collections;
use crate::error::ApiError;
use crate::faults::{self, Decision};
use crate::ids::{self, prefix};
use crate::org::WriteCtx;
use crate::server::{DropConnection, Req};
use crate::sim::{Core, Cursor, World};
use crate::soql;
use crate::store::Prepared;
use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use serde_json::{Map, Value, json};

const VERSIONS: [(&str, &str); 12] = [
    ("55.0", "Summer '22"),
    ("56.0", "Winter '23"),
    ("57.0", "Spring '23"),
    ("58.0", "Summer '23"),
    ("59.0", "Winter '24"),
    ("60.0", "Spring '24"),
    ("61.0", "Summer '24"),
    ("62.0", "Winter '25"),
    ("63.0", "Spring '25"),
    ("64.0", "Summer '25"),
    ("65.0", "Winter '26"),
    ("66.0", "Spring '26"),
];

/// A JSON response from bytes.
pub fn json_bytes(status: u16, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header("content-type", "application/json;charset=UTF-8")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// A JSON response from a value.
pub fn json_resp(status: u16, v: &Value) -> Response<Body> {
    json_bytes(status, serde_json::to_vec(v).unwrap_or_default())
}

fn err_resp(e: &ApiError) -> Response<Body> {
    json_resp(e.status, &e.body())
}

/// The authenticated context of an API call.
pub struct Call {
    /// Org index.
    pub org: usize,
    /// User id.
    pub user: String,
    /// Version string, e.g. `64.0`.
    pub version: String,
}

/// Classifies a call for the per-kind counters.
fn kind(method: &Method, segs: &[&str]) -> &'static str {
    match (method, segs) {
        (_, ["query"]) => "query",
        (_, ["query", _]) => "query_more",
        (_, ["queryAll"]) => "query_all",
        (_, ["queryAll", _]) => "query_more",
        (_, ["limits"]) => "limits",
        (_, ["sobjects"]) => "describe_global",
        (_, ["sobjects", _, "describe"]) => "describe",
        (_, ["sobjects", _, "updated"]) | (_, ["sobjects", _, "deleted"]) => "replication",
        (&Method::POST, ["sobjects", _]) => "sobject_create",
        (_, ["sobjects", _]) => "describe",
        (&Method::GET, ["sobjects", _, _]) | (&Method::GET, ["sobjects", _, _, _]) => "sobject_get",
        (&Method::PATCH, ["sobjects", _, _]) => "sobject_update",
        (&Method::DELETE, ["sobjects", ..]) => "sobject_delete",
        (&Method::PATCH, ["sobjects", _, _, _]) => "sobject_upsert",
        (&Method::PATCH, ["composite", "sobjects", _, _]) => "upsert_collection",
        (&Method::POST, ["composite", "sobjects"]) => "create_collection",
        (&Method::PATCH, ["composite", "sobjects"]) => "update_collection",
        (&Method::DELETE, ["composite", "sobjects"]) => "delete_collection",
        (_, ["composite", "sobjects", _]) => "retrieve_collection",
        (_, ["jobs", "ingest", ..]) => "bulk_ingest",
        (_, ["jobs", "query", ..]) => "bulk_query",
        _ => "other",
    }
}

/// Handles `/services/data…`.
pub async fn handle(core: &Core, r: Req) -> Response<Body> {
    let rest = r.path.trim_start_matches("/services/data").trim_start_matches('/').to_string();
    if rest.is_empty() {
        let list: Vec<Value> =
            VERSIONS.iter().map(|(v, l)| json!({"label": l, "url": format!("/services/data/v{v}"), "version": v})).collect();
        return json_resp(200, &Value::Array(list));
    }
    let mut segs: Vec<&str> = rest.split('/').collect();
    let ver = segs.remove(0);
    let version = match ver.strip_prefix('v').filter(|v| VERSIONS.iter().any(|(x, _)| x == v)) {
        Some(v) => v.to_string(),
        None => return err_resp(&ApiError::not_found()),
    };
    // auth
    let Some(tok) = r.bearer() else { return err_resp(&ApiError::invalid_session()) };
    let k = kind(&r.method, &segs);
    let (call, decision, latency) = {
        let mut w = core.lock();
        let Some(a) = w.tokens.get(&tok).cloned() else { return err_resp(&ApiError::invalid_session()) };
        let World { orgs, rng, .. } = &mut *w;
        let org = &mut orgs[a.org];
        let decision = if org.api_used >= org.api_limit() { Decision::Fail(faults::request_limit_error()) } else { org.faults.decide(rng) };
        org.count(k, true);
        (Call { org: a.org, user: a.user, version }, decision, org.faults.latency_ms)
    };
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let mut resp = match decision {
        Decision::Hang(d) => {
            tokio::time::sleep(d).await;
            let mut resp = Response::new(Body::empty());
            resp.extensions_mut().insert(DropConnection);
            return resp;
        }
        Decision::Fail(e) => err_resp(&e),
        Decision::Proceed => {
            let out = if segs.first() == Some(&"jobs") {
                crate::bulk::handle(core, &call, &r, &segs[1..])
            } else {
                route(core, &call, &r, &segs)
            };
            match out {
                Ok(resp) => resp,
                Err(e) => err_resp(&e),
            }
        }
    };
    let info = core.lock().orgs[call.org].limit_info();
    if let Ok(v) = info.parse() {
        resp.headers_mut().insert("sforce-limit-info", v);
    }
    resp
}

fn body_json(r: &Req) -> Result<Value, ApiError> {
    serde_json::from_slice(&r.body).map_err(|e| ApiError::bad("JSON_PARSER_ERROR", format!("The request body is not valid JSON: {e}")))
}

fn body_object(r: &Req) -> Result<Map<String, Value>, ApiError> {
    match body_json(r)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad("JSON_PARSER_ERROR", "Expected a JSON object")),
    }
}

fn route(core: &Core, c: &Call, r: &Req, segs: &[&str]) -> Result<Response<Body>, ApiError> {
    let m = &r.method;
    match segs {
        [] => Ok(json_resp(200, &resources(&c.version))),
        ["limits"] => limits(core, c),
        ["query"] | ["queryAll"] if *m == Method::GET => {
            let q = r.param("q").ok_or_else(|| ApiError::bad("MALFORMED_QUERY", "A query string has to be specified"))?;
            query(core, c, r, &q, segs[0] == "queryAll")
        }
        ["query", loc] | ["queryAll", loc] if *m == Method::GET => query_more(core, c, loc),
        ["sobjects"] if *m == Method::GET => describe_global(core, c),
        ["sobjects", obj] if *m == Method::GET => {
            let w = core.lock();
            let o = w.orgs[c.org].object(obj)?;
            Ok(json_resp(200, &json!({"objectDescribe": describe_short(o, &c.version), "recentItems": []})))
        }
        ["sobjects", obj] if *m == Method::POST => create(core, c, obj, &body_object(r)?),
        ["sobjects", obj, "describe"] if *m == Method::GET => describe(core, c, obj),
        ["sobjects", obj, "updated"] | ["sobjects", obj, "deleted"] if *m == Method::GET => {
            replication(core, c, r, obj, segs[2] == "deleted")
        }
        ["sobjects", obj, id] if *m == Method::GET => get_record(core, c, obj, "Id", id, r.param("fields")),
        ["sobjects", obj, id] if *m == Method::PATCH => {
            let input = body_object(r)?;
            write(core, c, obj, |org| org.prepare_update(obj, id, &input))?;
            Ok(Response::builder().status(204).body(Body::empty()).unwrap_or_default())
        }
        ["sobjects", obj, id] if *m == Method::DELETE => {
            let mut w = core.lock();
            lock_fault(&mut w, c.org)?;
            let ctx = WriteCtx { now: core.clock.now(), by: &c.user, ids: &core.ids };
            w.orgs[c.org].delete(obj, id, &ctx)?;
            Ok(Response::builder().status(204).body(Body::empty()).unwrap_or_default())
        }
        ["sobjects", obj, field, value] if *m == Method::GET => get_record(core, c, obj, field, value, r.param("fields")),
        ["sobjects", obj, field, value] if *m == Method::PATCH => upsert_one(core, c, obj, field, value, &body_object(r)?),
        ["composite", "sobjects"] if *m == Method::POST => collections::create(core, c, &body_json(r)?),
        ["composite", "sobjects"] if *m == Method::PATCH => collections::update(core, c, &body_json(r)?),
        ["composite", "sobjects"] if *m == Method::DELETE => collections::delete(core, c, r),
        ["composite", "sobjects", obj] if *m == Method::GET => collections::retrieve(core, c, obj, r, false),
        ["composite", "sobjects", obj] if *m == Method::POST => collections::retrieve(core, c, obj, r, true),
        ["composite", "sobjects", obj, field] if *m == Method::PATCH => collections::upsert(core, c, obj, field, &body_json(r)?),
        _ => Err(ApiError::not_found()),
    }
}

fn resources(v: &str) -> Value {
    let base = format!("/services/data/v{v}");
    json!({
        "sobjects": format!("{base}/sobjects"), "query": format!("{base}/query"), "queryAll": format!("{base}/queryAll"),
        "limits": format!("{base}/limits"), "composite": format!("{base}/composite"), "jobs": format!("{base}/jobs"),
    })
}

fn limits(core: &Core, c: &Call) -> Result<Response<Body>, ApiError> {
    let w = core.lock();
    let o = &w.orgs[c.org];
    let max = o.api_limit();
    let bulk = *o.calls.get("bulk_ingest").unwrap_or(&0) + *o.calls.get("bulk_query").unwrap_or(&0);
    Ok(json_resp(
        200,
        &json!({
            "DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(o.api_used)},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000u64.saturating_sub(bulk)},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DataStorageMB": {"Max": 1024, "Remaining": 1000},
            "FileStorageMB": {"Max": 1024, "Remaining": 1024},
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        }),
    ))
}

fn lock_fault(w: &mut World, org: usize) -> Result<(), ApiError> {
    let rate = w.orgs[org].faults.lock_row_rate;
    if faults::roll(&mut w.rng, rate) { Err(faults::lock_row_error()) } else { Ok(()) }
}

fn write(
    core: &Core,
    c: &Call,
    obj: &str,
    prep: impl FnOnce(&crate::org::Org) -> Result<Prepared, ApiError>,
) -> Result<(String, bool), ApiError> {
    let mut w = core.lock();
    lock_fault(&mut w, c.org)?;
    let p = prep(&w.orgs[c.org])?;
    let ctx = WriteCtx { now: core.clock.now(), by: &c.user, ids: &core.ids };
    let out = w.orgs[c.org].commit(obj, p, &ctx)?;
    drop(w);
    core.outbound_wake.notify_one();
    Ok(out)
}

fn create(core: &Core, c: &Call, obj: &str, input: &Map<String, Value>) -> Result<Response<Body>, ApiError> {
    let (id, _) = write(core, c, obj, |o| o.prepare_insert(obj, input))?;
    Ok(json_resp(201, &json!({"id": id, "success": true, "errors": []})))
}

pub(crate) fn render_full(o: &crate::schema::ObjectDef, rec: &crate::store::Record, version: &str, only: Option<&[String]>) -> Value {
    let mut m = Map::new();
    m.insert("attributes".into(), json!({"type": o.name, "url": format!("/services/data/v{version}/sobjects/{}/{}", o.name, rec.id)}));
    for f in &o.fields {
        if only.is_some_and(|l| !l.iter().any(|x| x.eq_ignore_ascii_case(&f.name))) {
            continue;
        }
        m.insert(f.name.clone(), rec.fields.get(&f.name).cloned().unwrap_or(Value::Null));
    }
    Value::Object(m)
}

fn get_record(core: &Core, c: &Call, obj: &str, field: &str, value: &str, fields: Option<String>) -> Result<Response<Body>, ApiError> {
    let w = core.lock();
    let (o, t) = w.orgs[c.org].table(obj)?;
    let ids = if field.eq_ignore_ascii_case("Id") {
        ids::normalize(value).filter(|i| t.get(i).is_some()).into_iter().collect()
    } else {
        if o.field(field).is_none_or(|f| !f.external_id) {
            return Err(ApiError::new(
                404,
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {field}"),
            ));
        }
        t.find_ext(o, field, value)
    };
    let only: Option<Vec<String>> = fields.map(|f| f.split(',').map(|s| s.trim().to_string()).collect());
    if let Some(l) = &only
        && let Some(bad) = l.iter().find(|n| o.field(n).is_none())
    {
        return Err(ApiError::bad("INVALID_FIELD", format!("No such column '{bad}' on sobject of type {}", o.name)));
    }
    match ids.as_slice() {
        [] => Err(ApiError::not_found()),
        [one] => {
            let rec = t.get(one).ok_or_else(ApiError::not_found)?;
            Ok(json_resp(200, &render_full(o, rec, &c.version, only.as_deref())))
        }
        many => Ok(json_resp(
            300,
            &json!(many.iter().map(|i| format!("/services/data/v{}/sobjects/{}/{i}", c.version, o.name)).collect::<Vec<_>>()),
        )),
    }
}

fn upsert_one(core: &Core, c: &Call, obj: &str, field: &str, value: &str, input: &Map<String, Value>) -> Result<Response<Body>, ApiError> {
    let mut w = core.lock();
    lock_fault(&mut w, c.org)?;
    let org = &w.orgs[c.org];
    let (o, t) = org.table(obj)?;
    let f = o.field(field).filter(|f| f.external_id || f.name == "Id").ok_or_else(|| {
        ApiError::new(404, "NOT_FOUND", format!("Provided external ID field does not exist or is not accessible: {field}"))
    })?;
    let fname = f.name.clone();
    let objname = o.name.clone();
    let matches = t.find_ext(o, &fname, value);
    let p = match matches.as_slice() {
        [] if fname == "Id" => return Err(ApiError::not_found()),
        [] => {
            let mut m = input.clone();
            m.insert(fname.clone(), Value::String(value.to_string()));
            org.prepare_insert(&objname, &m)?
        }
        [one] => org.prepare_update(&objname, one, input)?,
        many => {
            let urls: Vec<String> = many.iter().map(|i| format!("/services/data/v{}/sobjects/{objname}/{i}", c.version)).collect();
            return Ok(json_resp(300, &json!(urls)));
        }
    };
    let ctx = WriteCtx { now: core.clock.now(), by: &c.user, ids: &core.ids };
    let (id, created) = w.orgs[c.org].commit(&objname, p, &ctx)?;
    drop(w);
    core.outbound_wake.notify_one();
    Ok(json_resp(if created { 201 } else { 200 }, &json!({"id": id, "success": true, "errors": [], "created": created})))
}

fn query(core: &Core, c: &Call, r: &Req, q: &str, all: bool) -> Result<Response<Body>, ApiError> {
    let parsed = soql::parse(q)?;
    let now = core.clock.now();
    let batch = r
        .headers
        .get("sforce-query-options")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.split(',').find_map(|kv| kv.trim().strip_prefix("batchSize=")?.parse::<usize>().ok()));
    let mut w = core.lock();
    let rate = w.orgs[c.org].faults.query_timeout_rate;
    if faults::roll(&mut w.rng, rate) {
        return Err(faults::query_timeout_error());
    }
    let page = batch.map(|b| b.clamp(200, 2000)).unwrap_or(w.page_size);
    let org = &w.orgs[c.org];
    let cut = org.faults.cut_query_pages;
    let compiled = soql::compile(org, &parsed, now)?;
    let rows = compiled.run(org, all);
    let total = rows.len();
    if compiled.count_only {
        return Ok(json_resp(200, &json!({"totalSize": total, "done": true, "records": []})));
    }
    let mut rendered: Vec<Box<[u8]>> = Vec::with_capacity(total);
    let mut buf = Vec::with_capacity(256);
    for rec in &rows {
        buf.clear();
        compiled.render(org, rec, &c.version, &mut buf);
        rendered.push(buf.as_slice().into());
    }
    let done = total <= page;
    let mut cursor_id = None;
    if !done {
        let id = core.ids.next(prefix::QUERY_LOCATOR, org.pod);
        // expire cursors older than 15 minutes (sim time)
        w.cursors.retain(|_, cur| now - cur.created < time::Duration::minutes(15));
        cursor_id = Some(id);
    }
    let mut body = page_body(total, &rendered[..page.min(total)], cursor_id.as_deref().map(|id| (id, page)), &c.version, all);
    if cut {
        body = cut_short(&body);
    }
    if let Some(id) = cursor_id {
        w.cursors.insert(id, Cursor { org: c.org, rows: rendered, created: now, page, all });
    }
    Ok(json_bytes(200, body))
}

/// A page as a truncating proxy leaves it: `done: false`, no `nextRecordsUrl`.
fn cut_short(body: &[u8]) -> Vec<u8> {
    let Ok(mut page) = serde_json::from_slice::<Value>(body) else { return body.to_vec() };
    if let Some(map) = page.as_object_mut() {
        map.insert("done".into(), Value::Bool(false));
        map.remove("nextRecordsUrl");
    }
    serde_json::to_vec(&page).unwrap_or_else(|_| body.to_vec())
}

fn page_body(total: usize, rows: &[Box<[u8]>], next: Option<(&str, usize)>, version: &str, all: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + rows.iter().map(|r| r.len() + 1).sum::<usize>());
    out.extend_from_slice(format!("{{\"totalSize\":{total},\"done\":{}", next.is_none()).as_bytes());
    if let Some((id, off)) = next {
        let ep = if all { "queryAll" } else { "query" };
        out.extend_from_slice(format!(",\"nextRecordsUrl\":\"/services/data/v{version}/{ep}/{id}-{off}\"").as_bytes());
    }
    out.extend_from_slice(b",\"records\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(r);
    }
    out.extend_from_slice(b"]}");
    out
}

fn query_more(core: &Core, c: &Call, loc: &str) -> Result<Response<Body>, ApiError> {
    let bad = || ApiError::bad("INVALID_QUERY_LOCATOR", "invalid query locator");
    let (id, off) = loc.rsplit_once('-').ok_or_else(bad)?;
    let off: usize = off.parse().map_err(|_| bad())?;
    let w = core.lock();
    let cur = w.cursors.get(id).filter(|cur| cur.org == c.org).ok_or_else(bad)?;
    if off > cur.rows.len() {
        return Err(bad());
    }
    let end = (off + cur.page).min(cur.rows.len());
    let next = (end < cur.rows.len()).then_some((id, end));
    Ok(json_bytes(200, page_body(cur.rows.len(), &cur.rows[off..end], next, &c.version, cur.all)))
}

fn describe_short(o: &crate::schema::ObjectDef, v: &str) -> Value {
    json!({
        "name": o.name, "label": o.name.trim_end_matches("__c").replace('_', " "), "keyPrefix": o.key_prefix,
        "custom": o.custom, "createable": true, "updateable": true, "deletable": o.name != "User",
        "queryable": true, "retrieveable": true, "searchable": true, "layoutable": true,
        "urls": {"sobject": format!("/services/data/v{v}/sobjects/{}", o.name), "describe": format!("/services/data/v{v}/sobjects/{}/describe", o.name), "rowTemplate": format!("/services/data/v{v}/sobjects/{}/{{ID}}", o.name)},
    })
}

fn describe_global(core: &Core, c: &Call) -> Result<Response<Body>, ApiError> {
    let w = core.lock();
    let objs: Vec<Value> = w.orgs[c.org].objects().iter().map(|o| describe_short(o, &c.version)).collect();
    Ok(json_resp(200, &json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objs})))
}

fn describe(core: &Core, c: &Call, obj: &str) -> Result<Response<Body>, ApiError> {
    let w = core.lock();
    let o = w.orgs[c.org].object(obj)?;
    let fields: Vec<Value> = o
        .fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name, "label": f.name.trim_end_matches("__c").replace('_', " "),
                "type": serde_json::to_value(f.ftype).unwrap_or(Value::Null), "soapType": f.ftype.soap_type(),
                "externalId": f.external_id, "unique": f.unique, "nillable": f.nillable, "updateable": f.updateable,
                "createable": f.createable, "custom": f.name.ends_with("__c"), "calculated": false,
                "idLookup": f.external_id || f.name == "Id" || f.name == "Username", "filterable": true, "sortable": true,
                "length": if f.ftype.is_text() { 255 } else if matches!(f.ftype, crate::schema::FieldType::Id | crate::schema::FieldType::Reference) { 18 } else { 0 },
                "referenceTo": f.reference_to.iter().collect::<Vec<_>>(), "relationshipName": f.relationship_name,
                "defaultedOnCreate": !f.createable || f.ftype == crate::schema::FieldType::Boolean,
            })
        })
        .collect();
    let mut d = describe_short(o, &c.version);
    d["fields"] = Value::Array(fields);
    d["childRelationships"] = json!([]);
    d["recordTypeInfos"] = json!([]);
    Ok(json_resp(200, &d))
}

fn replication(core: &Core, c: &Call, r: &Req, obj: &str, deleted: bool) -> Result<Response<Body>, ApiError> {
    let parse = |k: &str| {
        r.param(k)
            .and_then(|s| crate::clock::parse_datetime(&s))
            .ok_or_else(|| ApiError::bad("INVALID_REPLICATION_DATE", format!("{k} date is missing or invalid")))
    };
    let (start, end) = (parse("start")?, parse("end")?);
    if end < start {
        return Err(ApiError::bad("INVALID_REPLICATION_DATE", "end date must be after start date"));
    }
    let (a, b) = (crate::clock::fmt_rest(start), crate::clock::fmt_rest(end));
    let w = core.lock();
    let (_, t) = w.orgs[c.org].table(obj)?;
    let hits = t.records.values().filter(|rec| {
        rec.deleted == deleted
            && rec.fields.get("SystemModstamp").and_then(Value::as_str).is_some_and(|s| s >= a.as_str() && s <= b.as_str())
    });
    if deleted {
        let recs: Vec<Value> = hits.map(|rec| json!({"id": rec.id, "deletedDate": rec.fields.get("SystemModstamp")})).collect();
        Ok(json_resp(200, &json!({"deletedRecords": recs, "earliestDateAvailable": a, "latestDateCovered": b})))
    } else {
        let ids: Vec<&String> = hits.map(|rec| &rec.id).collect();
        Ok(json_resp(200, &json!({"ids": ids, "latestDateCovered": b})))
    }
}
