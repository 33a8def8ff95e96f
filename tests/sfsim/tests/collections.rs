//! sObject Collections over HTTPS: create, update, delete and retrieve on `composite/sobjects`,
//! with per-record results in order, allOrNone rollback and the request-level limits.

use reqwest::Method;
use serde_json::{Value, json};
use sfsim::{Sim, SimConfig, SimHandle};

struct Api {
    sim: SimHandle,
    client: reqwest::Client,
    token: String,
}

impl Api {
    async fn start() -> Self {
        let sim = Sim::start(SimConfig::default()).await.expect("start");
        let pem = sim.ca_pem().expect("ca");
        let client = reqwest::Client::builder()
            .tls_certs_only(vec![reqwest::Certificate::from_pem(pem.as_bytes()).expect("pem")])
            .build()
            .expect("client");
        let token = sim.issue_token("admin@acme.example").expect("token");
        Self { sim, client, token }
    }

    /// Status and JSON body of a REST call under `/services/data/v64.0/`.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/services/data/v64.0/{path}", self.sim.https_url());
        let mut rb = self.client.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("send");
        let status = r.status().as_u16();
        (status, serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or(Value::Null))
    }

    fn record(&self, object: &str, id: &str) -> Option<Value> {
        self.sim.records("acme", object).expect("records").into_iter().find(|r| r["Id"] == id).map(Value::Object)
    }
}

fn code(row: &Value) -> &str {
    row["errors"][0]["statusCode"].as_str().unwrap_or("")
}

fn id(row: &Value) -> String {
    row["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn create_mixed_types_in_order_with_per_record_errors() {
    let api = Api::start().await;
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Account"}, "Name": "Acme One"},
        {"attributes": {"type": "Contact"}, "LastName": "Doe", "Email": "doe@x.example"},
        {"attributes": {"type": "Contact"}, "LastName": "Bad", "Nope__c": 1},
        {"attributes": {"type": "Contact"}, "Email": "nolast@x.example"},
        {"LastName": "NoType"},
        {"attributes": {"type": "Contact"}, "Id": "003000000000000AAA", "LastName": "WithId"},
        {"attributes": {"type": "Nope__c"}, "Name": "x"},
        {"attributes": {"type": "Account"}, "Name": "Acme Two"},
    ]});
    let (s, v) = api.call(Method::POST, "composite/sobjects", Some(body)).await;
    assert_eq!(s, 200, "{v}");
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 8);
    assert!(id(&rows[0]).starts_with("001") && rows[0]["success"] == true && rows[0]["errors"] == json!([]));
    assert!(id(&rows[1]).starts_with("003"));
    assert_eq!(rows[1].get("created"), None, "create results are SaveResults without `created`");
    assert_eq!((code(&rows[2]), rows[2]["errors"][0]["fields"].clone()), ("INVALID_FIELD", json!(["Nope__c"])));
    assert_eq!(code(&rows[3]), "REQUIRED_FIELD_MISSING");
    assert_eq!(code(&rows[4]), "INVALID_TYPE");
    assert_eq!(code(&rows[5]), "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(code(&rows[6]), "INVALID_TYPE");
    assert!(id(&rows[7]).starts_with("001"));
    for bad in &rows[2..7] {
        assert_eq!(bad["success"], false);
        assert!(bad.get("id").is_none());
    }
    assert_eq!(api.record("Contact", &id(&rows[1])).expect("stored")["Name"], "Doe");
    assert_eq!(api.sim.calls("acme").expect("calls")["create_collection"], 1);
}

#[tokio::test]
async fn create_all_or_none_rolls_back_everything() {
    let api = Api::start().await;
    let before = api.sim.records("acme", "Account").expect("records").len();
    let body = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Account"}, "Name": "Kept?"},
        {"attributes": {"type": "Account"}},
        {"attributes": {"type": "Account"}, "Name": "Kept too?"},
    ]});
    let (s, v) = api.call(Method::POST, "composite/sobjects", Some(body)).await;
    assert_eq!(s, 200);
    assert_eq!(code(&v[0]), "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    assert_eq!(code(&v[1]), "REQUIRED_FIELD_MISSING");
    assert_eq!(code(&v[2]), "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    assert_eq!(api.sim.records("acme", "Account").expect("records").len(), before);
    // the same records without the bad one all succeed
    let body = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Account"}, "Name": "A"}, {"attributes": {"type": "Account"}, "Name": "B"},
    ]});
    let (_, v) = api.call(Method::POST, "composite/sobjects", Some(body)).await;
    assert!(v.as_array().expect("rows").iter().all(|r| r["success"] == true));
}

