//! Integration tests: start the simulator on random ports and drive it with reqwest over HTTPS,
//! trusting the generated CA.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sfsim::{Faults, OutboundSettings, RuleSpec, Sim, SimConfig, SimHandle};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

async fn start(cfg: SimConfig) -> (SimHandle, reqwest::Client) {
    let sim = Sim::start(cfg).await.expect("start");
    let pem = sim.ca_pem().expect("ca");
    let client = reqwest::Client::builder()
        .tls_certs_only(vec![reqwest::Certificate::from_pem(pem.as_bytes()).expect("pem")])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    (sim, client)
}

fn q(url: &str, key: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    u.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

struct Tokens {
    access: String,
    refresh: Option<String>,
    body: Value,
}

async fn oauth_login(sim: &SimHandle, c: &reqwest::Client, user: &str) -> Tokens {
    let app = sfsim::AppSpec::default();
    let verifier = "a-very-long-verifier-string-with-enough-entropy-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let redirect = "http://localhost:9999/oauth/callback";
    let r = c
        .get(format!("{}/services/oauth2/authorize", sim.https_url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", app.client_id.as_str()),
            ("redirect_uri", redirect),
            ("state", "st8"),
            ("scope", "api refresh_token openid"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("login_hint", user),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().expect("loc").to_string();
    assert_eq!(q(&loc, "state").as_deref(), Some("st8"));
    let code = q(&loc, "code").expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", app.client_id.as_str()),
        ("client_secret", app.client_secret.as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", verifier),
    ];
    let r = c.post(format!("{}/services/oauth2/token", sim.https_url())).form(&form).send().await.expect("token");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    // single-use code
    let again = c.post(format!("{}/services/oauth2/token", sim.https_url())).form(&form).send().await.expect("token");
    assert_eq!(again.status(), 400);
    Tokens { access: body["access_token"].as_str().expect("at").into(), refresh: body["refresh_token"].as_str().map(Into::into), body }
}

#[tokio::test]
async fn oauth_web_server_flow_signature_identity_and_rotation() {
    let (sim, c) = start(SimConfig { refresh_window_ms: 300, ..SimConfig::default() }).await;
    let t = oauth_login(&sim, &c, "ana@acme.example").await;
    let b = &t.body;
    let org = sim.org("acme").expect("org");
    assert!(t.access.starts_with(&format!("{}!AQ", org.id15)));
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["instance_url"], sim.https_url());
    assert!(b["id_token"].is_string());
    assert!(b.get("expires_in").is_none());
    let id = b["id"].as_str().expect("id");
    assert!(id.ends_with(&format!("/id/{}/{}", org.id, org.users[2].id)));
    let mut mac = Hmac::<Sha256>::new_from_slice(sfsim::AppSpec::default().client_secret.as_bytes()).expect("mac");
    mac.update(format!("{id}{}", b["issued_at"].as_str().expect("issued_at")).as_bytes());
    assert_eq!(b["signature"].as_str(), Some(STANDARD.encode(mac.finalize().into_bytes()).as_str()));
    // identity URL
    let who: Value = c.get(id).bearer_auth(&t.access).send().await.expect("id").json().await.expect("json");
    assert_eq!(who["username"], "ana@acme.example");
    assert_eq!(who["organization_id"], org.id);
    // refresh with rotation
    let app = sfsim::AppSpec::default();
    let refresh = |rt: String| {
        let c = c.clone();
        let url = format!("{}/services/oauth2/token", sim.https_url());
        let app = app.clone();
        async move {
            let r = c
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                    ("client_id", app.client_id.as_str()),
                    ("client_secret", app.client_secret.as_str()),
                ])
                .send()
                .await
                .expect("refresh");
            (r.status().as_u16(), r.json::<Value>().await.expect("json"))
        }
    };
    let rt1 = t.refresh.expect("refresh token");
    let (s1, b1) = refresh(rt1.clone()).await;
    assert_eq!(s1, 200);
    let rt2 = b1["refresh_token"].as_str().expect("rotated").to_string();
    // a concurrent second refresh of rt1 loses
    let (s2, b2) = refresh(rt1.clone()).await;
    assert_eq!((s2, b2["error_description"].as_str()), (400, Some("expired authorization code")));
    // after the window, reuse of the rotated token revokes the family
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (s3, b3) = refresh(rt1).await;
    assert_eq!((s3, b3["error_description"].as_str()), (400, Some("expired access/refresh token")));
    let (s4, _) = refresh(rt2).await;
    assert_eq!(s4, 400);
    assert!(sim.calls("acme").expect("calls")["oauth_token"] >= 4);
}

#[tokio::test]
async fn authorize_page_deny_and_pkce_failures() {
    let (sim, c) = start(SimConfig { auto_approve: false, ..SimConfig::default() }).await;
    let app = sfsim::AppSpec::default();
    let url = format!("{}/services/oauth2/authorize", sim.https_url());
    let base =
        [("response_type", "code"), ("client_id", app.client_id.as_str()), ("redirect_uri", "http://localhost:1/cb"), ("state", "s")];
    // PKCE required
    let r = c.get(&url).query(&base).send().await.expect("authorize");
    assert_eq!(r.status(), 302);
    assert_eq!(q(r.headers()["location"].to_str().expect("loc"), "error").as_deref(), Some("invalid_request"));
    // page shown
    let mut p = base.to_vec();
    p.push(("code_challenge", "abc"));
    let r = c.get(&url).query(&p).send().await.expect("page");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("html").contains("Allow"));
    // deny
    let mut form: Vec<(&str, &str)> = p.clone();
    form.push(("action", "deny"));
    let r = c.post(&url).form(&form).send().await.expect("deny");
    let loc = r.headers()["location"].to_str().expect("loc").to_string();
    assert_eq!(q(&loc, "error").as_deref(), Some("access_denied"));
    assert!(q(&loc, "error_description").is_some());
    // approve, then a wrong verifier
    let mut form: Vec<(&str, &str)> = p.clone();
    form.extend([("action", "approve"), ("username", "ben@acme.example")]);
    let r = c.post(&url).form(&form).send().await.expect("approve");
    let code = q(r.headers()["location"].to_str().expect("loc"), "code").expect("code");
    let r = c
        .post(format!("{}/services/oauth2/token", sim.https_url()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.as_str()),
            ("redirect_uri", "http://localhost:1/cb"),
            ("code_verifier", "wrong"),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 400);
    // wrong redirect uri is an error page, not a redirect
    let r = c
        .get(&url)
        .query(&[("response_type", "code"), ("client_id", app.client_id.as_str()), ("redirect_uri", "https://evil.example/cb")])
        .send()
        .await
        .expect("page");
    assert_eq!(r.status(), 400);
}

async fn api(
    sim: &SimHandle,
    c: &reqwest::Client,
    tok: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut rb = c.request(method, format!("{}/services/data/v64.0/{path}", sim.https_url())).bearer_auth(tok);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("send");
    let status = r.status().as_u16();
    let limit = r.headers().get("sforce-limit-info").map(|h| h.to_str().unwrap_or("").to_string()).unwrap_or_default();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), limit)
}

#[tokio::test]
async fn composite_upsert_semantics() {
    let (sim, c) = start(SimConfig::default()).await;
    let tok = sim.issue_token("admin@acme.example").expect("token");
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Learning_Result__c"}, "External_Id__c": "k1", "Name": "a"},
        {"attributes": {"type": "Learning_Result__c"}, "External_Id__c": "k2", "Name": "b"},
        {"attributes": {"type": "Learning_Result__c"}, "External_Id__c": "K2", "Name": "c"},
        {"attributes": {"type": "Learning_Result__c"}, "External_Id__c": "k3", "Score__c": "x"},
    ]});
    let (s, v, limit) =
        api(&sim, &c, &tok, reqwest::Method::PATCH, "composite/sobjects/Learning_Result__c/External_Id__c", Some(body)).await;
    assert_eq!(s, 200);
    assert!(limit.starts_with("api-usage=1/"));
    assert_eq!(v[0]["success"], true);
    assert_eq!(v[0]["created"], true);
    assert_eq!(v[1]["errors"][0]["statusCode"], "DUPLICATE_VALUE");
    assert_eq!(v[2]["errors"][0]["statusCode"], "DUPLICATE_VALUE");
    assert_eq!(v[3]["success"], false);
    // update path
    let body = json!({"records": [{"attributes": {"type": "Learning_Result__c"}, "External_Id__c": "K1", "Name": "a2"}]});
    let (_, v, _) = api(&sim, &c, &tok, reqwest::Method::PATCH, "composite/sobjects/Learning_Result__c/External_Id__c", Some(body)).await;
    assert_eq!((v[0]["success"].clone(), v[0]["created"].clone()), (json!(true), json!(false)));
    // a key matching two records
    sim.insert_records(
        "acme",
        "Learning_Result__c",
        vec![json!({"External_Id__c": "dup", "Name": "x"}).as_object().cloned().expect("o"); 2],
    )
    .expect("seed");
    let body = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Learning_Result__c"}, "External_Id__c": "dup"},
        {"attributes": {"type": "Learning_Result__c"}, "External_Id__c": "fresh", "Name": "n"},
    ]});
    let (_, v, _) = api(&sim, &c, &tok, reqwest::Method::PATCH, "composite/sobjects/Learning_Result__c/External_Id__c", Some(body)).await;
    assert_eq!(v[0]["errors"][0]["statusCode"], "DUPLICATE_EXTERNAL_ID");
    assert_eq!(v[1]["errors"][0]["statusCode"], "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    let recs = sim.records("acme", "Learning_Result__c").expect("recs");
    assert!(!recs.iter().any(|r| r["External_Id__c"] == "fresh"), "rolled back");
    // >200 records
    let many: Vec<Value> = (0..201).map(|i| json!({"External_Id__c": format!("m{i}")})).collect();
    let (s, v, _) =
        api(&sim, &c, &tok, reqwest::Method::PATCH, "composite/sobjects/Learning_Result__c/External_Id__c", Some(json!({"records": many})))
            .await;
    assert_eq!((s, v[0]["errorCode"].as_str()), (400, Some("EXCEEDED_ID_LIMIT")));
    assert_eq!(sim.calls("acme").expect("calls")["upsert_collection"], 4);
}