#[tokio::test]
async fn request_level_limits() {
    let api = Api::start().await;
    let many: Vec<Value> = (0..201).map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("n{i}")})).collect();
    for method in [Method::POST, Method::PATCH] {
        let (s, v) = api.call(method, "composite/sobjects", Some(json!({"records": many}))).await;
        assert_eq!((s, v[0]["errorCode"].as_str()), (400, Some("EXCEEDED_ID_LIMIT")));
    }
    // eleven chunks: Account, Contact, Account, … alternate types
    let chunks: Vec<Value> = (0..11)
        .map(|i| {
            if i % 2 == 0 {
                json!({"attributes": {"type": "Account"}, "Name": "a"})
            } else {
                json!({"attributes": {"type": "Contact"}, "LastName": "c"})
            }
        })
        .collect();
    let (s, v) = api.call(Method::POST, "composite/sobjects", Some(json!({"records": chunks[..10]}))).await;
    assert_eq!(s, 200, "ten chunks are fine: {v}");
    let (s, v) = api.call(Method::POST, "composite/sobjects", Some(json!({"records": chunks}))).await;
    assert_eq!((s, v[0]["errorCode"].as_str()), (400, Some("INVALID_OPERATION")));
    let (s, v) = api.call(Method::POST, "composite/sobjects", Some(json!({"allOrNone": true}))).await;
    assert_eq!((s, v[0]["errorCode"].as_str()), (400, Some("JSON_PARSER_ERROR")));
    let ids = vec!["001000000000000"; 201].join(",");
    let (s, v) = api.call(Method::DELETE, &format!("composite/sobjects?ids={ids}"), None).await;
    assert_eq!((s, v[0]["errorCode"].as_str()), (400, Some("EXCEEDED_ID_LIMIT")));
    let ids = vec!["001000000000000"; 2001].join(",");
    let (s, v) = api.call(Method::POST, "composite/sobjects/Account", Some(json!({"ids": ids, "fields": ["Name"]}))).await;
    assert_eq!((s, v[0]["errorCode"].as_str()), (400, Some("EXCEEDED_ID_LIMIT")));
}

async fn seed(api: &Api) -> (String, String, String) {
    let body = json!({"records": [
        {"attributes": {"type": "Account"}, "Name": "Upd"},
        {"attributes": {"type": "Contact"}, "LastName": "Upd", "Email": "u@x.example"},
        {"attributes": {"type": "Contact"}, "LastName": "Gone"},
    ]});
    let (_, v) = api.call(Method::POST, "composite/sobjects", Some(body)).await;
    (id(&v[0]), id(&v[1]), id(&v[2]))
}