#[tokio::test]
async fn query_paging_relationships_and_errors() {
    let (sim, c) = start(SimConfig { page_size: 7, ..SimConfig::default() }).await;
    sim.generate_users("acme", sfsim::GenSpec { count: 30, depth: 3, ..Default::default() }).expect("gen");
    let tok = sim.issue_token("admin@acme.example").expect("token");
    let soql = "SELECT Id, Username, Manager.Email, UserRole.ParentRoleId FROM User WHERE SystemModstamp >= 2020-01-01T00:00:00Z AND (IsActive = true OR IsActive = false) ORDER BY Username DESC";
    let (s, v, _) = api(&sim, &c, &tok, reqwest::Method::GET, &format!("query?q={}", urlenc(soql)), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["totalSize"], 34);
    let mut got = v["records"].as_array().expect("records").clone();
    let mut next = v["nextRecordsUrl"].as_str().map(str::to_string);
    while let Some(n) = next {
        let r: Value = c.get(format!("{}{n}", sim.https_url())).bearer_auth(&tok).send().await.expect("more").json().await.expect("json");
        got.extend(r["records"].as_array().expect("records").iter().cloned());
        next = r["nextRecordsUrl"].as_str().map(str::to_string);
    }
    assert_eq!(got.len(), 34);
    let names: Vec<&str> = got.iter().filter_map(|r| r["Username"].as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.to_lowercase()));
    assert_eq!(names, sorted);
    assert!(got.iter().any(|r| r["Manager"]["Email"].is_string()));
    for (soql, code) in [
        ("SELECT Nope FROM User", "INVALID_FIELD"),
        ("SELECT Id FROM Nope", "INVALID_TYPE"),
        ("SELECT Id FROM User WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM User WHERE CreatedDate > '2020-01-01'", "INVALID_FIELD"),
    ] {
        let (s, v, _) = api(&sim, &c, &tok, reqwest::Method::GET, &format!("query?q={}", urlenc(soql)), None).await;
        assert_eq!((s, v[0]["errorCode"].as_str()), (400, Some(code)), "{soql}");
    }
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn faults_limits_and_sessions() {
    let (sim, c) = start(SimConfig::default()).await;
    let tok = sim.issue_token("admin@acme.example").expect("token");
    sim.set_faults("acme", Faults { request_limit: Some(2), ..Faults::default() }).expect("faults");
    assert_eq!(api(&sim, &c, &tok, reqwest::Method::GET, "limits", None).await.0, 200);
    assert_eq!(api(&sim, &c, &tok, reqwest::Method::GET, "limits", None).await.0, 200);
    let (s, v, _) = api(&sim, &c, &tok, reqwest::Method::GET, "limits", None).await;
    assert_eq!((s, v[0]["message"].as_str()), (403, Some("TotalRequests Limit exceeded.")));
    sim.set_faults("acme", Faults { lock_row_rate: 1.0, ..Faults::default() }).expect("faults");
    sim.reset_calls("acme").expect("reset");
    let (s, v, _) = api(&sim, &c, &tok, reqwest::Method::POST, "sobjects/Contact", Some(json!({"LastName": "L"}))).await;
    assert_eq!((s, v[0]["errorCode"].as_str()), (400, Some("UNABLE_TO_LOCK_ROW")));
    sim.set_faults("acme", Faults { timeout_rate: 1.0, timeout_ms: 50, ..Faults::default() }).expect("faults");
    let r = c.get(format!("{}/services/data/v64.0/limits", sim.https_url())).bearer_auth(&tok).send().await;
    assert!(r.is_err(), "connection dropped");
    sim.set_faults("acme", Faults::default()).expect("faults");
    sim.expire_sessions("acme").expect("expire");
    let (s, v, _) = api(&sim, &c, &tok, reqwest::Method::GET, "limits", None).await;
    assert_eq!((s, v[0]["errorCode"].as_str()), (401, Some("INVALID_SESSION_ID")));
}

#[tokio::test]
async fn bulk_ingest_state_machine() {
    let (sim, c) = start(SimConfig { bulk_delay_ms: 60_000, ..SimConfig::default() }).await;
    let tok = sim.issue_token("admin@acme.example").expect("token");
    let (_, job, _) = api(&sim, &c, &tok, reqwest::Method::POST, "jobs/ingest", Some(json!({"object": "Survey_Response__c", "externalIdFieldName": "External_Id__c", "contentType": "CSV", "operation": "upsert", "lineEnding": "LF"}))).await;
    assert_eq!(job["state"], "Open");
    let id = job["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("750"));
    assert!(!job["contentUrl"].as_str().expect("url").starts_with('/'));
    let r = c
        .put(format!("{}/services/data/v64.0/jobs/ingest/{id}/batches", sim.https_url()))
        .bearer_auth(&tok)
        .header("content-type", "text/csv")
        .body("External_Id__c,Name,Score__c\ne1,one,1\ne2,two,notanumber\n")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 201);
    let (_, j, _) =
        api(&sim, &c, &tok, reqwest::Method::PATCH, &format!("jobs/ingest/{id}"), Some(json!({"state": "UploadComplete"}))).await;
    assert_eq!(j["state"], "UploadComplete");
    sim.advance_clock(Duration::from_secs(31));
    let (_, j, _) = api(&sim, &c, &tok, reqwest::Method::GET, &format!("jobs/ingest/{id}"), None).await;
    assert_eq!(j["state"], "InProgress");
    sim.advance_clock(Duration::from_secs(30));
    let (_, j, _) = api(&sim, &c, &tok, reqwest::Method::GET, &format!("jobs/ingest/{id}"), None).await;
    assert_eq!(
        (j["state"].as_str(), j["numberRecordsProcessed"].as_u64(), j["numberRecordsFailed"].as_u64()),
        (Some("JobComplete"), Some(2), Some(1))
    );
    let ok = c
        .get(format!("{}/services/data/v64.0/jobs/ingest/{id}/successfulResults", sim.https_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(ok.starts_with("sf__Id,sf__Created,External_Id__c,Name,Score__c\n"));
    assert!(ok.contains(",true,e1,one,1"));
    let bad = c
        .get(format!("{}/services/data/v64.0/jobs/ingest/{id}/failedResults", sim.https_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(bad.starts_with("sf__Id,sf__Error,"));
    assert!(bad.contains("JSON_PARSER_ERROR:"));
    // closing again is an invalid transition
    let (s, _, _) =
        api(&sim, &c, &tok, reqwest::Method::PATCH, &format!("jobs/ingest/{id}"), Some(json!({"state": "UploadComplete"}))).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn outbound_delivery_retry_and_ack() {
    // a receiver that fails twice, then acks properly
    let hits = Arc::new(AtomicUsize::new(0));
    let h2 = hits.clone();
    let app = axum::Router::new().route(
        "/ob",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let h = h2.clone();
            async move {
                assert_eq!(headers["soapaction"], "\"\"");
                assert!(body.contains("<sf:Email>ana@example.com</sf:Email>"));
                let n = h.fetch_add(1, Ordering::SeqCst);
                if n < 2 {
                    (axum::http::StatusCode::OK, "not an ack".to_string())
                } else {
                    (axum::http::StatusCode::OK, r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#.to_string())
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(l, app).await });
    let (sim, _c) = start(SimConfig::default()).await;
    sim.add_outbound_rule(
        "acme",
        RuleSpec {
            name: "c".into(),
            object: "Contact".into(),
            fields: vec!["Email".into(), "Phone".into(), "SystemModstamp".into()],
            endpoint_url: format!("http://127.0.0.1:{port}/ob"),
            ..RuleSpec::default()
        },
    )
    .expect("rule");
    sim.set_outbound_settings("acme", OutboundSettings { base_retry_secs: 10, ..OutboundSettings::default() }).expect("settings");
    sim.insert_records("acme", "Contact", vec![json!({"LastName": "A", "Email": "ana@example.com"}).as_object().cloned().expect("o")])
        .expect("insert");
    let wait_for = |n: usize| {
        let sim = &sim;
        async move {
            for _ in 0..200 {
                if sim.deliveries("acme").expect("d").len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no delivery {n}");
        }
    };
    wait_for(1).await;
    let q = sim.outbound_queue("acme").expect("q");
    assert_eq!(q[0].attempts, 1);
    sim.advance_clock(Duration::from_secs(11));
    wait_for(2).await;
    sim.advance_clock(Duration::from_secs(21));
    wait_for(3).await;
    let d = sim.deliveries("acme").expect("d");
    assert_eq!(d.iter().map(|x| x.acked).collect::<Vec<_>>(), vec![false, false, true]);
    assert!(d[2].body.contains("<sf:Phone xsi:nil=\"true\"/>"));
    assert!(d[2].notification_ids[0].starts_with("04l"));
    assert!(sim.outbound_queue("acme").expect("q").is_empty());
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn admin_http_multi_org_and_login_hosts() {
    let (sim, c) = start(SimConfig::default()).await;
    let admin = |m: reqwest::Method, p: &str, body: Value| {
        let c = c.clone();
        let url = format!("{}/_sim{p}", sim.http_url());
        async move {
            let r = c.request(m, url).json(&body).send().await.expect("admin");
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, org) = admin(
        reqwest::Method::POST,
        "/orgs",
        json!({"name": "Globex", "my_domain": "globex--uat", "sandbox": true,
               "install_apps": [sfsim::AppSpec::default().client_id],
               "users": [{"username": "hank@globex.example", "password": "pw", "security_token": "T"}]}),
    )
    .await;
    assert_eq!(s, 200, "{org}");
    assert!(org["id"].as_str().is_some_and(|i| i.starts_with("00D") && i.len() == 18));
    let (s, ids) = admin(reqwest::Method::POST, "/orgs/globex--uat/generate", json!({"count": 20, "depth": 4})).await;
    assert_eq!((s, ids.as_array().map(Vec::len)), (200, Some(20)));
    // SOAP login: sandbox users only through test.salesforce.com (or their My Domain)
    let login = |host: &'static str, user: &'static str, pw: &'static str| {
        let c = c.clone();
        let url = format!("{}/{host}/services/Soap/u/64.0", sim.https_url());
        async move {
            let body = format!(
                "<env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\"><env:Body><n1:login xmlns:n1=\"urn:partner.soap.sforce.com\"><n1:username>{user}</n1:username><n1:password>{pw}</n1:password></n1:login></env:Body></env:Envelope>"
            );
            let r = c.post(url).header("SOAPAction", "login").header("content-type", "text/xml").body(body).send().await.expect("login");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    assert_eq!(login("login.salesforce.com", "hank@globex.example", "pwT").await.0, 500);
    let (s, text) = login("test.salesforce.com", "hank@globex.example", "pwT").await;
    assert_eq!(s, 200, "{text}");
    assert!(text.contains("<sandbox>true</sandbox>"));
    assert_eq!(login("globex--uat.sandbox.my.salesforce.com", "hank@globex.example", "pw").await.0, 200);
    // tokens are per org
    let (_, t) = admin(reqwest::Method::POST, "/token", json!({"username": "hank@globex.example"})).await;
    let tok = t["access_token"].as_str().expect("tok").to_string();
    let (_, v, _) = api(&sim, &c, &tok, reqwest::Method::GET, &format!("query?q={}", urlenc("SELECT COUNT() FROM User")), None).await;
    assert_eq!(v["totalSize"], 21);
    // faults and counters over HTTP
    let (s, _) = admin(reqwest::Method::PUT, "/orgs/globex--uat/faults", json!({"query_timeout_rate": 1.0})).await;
    assert_eq!(s, 200);
    let (_, v, _) = api(&sim, &c, &tok, reqwest::Method::GET, &format!("query?q={}", urlenc("SELECT Id FROM User")), None).await;
    assert_eq!(v[0]["errorCode"], "QUERY_TIMEOUT");
    let (_, calls) = admin(reqwest::Method::GET, "/orgs/globex--uat/calls", json!({})).await;
    assert_eq!((calls["query"].as_u64(), calls["api_used"].as_u64()), (Some(2), Some(2)));
    let (_, clock) = admin(reqwest::Method::POST, "/clock", json!({"advance_secs": 3600})).await;
    assert!(clock["now"].as_str().is_some_and(|n| n.ends_with("+0000")));
    let (s, _) = admin(reqwest::Method::GET, "/orgs/nope", json!({})).await;
    assert_eq!(s, 404);
    // versions list needs no auth; old versions are 404
    let v: Value = c.get(format!("{}/services/data/", sim.https_url())).send().await.expect("versions").json().await.expect("json");
    assert!(v.as_array().is_some_and(|a| a.iter().any(|x| x["version"] == "64.0")));
    let (s, _, _) = api(&sim, &c, &tok, reqwest::Method::GET, "../v50.0/limits", None).await;
    assert_eq!(s, 404);
}