#[tokio::test]
async fn update_needs_ids_and_honours_all_or_none() {
    let api = Api::start().await;
    let (acc, con, gone) = seed(&api).await;
    let (s, _) = api.call(Method::DELETE, &format!("sobjects/Contact/{gone}"), None).await;
    assert_eq!(s, 204);
    let body = json!({"allOrNone": false, "records": [
        {"id": acc, "attributes": {"type": "Account"}, "Name": "Upd 2"},
        {"Id": &con[..15], "attributes": {"type": "Contact"}, "Email": "u2@x.example"},
        {"attributes": {"type": "Contact"}, "Email": "noid@x.example"},
        {"id": acc, "attributes": {"type": "Contact"}, "Email": "wrongtype@x.example"},
        {"id": gone, "attributes": {"type": "Contact"}, "Email": "gone@x.example"},
        {"id": "003000000000000AAA", "attributes": {"type": "Contact"}, "Email": "never@x.example"},
        {"id": con, "attributes": {"type": "Contact"}, "LastName": null},
        {"id": con, "Email": "notype@x.example"},
    ]});
    let (s, v) = api.call(Method::PATCH, "composite/sobjects", Some(body)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((id(&v[0]), id(&v[1])), (acc.clone(), con.clone()));
    let codes: Vec<&str> = v.as_array().expect("rows")[2..].iter().map(code).collect();
    assert_eq!(
        codes,
        ["MISSING_ARGUMENT", "MALFORMED_ID", "ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "REQUIRED_FIELD_MISSING", "INVALID_TYPE"]
    );
    assert_eq!(api.record("Account", &acc).expect("acc")["Name"], "Upd 2");
    assert_eq!(api.record("Contact", &con).expect("con")["Email"], "u2@x.example");
    // all or none: one bad row, nothing changes
    let body = json!({"allOrNone": true, "records": [
        {"id": acc, "attributes": {"type": "Account"}, "Name": "Upd 3"},
        {"id": con, "attributes": {"type": "Contact"}, "Bogus__c": 1},
    ]});
    let (_, v) = api.call(Method::PATCH, "composite/sobjects", Some(body)).await;
    assert_eq!((code(&v[0]), code(&v[1])), ("ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_FIELD"));
    assert_eq!(api.record("Account", &acc).expect("acc")["Name"], "Upd 2");
}

#[tokio::test]
async fn delete_by_ids_with_per_id_results() {
    let api = Api::start().await;
    let (acc, con, gone) = seed(&api).await;
    api.call(Method::DELETE, &format!("composite/sobjects?ids={gone}"), None).await;
    let user = api.sim.org("acme").expect("org").users[0].id.clone();
    // all or none first: a bad id keeps every record
    let (s, v) = api.call(Method::DELETE, &format!("composite/sobjects?ids={acc},{gone}&allOrNone=true"), None).await;
    assert_eq!(s, 200);
    assert_eq!((code(&v[0]), code(&v[1])), ("ALL_OR_NONE_OPERATION_ROLLED_BACK", "ENTITY_IS_DELETED"));
    assert!(api.record("Account", &acc).is_some_and(|r| r["IsDeleted"] == false));
    let ids = format!("{acc},{},{gone},001000000000000AAA,nope,{user},{acc}", &con[..15]);
    let (s, v) = api.call(Method::DELETE, &format!("composite/sobjects?ids={ids}&allOrNone=false"), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((id(&v[0]), id(&v[1])), (acc.clone(), con.clone()));
    let codes: Vec<&str> = v.as_array().expect("rows")[2..].iter().map(code).collect();
    assert_eq!(
        codes,
        ["ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID", "INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED"]
    );
    assert!(api.record("Contact", &con).is_some_and(|r| r["IsDeleted"] == true), "soft delete");
    let (s, v) = api.call(Method::DELETE, "composite/sobjects", None).await;
    assert_eq!((s, v[0]["errorCode"].as_str()), (400, Some("MISSING_ARGUMENT")));
    assert_eq!(api.sim.calls("acme").expect("calls")["delete_collection"], 4);
}

#[tokio::test]
async fn retrieve_by_get_and_post_in_order_with_nulls() {
    let api = Api::start().await;
    let (acc, con, gone) = seed(&api).await;
    api.call(Method::DELETE, &format!("sobjects/Contact/{gone}"), None).await;
    let ids = format!("{con},{acc},{gone},003000000000000AAA,{}", &con[..15]);
    let (s, v) = api.call(Method::GET, &format!("composite/sobjects/Contact?ids={ids}&fields=Id,LastName,email"), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v.as_array().expect("rows").len(), 5);
    assert_eq!(v[0]["attributes"]["type"], "Contact");
    assert_eq!(v[0]["attributes"]["url"], format!("/services/data/v64.0/sobjects/Contact/{con}"));
    assert_eq!(
        (v[0]["Id"].as_str(), v[0]["LastName"].as_str(), v[0]["Email"].as_str()),
        (Some(con.as_str()), Some("Upd"), Some("u@x.example"))
    );
    assert!(v[0].get("Name").is_none(), "only the fields asked for");
    assert_eq!((v[1].clone(), v[2].clone(), v[3].clone()), (Value::Null, Value::Null, Value::Null));
    assert_eq!(v[4]["Id"], con);
    let (s, v) = api.call(Method::POST, "composite/sobjects/Contact", Some(json!({"ids": [con, acc], "fields": ["Name"]}))).await;
    assert_eq!(s, 200);
    assert_eq!((v[0]["Name"].as_str(), v[1].clone()), (Some("Upd"), Value::Null));
    let (s, v) = api.call(Method::GET, &format!("composite/sobjects/Contact?ids={con}&fields=Nope__c"), None).await;
    assert_eq!((s, v[0]["errorCode"].as_str()), (400, Some("INVALID_FIELD")));
    let (s, v) = api.call(Method::GET, &format!("composite/sobjects/Contact?ids={con}"), None).await;
    assert_eq!((s, v[0]["errorCode"].as_str()), (400, Some("MISSING_ARGUMENT")));
    let (s, _) = api.call(Method::GET, &format!("composite/sobjects/Nope__c?ids={con}&fields=Id"), None).await;
    assert_eq!(s, 404);
    assert_eq!(api.sim.calls("acme").expect("calls")["retrieve_collection"], 5);
}
